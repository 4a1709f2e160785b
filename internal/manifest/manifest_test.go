package manifest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func readString(t *testing.T, in string) ([]*Document, error) {
	t.Helper()
	return Read([]string{"-"}, Options{Stdin: strings.NewReader(in)})
}

type docWant struct {
	kind, name   string
	line, column int
}

func summarize(docs []*Document) []docWant {
	out := []docWant{}
	for _, d := range docs {
		out = append(out, docWant{d.Kind, d.Name, d.Line, d.Column})
	}
	return out
}

func TestReadDocuments(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []docWant
	}{
		{
			name: "multi-document YAML",
			in:   "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: b\n",
			want: []docWant{{"Service", "a", 1, 1}, {"StatefulSet", "b", 6, 1}},
		},
		{
			name: "leading markers, comments and empty documents",
			in: "# file comment\n---\n---\n# only a comment\n---\n\n   \n---   # separator comment\n" +
				"# head comment\napiVersion: v1\nkind: A\n--- # more\nnull\n---\n~\n---\napiVersion: v1\nkind: B\n",
			want: []docWant{{"A", "", 10, 1}, {"B", "", 17, 1}},
		},
		{
			name: "indented document",
			in:   "---\n  apiVersion: v1\n  kind: A\n",
			want: []docWant{{"A", "", 2, 3}},
		},
		{
			name: "document end marker",
			in:   "apiVersion: v1\nkind: A\n...\n",
			want: []docWant{{"A", "", 1, 1}},
		},
		{
			name: "JSON object",
			in:   "\n  {\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Service\",\n    \"metadata\": {\"name\": \"a\", \"namespace\": \"ns\"}\n  }\n",
			want: []docWant{{"Service", "a", 2, 3}},
		},
		{
			name: "JSON stream",
			in:   "{\"apiVersion\": \"v1\", \"kind\": \"A\"}\n{\"apiVersion\": \"v1\", \"kind\": \"B\"} {\"apiVersion\": \"v1\", \"kind\": \"C\"}\n",
			want: []docWant{{"A", "", 1, 1}, {"B", "", 2, 1}, {"C", "", 2, 35}},
		},
		{
			name: "JSON documents separated by ---",
			in:   "{\"apiVersion\": \"v1\", \"kind\": \"A\"}\n---\n{\"apiVersion\": \"v1\", \"kind\": \"B\"}\n---\napiVersion: v1\nkind: C\n",
			want: []docWant{{"A", "", 1, 1}, {"B", "", 3, 1}, {"C", "", 5, 1}},
		},
		{
			name: "flow-style YAML starting with a brace",
			in:   "{apiVersion: v1, kind: A,\n metadata: {name: a}}\n",
			want: []docWant{{"A", "a", 1, 1}},
		},
		{
			name: "flow-style YAML after a marker",
			in:   "---\n{\n  apiVersion: \"v1\",\n  kind: \"A\",\n}\n",
			want: []docWant{{"A", "", 2, 1}},
		},
		{
			name: "kind List",
			in: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\n" +
				"- apiVersion: apps/v1\n  kind: StatefulSet\n  metadata:\n    name: b\n",
			want: []docWant{{"Service", "a", 4, 3}, {"StatefulSet", "b", 8, 3}},
		},
		{
			name: "typed List fills in kind and apiVersion",
			in:   "apiVersion: v1\nkind: ServiceList\nitems:\n- metadata:\n    name: a\n- {}\n",
			want: []docWant{{"Service", "a", 4, 3}, {"Service", "", 6, 3}},
		},
		{
			name: "List in JSON",
			in:   `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"A"},{"apiVersion":"v1","kind":"B"}]}`,
			want: []docWant{{"A", "", 1, 43}, {"B", "", 1, 74}},
		},
		{
			name: "empty List",
			in:   "apiVersion: v1\nkind: List\nitems: []\n---\napiVersion: v1\nkind: List\nitems:\n",
			want: []docWant{},
		},
		{
			name: "CRLF line endings",
			in:   "apiVersion: v1\r\nkind: A\r\n---\r\napiVersion: v1\r\nkind: B\r\nmetadata:\r\n  name: b\r\n",
			want: []docWant{{"A", "", 1, 1}, {"B", "b", 4, 1}},
		},
		{
			name: "byte order mark",
			in:   "\ufeffapiVersion: v1\nkind: A\n",
			want: []docWant{{"A", "", 1, 1}},
		},
		{name: "empty input", in: "", want: []docWant{}},
		{name: "only comments", in: "# nothing\n# here\n", want: []docWant{}},
		{name: "only markers", in: "---\n---\n", want: []docWant{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := readString(t, tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, summarize(docs))
			for _, d := range docs {
				assert.Equal(t, StdinName, d.File)
				var m map[string]any
				require.NoError(t, json.Unmarshal(d.JSON, &m), string(d.JSON))
				assert.Equal(t, d.Kind, m["kind"])
				assert.Equal(t, d.APIVersion, m["apiVersion"])
			}
		})
	}
}

