// Package check runs the policy engine over manifests, offline: the input is
// treated as the cluster, and every StatefulSet in it goes through what the
// API server would run, mutation first and then validation.
package check

import (
	"errors"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/stateguard/stateguard/internal/manifest"
	"github.com/stateguard/stateguard/internal/report"
	"github.com/stateguard/stateguard/policies"
)

// ConfigPolicy is the policy column of findings about the policy setup itself,
// such as a namespace mode label that names no mode.
const ConfigPolicy = "config"

// Options configures a run.
type Options struct {
	Engine *policies.Engine
	// Namespace is where objects without metadata.namespace live (--namespace).
	Namespace string
	// Workers checks documents in parallel; 0 means GOMAXPROCS.
	Workers int
}

// Outcome is what a run found and changed.
type Outcome struct {
	Report *report.Report
	// Patches holds, per mutated document, the changes the webhook would make.
	Patches map[*manifest.Document][]manifest.Patch
}

// checked is what one StatefulSet document contributed to the report.
type checked struct {
	subject   report.Subject
	results   []report.Result
	mutations []report.Mutation
	patches   []manifest.Patch
}

// Run checks docs in two passes: the first indexes the objects policies look
// up (Services, StorageClasses, Namespaces), the second decodes and checks
// each StatefulSet and lets it go, so memory stays flat however many there
// are. A document that cannot be decoded into its type fails the whole run:
// with part of the cluster missing, any verdict could be a false one.
func Run(docs []*manifest.Document, opts Options) (*Outcome, error) {
	engine := opts.Engine
	b := newBundle(engine.Config().CatalogStorageClasses())
	if err := b.index(docs, opts.Namespace, opts.Workers); err != nil {
		return nil, err
	}

	ids := make([]string, 0, len(engine.Policies()))
	for _, id := range engine.Policies() {
		ids = append(ids, string(id))
	}
	var statefulSets []*manifest.Document
	files := map[string]bool{}
	for _, doc := range docs {
		files[doc.File] = true
		if isStatefulSet(doc) {
			statefulSets = append(statefulSets, doc)
		}
	}
	out := make([]checked, len(statefulSets))
	errs := make([]error, len(statefulSets))
	manifest.Parallel(len(statefulSets), opts.Workers, func(i int) {
		out[i], errs[i] = checkStatefulSet(engine, b, statefulSets[i], opts.Namespace, ids)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	outcome := &Outcome{
		Report:  &report.Report{Results: []report.Result{}, Mutations: []report.Mutation{}},
		Patches: map[*manifest.Document][]manifest.Patch{},
	}
	rep := outcome.Report
	rep.Summary.Files = len(files)
	rep.Summary.Objects = len(docs)
	rep.Summary.StatefulSets = len(statefulSets)
	for i, c := range out {
		rep.Subjects = append(rep.Subjects, c.subject)
		rep.Results = append(rep.Results, c.results...)
		rep.Mutations = append(rep.Mutations, c.mutations...)
		if len(c.patches) > 0 {
			outcome.Patches[statefulSets[i]] = c.patches
		}
	}
	rep.CountFindings()
	return outcome, nil
}

func isStatefulSet(doc *manifest.Document) bool {
	return doc.APIVersion == "apps/v1" && doc.Kind == "StatefulSet"
}

func checkStatefulSet(engine *policies.Engine, b *bundle, doc *manifest.Document, defaultNamespace string, ids []string) (checked, error) {
	var out checked
	sts := &appsv1.StatefulSet{}
	if err := doc.Decode(sts); err != nil {
		return out, err
	}
	sts.Namespace = namespaceOf(doc, defaultNamespace)
	req := policies.StatefulSetRequest{Operation: policies.Create, Namespace: sts.Namespace, Object: sts}
	mutated, mutations, err := engine.MutateStatefulSet(req, b)
	if err != nil {
		return out, &manifest.Error{File: doc.File, Line: doc.Line, Column: doc.Column, Message: err.Error()}
	}
	for _, m := range mutations {
		line, _ := doc.PointerPosition(m.Path)
		out.mutations = append(out.mutations, report.Mutation{
			File: doc.File, Line: line, Kind: doc.Kind, Namespace: sts.Namespace, Name: sts.Name,
			Policy: string(m.Policy), Path: m.Path, Value: m.Value,
		})
		out.patches = append(out.patches, manifest.Patch{Op: "add", Path: m.Path, Value: m.Value})
	}
	req.Object = mutated
	result, err := engine.ValidateStatefulSet(req, b)
	if err != nil {
		return out, &manifest.Error{File: doc.File, Line: doc.Line, Column: doc.Column, Message: err.Error()}
	}
	out.subject = report.Subject{File: doc.File, Line: doc.Line, APIVersion: doc.APIVersion, Kind: doc.Kind, Namespace: sts.Namespace, Name: sts.Name}
	if !result.Exempt {
		out.subject.Policies = ids
	}
	for _, w := range result.Warnings {
		out.results = append(out.results, report.Result{
			File: doc.File, Line: doc.Line, Column: doc.Column, APIVersion: doc.APIVersion, Kind: doc.Kind,
			Namespace: sts.Namespace, Name: sts.Name, Policy: ConfigPolicy, Mode: string(policies.Warn), Message: w,
		})
	}
	for _, f := range result.Findings {
		line, col := doc.Line, doc.Column
		if f.Field != "" {
			line, col = doc.Position(f.Field)
		}
		out.results = append(out.results, report.Result{
			File: doc.File, Line: line, Column: col, APIVersion: doc.APIVersion, Kind: doc.Kind,
			Namespace: sts.Namespace, Name: sts.Name, Policy: string(f.Policy), Mode: string(f.Mode),
			Field: f.Field, Message: f.Message,
		})
	}
	return out, nil
}

func namespaceOf(doc *manifest.Document, defaultNamespace string) string {
	if doc.Namespace != "" {
		return doc.Namespace
	}
	return defaultNamespace
}

// index decodes, in parallel, the objects the policies look up and adds them
// to the bundle in input order, so that a later object of the same name wins
// as it would in a cluster the input was applied to.
func (b *bundle) index(docs []*manifest.Document, defaultNamespace string, workers int) error {
	type lookupObject struct {
		service   *corev1.Service
		class     *storagev1.StorageClass
		namespace *corev1.Namespace
	}
	objs := make([]lookupObject, len(docs))
	errs := make([]error, len(docs))
	manifest.Parallel(len(docs), workers, func(i int) {
		doc := docs[i]
		var o lookupObject
		var err error
		switch doc.APIVersion + "/" + doc.Kind {
		case "v1/Service":
			o.service = &corev1.Service{}
			err = doc.Decode(o.service)
		case "storage.k8s.io/v1/StorageClass":
			o.class = &storagev1.StorageClass{}
			err = doc.Decode(o.class)
		case "v1/Namespace":
			o.namespace = &corev1.Namespace{}
			err = doc.Decode(o.namespace)
		}
		objs[i], errs[i] = o, err
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, o := range objs {
		switch {
		case o.service != nil:
			o.service.Namespace = namespaceOf(docs[i], defaultNamespace)
			b.services[o.service.Namespace+"/"+o.service.Name] = o.service
		case o.class != nil:
			policies.DefaultStorageClass(o.class)
			b.classes[o.class.Name] = o.class
		case o.namespace != nil:
			b.namespaces[o.namespace.Name] = o.namespace
		}
	}
	return nil
}
