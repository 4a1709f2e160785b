package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func addSeeds(f *testing.F) {
	f.Add([]byte(applyDoc))
	f.Add([]byte(positionDoc))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: A\n- kind: B\n"))
	f.Add([]byte(`{"apiVersion": "v1", "kind": "A", "metadata": {"labels": {"a": "b"}}}{"apiVersion": "v1", "kind": "B"}`))
	f.Add([]byte("apiVersion: v1\nkind: A\nd: &d {a: 1, b: [x, y]}\ne: {<<: *d, c: on}\nf: *d\n"))
	f.Add([]byte("---\n{apiVersion: v1, kind: A, spec: {x: [1, 2.5, .inf]}}\n--- # c\n"))
	f.Add([]byte("apiVersion: v1\r\nkind: A\r\nx: |\r\n  a\r\n  b\r\n"))
	_ = filepath.WalkDir("../../test/testdata/real-world", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
		return nil
	})
}

// FuzzRead: any input reads without a panic, every error is an *Error with a line, and
// every document is a JSON object whose positions can be asked for.
func FuzzRead(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Read([]string{"-"}, Options{Stdin: bytes.NewReader(data), Workers: 2})
		if err != nil {
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("error is not an *Error: %v", err)
			}
			for _, e := range errs {
				if e.Line < 1 || e.Column < 1 || e.File != StdinName {
					t.Fatalf("error without a position: %#v", e)
				}
			}
		}
		for _, d := range docs {
			var m map[string]any
			if err := json.Unmarshal(d.JSON, &m); err != nil {
				t.Fatalf("document JSON %q: %v", d.JSON, err)
			}
			if d.Kind == "" || d.APIVersion == "" || d.Line < 1 || d.Column < 1 {
				t.Fatalf("document %+v", d)
			}
			for k := range m {
				if l, c := d.Position(k); l < 1 || c < 1 {
					t.Fatalf("position of %q: %d:%d", k, l, c)
				}
			}
			d.PointerPosition("/spec/volumeClaimTemplates/0/spec/x~1y")
			var into struct {
				Metadata struct{ Labels map[string]string }
			}
			if err := d.Decode(&into); err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Line < 1 {
					t.Fatalf("decode error %v", err)
				}
			}
		}
	})
}

// FuzzReadMatchesKubectl: when kubectl's own decoder and Read both accept an input, they
// see the same objects.
func FuzzReadMatchesKubectl(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		want, ok := kubectlObjects(data)
		if !ok {
			return
		}
		docs, err := Read([]string{"-"}, Options{Stdin: bytes.NewReader(data)})
		if err != nil {
			return // yaml.v3 and go-yaml v2 disagree on some malformed input
		}
		if len(docs) != len(want) {
			t.Fatalf("kubectl reads %d objects, Read %d", len(want), len(docs))
		}
		for i, d := range docs {
			if !sameJSON(want[i], d.JSON) {
				t.Fatalf("object %d: kubectl %s, Read %s", i, want[i], d.JSON)
			}
		}
	})
}

// kubectlObjects decodes data as kubectl's StreamVisitor does, reporting false when
// kubectl would reject it or when it holds Lists (flattened elsewhere in kubectl).
func kubectlObjects(data []byte) (objs [][]byte, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		ext := runtime.RawExtension{}
		if err := d.Decode(&ext); err != nil {
			if err == io.EOF {
				return objs, true
			}
			return nil, false
		}
		raw := bytes.TrimSpace(ext.Raw)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			continue
		}
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil || m["items"] != nil {
			return nil, false
		}
		if _, has := m["items"]; has {
			return nil, false
		}
		if k, _ := m["kind"].(string); k == "" {
			return nil, false
		}
		if v, _ := m["apiVersion"].(string); v == "" {
			return nil, false
		}
		objs = append(objs, raw)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return reflect.DeepEqual(normalizeNumbers(x), normalizeNumbers(y))
}

// normalizeNumbers compares JSON numbers by value: the JSON path keeps the source text
// (1.0), the YAML path writes what go-yaml resolved (1).
func normalizeNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = normalizeNumbers(x)
		}
	case []any:
		for i, x := range v {
			v[i] = normalizeNumbers(x)
		}
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	return v
}

// FuzzApply: a patch applied by Apply reads back as the same patch applied to the JSON.
func FuzzApply(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Read([]string{"-"}, Options{Stdin: bytes.NewReader(data)})
		if err != nil || len(docs) == 0 {
			return
		}
		d := docs[len(docs)-1]
		// Derive patches from the input so the fuzzer steers them: paths to existing
		// members and to new ones below them, values of every kind.
		var obj any
		if json.Unmarshal(d.JSON, &obj) != nil {
			t.Fatal("bad JSON")
		}
		values := []any{"on", "12", "", "a: b", "multi\nline", true, 3.5, nil, map[string]any{"yes": "no"}, []any{"x", 1}}
		var patches []Patch
		for i, p := range pathsOf(obj, "", 0) {
			v := values[(len(data)+i)%len(values)]
			switch (len(data) + i) % 4 {
			case 0:
				patches = append(patches, Patch{Op: "replace", Path: p, Value: v})
			case 1:
				patches = append(patches, Patch{Op: "add", Path: p + "/new~1key", Value: v})
			case 2:
				patches = append(patches, Patch{Op: "add", Path: p + "/-", Value: v})
			case 3:
				patches = append(patches, Patch{Op: "add", Path: p + "/a/b", Value: v})
			}
			if len(patches) == 3 {
				break
			}
		}
		want := obj
		var ok []Patch
		for _, p := range patches {
			next, err := modelApply(deepCopyJSON(want), p)
			if err != nil {
				if _, err := d.Apply(append(append([]Patch{}, ok...), p)); err == nil {
					t.Fatalf("patch %+v: model fails (%v), Apply does not", p, err)
				}
				continue
			}
			want = next
			ok = append(ok, p)
		}
		out, err := d.Apply(ok)
		if err != nil {
			t.Fatalf("Apply %+v: %v", ok, err)
		}
		again, err := Read([]string{"-"}, Options{Stdin: bytes.NewReader(out)})
		if err != nil {
			t.Fatalf("output does not read back: %v\n%s", err, out)
		}
		var target *Document
		for _, a := range again {
			if a.item == d.item {
				target = a
			}
		}
		if target == nil {
			t.Fatalf("output has no object\n%s", out)
		}
		wantJSON, _ := json.Marshal(want)
		if !sameJSON(wantJSON, target.JSON) {
			t.Fatalf("patches %+v\nwant %s\ngot  %s\noutput:\n%s", ok, wantJSON, target.JSON, out)
		}
	})
}

