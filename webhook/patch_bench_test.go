package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	gomodules "gomodules.xyz/jsonpatch/v2"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/policies"
	"github.com/stateguard/stateguard/test/load/reviews"
)

// patchCase is one StatefulSet write for the mutating webhook.
type patchCase struct {
	name      string
	op        policies.Operation
	namespace string
	object    *appsv1.StatefulSet
	old       *appsv1.StatefulSet
}

// TestPatchMatchesWholeObjectDiff proves that patchResponse, which writes
// the patch from the engine's mutation list, answers exactly what the
// whole-object diff (admission.PatchResponseFromRaw of the reviewed JSON and
// the mutated object) answers: the same operations, and the same document
// once the API server applies them; and that every mutation the policies make
// is written from the list, not by a fallback diff. The inputs are a table of
// hand-written cases, the repository's real-world StatefulSets, and 1,000
// generated writes (200 with -short) (CREATE and UPDATE, under several
// namespace modes) covering every mutation the policies make. The reviewed
// JSON is what the API server sends: the object serialized from the same API
// types.
func TestPatchMatchesWholeObjectDiff(t *testing.T) {
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lookup := patchLookup(engine)
	handler := (&Handlers{
		Engine: engine, Recorder: NopRecorder{},
		Lookup: func(context.Context) policies.Lookup { return lookup },
	}).ForPath()[MutateStatefulSetPath]

	cases := handWrittenPatchCases()
	cases = append(cases, corpusPatchCases(t)...)
	cases = append(cases, generatedPatchCases(engine, lookup, generatedPatchCount())...)

	kinds := map[string]int{} // what the patches did, to prove the inputs cover every mutation
	patched := 0
	for _, tc := range cases {
		raw, err := json.Marshal(tc.object)
		if err != nil {
			t.Fatal(err)
		}
		var decoded appsv1.StatefulSet
		if err := json.Unmarshal(raw, &decoded); err != nil {
			t.Fatal(err)
		}
		req := policies.StatefulSetRequest{Operation: tc.op, Namespace: tc.namespace, Object: &decoded, OldObject: tc.old}
		mutated, mutations, err := engine.MutateStatefulSet(req, lookup)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		full, err := json.Marshal(mutated)
		if err != nil {
			t.Fatal(err)
		}
		want := admission.PatchResponseFromRaw(raw, full)
		got := admission.Allowed("")
		if len(mutations) > 0 {
			got = patchResponse(raw, &decoded, mutated, mutations)
			// Every mutation the policies make is written straight from the
			// list; the diffs are only a fallback.
			if _, direct := claimTemplatePatch(decoded.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates, mutations); !direct {
				t.Errorf("%s: patch written by a diff, not from the mutations %+v", tc.name, mutations)
			}
		}
		if !got.Allowed || !want.Allowed {
			t.Fatalf("%s: not allowed: got %+v, want %+v", tc.name, got.Result, want.Result)
		}
		gotOps, wantOps := canonicalOps(t, got.Patches), canonicalOps(t, want.Patches)
		if !slices.Equal(gotOps, wantOps) {
			t.Fatalf("%s: operations differ\n got: %s\nwant: %s", tc.name, strings.Join(gotOps, "\n      "), strings.Join(wantOps, "\n      "))
		}
		if !reflect.DeepEqual(got.PatchType, want.PatchType) {
			t.Fatalf("%s: patchType %v, want %v", tc.name, got.PatchType, want.PatchType)
		}
		if len(want.Patches) == 0 {
			continue
		}
		patched++
		if a, b := applyOps(t, raw, got.Patches), applyOps(t, raw, want.Patches); !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: patched documents differ", tc.name)
		}
		for _, op := range gotOps {
			kinds[patchKind(op)]++
		}

		// And the handler answers the same through the admission request.
		ar := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "u", Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"},
			Operation: admissionv1.Operation(tc.op), Namespace: tc.namespace, Name: tc.object.Name,
		}}
		ar.Object.Raw = raw
		if tc.old != nil {
			ar.OldObject.Raw, _ = json.Marshal(tc.old)
		}
		resp := handler.Handle(context.Background(), ar)
		if ops := canonicalOps(t, resp.Patches); !slices.Equal(ops, wantOps) {
			t.Fatalf("%s: handler operations differ\n got: %s\nwant: %s", tc.name, strings.Join(ops, "\n      "), strings.Join(wantOps, "\n      "))
		}
	}
	t.Logf("%d cases, %d patched; operations by kind: %v", len(cases), patched, kinds)
	for _, kind := range []string{"add class", "add labels", "add label", "add template", "add templates", "replace label"} {
		if kinds[kind] == 0 {
			t.Errorf("no case patched with %q: the inputs no longer cover every mutation (%v)", kind, kinds)
		}
	}
}

