package webhook

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/stateguard/stateguard/policies"
)

func TestWithoutUnreadFields(t *testing.T) {
	const la = `"kubectl.kubernetes.io/last-applied-configuration"`
	tests := []struct{ name, in, want string }{
		{"no metadata", `{"spec":{"a":1}}`, `{"spec":{"a":1}}`},
		{"empty object", `{}`, `{}`},
		{"nothing to cut", `{"metadata":{"name":"x","annotations":{"a":"b"}}}`, `{"metadata":{"name":"x","annotations":{"a":"b"}}}`},
		{"managedFields last", `{"metadata":{"name":"x","managedFields":[{"a":{}}]}}`, `{"metadata":{"name":"x"}}`},
		{"managedFields first", `{"metadata":{"managedFields":[],"name":"x"}}`, `{"metadata":{"name":"x"}}`},
		{"managedFields middle", `{"metadata":{"name":"x","managedFields":null,"uid":"u"}}`, `{"metadata":{"name":"x","uid":"u"}}`},
		{"managedFields only", `{"metadata":{"managedFields":[1,2]}}`, `{"metadata":{}}`},
		{"last-applied only", `{"metadata":{"annotations":{` + la + `:"{\"a\":1}\n"}}}`, `{"metadata":{"annotations":{}}}`},
		{"last-applied first", `{"metadata":{"annotations":{` + la + `:"x","b":"c"}}}`, `{"metadata":{"annotations":{"b":"c"}}}`},
		{"last-applied last", `{"metadata":{"annotations":{"b":"c",` + la + `:"x"}}}`, `{"metadata":{"annotations":{"b":"c"}}}`},
		{
			"both, with whitespace", "{ \"metadata\" : {\n \"managedFields\" : [ ] ,\n \"annotations\" : { " + la + " : \"x\" , \"b\" : \"c\" } ,\n \"name\" : \"x\" } , \"spec\" : { } }\n",
			"{ \"metadata\" : {\n \n \"annotations\" : {  \"b\" : \"c\" } ,\n \"name\" : \"x\" } , \"spec\" : { } }",
		},
		{"first two cut", `{"metadata":{"managedFields":[],"managedFields":{},"name":"x"}}`, `{"metadata":{"name":"x"}}`},
		{"all cut", `{"metadata":{"managedFields":[],"managedFields":{}}}`, `{"metadata":{}}`},
		{"repeated metadata", `{"metadata":{"managedFields":1},"spec":2,"metadata":{"a":"b","managedFields":3}}`, `{"metadata":{},"spec":2,"metadata":{"a":"b"}}`},
		{"escaped keys are kept", `{"metadata":{"managed\u0046ields":[],"annotations":{"kubectl.kubernetes.io\/last-applied-configuration":"x"}}}`, `{"metadata":{"managed\u0046ields":[],"annotations":{"kubectl.kubernetes.io\/last-applied-configuration":"x"}}}`},
		{"other case is kept", `{"Metadata":{"managedFields":[]},"metadata":{"ManagedFields":[]}}`, `{"Metadata":{"managedFields":[]},"metadata":{"ManagedFields":[]}}`},
		{"nested metadata is kept", `{"spec":{"template":{"metadata":{"managedFields":[]}}}}`, `{"spec":{"template":{"metadata":{"managedFields":[]}}}}`},
		{"metadata not an object", `{"metadata":"managedFields"}`, `{"metadata":"managedFields"}`},
		{"annotations not an object", `{"metadata":{"annotations":[` + la + `]}}`, `{"metadata":{"annotations":[` + la + `]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, ok := withoutUnreadFields([]byte(tt.in))
			if !ok {
				t.Fatalf("not ok for %s", tt.in)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("invalid JSON out: %s", got)
			}
		})
	}
	for _, in := range []string{``, ` `, `null`, `[]`, `"x"`, `1`, `{`, `{}x`, `{} {}`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `{,}`, `{"a":01}`, "{\"a\":\"\x01\"}", `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":tru}`, `{"a":[1,]}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":.5}`, `{"a":+1}`, `{"metadata":{"managedFields":[}}`} {
		if _, _, ok := withoutUnreadFields([]byte(in)); ok {
			t.Errorf("ok for %q", in)
		}
	}
	deep := strings.Repeat(`{"a":`, maxScanDepth+1) + "1" + strings.Repeat("}", maxScanDepth+1)
	if _, _, ok := withoutUnreadFields([]byte(deep)); ok {
		t.Errorf("ok for %d levels", maxScanDepth+1)
	}
}

// TestScannerMatchesEncodingJSON checks the scanner's verdict against
// encoding/json's on the JSON of the reviews, mangled at random, and that
// what it cuts is exactly the two fields.
func TestScannerMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seeds := scannerSeeds(t)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := 0; i < n; i++ {
		in := mangle(rng, seeds[rng.IntN(len(seeds))])
		checkWithoutUnreadFields(t, in)
	}
	for _, s := range seeds {
		checkWithoutUnreadFields(t, s)
	}
}

func FuzzWithoutUnreadFields(f *testing.F) {
	for _, s := range scannerSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkWithoutUnreadFields(t, in) })
}

// checkWithoutUnreadFields checks withoutUnreadFields(in) against
// encoding/json: ok exactly for valid JSON objects (not too deep), and the
// result decodes to the input without the two fields.
func checkWithoutUnreadFields(t *testing.T, in []byte) {
	t.Helper()
	out, _, ok := withoutUnreadFields(in)
	var want any
	valid := json.Unmarshal(in, &want) == nil
	_, isObject := want.(map[string]any)
	if !valid || !isObject {
		if ok {
			t.Fatalf("ok for what encoding/json rejects or is no object: %q", in)
		}
		return
	}
	if !ok {
		if depth(in) > maxScanDepth {
			return
		}
		t.Fatalf("not ok for valid JSON: %q", in)
	}
	var got any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("invalid JSON out: %v\n in: %q\nout: %q", err, in, out)
	}
	if meta, ok := want.(map[string]any)["metadata"].(map[string]any); ok {
		delete(meta, "managedFields")
		if ann, ok := meta["annotations"].(map[string]any); ok {
			delete(ann, lastAppliedAnnotation)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodes differently\n in: %q\nout: %q", in, out)
	}
}

func depth(in []byte) int {
	d, max := 0, 0
	for _, c := range in {
		switch c {
		case '{', '[':
			d++
			max = maxInt(max, d)
		case '}', ']':
			d--
		}
	}
	return max
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// scannerSeeds are the objects of the benchmark reviews, whole reviews, and
// small documents with every kind of token.
func scannerSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, r := range benchReviews() {
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(r.Body, &ar); err != nil {
			tb.Fatal(err)
		}
		out = append(out, r.Body, ar.Request.Object.Raw, ar.Request.OldObject.Raw)
	}
	out = append(out,
		[]byte(`{"metadata":{"managedFields":[{"f:a":{".":{}}}],"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"a\":\"\\u00e9\"}\n","b":"c"}},"n":[-0.5e+10,1E-2,0,true,false,null,"\t\u0041\/"]}`),
		[]byte(" {\r\n\t\"metadata\" : { } } "),
	)
	return out
}

// mangle returns a copy of doc with a few random edits: bytes deleted,
// replaced or inserted, JSON's special bytes preferred, or the end cut off.
func mangle(rng *rand.Rand, doc []byte) []byte {
	out := bytes.Clone(doc)
	special := []byte("{}[],:\"\\ \t\n0123456789-+.eEtfnul\x00\x1f\x7f\xff/")
	for k := rng.IntN(3) + 1; k > 0 && len(out) > 0; k-- {
		i := rng.IntN(len(out))
		c := special[rng.IntN(len(special))]
		switch rng.IntN(4) {
		case 0:
			out = append(out[:i], out[i+1:]...)
		case 1:
			out[i] = c
		case 2:
			out = append(out[:i], append([]byte{c}, out[i:]...)...)
		case 3:
			out = out[:i]
		}
	}
	return out
}

func TestHasSpecialByte(t *testing.T) {
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' || c >= 0x80 }
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			var b [8]byte
			for i := range b {
				b[i] = 'a'
			}
			b[pos] = byte(c)
			if got := hasSpecialByte(binary.LittleEndian.Uint64(b[:])); got != special(byte(c)) {
				t.Fatalf("byte %#x at %d: got %v", c, pos, got)
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100000; i++ {
		var b [8]byte
		want := false
		for j := range b {
			b[j] = byte(rng.IntN(256))
			want = want || special(b[j])
		}
		if got := hasSpecialByte(binary.LittleEndian.Uint64(b[:])); got != want {
			t.Fatalf("%q: got %v", b, got)
		}
	}
}

// TestDecodeObjectMatchesWhole proves that decodeObject decodes what
// encoding/json decodes, but for the two fields it cuts, on every object
// the webhook tests know: the reviews' StatefulSets and Services, the
// StatefulSets of the real-world corpus and the patch tests' generated
// writes, and the objects the mutating webhook leaves.
func TestDecodeObjectMatchesWhole(t *testing.T) {
	var statefulSets [][]byte
	var services [][]byte
	for _, r := range benchReviews() {
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(r.Body, &ar); err != nil {
			t.Fatal(err)
		}
		for _, raw := range [][]byte{ar.Request.Object.Raw, ar.Request.OldObject.Raw} {
			if raw == nil {
				continue
			}
			if ar.Request.Kind.Kind == "Service" {
				services = append(services, raw)
			} else {
				statefulSets = append(statefulSets, raw)
			}
		}
	}
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lookup := patchLookup(engine)
	cases := append(handWrittenPatchCases(), corpusPatchCases(t)...)
	cases = append(cases, generatedPatchCases(engine, lookup, 300)...)
	for _, tc := range cases {
		for _, obj := range []*appsv1.StatefulSet{tc.object, tc.old} {
			if obj != nil {
				statefulSets = append(statefulSets, mustMarshal(t, withManagedFields(obj)))
			}
		}
	}
	for _, raw := range statefulSets {
		compareDecodes[appsv1.StatefulSet](t, raw, func(s *appsv1.StatefulSet) *metav1.ObjectMeta { return &s.ObjectMeta })
	}
	for _, raw := range services {
		compareDecodes[corev1.Service](t, raw, func(s *corev1.Service) *metav1.ObjectMeta { return &s.ObjectMeta })
	}
	t.Logf("%d StatefulSets, %d Services", len(statefulSets), len(services))
}

// withManagedFields returns obj as the API server would send it after a
// client-side apply: with managedFields and the last-applied annotation.
func withManagedFields(obj *appsv1.StatefulSet) *appsv1.StatefulSet {
	out := obj.DeepCopy()
	applied, _ := json.Marshal(obj)
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[lastAppliedAnnotation] = string(applied) + "\n"
	out.Annotations["team"] = "db"
	out.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{}}}}`)}}}
	return out
}