func TestReadFields(t *testing.T) {
	docs, err := readString(t, "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n  labels:\n    on: on\n")
	require.NoError(t, err)
	require.Len(t, docs, 1)
	d := docs[0]
	assert.Equal(t, "v1", d.APIVersion)
	assert.Equal(t, "Service", d.Kind)
	assert.Equal(t, "web", d.Name)
	assert.Equal(t, "shop", d.Namespace)
	assert.JSONEq(t, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop","labels":{"true":true}}}`, string(d.JSON))
}

func TestReadList(t *testing.T) {
	in := "apiVersion: v1\nkind: ServiceList\nitems:\n- metadata:\n    name: a\n  spec:\n    clusterIP: None\n"
	docs, err := readString(t, in)
	require.NoError(t, err)
	require.Len(t, docs, 1)
	d := docs[0]
	assert.JSONEq(t, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIP":"None"}}`, string(d.JSON))
	line, col := d.Position("spec.clusterIP")
	assert.Equal(t, [2]int{7, 5}, [2]int{line, col})
	line, col = d.Position("kind") // filled in from the List: the item itself
	assert.Equal(t, [2]int{4, 3}, [2]int{line, col})
	assert.Equal(t, in, string(d.Source()))

	var svc corev1.Service
	require.NoError(t, d.Decode(&svc))
	assert.Equal(t, "None", svc.Spec.ClusterIP)
	assert.Equal(t, "Service", svc.Kind)
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		docs int      // documents still read
		want []string // each error, as "line:col: message prefix"
	}{
		{
			name: "tab indentation",
			in:   "apiVersion: v1\nkind: A\nmetadata:\n\tname: a\n",
			want: []string{"4:1: invalid YAML: found character that cannot start any token"},
		},
		{
			name: "unclosed flow mapping",
			in:   "apiVersion: v1\nkind: A\nmetadata: {name: a\n\n",
			want: []string{"3:1: invalid YAML: did not find expected ',' or '}'"},
		},
		{
			name: "unclosed quote",
			in:   "apiVersion: v1\nkind: A\nx: 'abc\n",
			want: []string{"3:1: invalid YAML: found unexpected end of stream"},
		},
		{
			name: "bad indentation (less)",
			in:   "apiVersion: v1\nkind: A\nmetadata:\n  name: a\n labels: {}\n",
			want: []string{"5:2: invalid YAML: did not find expected key"},
		},
		{
			name: "bad indentation (more)",
			in:   "apiVersion: v1\nkind: A\nmetadata:\n  name: a\n   labels: {}\n",
			want: []string{"5:4: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name: "sequence then mapping",
			in:   "apiVersion: v1\nkind: A\nspec:\n  - a\n  b: 1\n",
			want: []string{"5:3: invalid YAML: did not find expected '-' indicator"},
		},
		{
			name: "error in a later document is located in the file",
			in:   "apiVersion: v1\nkind: A\n---\napiVersion: v1\nkind: B\nmetadata:\n\tname: x\n---\napiVersion: v1\nkind: C\n",
			docs: 2,
			want: []string{"7:1: invalid YAML: found character"},
		},
		{
			name: "missing kind",
			in:   "apiVersion: v1\nmetadata: {}\n",
			want: []string{"1:1: object has no kind"},
		},
		{
			name: "missing apiVersion",
			in:   "---\nkind: Service\n",
			want: []string{"2:1: object has no apiVersion"},
		},
		{
			name: "kind not a string",
			in:   "apiVersion: v1\nkind: 12\n",
			want: []string{"2:7: kind must be a non-empty string"},
		},
		{
			name: "scalar document",
			in:   "apiVersion: v1\nkind: A\n---\nhello\n",
			docs: 1,
			want: []string{"4:1: document is a scalar"},
		},
		{
			name: "sequence document",
			in:   "- apiVersion: v1\n  kind: A\n",
			want: []string{"1:1: document is a sequence"},
		},
		{
			name: "JSON array",
			in:   `[{"apiVersion": "v1", "kind": "A"}]`,
			want: []string{"1:1: document is a sequence"},
		},
		{
			name: "binary garbage",
			in:   "\x00\x01\xff\xfe\x03\x04garbage\x00",
			want: []string{"1:1: invalid YAML: control characters are not allowed"},
		},
		{
			name: "invalid UTF-8",
			in:   "apiVersion: v1\nkind: A\nx: \"abc\xff\"\n",
			want: []string{"3:8: invalid YAML: invalid leading UTF-8 octet"},
		},
		{
			name: "bad document separator",
			in:   "apiVersion: v1\nkind: A\n--- kind: B\napiVersion: v1\nkind: C\n",
			docs: 2,
			want: []string{"3:1: invalid document separator"},
		},
		{
			name: "broken JSON",
			in:   `{"apiVersion": "v1",, "kind": "A"}`,
			want: []string{"1:21: invalid JSON: invalid character ','"},
		},
		{
			name: "broken third object of a JSON stream",
			in:   "{\"apiVersion\": \"v1\", \"kind\": \"A\"}\n{\"apiVersion\": \"v1\", \"kind\": \"B\"}\n{\"apiVersion\": \"v1\" \"kind\": \"C\"}\n",
			docs: 2,
			want: []string{"3:21: invalid JSON: invalid character '\"' after object key:value pair"},
		},
		{
			name: "truncated JSON",
			in:   "{\"apiVersion\": \"v1\",\n \"kind\": \"A\"\n",
			want: []string{"2:13: invalid JSON: unexpected end of JSON input"},
		},
		{
			name: "infinity",
			in:   "apiVersion: v1\nkind: A\nspec:\n  x: .inf\n",
			want: []string{"4:6: json: unsupported value: .inf"},
		},
		{
			name: "unknown anchor",
			in:   "apiVersion: v1\nkind: A\nspec:\n  x: *nope\n",
			want: []string{"4:6: invalid YAML: unknown anchor 'nope' referenced"},
		},
		{
			name: "recursive alias",
			in:   "apiVersion: v1\nkind: A\nspec: &a\n  x: *a\n",
			want: []string{"4:6: anchor 'a' value contains itself"},
		},
		{
			name: "merge of a scalar",
			in:   "apiVersion: v1\nkind: A\nspec:\n  <<: 1\n",
			want: []string{"4:7: map merge requires map or sequence of maps as the value"},
		},
		{
			name: "mapping as a key",
			in:   "apiVersion: v1\nkind: A\n? {a: 1}\n: x\n",
			want: []string{"3:3: invalid map key"},
		},
		{
			name: "null key",
			in:   "apiVersion: v1\nkind: A\n~: x\n",
			want: []string{"3:1: unsupported map key: null"},
		},
		{
			name: "bad explicit tag",
			in:   "apiVersion: v1\nkind: A\nx: !!int abc\n",
			want: []string{"3:4: cannot decode !!str `abc` as a !!int"},
		},
		{
			name: "List item not an object",
			in:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: A\n- 5\n- kind: B\n",
			docs: 1,
			want: []string{"6:3: items[1] of List is not an object", "7:3: object has no apiVersion"},
		},
		{
			name: "List items not a list",
			in:   "apiVersion: v1\nkind: List\nitems: 5\n",
			want: []string{"3:1: items of List must be a list of objects"},
		},
		{
			name: "several errors in one file",
			in:   "kind: A\n---\napiVersion: v1\nkind: B\n---\na: [\n---\napiVersion: v1\nkind: C\n",
			docs: 2,
			want: []string{"1:1: object has no apiVersion", "6:1: invalid YAML"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := readString(t, tc.in)
			assert.Len(t, docs, tc.docs)
			require.Error(t, err)
			errs := Errors(err)
			require.Len(t, errs, len(tc.want), err.Error())
			for i, e := range errs {
				assert.Equal(t, StdinName, e.File)
				assert.GreaterOrEqual(t, e.Line, 1)
				assert.True(t, strings.HasPrefix(e.Error(), "<stdin>:"+tc.want[i]), "got %q, want prefix %q", e.Error(), "<stdin>:"+tc.want[i])
			}
		})
	}
}

func TestAliasBomb(t *testing.T) {
	in := "apiVersion: v1\nkind: A\na: &a [x,x,x,x,x,x,x,x,x,x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		in += n + ": &" + n + " [" + strings.Repeat("*"+prev+",", 9) + "*" + prev + "]\n"
		prev = n
	}
	docs, err := readString(t, in)
	assert.Empty(t, docs)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "excessive aliasing")

	// A long string repeated through aliases is capped by size, not by count.
	in = "apiVersion: v1\nkind: A\na: &a " + strings.Repeat("x", 1<<20) + "\nb: [" + strings.Repeat("*a,", 200) + "*a]\n"
	_, err = readString(t, in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "document expands to more than")
}

