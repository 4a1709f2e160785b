package report

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTextFindingLine(t *testing.T) {
	tests := []struct {
		name string
		res  Result
		want string
	}{
		{
			name: "field before message",
			res: Result{File: "app/sts.yaml", Line: 12, Column: 5, Namespace: "default", Name: "web",
				Policy: "headless-service", Mode: "enforce", Field: "spec.serviceName", Message: `Service "nginx" not found`},
			want: `app/sts.yaml:12:5: enforce headless-service default/web: spec.serviceName: Service "nginx" not found`,
		},
		{
			name: "no field",
			res: Result{File: "a.yaml", Line: 3, Column: 1, Namespace: "ns", Name: "db",
				Policy: "snapshot-schedule", Mode: "audit", Message: "label missing"},
			want: "a.yaml:3:1: audit snapshot-schedule ns/db: label missing",
		},
		{
			name: "unknown column and line break in message",
			res: Result{File: "-", Line: 7, Namespace: "ns", Name: "db",
				Policy: "storage-class", Mode: "warn", Message: "reclaimPolicy Delete\nloses data "},
			want: "-:7: warn storage-class ns/db: reclaimPolicy Delete loses data",
		},
		{
			name: "unknown position, cluster-scoped, no message",
			res:  Result{File: "x.yaml", Name: "fast", Policy: "storage-class", Mode: "warn"},
			want: "x.yaml: warn storage-class fast",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := render(t, "text", &Report{Results: []Result{tt.res}})
			first, _, _ := strings.Cut(out, "\n")
			assert.Equal(t, tt.want, first)
		})
	}
}

func TestTextSummary(t *testing.T) {
	tests := []struct {
		name string
		r    *Report
		want string
	}{
		{
			name: "empty",
			r:    &Report{},
			want: "0 files, 0 objects, 0 StatefulSets: 0 violations, 0 warnings, 0 audited, 0 mutations\n",
		},
		{
			name: "singular",
			r: &Report{
				Results:   []Result{{File: "a.yaml", Line: 1, Column: 1, Namespace: "ns", Name: "db", Policy: "storage-class", Mode: "enforce", Message: "m"}},
				Mutations: []Mutation{{Path: "/x"}},
				Summary:   Summary{Files: 1, Objects: 1, StatefulSets: 1, Violations: 1, Warnings: 1, Audits: 1},
			},
			want: "a.yaml:1:1: enforce storage-class ns/db: m\n\n" +
				"1 file, 1 object, 1 StatefulSet: 1 violation, 1 warning, 1 audited, 1 mutation\n",
		},
		{
			name: "plural",
			r: &Report{
				Mutations: []Mutation{{Path: "/x"}, {Path: "/y"}, {Path: "/z"}},
				Summary:   Summary{Files: 2, Objects: 5, StatefulSets: 2, Violations: 1, Warnings: 2},
			},
			want: "2 files, 5 objects, 2 StatefulSets: 1 violation, 2 warnings, 0 audited, 3 mutations\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, render(t, "text", tt.r))
		})
	}
}