// TestPatchKeepsFieldsUnknownToTheWebhook shows the one way patchResponse
// differs from the whole-object diff: a field that the webhook's API types do
// not know (an API server newer than them) is left alone, where the diff
// against the re-encoded object would patch it away.
func TestPatchKeepsFieldsUnknownToTheWebhook(t *testing.T) {
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lookup := patchLookup(engine)
	raw := []byte(strings.Replace(string(mustMarshal(t, reviews.StatefulSet(benchNamespace, benchName))),
		`"spec":{`, `"spec":{"futureField":{"enabled":true},`, 1))
	var decoded appsv1.StatefulSet
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	mutated, mutations, err := engine.MutateStatefulSet(policies.StatefulSetRequest{
		Operation: policies.Create, Namespace: benchNamespace, Object: &decoded,
	}, lookup)
	if err != nil || len(mutations) == 0 {
		t.Fatalf("mutations %v, err %v", mutations, err)
	}
	got := applyOps(t, raw, patchResponse(raw, &decoded, mutated, mutations).Patches)
	spec := got.(map[string]any)["spec"].(map[string]any)
	if _, ok := spec["futureField"]; !ok {
		t.Errorf("spec.futureField was patched away")
	}
	full := mustMarshal(t, mutated)
	old := applyOps(t, raw, admission.PatchResponseFromRaw(raw, full).Patches)
	if _, ok := old.(map[string]any)["spec"].(map[string]any)["futureField"]; ok {
		t.Errorf("the whole-object diff kept spec.futureField; this test's premise is wrong")
	}
}

// TestPatchFallsBackToADiff: a mutation of a shape claimTemplatePatch does
// not write (here, a change of volumeMode, which no policy makes today) is
// still patched, by diffing the claim templates, and so is one outside them,
// by diffing the whole objects.
func TestPatchFallsBackToADiff(t *testing.T) {
	raw := mustMarshal(t, reviews.StatefulSet(benchNamespace, benchName))
	var original appsv1.StatefulSet
	if err := json.Unmarshal(raw, &original); err != nil {
		t.Fatal(err)
	}
	block := corev1.PersistentVolumeBlock
	for _, tc := range []struct {
		name     string
		mutate   func(*appsv1.StatefulSet)
		mutation policies.Mutation
	}{
		{"under the claim templates", func(s *appsv1.StatefulSet) { s.Spec.VolumeClaimTemplates[0].Spec.VolumeMode = &block },
			policies.Mutation{Path: "/spec/volumeClaimTemplates/0/spec/volumeMode", Value: block}},
		{"outside them", func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "elsewhere" },
			policies.Mutation{Path: "/spec/serviceName", Value: "elsewhere"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mutated := original.DeepCopy()
			tc.mutate(mutated)
			mutations := []policies.Mutation{tc.mutation}
			if _, direct := claimTemplatePatch(original.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates, mutations); direct {
				t.Fatal("claimTemplatePatch wrote a mutation it does not know")
			}
			resp := patchResponse(raw, &original, mutated, mutations)
			want := []string{"add " + tc.mutation.Path + " " + string(mustMarshal(t, tc.mutation.Value))}
			if tc.name == "outside them" {
				want[0] = "replace" + strings.TrimPrefix(want[0], "add")
			}
			if got := canonicalOps(t, resp.Patches); !slices.Equal(got, want) {
				t.Fatalf("operations %v, want %v", got, want)
			}
		})
	}
}

