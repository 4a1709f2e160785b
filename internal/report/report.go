// Package report renders the results of `stateguard check` in the formats
// the CLI offers: text for people and editors, json for scripts, sarif for
// GitHub code scanning and junit for CI test dashboards.
//
// Every format is a pure function of the Report: output is sorted, so the
// same findings in any order give byte-identical output, and writing never
// modifies the Report. Adding a format means adding one writer to the map
// below; callers only pass its name.
package report

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/stateguard/stateguard/policies"
)

// Result is one finding on one object. Its JSON form is the product's
// `-o json` schema.
type Result struct {
	File       string `json:"file"`
	Line       int    `json:"line"`
	Column     int    `json:"column"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Policy     string `json:"policy"`
	// Mode is the action taken: enforce, warn or audit.
	Mode string `json:"mode"`
	// Field is the offending field as a field path, e.g. "spec.serviceName".
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Mutation is one change the mutating policies made to an object.
type Mutation struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Policy    string `json:"policy"`
	// Path is a JSON pointer into the object.
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// Summary counts what was checked and found.
type Summary struct {
	Files        int `json:"files"`
	Objects      int `json:"objects"`
	StatefulSets int `json:"statefulSets"`
	// Violations, Warnings and Audits count results in enforce, warn and
	// audit mode; CountFindings fills them from the results.
	Violations int `json:"violations"`
	Warnings   int `json:"warnings"`
	Audits     int `json:"audits"`
}

// Subject is one checked object and the policies evaluated on it. JUnit
// output has one test case per subject and policy, passing ones included.
type Subject struct {
	File       string
	Line       int
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	Policies   []string
}

// Report is everything one `stateguard check` run found.
type Report struct {
	// Results is never null in JSON: [] when empty.
	Results []Result `json:"results"`
	// Mutations is never null in JSON: [] when empty.
	Mutations []Mutation `json:"mutations"`
	Summary   Summary    `json:"summary"`
	// Subjects is not part of the JSON schema; JUnit output reads it.
	Subjects []Subject `json:"-"`
}

// CountFindings sets Summary.Violations, Warnings and Audits from Results,
// so the counts cannot disagree with the findings listed.
func (r *Report) CountFindings() {
	r.Summary.Violations, r.Summary.Warnings, r.Summary.Audits = 0, 0, 0
	for _, res := range r.Results {
		switch policies.Mode(res.Mode) {
		case policies.Enforce:
			r.Summary.Violations++
		case policies.Warn:
			r.Summary.Warnings++
		case policies.Audit:
			r.Summary.Audits++
		}
	}
}

// Options tunes the output. The zero value is fine.
type Options struct {
	// Version is stateguard's version, reported as SARIF tool.driver.version
	// (omitted when empty).
	Version string
}

// writer renders a normalized report (see normalize) into w.
type writer func(w *bytes.Buffer, r *Report, opts Options) error

var writers = map[string]writer{
	"text":  writeText,
	"json":  writeJSON,
	"sarif": writeSARIF,
	"junit": writeJUnit,
}

// Formats lists the format names, for --help and flag validation. It is
// shared and must not be modified.
var Formats = []string{"text", "json", "sarif", "junit"}

// CheckFormat returns the error Write would return for an unknown format, so
// that the CLI can reject a bad -o before it reads any input.
func CheckFormat(format string) error {
	if _, ok := writers[format]; !ok {
		return fmt.Errorf("unknown output format %q (want one of %s)", format, strings.Join(Formats, ", "))
	}
	return nil
}

// Write renders r in the named format (one of Formats) to w. Nothing is
// written when rendering fails, and r is never modified. A nil r is an empty
// report.
func Write(w io.Writer, format string, r *Report, opts Options) error {
	if err := CheckFormat(format); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writers[format](&buf, normalize(r), opts); err != nil {
		return fmt.Errorf("rendering %s report: %w", format, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// normalize returns a copy of r with non-nil slices in output order: results
// by file, line, column and policy (then the rest, so that order never depends
// on the input's); mutations by file and object, keeping each object's
// mutations in the order the engine applied them.
func normalize(r *Report) *Report {
	if r == nil {
		r = &Report{}
	}
	out := &Report{
		Results:   slices.Clone(r.Results),
		Mutations: slices.Clone(r.Mutations),
		Summary:   r.Summary,
		Subjects:  r.Subjects, // read only; JUnit orders its test cases itself
	}
	if out.Results == nil {
		out.Results = []Result{}
	}
	if out.Mutations == nil {
		out.Mutations = []Mutation{}
	}
	slices.SortFunc(out.Results, compareResults)
	slices.SortStableFunc(out.Mutations, func(a, b Mutation) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name),
		)
	})
	return out
}

func compareResults(a, b Result) int {
	return cmp.Or(
		cmp.Compare(a.File, b.File),
		cmp.Compare(a.Line, b.Line),
		cmp.Compare(a.Column, b.Column),
		cmp.Compare(a.Policy, b.Policy),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.APIVersion, b.APIVersion),
		cmp.Compare(a.Mode, b.Mode),
		cmp.Compare(a.Field, b.Field),
		cmp.Compare(a.Message, b.Message),
	)
}

// position renders file:line:col the way compilers do, leaving out a line or
// column that is unknown (0), so that editors and CI logs link to the spot.
func position(file string, line, col int) string {
	switch {
	case line <= 0:
		return file
	case col <= 0:
		return fmt.Sprintf("%s:%d", file, line)
	default:
		return fmt.Sprintf("%s:%d:%d", file, line, col)
	}
}

// objectName is namespace/name, or name for a cluster-scoped object.
func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// objectRef is namespace/Kind/name, or Kind/name for a cluster-scoped object.
func objectRef(namespace, kind, name string) string {
	return objectName(namespace, kind+"/"+name)
}

// detail is the field and message of a finding on one line: messages are one
// line by contract, and a stray line break must not split a finding in the
// line-oriented formats.
func detail(r Result) string {
	msg := strings.TrimSpace(oneLine.Replace(r.Message))
	if r.Field == "" {
		return msg
	}
	if msg == "" {
		return r.Field
	}
	return r.Field + ": " + msg
}

var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")