func pathsOf(v any, prefix string, depth int) []string {
	out := []string{}
	if depth > 4 {
		return out
	}
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sortStrings(keys)
		for _, k := range keys {
			if k == "apiVersion" || k == "kind" {
				continue
			}
			p := prefix + "/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
			out = append(out, p)
			out = append(out, pathsOf(v[k], p, depth+1)...)
		}
	case []any:
		for i, x := range v {
			p := prefix + "/" + strconv.Itoa(i)
			out = append(out, p)
			out = append(out, pathsOf(x, p, depth+1)...)
		}
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func deepCopyJSON(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// modelApply is the semantics Apply promises, on decoded JSON.
func modelApply(root any, p Patch) (any, error) {
	steps := parsePointer(p.Path)
	if len(steps) == 0 {
		return nil, fmt.Errorf("root")
	}
	val := deepCopyJSON(p.Value)
	create := p.Op == "add"
	var set func(cur any, i int) (any, error)
	set = func(cur any, i int) (any, error) {
		s := steps[i]
		last := i == len(steps)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if _, ok := c[s]; !ok && !create {
					return nil, fmt.Errorf("missing")
				}
				c[s] = val
				return c, nil
			}
			child, ok := c[s]
			if !ok || child == nil {
				if !create {
					return nil, fmt.Errorf("missing")
				}
				if steps[i+1] == "-" {
					child = []any{}
				} else {
					child = map[string]any{}
				}
			}
			n, err := set(child, i+1)
			if err != nil {
				return nil, err
			}
			c[s] = n
			return c, nil
		case []any:
			if s == "-" {
				if !last || !create {
					return nil, fmt.Errorf("-")
				}
				return append(c, val), nil
			}
			idx, err := strconv.Atoi(s)
			if err != nil || idx < 0 || idx > len(c) || idx == len(c) && (!last || !create) {
				return nil, fmt.Errorf("index")
			}
			if last {
				if create {
					c = append(c, nil)
					copy(c[idx+1:], c[idx:])
				}
				c[idx] = val
				return c, nil
			}
			n, err := set(c[idx], i+1)
			if err != nil {
				return nil, err
			}
			c[idx] = n
			return c, nil
		}
		return nil, fmt.Errorf("scalar")
	}
	return set(root, 0)
}

// FuzzFastPath: whatever the fast path accepts, it converts exactly as the yaml.v3 path
// does, down to every position in the index.
func FuzzFastPath(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("a: b\nc:\n- d: e\n  f: [g, 'h''i', \"j\"]\n- k\nl: {}\nm: []\n"))
	f.Add([]byte("  a: 1\n  b:\n    c: -x\n  d: x#y # z\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastPath(t, data)
	})
}

func checkFastPath(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	chunks, _ := split(&source{name: "x", data: data})
	for i := range chunks {
		ch := &chunks[i]
		if ch.json {
			continue
		}
		yd := ch.yamlData()
		fc := &converter{line0: ch.line, col0: ch.col, limit: 1 << 30}
		if !fastConvert(yd, fc) {
			continue
		}
		fast = true
		sc := &converter{line0: ch.line, col0: ch.col, limit: 1 << 30}
		x, errs := slowConvert(ch, yd, sc)
		if x == nil {
			t.Fatalf("fast path accepts what yaml.v3 does not (%v):\n%s", errs, yd)
		}
		if string(fc.json) != string(x.json) {
			t.Fatalf("JSON differs:\nfast %s\nslow %s\ninput:\n%s", fc.json, x.json, yd)
		}
		if !reflect.DeepEqual(fc.ents, x.ents) {
			for j := range x.ents {
				if j >= len(fc.ents) || fc.ents[j] != x.ents[j] {
					var got entry
					if j < len(fc.ents) {
						got = fc.ents[j]
					}
					t.Fatalf("entry %d differs:\nfast %+v\nslow %+v\ninput:\n%s", j, got, x.ents[j], yd)
				}
			}
			t.Fatalf("fast path has %d entries, slow %d", len(fc.ents), len(x.ents))
		}
	}
	return fast
}

// TestFastPathCoverage: the manifests people write take the fast path.
func TestFastPathCoverage(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateCorpus(dir, 40, 7); err != nil {
		t.Fatal(err)
	}
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	for _, name := range []string{"web.yaml", "web-parallel.yaml", "zookeeper.yaml", "cassandra/cassandra-statefulset.yaml", "mysql/mysql-services.yaml"} {
		files = append(files, filepath.Join("../../test/testdata/real-world", name))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !checkFastPath(t, data) {
			t.Errorf("%s does not take the fast path", f)
		}
	}
}