// BenchmarkPatch compares building the patch of the typical CREATE both ways.
func BenchmarkPatch(b *testing.B) {
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		b.Fatal(err)
	}
	lookup := patchLookup(engine)
	var in admissionv1.AdmissionReview
	r, _ := reviews.Find(reviews.All(benchNamespace, benchName), "mutate-statefulset/create")
	if err := json.Unmarshal(r.Body, &in); err != nil {
		b.Fatal(err)
	}
	raw := in.Request.Object.Raw
	var obj appsv1.StatefulSet
	if err := json.Unmarshal(raw, &obj); err != nil {
		b.Fatal(err)
	}
	mutated, mutations, err := engine.MutateStatefulSet(policies.StatefulSetRequest{Operation: policies.Create, Namespace: benchNamespace, Object: &obj}, lookup)
	if err != nil || len(mutations) == 0 {
		b.Fatalf("mutations %v, err %v", mutations, err)
	}
	b.Run("from-mutations", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if resp := patchResponse(raw, &obj, mutated, mutations); len(resp.Patches) == 0 {
				b.Fatal("no patch")
			}
		}
	})
	b.Run("whole-object", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			full, err := json.Marshal(mutated)
			if err != nil {
				b.Fatal(err)
			}
			if resp := admission.PatchResponseFromRaw(raw, full); len(resp.Patches) == 0 {
				b.Fatal("no patch")
			}
		}
	})
}

// patchLookup is benchLookup plus namespaces whose labels turn policies
// off or to warn, so that mutations are also proven with a policy disabled.
func patchLookup(engine *policies.Engine) *benchMapLookup {
	l := benchLookup(engine)
	for ns, labels := range patchNamespaces {
		l.namespaces[ns] = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}
	}
	return l
}

var patchNamespaces = map[string]map[string]string{
	"no-classes":   {policies.ModeLabelPrefix + string(policies.StorageClass): "disabled"},
	"no-snapshots": {policies.ModeLabelPrefix + string(policies.SnapshotSchedule): "disabled"},
	"warn":         {policies.ModeLabel: "warn"},
}

// canonicalOps renders operations one per line, sorted by path (diffs
// iterate maps, so their order varies), values as JSON with sorted keys.
func canonicalOps(t *testing.T, ops []gomodules.Operation) []string {
	t.Helper()
	out := make([]string, 0, len(ops))
	for _, op := range ops {
		// As JSON, keys sorted: a value written from a typed object and the
		// same value decoded from JSON by a diff are the same in the patch.
		var generic any
		if err := json.Unmarshal(mustMarshal(t, op.Value), &generic); err != nil {
			t.Fatal(err)
		}
		out = append(out, op.Operation+" "+op.Path+" "+string(mustMarshal(t, generic)))
	}
	slices.Sort(out)
	return out
}

// patchKind classifies a canonical operation for the coverage check.
func patchKind(op string) string {
	f := strings.SplitN(op, " ", 3)
	path := f[1]
	switch {
	case strings.HasSuffix(path, "/spec/storageClassName"):
		return f[0] + " class"
	case strings.HasSuffix(path, "/metadata/labels"):
		return f[0] + " labels"
	case strings.Contains(path, "/metadata/labels/"):
		return f[0] + " label"
	case path == policies.ClaimTemplatesPath:
		return f[0] + " templates"
	case strings.HasPrefix(path, policies.ClaimTemplatesPath+"/") && !strings.Contains(strings.TrimPrefix(path, policies.ClaimTemplatesPath+"/"), "/"):
		return f[0] + " template"
	}
	return f[0] + " " + path
}

