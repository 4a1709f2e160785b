package report

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The SARIF 2.1.0 spec's objects, as far as we emit them, written out
// independently of the writer's types so that a misspelt property fails
// decoding (unknown fields are rejected). Pointers tell absent from zero.
type specLog struct {
	Schema  *string   `json:"$schema"`
	Version *string   `json:"version"` // required, "2.1.0" (3.13.2)
	Runs    []specRun `json:"runs"`    // required (3.13.4)
}

type specRun struct {
	Tool *struct {
		Driver *specToolComponent `json:"driver"` // required (3.18.2)
	} `json:"tool"` // required (3.14.6)
	Results []specResult `json:"results"`
}

type specToolComponent struct {
	Name           *string                   `json:"name"` // required (3.19.8)
	InformationURI string                    `json:"informationUri"`
	Version        string                    `json:"version"`
	Rules          []specReportingDescriptor `json:"rules"`
}

type specMultiformatMessage struct {
	Text *string `json:"text"` // required (3.12.3)
}

type specReportingDescriptor struct {
	ID                   *string                 `json:"id"` // required (3.49.3)
	Name                 string                  `json:"name"`
	ShortDescription     *specMultiformatMessage `json:"shortDescription"`
	FullDescription      *specMultiformatMessage `json:"fullDescription"`
	Help                 *specMultiformatMessage `json:"help"`
	HelpURI              string                  `json:"helpUri"`
	DefaultConfiguration *struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
}

type specResult struct {
	RuleID              string                  `json:"ruleId"`
	RuleIndex           *int                    `json:"ruleIndex"`
	Level               string                  `json:"level"`
	Message             *specMultiformatMessage `json:"message"` // required (3.27.11)
	Locations           []specLocation          `json:"locations"`
	PartialFingerprints map[string]string       `json:"partialFingerprints"`
}

type specLocation struct {
	PhysicalLocation *struct {
		ArtifactLocation *struct {
			URI *string `json:"uri"`
		} `json:"artifactLocation"`
		Region *struct {
			StartLine   *int `json:"startLine"`
			StartColumn *int `json:"startColumn"`
		} `json:"region"`
	} `json:"physicalLocation"`
	LogicalLocations []struct {
		Name               string `json:"name"`
		FullyQualifiedName string `json:"fullyQualifiedName"`
		Kind               string `json:"kind"`
	} `json:"logicalLocations"`
}

func decodeSARIF(t *testing.T, out string) specLog {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(out)))
	dec.DisallowUnknownFields()
	var log specLog
	require.NoError(t, dec.Decode(&log))
	return log
}

func TestSARIFStructure(t *testing.T) {
	log := decodeSARIF(t, render(t, "sarif", realisticReport()))

	require.NotNil(t, log.Schema)
	assert.Equal(t, "https://json.schemastore.org/sarif-2.1.0.json", *log.Schema)
	require.NotNil(t, log.Version)
	assert.Equal(t, "2.1.0", *log.Version)
	require.Len(t, log.Runs, 1)
	run := log.Runs[0]

	require.NotNil(t, run.Tool)
	driver := run.Tool.Driver
	require.NotNil(t, driver)
	require.NotNil(t, driver.Name)
	assert.Equal(t, "stateguard", *driver.Name)
	assert.Equal(t, "https://stateguard.dev", driver.InformationURI)
	assert.Equal(t, "v0.3.0", driver.Version)

	var ruleIDs []string
	for _, rule := range driver.Rules {
		require.NotNil(t, rule.ID)
		ruleIDs = append(ruleIDs, *rule.ID)
		require.NotNil(t, rule.ShortDescription)
		require.NotNil(t, rule.ShortDescription.Text)
		assert.NotEmpty(t, *rule.ShortDescription.Text)
		require.NotNil(t, rule.FullDescription)
		require.NotNil(t, rule.FullDescription.Text)
		assert.NotEmpty(t, *rule.FullDescription.Text)
		assert.Equal(t, "https://stateguard.dev/policies/"+*rule.ID, rule.HelpURI)
		require.NotNil(t, rule.DefaultConfiguration)
		assert.Equal(t, "error", rule.DefaultConfiguration.Level)
	}
	assert.Equal(t, []string{"headless-service", "storage-class", "snapshot-schedule"}, ruleIDs)

	require.Len(t, run.Results, 4)
	fingerprints := map[string]bool{}
	for _, res := range run.Results {
		require.NotNil(t, res.RuleIndex)
		assert.Equal(t, res.RuleID, ruleIDs[*res.RuleIndex], "ruleIndex points at the rule named by ruleId")
		require.NotNil(t, res.Message)
		require.NotNil(t, res.Message.Text)
		require.Len(t, res.Locations, 1)
		loc := res.Locations[0]
		require.NotNil(t, loc.PhysicalLocation)
		require.NotNil(t, loc.PhysicalLocation.ArtifactLocation)
		require.NotNil(t, loc.PhysicalLocation.ArtifactLocation.URI)
		require.NotNil(t, loc.PhysicalLocation.Region)
		require.NotNil(t, loc.PhysicalLocation.Region.StartLine)
		require.NotNil(t, loc.PhysicalLocation.Region.StartColumn)
		require.Len(t, loc.LogicalLocations, 1)
		fp := res.PartialFingerprints[fingerprintKey]
		assert.Len(t, fp, 32)
		assert.False(t, fingerprints[fp], "fingerprints are unique")
		fingerprints[fp] = true
	}

	first := run.Results[0]
	assert.Equal(t, "headless-service", first.RuleID)
	assert.Equal(t, "error", first.Level)
	assert.Equal(t, `StatefulSet default/web: spec.serviceName: Service "nginx" not found in namespace default; create a Service with clusterIP: None named "nginx" that selects app=web`, *first.Message.Text)
	assert.Equal(t, "app/sts.yaml", *first.Locations[0].PhysicalLocation.ArtifactLocation.URI)
	assert.Equal(t, 9, *first.Locations[0].PhysicalLocation.Region.StartLine)
	assert.Equal(t, 3, *first.Locations[0].PhysicalLocation.Region.StartColumn)
	assert.Equal(t, "web", first.Locations[0].LogicalLocations[0].Name)
	assert.Equal(t, "default/StatefulSet/web", first.Locations[0].LogicalLocations[0].FullyQualifiedName)
	assert.Equal(t, "resource", first.Locations[0].LogicalLocations[0].Kind)
}

