package report

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"

	"github.com/stateguard/stateguard/policies"
)

// JUnit XML as Jenkins, GitLab and Azure DevOps read it: a suite per file, a
// test case per object and policy. A failing case carries one <failure>
// listing all its enforce findings: those tools show only the first of
// several <failure> elements, and some parsers reject them outright.
// Warnings and audits do not fail a case; they go to its <system-out>.

type junitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Suites   []junitTestSuite `xml:"testsuite"`
}

type junitTestSuite struct {
	Name     string          `xml:"name,attr"`
	Tests    int             `xml:"tests,attr"`
	Failures int             `xml:"failures,attr"`
	Errors   int             `xml:"errors,attr"`
	Skipped  int             `xml:"skipped,attr"`
	Cases    []junitTestCase `xml:"testcase"`
}

type junitTestCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// junitCaseKey identifies a test case: one object in one file, one policy.
type junitCaseKey struct {
	File, Kind, Namespace, Name, Policy string
}

// junitCase gathers a test case's findings; line orders cases in their file.
type junitCase struct {
	key      junitCaseKey
	line     int
	findings []Result
}

func writeJUnit(w *bytes.Buffer, r *Report, _ Options) error {
	cases := map[junitCaseKey]*junitCase{}
	get := func(k junitCaseKey, line int) *junitCase {
		c, ok := cases[k]
		if !ok {
			c = &junitCase{key: k, line: line}
			cases[k] = c
		}
		c.line = min(c.line, line)
		return c
	}
	for _, s := range r.Subjects {
		for _, p := range s.Policies {
			get(junitCaseKey{s.File, s.Kind, s.Namespace, s.Name, p}, s.Line)
		}
	}
	// A finding on an object missing from Subjects still gets its case:
	// dropping it would turn a failure into silence.
	for _, res := range r.Results {
		c := get(junitCaseKey{res.File, res.Kind, res.Namespace, res.Name, res.Policy}, res.Line)
		c.findings = append(c.findings, res)
	}

	sorted := make([]*junitCase, 0, len(cases))
	for _, c := range cases {
		sorted = append(sorted, c)
	}
	slices.SortFunc(sorted, func(a, b *junitCase) int {
		return cmp.Or(
			cmp.Compare(a.key.File, b.key.File),
			cmp.Compare(a.line, b.line),
			cmp.Compare(objectRef(a.key.Namespace, a.key.Kind, a.key.Name), objectRef(b.key.Namespace, b.key.Kind, b.key.Name)),
			cmp.Compare(a.key.Policy, b.key.Policy),
		)
	})

	doc := junitTestSuites{Name: "stateguard"}
	for _, c := range sorted {
		if n := len(doc.Suites); n == 0 || doc.Suites[n-1].Name != c.key.File {
			doc.Suites = append(doc.Suites, junitTestSuite{Name: c.key.File})
		}
		suite := &doc.Suites[len(doc.Suites)-1]
		tc := junitTestCase{
			Classname: objectRef(c.key.Namespace, c.key.Kind, c.key.Name),
			Name:      c.key.Policy,
		}
		var failures, notes []string
		var first string
		for _, f := range c.findings {
			at := position(f.File, f.Line, f.Column) + ": "
			if policies.Mode(f.Mode) == policies.Enforce {
				if len(failures) == 0 {
					first = detail(f)
				}
				failures = append(failures, at+detail(f))
			} else {
				notes = append(notes, at+f.Mode+": "+detail(f))
			}
		}
		if len(failures) > 0 {
			msg := first
			if len(failures) > 1 {
				msg = fmt.Sprintf("%s (and %d more)", first, len(failures)-1)
			}
			tc.Failure = &junitFailure{Message: msg, Type: string(policies.Enforce), Text: strings.Join(failures, "\n")}
			suite.Failures++
			doc.Failures++
		}
		tc.SystemOut = strings.Join(notes, "\n")
		suite.Cases = append(suite.Cases, tc)
		suite.Tests++
		doc.Tests++
	}

	w.WriteString(xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	w.WriteByte('\n')
	return nil
}