// applyOps applies operations to a document as the API server does (with the
// same library) and returns the result decoded.
func applyOps(t *testing.T, doc []byte, ops []gomodules.Operation) any {
	t.Helper()
	patch := mustMarshal(t, ops)
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decoding patch: %v\n%s", err, patch)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("applying patch: %v\n%s", err, patch)
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handWrittenPatchCases are the shapes worth naming: the benchmark's typical
// CREATE, a bare StatefulSet, dangling mounts with and without templates,
// templates with labels already there, and re-applies over the stored object.
func handWrittenPatchCases() []patchCase {
	typical := reviews.StatefulSet(benchNamespace, benchName)
	var cases []patchCase
	add := func(name string, op policies.Operation, obj, old *appsv1.StatefulSet) {
		cases = append(cases, patchCase{name: name, op: op, namespace: benchNamespace, object: obj, old: old})
	}
	add("typical create", policies.Create, typical, nil)

	bare := typical.DeepCopy()
	bare.Spec.VolumeClaimTemplates = nil
	bare.Spec.Template.Spec.Containers[0].VolumeMounts = nil
	add("no templates, no mounts", policies.Create, bare, nil)

	dangling := bare.DeepCopy()
	dangling.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "logs", MountPath: "/logs"}}
	add("dangling mounts, no templates", policies.Create, dangling, nil)

	mixed := typical.DeepCopy()
	mixed.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/s"}}}}
	mixed.Spec.VolumeClaimTemplates[0].Labels = map[string]string{"team": "db"}
	mixed.Spec.VolumeClaimTemplates[1].Labels = map[string]string{reviews.ScheduleLabel: "weekly"}
	class := "azurefile-csi"
	mixed.Spec.VolumeClaimTemplates[1].Spec.StorageClassName = &class
	add("labels present, a class set, a dangling init mount", policies.Create, mixed, nil)

	noLabel := typical.DeepCopy()
	delete(noLabel.Labels, reviews.ScheduleLabel)
	add("no schedule label", policies.Create, noLabel, nil)

	// Re-applying the manifest over what CREATE stored.
	for _, tc := range []patchCase{cases[0], cases[2], cases[3]} {
		stored := mustMutate(tc.object)
		add("re-apply: "+tc.name, policies.Update, tc.object, stored)
		add("unchanged: "+tc.name, policies.Update, stored, stored)
	}
	return cases
}

// mustMutate returns what CREATE stores for obj under the default config.
func mustMutate(obj *appsv1.StatefulSet) *appsv1.StatefulSet {
	engine, err := policies.NewEngine(policies.Config{})
	if err != nil {
		panic(err)
	}
	lookup := patchLookup(engine)
	out, _, err := engine.MutateStatefulSet(policies.StatefulSetRequest{Operation: policies.Create, Namespace: benchNamespace, Object: obj.DeepCopy()}, lookup)
	if err != nil {
		panic(err)
	}
	return out
}

// corpusPatchCases are the StatefulSets of the repository's real-world test
// corpus (test/testdata/cases), each created and re-applied.
func corpusPatchCases(t *testing.T) []patchCase {
	t.Helper()
	var cases []patchCase
	files, _ := filepath.Glob("../test/testdata/cases/*/*.yaml")
	more, _ := filepath.Glob("../test/testdata/cases/*/*/*.yaml")
	for _, file := range append(files, more...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(data), "\n---") {
			var meta struct{ Kind string }
			if yaml.Unmarshal([]byte(doc), &meta) != nil || meta.Kind != "StatefulSet" {
				continue
			}
			sts := &appsv1.StatefulSet{}
			if err := yaml.Unmarshal([]byte(doc), sts); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			name := fmt.Sprintf("%s#%d", file, i)
			cases = append(cases,
				patchCase{name: name, op: policies.Create, namespace: benchNamespace, object: sts},
				patchCase{name: name + " re-applied", op: policies.Update, namespace: benchNamespace, object: sts, old: mustMutate(sts)})
		}
	}
	if len(cases) == 0 {
		t.Fatal("no StatefulSets found under ../test/testdata/cases")
	}
	return cases
}