func TestSARIFLevels(t *testing.T) {
	for mode, level := range map[string]string{"enforce": "error", "warn": "warning", "audit": "note", "bogus": "warning"} {
		log := decodeSARIF(t, render(t, "sarif", &Report{Results: []Result{{File: "a.yaml", Policy: "storage-class", Mode: mode}}}))
		assert.Equal(t, level, log.Runs[0].Results[0].Level, mode)
	}
}

// SARIF regions are 1-based; an unknown position (0) points at the file's
// start rather than producing an invalid log.
func TestSARIFClampsPosition(t *testing.T) {
	log := decodeSARIF(t, render(t, "sarif", &Report{Results: []Result{{File: "a.yaml", Policy: "storage-class", Mode: "warn"}}}))
	region := log.Runs[0].Results[0].Locations[0].PhysicalLocation.Region
	assert.Equal(t, 1, *region.StartLine)
	assert.Equal(t, 1, *region.StartColumn)
}

func TestSARIFEmpty(t *testing.T) {
	out := render(t, "sarif", nil)
	assert.Contains(t, out, `"results": []`, "an empty results array says the run found nothing; null is invalid")
	log := decodeSARIF(t, out)
	assert.Len(t, log.Runs[0].Tool.Driver.Rules, 3)
}

func TestSARIFUnregisteredPolicyGetsARule(t *testing.T) {
	log := decodeSARIF(t, render(t, "sarif", &Report{Results: []Result{{File: "a.yaml", Policy: "future-policy", Mode: "enforce"}}}))
	rules := log.Runs[0].Tool.Driver.Rules
	require.Len(t, rules, 4)
	res := log.Runs[0].Results[0]
	assert.Equal(t, "future-policy", *rules[*res.RuleIndex].ID)
}

func TestSARIFNoFileNoLocation(t *testing.T) {
	log := decodeSARIF(t, render(t, "sarif", &Report{Results: []Result{{Policy: "storage-class", Mode: "enforce"}}}))
	assert.Empty(t, log.Runs[0].Results[0].Locations)
}

func TestArtifactURI(t *testing.T) {
	for in, want := range map[string]string{
		"app/sts.yaml":         "app/sts.yaml",
		"./app/sts.yaml":       "./app/sts.yaml",
		`app\win\sts.yaml`:     "app/win/sts.yaml",
		"../up/sts.yaml":       "../up/sts.yaml",
		"my dir/a#1.yaml":      "my%20dir/a%231.yaml",
		"-":                    "-",
		"a:b/sts.yaml":         "a%3Ab/sts.yaml",
		"/abs/path/sts.yaml":   "file:///abs/path/sts.yaml",
		`C:\work\app\sts.yaml`: "file:///C:/work/app/sts.yaml",
	} {
		assert.Equal(t, want, artifactURI(in), in)
	}
}