func compareDecodes[T any](t *testing.T, raw []byte, meta func(*T) *metav1.ObjectMeta) {
	t.Helper()
	got, err := decodeObject[T](context.Background(), raw)
	if err != nil {
		t.Fatalf("decodeObject: %v\n%s", err, raw)
	}
	want, err := decodeWhole[T](context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(meta(want).ManagedFields) == 0 && meta(want).Annotations[lastAppliedAnnotation] == "" && bytes.Contains(raw, []byte("managedFields")) {
		t.Fatalf("the whole decode lost the fields: %s", raw)
	}
	meta(want).ManagedFields = nil
	delete(meta(want).Annotations, lastAppliedAnnotation)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeObject differs from encoding/json\n got: %+v\nwant: %+v\n%s", got, want, raw)
	}
	// And the object encodes as it did: the claim templates, which the patch
	// diffs, byte for byte.
	if g, w := mustMarshal(t, got), mustMarshal(t, want); !bytes.Equal(g, w) {
		t.Fatalf("encodes differently\n got: %s\nwant: %s", g, w)
	}
}

// TestDecodeObjectErrorsAsBefore: whatever does not decode fails with
// encoding/json's error, as before.
func TestDecodeObjectErrorsAsBefore(t *testing.T) {
	for _, in := range []string{
		`{not json`, `{"spec": {"replicas": "three"}}`, `[]`, `"x"`, `{"metadata":{"managedFields":"x","name":5}}`,
		`{"spec":{}} trailing`, `{"metadata":{"labels":{"a":1}}}`, `{"spec":{"replicas":1.5}}`, `{"spec":{"replicas":99999999999}}`,
		`{"metadata":{"creationTimestamp":"yesterday"}}`, `{"spec":{"volumeClaimTemplates":[{"spec":{"resources":{"requests":{"storage":"lots"}}}}]}}`,
	} {
		_, got := decodeObject[appsv1.StatefulSet](context.Background(), []byte(in))
		want := json.Unmarshal([]byte(in), new(appsv1.StatefulSet))
		if want == nil {
			t.Fatalf("%s: encoding/json accepts it", in)
		}
		if got == nil || got.Error() != want.Error() {
			t.Errorf("%s: error %v, want %v", in, got, want)
		}
	}
	for _, in := range []string{"", "null"} {
		if obj, err := decodeObject[appsv1.StatefulSet](context.Background(), []byte(in)); obj != nil || err != nil {
			t.Errorf("%q: %v, %v", in, obj, err)
		}
	}
}