// generatedPatchCases returns n random writes, reproducibly: StatefulSets with
// 0-3 claim templates of random access modes, classes and labels, mounts
// matching templates, pod volumes or nothing, the schedule label present or
// not; half are CREATEs, half UPDATEs over what CREATE stored for a sibling.
func generatedPatchCases(engine *policies.Engine, lookup policies.Lookup, n int) []patchCase {
	rng := rand.New(rand.NewPCG(20251125, 1))
	pick := func(options ...string) string { return options[rng.IntN(len(options))] }
	namespaces := []string{benchNamespace, benchNamespace, "no-classes", "no-snapshots", "warn"}
	accessModes := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteMany, corev1.ReadOnlyMany, corev1.ReadWriteOncePod}

	random := func() *appsv1.StatefulSet {
		sts := reviews.StatefulSet(benchNamespace, "gen")
		switch pick("daily", "weekly", "none", "unknown") {
		case "none":
			delete(sts.Labels, reviews.ScheduleLabel)
		case "unknown":
			sts.Labels[reviews.ScheduleLabel] = "every-minute"
		case "weekly":
			sts.Labels[reviews.ScheduleLabel] = "weekly"
		}
		sts.Spec.VolumeClaimTemplates = nil
		names := []string{"data", "wal", "logs", "cache"}
		rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		for _, name := range names[:rng.IntN(4)] {
			tmpl := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}}
			for _, m := range accessModes {
				if rng.IntN(3) == 0 {
					tmpl.Spec.AccessModes = append(tmpl.Spec.AccessModes, m)
				}
			}
			tmpl.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(pick("1Gi", "20Gi", "500Mi"))}
			switch c := pick("absent", "absent", "", "managed-csi", "azurefile-csi", "fast"); c {
			case "absent":
			default:
				tmpl.Spec.StorageClassName = &c
			}
			if rng.IntN(4) == 0 {
				block := corev1.PersistentVolumeBlock
				tmpl.Spec.VolumeMode = &block
			}
			switch pick("nil", "nil", "empty", "other", "schedule", "stale") {
			case "empty":
				tmpl.Labels = map[string]string{}
			case "other":
				tmpl.Labels = map[string]string{"team": "db"}
			case "schedule":
				tmpl.Labels = map[string]string{reviews.ScheduleLabel: "daily", "team": "db"}
			case "stale":
				tmpl.Labels = map[string]string{reviews.ScheduleLabel: "hourly"}
			}
			sts.Spec.VolumeClaimTemplates = append(sts.Spec.VolumeClaimTemplates, tmpl)
		}
		if rng.IntN(3) == 0 {
			sts.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}
		var mounts []corev1.VolumeMount
		for i, name := range []string{"data", "wal", "logs", "cache", "config", "scratch", "tmp-data"} {
			if rng.IntN(2) == 0 {
				mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: fmt.Sprintf("/m%d", i)})
			}
		}
		rng.Shuffle(len(mounts), func(i, j int) { mounts[i], mounts[j] = mounts[j], mounts[i] })
		split := rng.IntN(len(mounts) + 1)
		sts.Spec.Template.Spec.Containers[0].VolumeMounts = mounts[:split]
		if split < len(mounts) {
			sts.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", VolumeMounts: mounts[split:]}}
		}
		return sts
	}

	var cases []patchCase
	for i := 0; i < n; i++ {
		ns := namespaces[rng.IntN(len(namespaces))]
		sts := random()
		sts.Namespace = ns
		if i%2 == 0 {
			cases = append(cases, patchCase{name: fmt.Sprintf("generated create %d", i), op: policies.Create, namespace: ns, object: sts})
			continue
		}
		stored, _, err := engine.MutateStatefulSet(policies.StatefulSetRequest{Operation: policies.Create, Namespace: ns, Object: sts.DeepCopy()}, lookup)
		if err != nil {
			panic(err)
		}
		// The write: the manifest re-applied, the stored object scaled, or
		// the manifest with its schedule changed or dropped.
		obj := sts.DeepCopy()
		switch pick("re-apply", "scale", "relabel", "unlabel", "drop-template") {
		case "scale":
			obj = stored.DeepCopy()
			replicas := int32(7)
			obj.Spec.Replicas = &replicas
		case "relabel":
			obj.Labels[reviews.ScheduleLabel] = pick("hourly", "weekly", "gone-schedule")
		case "unlabel":
			delete(obj.Labels, reviews.ScheduleLabel)
		case "drop-template":
			if k := len(obj.Spec.VolumeClaimTemplates); k > 0 {
				obj.Spec.VolumeClaimTemplates = obj.Spec.VolumeClaimTemplates[:k-1]
			}
		}
		cases = append(cases, patchCase{name: fmt.Sprintf("generated update %d", i), op: policies.Update, namespace: ns, object: obj, old: stored})
	}
	return cases
}

func generatedPatchCount() int {
	if testing.Short() {
		return 200
	}
	return 1000
}