func TestReadPaths(t *testing.T) {
	dir := t.TempDir()
	doc := func(kind string) string { return "apiVersion: v1\nkind: " + kind + "\n" }
	files := map[string]string{
		"b.yaml":            doc("B"),
		"a/x.yml":           doc("AX"),
		"a/y.json":          `{"apiVersion": "v1", "kind": "AY"}`,
		"a/z/deep.yaml":     doc("AZ"),
		"a.yaml":            doc("A"),
		"notes.txt":         doc("Ignored"),
		"upper.YAML":        doc("Ignored"),
		".git/config.yaml":  doc("Ignored"),
		"c/.hidden/x.yaml":  doc("Ignored"),
		"c/.dotfile.yaml":   doc("Ignored"),
		"empty.yaml":        "",
		"multi.yaml":        doc("M1") + "---\n" + doc("M2"),
		"explicit/file.txt": doc("Explicit"),
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	require.NoError(t, os.Symlink(filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "dangling.yaml")))

	docs, err := Read([]string{dir, filepath.Join(dir, "explicit/file.txt"), "-", filepath.Join(dir, "nope.yaml")},
		Options{Stdin: strings.NewReader(doc("Stdin")), Workers: 3})
	var got []string
	for _, d := range docs {
		rel, _ := filepath.Rel(dir, d.File)
		if d.File == StdinName {
			rel = d.File
		}
		got = append(got, rel+":"+d.Kind)
	}
	assert.Equal(t, []string{
		"a/x.yml:AX", "a/y.json:AY", "a/z/deep.yaml:AZ", "a.yaml:A", "b.yaml:B",
		"multi.yaml:M1", "multi.yaml:M2", "explicit/file.txt:Explicit", "<stdin>:Stdin",
	}, got)

	require.Error(t, err)
	errs := Errors(err)
	require.Len(t, errs, 2)
	assert.Equal(t, filepath.Join(dir, "dangling.yaml")+": no such file or directory", errs[0].Error())
	assert.Equal(t, filepath.Join(dir, "nope.yaml")+": no such file or directory", errs[1].Error())
	for _, e := range errs {
		assert.Zero(t, e.Line)
	}
	var target *Error
	assert.True(t, errors.As(err, &target))

	// A symbolic link to a directory, named as a path, is followed.
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(filepath.Join(dir, "a"), link))
	linked, err := Read([]string{link}, Options{})
	require.NoError(t, err)
	require.Len(t, linked, 3)
	assert.Equal(t, filepath.Join(link, "x.yml"), linked[0].File)

	// The order is the same whatever the number of workers.
	for _, w := range []int{1, 2, 8} {
		again, _ := Read([]string{dir}, Options{Workers: w})
		var kinds []string
		for _, d := range again {
			kinds = append(kinds, d.Kind)
		}
		assert.Equal(t, []string{"AX", "AY", "AZ", "A", "B", "M1", "M2"}, kinds)
	}
}

