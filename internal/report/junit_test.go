package report

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// JUnit as CI tools read it, declared apart from the writer's types.
type parsedSuites struct {
	XMLName  xml.Name      `xml:"testsuites"`
	Name     string        `xml:"name,attr"`
	Tests    int           `xml:"tests,attr"`
	Failures int           `xml:"failures,attr"`
	Errors   int           `xml:"errors,attr"`
	Suites   []parsedSuite `xml:"testsuite"`
}

type parsedSuite struct {
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Cases    []parsedCase `xml:"testcase"`
}

type parsedCase struct {
	Classname string `xml:"classname,attr"`
	Name      string `xml:"name,attr"`
	Failures  []struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	SystemOut []string `xml:"system-out"`
}

func parseJUnit(t *testing.T, out string) parsedSuites {
	t.Helper()
	require.True(t, strings.HasPrefix(out, xml.Header), "starts with the XML declaration")
	var s parsedSuites
	require.NoError(t, xml.Unmarshal([]byte(out), &s))
	return s
}

// checkCounts asserts that every tests/failures attribute matches the
// elements it counts: CI tools trust the attributes.
func checkCounts(t *testing.T, s parsedSuites) {
	t.Helper()
	tests, failures := 0, 0
	for _, suite := range s.Suites {
		suiteFailures := 0
		for _, c := range suite.Cases {
			assert.LessOrEqual(t, len(c.Failures), 1, "at most one <failure> per case: CI tools show only the first")
			if len(c.Failures) > 0 {
				suiteFailures++
			}
		}
		assert.Equal(t, len(suite.Cases), suite.Tests, suite.Name)
		assert.Equal(t, suiteFailures, suite.Failures, suite.Name)
		assert.Zero(t, suite.Errors)
		tests += suite.Tests
		failures += suite.Failures
	}
	assert.Equal(t, tests, s.Tests)
	assert.Equal(t, failures, s.Failures)
	assert.Zero(t, s.Errors)
}

func TestJUnitParsesBackWithMatchingCounts(t *testing.T) {
	s := parseJUnit(t, render(t, "junit", realisticReport()))
	checkCounts(t, s)
	assert.Equal(t, "stateguard", s.Name)
	assert.Equal(t, 9, s.Tests, "3 StatefulSets × 3 policies")
	assert.Equal(t, 2, s.Failures)

	require.Len(t, s.Suites, 2)
	assert.Equal(t, "app/sts.yaml", s.Suites[0].Name)
	assert.Equal(t, "db/postgres.yaml", s.Suites[1].Name)

	byCase := map[string]parsedCase{}
	for _, suite := range s.Suites {
		for _, c := range suite.Cases {
			byCase[c.Classname+" "+c.Name] = c
		}
	}
	web := byCase["default/StatefulSet/web headless-service"]
	require.Len(t, web.Failures, 1)
	assert.Equal(t, "enforce", web.Failures[0].Type)
	assert.Equal(t, `spec.serviceName: Service "nginx" not found in namespace default; create a Service with clusterIP: None named "nginx" that selects app=web`, web.Failures[0].Message)
	assert.Equal(t, `app/sts.yaml:9:3: spec.serviceName: Service "nginx" not found in namespace default; create a Service with clusterIP: None named "nginx" that selects app=web`, web.Failures[0].Text)

	warned := byCase["data/StatefulSet/postgres headless-service"]
	assert.Empty(t, warned.Failures, "a warning is not a failure")
	assert.Equal(t, []string{"db/postgres.yaml:30:3: warn: spec.serviceName: " +
		`Service "postgres" lacks publishNotReadyAddresses: true; clustered databases need peer DNS before they are ready`}, warned.SystemOut)

	audit := byCase["data/StatefulSet/postgres snapshot-schedule"]
	assert.Empty(t, audit.Failures, "an audit is not a failure")
	require.Len(t, audit.SystemOut, 1)
	assert.Contains(t, audit.SystemOut[0], "db/postgres.yaml:31:3: audit: ")

	clean := byCase["default/StatefulSet/cache storage-class"]
	assert.Empty(t, clean.Failures)
	assert.Empty(t, clean.SystemOut)
}

func TestJUnitOneFailureListsAllViolations(t *testing.T) {
	r := &Report{
		Results: []Result{
			{File: "a.yaml", Line: 20, Column: 9, Kind: "StatefulSet", Namespace: "ns", Name: "db", Policy: "storage-class", Mode: "enforce",
				Field: "spec.volumeClaimTemplates[1].spec.storageClassName", Message: "second"},
			{File: "a.yaml", Line: 10, Column: 9, Kind: "StatefulSet", Namespace: "ns", Name: "db", Policy: "storage-class", Mode: "enforce",
				Field: "spec.volumeClaimTemplates[0].spec.storageClassName", Message: "first"},
		},
		Subjects: []Subject{{File: "a.yaml", Line: 1, Kind: "StatefulSet", Namespace: "ns", Name: "db", Policies: []string{"storage-class"}}},
	}
	s := parseJUnit(t, render(t, "junit", r))
	checkCounts(t, s)
	require.Equal(t, 1, s.Tests)
	f := s.Suites[0].Cases[0].Failures[0]
	assert.Equal(t, "spec.volumeClaimTemplates[0].spec.storageClassName: first (and 1 more)", f.Message)
	assert.Equal(t, "a.yaml:10:9: spec.volumeClaimTemplates[0].spec.storageClassName: first\n"+
		"a.yaml:20:9: spec.volumeClaimTemplates[1].spec.storageClassName: second", f.Text)
}

// A finding whose object is missing from Subjects still fails a test case.
func TestJUnitFindingWithoutSubject(t *testing.T) {
	r := &Report{Results: []Result{{File: "a.yaml", Line: 3, Column: 1, Kind: "StatefulSet", Namespace: "ns", Name: "db",
		Policy: "snapshot-schedule", Mode: "enforce", Message: "label missing"}}}
	s := parseJUnit(t, render(t, "junit", r))
	checkCounts(t, s)
	require.Equal(t, 1, s.Failures)
	assert.Equal(t, "ns/StatefulSet/db", s.Suites[0].Cases[0].Classname)
	assert.Equal(t, "snapshot-schedule", s.Suites[0].Cases[0].Name)
}

func TestJUnitEscaping(t *testing.T) {
	msg := `class "a<b>&c" isn't ]]> valid` + "\x01"
	r := &Report{Results: []Result{{File: `dir/"odd"&<name>.yaml`, Line: 1, Column: 1, Kind: "StatefulSet", Namespace: "ns", Name: "db",
		Policy: "storage-class", Mode: "enforce", Message: msg}}}
	s := parseJUnit(t, render(t, "junit", r))
	checkCounts(t, s)
	assert.Equal(t, `dir/"odd"&<name>.yaml`, s.Suites[0].Name)
	f := s.Suites[0].Cases[0].Failures[0]
	assert.Equal(t, `class "a<b>&c" isn't ]]> valid`+"\uFFFD", f.Message, "a control character XML cannot hold is replaced")
	assert.Contains(t, f.Text, `class "a<b>&c" isn't ]]> valid`)
}

func TestJUnitEmpty(t *testing.T) {
	s := parseJUnit(t, render(t, "junit", nil))
	checkCounts(t, s)
	assert.Equal(t, "stateguard", s.Name)
	assert.Zero(t, s.Tests)
}
