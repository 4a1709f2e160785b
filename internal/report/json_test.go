package report

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONEmptyListsAreNotNull(t *testing.T) {
	for _, r := range []*Report{nil, {}} {
		assert.JSONEq(t, `{"results": [], "mutations": [],
			"summary": {"files": 0, "objects": 0, "statefulSets": 0, "violations": 0, "warnings": 0, "audits": 0}}`,
			render(t, "json", r))
	}
}

func TestJSONRoundTrip(t *testing.T) {
	want := normalize(realisticReport())
	var got Report
	require.NoError(t, json.Unmarshal([]byte(render(t, "json", realisticReport())), &got))
	assert.Equal(t, want.Results, got.Results)
	assert.Equal(t, want.Summary, got.Summary)
	require.Len(t, got.Mutations, 1)
	assert.Equal(t, "managed-csi", got.Mutations[0].Value)
	assert.Nil(t, got.Subjects, "subjects are not part of the JSON schema")
}

func TestJSONOrder(t *testing.T) {
	r := &Report{Results: []Result{
		{File: "b.yaml", Line: 1, Column: 1, Policy: "headless-service"},
		{File: "a.yaml", Line: 10, Column: 1, Policy: "headless-service"},
		{File: "a.yaml", Line: 2, Column: 7, Policy: "storage-class"},
		{File: "a.yaml", Line: 2, Column: 7, Policy: "headless-service"},
		{File: "a.yaml", Line: 2, Column: 3, Policy: "storage-class"},
	}}
	var got Report
	require.NoError(t, json.Unmarshal([]byte(render(t, "json", r)), &got))
	var order []string
	for _, res := range got.Results {
		order = append(order, position(res.File, res.Line, res.Column)+" "+res.Policy)
	}
	assert.Equal(t, []string{
		"a.yaml:2:3 storage-class",
		"a.yaml:2:7 headless-service",
		"a.yaml:2:7 storage-class",
		"a.yaml:10:1 headless-service",
		"b.yaml:1:1 headless-service",
	}, order)
}

func TestJSONFieldOmittedWhenEmpty(t *testing.T) {
	var got struct {
		Results []map[string]any `json:"results"`
	}
	require.NoError(t, json.Unmarshal([]byte(render(t, "json", &Report{Results: []Result{{Message: "<m> & co"}}})), &got))
	require.Len(t, got.Results, 1)
	assert.NotContains(t, got.Results[0], "field")
	assert.Equal(t, "<m> & co", got.Results[0]["message"])
}
