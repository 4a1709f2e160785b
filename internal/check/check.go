// Package check runs the policy engine over manifests, offline: the input is
// treated as the cluster, and every StatefulSet in it goes through what the
// API server would run, mutation first and then validation.
package check

import (
	"errors"
	"runtime"
	"sync"

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
	// Workers decodes documents in parallel; 0 means GOMAXPROCS.
	Workers int
}

// Outcome is what a run found and changed.
type Outcome struct {
	Report *report.Report
	// Patches holds, per mutated document, the changes the webhook would make.
	Patches map[*manifest.Document][]manifest.Patch
}

// decoded is a document with the typed object the policies read, if any.
type decoded struct {
	doc         *manifest.Document
	statefulSet *appsv1.StatefulSet
	service     *corev1.Service
	class       *storagev1.StorageClass
	namespace   *corev1.Namespace
}

// Run checks docs. A document that cannot be decoded into its type is an
// error for the whole run: with part of the bundle missing, any verdict could
// be a false one.
func Run(docs []*manifest.Document, opts Options) (*Outcome, error) {
	objs, err := decodeAll(docs, opts.Workers)
	if err != nil {
		return nil, err
	}
	engine := opts.Engine
	b := newBundle(engine.Config().CatalogStorageClasses())
	files := map[string]bool{}
	for _, o := range objs {
		files[o.doc.File] = true
		ns := o.doc.Namespace
		if ns == "" {
			ns = opts.Namespace
		}
		switch {
		case o.statefulSet != nil:
			o.statefulSet.Namespace = ns
			b.statefulSets[ns] = append(b.statefulSets[ns], o.statefulSet)
		case o.service != nil:
			o.service.Namespace = ns
			b.services[ns+"/"+o.service.Name] = o.service
		case o.class != nil:
			policies.DefaultStorageClass(o.class)
			b.classes[o.class.Name] = o.class
		case o.namespace != nil:
			b.namespaces[o.namespace.Name] = o.namespace
		}
	}

	out := &Outcome{
		Report:  &report.Report{Results: []report.Result{}, Mutations: []report.Mutation{}},
		Patches: map[*manifest.Document][]manifest.Patch{},
	}
	rep := out.Report
	rep.Summary.Files = len(files)
	rep.Summary.Objects = len(objs)
	ids := make([]string, 0, len(engine.Policies()))
	for _, id := range engine.Policies() {
		ids = append(ids, string(id))
	}
	for _, o := range objs {
		if o.statefulSet == nil {
			continue
		}
		rep.Summary.StatefulSets++
		if err := checkStatefulSet(engine, b, o, ids, out); err != nil {
			return nil, err
		}
	}
	rep.CountFindings()
	return out, nil
}

func checkStatefulSet(engine *policies.Engine, b *bundle, o decoded, ids []string, out *Outcome) error {
	doc, sts := o.doc, o.statefulSet
	req := policies.StatefulSetRequest{Operation: policies.Create, Namespace: sts.Namespace, Object: sts}
	mutated, mutations, err := engine.MutateStatefulSet(req, b)
	if err != nil {
		return &manifest.Error{File: doc.File, Line: doc.Line, Column: doc.Column, Message: err.Error()}
	}
	for _, m := range mutations {
		line, _ := doc.PointerPosition(m.Path)
		out.Report.Mutations = append(out.Report.Mutations, report.Mutation{
			File: doc.File, Line: line, Kind: doc.Kind, Namespace: sts.Namespace, Name: sts.Name,
			Policy: string(m.Policy), Path: m.Path, Value: m.Value,
		})
		out.Patches[doc] = append(out.Patches[doc], manifest.Patch{Op: "add", Path: m.Path, Value: m.Value})
	}
	req.Object = mutated
	result, err := engine.ValidateStatefulSet(req, b)
	if err != nil {
		return &manifest.Error{File: doc.File, Line: doc.Line, Column: doc.Column, Message: err.Error()}
	}
	subject := report.Subject{File: doc.File, Line: doc.Line, APIVersion: doc.APIVersion, Kind: doc.Kind, Namespace: sts.Namespace, Name: sts.Name}
	if !result.Exempt {
		subject.Policies = ids
	}
	out.Report.Subjects = append(out.Report.Subjects, subject)
	for _, w := range result.Warnings {
		out.Report.Results = append(out.Report.Results, report.Result{
			File: doc.File, Line: doc.Line, Column: doc.Column, APIVersion: doc.APIVersion, Kind: doc.Kind,
			Namespace: sts.Namespace, Name: sts.Name, Policy: ConfigPolicy, Mode: string(policies.Warn), Message: w,
		})
	}
	for _, f := range result.Findings {
		line, col := doc.Line, doc.Column
		if f.Field != "" {
			line, col = doc.Position(f.Field)
		}
		out.Report.Results = append(out.Report.Results, report.Result{
			File: doc.File, Line: line, Column: col, APIVersion: doc.APIVersion, Kind: doc.Kind,
			Namespace: sts.Namespace, Name: sts.Name, Policy: string(f.Policy), Mode: string(f.Mode),
			Field: f.Field, Message: f.Message,
		})
	}
	return nil
}

// decodeAll decodes the documents the policies read into their types, in
// parallel; the result keeps the input order.
func decodeAll(docs []*manifest.Document, workers int) ([]decoded, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([]decoded, len(docs))
	errs := make([]error, len(docs))
	var wg sync.WaitGroup
	chunk := (len(docs) + workers - 1) / workers
	for start := 0; start < len(docs); start += chunk {
		end := min(start+chunk, len(docs))
		wg.Add(1)
		go func(start, end int) {
			defer wg.Done()
			for i := start; i < end; i++ {
				out[i], errs[i] = decode(docs[i])
			}
		}(start, end)
	}
	wg.Wait()
	var all []error
	for _, err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	if len(all) > 0 {
		return nil, errors.Join(all...)
	}
	return out, nil
}

func decode(doc *manifest.Document) (decoded, error) {
	d := decoded{doc: doc}
	var err error
	switch doc.APIVersion + "/" + doc.Kind {
	case "apps/v1/StatefulSet":
		d.statefulSet = &appsv1.StatefulSet{}
		err = doc.Decode(d.statefulSet)
	case "v1/Service":
		d.service = &corev1.Service{}
		err = doc.Decode(d.service)
	case "storage.k8s.io/v1/StorageClass":
		d.class = &storagev1.StorageClass{}
		err = doc.Decode(d.class)
	case "v1/Namespace":
		d.namespace = &corev1.Namespace{}
		err = doc.Decode(d.namespace)
	}
	return d, err
}