func TestReadStdinTwice(t *testing.T) {
	docs, err := Read([]string{"-", "-"}, Options{Stdin: strings.NewReader("apiVersion: v1\nkind: A\n")})
	assert.Len(t, docs, 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "given more than once")
}

func TestRealWorldManifests(t *testing.T) {
	root := "../../test/testdata/real-world"
	docs, err := Read([]string{root}, Options{})
	require.NoError(t, err)
	var got []string
	for _, d := range docs {
		rel, _ := filepath.Rel(root, d.File)
		got = append(got, rel+":"+d.Kind+"/"+d.Name)
	}
	assert.Equal(t, []string{
		"cassandra/cassandra-service.yaml:Service/cassandra",
		"cassandra/cassandra-statefulset.yaml:StatefulSet/cassandra",
		"cassandra/cassandra-statefulset.yaml:StorageClass/fast",
		"mysql/mysql-services.yaml:Service/mysql",
		"mysql/mysql-services.yaml:Service/mysql-read",
		"mysql/mysql-statefulset.yaml:StatefulSet/mysql",
		"rabbitmq/rabbitmq-service.yaml:Service/rabbitmq-service",
		"rabbitmq/rabbitmq-statefulset.yaml:StatefulSet/rabbitmq",
		"web-parallel.yaml:Service/nginx",
		"web-parallel.yaml:StatefulSet/web",
		"web.yaml:Service/nginx",
		"web.yaml:StatefulSet/web",
		"zookeeper.yaml:Service/zk-hs",
		"zookeeper.yaml:Service/zk-cs",
		"zookeeper.yaml:PodDisruptionBudget/zk-pdb",
		"zookeeper.yaml:StatefulSet/zk",
	}, got)

	for _, d := range docs {
		switch d.Kind {
		case "StatefulSet":
			var sts appsv1.StatefulSet
			require.NoError(t, d.Decode(&sts), d.File)
			assert.Equal(t, d.Name, sts.Name)
		case "Service":
			var svc corev1.Service
			require.NoError(t, d.Decode(&svc), d.File)
		}
		if strings.Contains(d.File, "rabbitmq") {
			assert.True(t, strings.HasPrefix(string(d.Source()), "{"), "rabbitmq is flow style")
			assert.Equal(t, [2]int{2, 1}, [2]int{d.Line, d.Column})
		}
	}

	// Flow style keeps positions too.
	sts := docs[7]
	line, col := sts.Position("spec.template.spec.containers[0].volumeMounts[0].name")
	assert.Equal(t, [2]int{45, 13}, [2]int{line, col})
	line, col = sts.Position("spec.selector.matchLabels[app.kubernetes.io/component]")
	assert.Equal(t, [2]int{17, 9}, [2]int{line, col})

	// A field that is not there falls back to its nearest ancestor.
	web := docs[11]
	line, col = web.Position("spec.volumeClaimTemplates[0].spec.storageClassName")
	assert.Equal(t, [2]int{42, 5}, [2]int{line, col}) // spec:
}