// TestDecodeObjectIgnoresCutFields records an intended difference from
// encoding/json: what the cut fields hold is not decoded, so not checked.
func TestDecodeObjectIgnoresCutFields(t *testing.T) {
	raw := []byte(`{"metadata":{"name":"db","managedFields":[{"time":5}],"annotations":{"` + lastAppliedAnnotation + `":{}}}}`)
	got, err := decodeObject[appsv1.StatefulSet](context.Background(), raw)
	if err != nil || got.Name != "db" {
		t.Errorf("%+v, %v", got, err)
	}
	if json.Unmarshal(raw, new(appsv1.StatefulSet)) == nil {
		t.Errorf("encoding/json accepts it; this test's premise is wrong")
	}
}

// TestDecodeObjectIsCaseSensitive records the other intended difference from
// encoding/json: field names match as the API server matches them.
func TestDecodeObjectIsCaseSensitive(t *testing.T) {
	raw := []byte(`{"metadata":{"Labels":{"a":"b"}},"Spec":{"serviceName":"x"},"spec":{"ServiceName":"y"}}`)
	got, err := decodeObject[appsv1.StatefulSet](context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels != nil || got.Spec.ServiceName != "" {
		t.Errorf("took a differently cased field: %+v", got)
	}
	whole, _ := decodeWhole[appsv1.StatefulSet](context.Background(), raw)
	if whole.Labels != nil || whole.Spec.ServiceName != "" {
		t.Errorf("decodeWhole took a differently cased field: %+v", whole)
	}
	var folded appsv1.StatefulSet
	if err := json.Unmarshal(raw, &folded); err != nil || folded.Spec.ServiceName == "" {
		t.Errorf("encoding/json no longer folds case; this test's premise is wrong")
	}
}

// TestPoliciesDoNotReadCutFields guards decodeObject's premise: no policy
// reads the fields it leaves out. A policy that starts to must make the
// webhook decode them again (see decodeObject).
func TestPoliciesDoNotReadCutFields(t *testing.T) {
	files, err := filepath.Glob("../policies/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no policy sources: %v", err)
	}
	cut := regexp.MustCompile(`ManagedFields|LastAppliedConfig|last-applied-configuration`)
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if m := cut.FindString(line); m != "" {
				t.Errorf("%s:%d reads %s, which decodeObject may leave out: %s", file, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}

// TestDecodeObjectMatchesSigsJSON checks json-iterator, as decodeObject
// uses it, against sigs.k8s.io/json (encoding/json, case-sensitive: the API
// server's decoder) on objects bent out of the API server's shape: values of
// other types, nulls, repeated members, keys in other cases or with
// escapes, strings with escapes, surrogates or invalid UTF-8. Whatever
// sigs.k8s.io/json decodes from the cut JSON, decodeObject decodes alike;
// whatever it rejects, decodeObject answers as encoding/json always did.
func TestDecodeObjectMatchesSigsJSON(t *testing.T) {
	var seeds [][]byte
	for _, s := range scannerSeeds(t) {
		if len(s) > 0 && !bytes.Contains(s, []byte(`"request"`)) {
			seeds = append(seeds, s)
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	n := 3000
	if testing.Short() {
		n = 300
	}
	decoded, usual := 0, 0
	for i := 0; i < n; i++ {
		doc := parseOrdered(seeds[rng.IntN(len(seeds))])
		for k := rng.IntN(4) + 1; k > 0; k-- {
			doc = bend(rng, doc, 0)
		}
		raw := encodeOrdered(rng, doc, nil)
		if checkDecodeObject[appsv1.StatefulSet](t, raw) {
			decoded++
			if _, unusual, _ := withoutUnreadFields(raw); !unusual {
				usual++
			}
		}
		checkDecodeObject[corev1.Service](t, raw)
	}
	t.Logf("%d of %d bent objects decoded, %d of them by json-iterator", decoded, n, usual)
	if usual < decoded/4 {
		t.Errorf("too few bent objects decoded by json-iterator to tell")
	}
}

func checkDecodeObject[T any](t *testing.T, raw []byte) bool {
	t.Helper()
	got, gotErr := decodeObject[T](context.Background(), raw)
	cut, _, ok := withoutUnreadFields(raw)
	if ok {
		ref := new(T)
		if sigsjson.UnmarshalCaseSensitivePreserveInts(cut, ref) == nil {
			if gotErr != nil || !reflect.DeepEqual(got, ref) {
				t.Fatalf("decodes otherwise than sigs.k8s.io/json (error %v)\n got: %+v\nwant: %+v\n%q", gotErr, got, ref, raw)
			}
			return true
		}
	}
	want, wantErr := decodeWhole[T](context.Background(), raw)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("not encoding/json's answer\n got: %v %+v\nwant: %v %+v\n%q", gotErr, got, wantErr, want, raw)
	}
	return false
}

// ordered is a JSON object that keeps its members' order and repeats.
type ordered []orderedMember

type orderedMember struct {
	key   string
	value any
}

func parseOrdered(raw []byte) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var parse func() any
	parse = func() any {
		tok, err := dec.Token()
		if err != nil {
			panic(err)
		}
		switch tok {
		case json.Delim('{'):
			var o ordered
			for dec.More() {
				k, _ := dec.Token()
				o = append(o, orderedMember{k.(string), parse()})
			}
			dec.Token()
			return o
		case json.Delim('['):
			a := []any{}
			for dec.More() {
				a = append(a, parse())
			}
			dec.Token()
			return a
		}
		return tok
	}
	return parse()
}

// oddStrings are string values, as JSON, the API server may not write; the
// first ones decode alike with json-iterator and encoding/json, the last
// ones (surrogates, invalid UTF-8) differently.
var oddStrings = []string{`""`, `"x"`, `"\u00e9t\u00e9"`, `"été"`, `"\u003c\u0026"`, `"1Gi"`, `"2025-11-20T09:30:01Z"`, `"None"`, `"\/\"\n"`, `"-1"`,
	`"\ud83d\ude00"`, `"\ud800"`, `"a\udc00b"`, "\"\xff\xfe\"", "\"caf\xc3\""}

// bend changes one thing, at random, in doc.
func bend(rng *rand.Rand, doc any, depth int) any {
	switch d := doc.(type) {
	case ordered:
		if len(d) == 0 || rng.IntN(4) == 0 {
			keys := []string{"name", "labels", "annotations", "spec", "metadata", "replicas", "storageClassName", "managedFields", lastAppliedAnnotation, "serviceName", "Spec", "NAME"}
			return append(d, orderedMember{keys[rng.IntN(len(keys))], oddValue(rng)})
		}
		i := rng.IntN(len(d))
		out := append(ordered{}, d...)
		switch rng.IntN(12) {
		case 0, 1, 2:
			out[i].value = oddValue(rng)
		case 3: // repeated
			out = append(out, orderedMember{d[i].key, oddValue(rng)})
		case 4, 5: // another case
			out[i].key = strings.ToUpper(d[i].key[:min(1, len(d[i].key))]) + d[i].key[min(1, len(d[i].key)):]
		case 6: // escaped: see encodeOrdered
			out[i].key = "\x00esc" + d[i].key
		case 7:
			out = append(out[:i], out[i+1:]...)
		default:
			out[i].value = bend(rng, d[i].value, depth+1)
		}
		return out
	case []any:
		if len(d) == 0 {
			return append(d, oddValue(rng))
		}
		out := append([]any{}, d...)
		i := rng.IntN(len(d))
		if rng.IntN(3) == 0 {
			out[i] = oddValue(rng)
		} else {
			out[i] = bend(rng, d[i], depth+1)
		}
		return out
	}
	return oddValue(rng)
}

func oddValue(rng *rand.Rand) any {
	switch rng.IntN(8) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return json.Number([]string{"0", "-1", "1.5", "1e3", "99999999999", "3"}[rng.IntN(6)])
	case 3:
		return ordered{}
	case 4:
		return []any{}
	case 5:
		return ordered{{"name", oddString(rng)}}
	}
	return oddString(rng)
}

func oddString(rng *rand.Rand) rawString {
	if rng.IntN(4) == 0 {
		return rawString(oddStrings[rng.IntN(len(oddStrings))])
	}
	return rawString(oddStrings[rng.IntN(len(oddStrings)-5)])
}

// rawString is a string value written as it is.
type rawString string

func encodeOrdered(rng *rand.Rand, v any, out []byte) []byte {
	switch v := v.(type) {
	case ordered:
		out = append(out, '{')
		for i, m := range v {
			if i > 0 {
				out = append(out, ',')
			}
			if key, ok := strings.CutPrefix(m.key, "\x00esc"); ok && key != "" {
				// The first letter escaped: the same key to encoding/json.
				out = append(out, fmt.Sprintf(`"\u%04x`, key[0])...)
				out = append(mustJSONString(key[1:])[:0:0], out...)
				out = append(out, mustJSONString(key[1:])[1:]...)
			} else {
				out = append(out, mustJSONString(m.key)...)
			}
			out = append(out, ':')
			out = encodeOrdered(rng, m.value, out)
		}
		return append(out, '}')
	case []any:
		out = append(out, '[')
		for i, e := range v {
			if i > 0 {
				out = append(out, ',')
			}
			out = encodeOrdered(rng, e, out)
		}
		return append(out, ']')
	case rawString:
		return append(out, v...)
	case json.Number:
		return append(out, v...)
	case string:
		return append(out, mustJSONString(v)...)
	case nil:
		return append(out, "null"...)
	case bool:
		return append(out, fmt.Sprint(v)...)
	}
	panic(fmt.Sprintf("%T", v))
}

func mustJSONString(s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}
