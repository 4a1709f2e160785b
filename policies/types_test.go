package policies

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFindingString(t *testing.T) {
	assert.Equal(t, "[storage-class] spec.volumeClaimTemplates[0].spec.storageClassName: is bad",
		Finding{Policy: StorageClass, Mode: Enforce, Field: "spec.volumeClaimTemplates[0].spec.storageClassName", Message: "is bad"}.String())
	assert.Equal(t, `[headless-service] deleting headless Service "nginx" breaks things`,
		Finding{Policy: HeadlessService, Mode: Enforce, Message: `deleting headless Service "nginx" breaks things`}.String())
}

func TestResultDeniedAndCount(t *testing.T) {
	tests := []struct {
		name   string
		modes  []Mode
		denied bool
	}{
		{"no findings", nil, false},
		{"warnings and audits", []Mode{Warn, Audit, Warn}, false},
		{"one enforced", []Mode{Warn, Enforce}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Result
			for _, m := range tt.modes {
				r.Findings = append(r.Findings, Finding{Policy: StorageClass, Mode: m})
			}
			assert.Equal(t, tt.denied, r.Denied())
			total := 0
			for _, m := range Modes {
				total += r.Count(m)
			}
			assert.Equal(t, len(tt.modes), total)
		})
	}
	r := Result{Findings: []Finding{{Mode: Warn}, {Mode: Audit}, {Mode: Warn}}}
	assert.Equal(t, 2, r.Count(Warn))
	assert.Equal(t, 1, r.Count(Audit))
	assert.Equal(t, 0, r.Count(Enforce))
	assert.False(t, Result{Exempt: true}.Denied())
}

func TestPolicyIDsAndModesAreTheContract(t *testing.T) {
	assert.Equal(t, PolicyID("headless-service"), HeadlessService)
	assert.Equal(t, PolicyID("storage-class"), StorageClass)
	assert.Equal(t, PolicyID("snapshot-schedule"), SnapshotSchedule)
	assert.Equal(t, []Mode{"enforce", "warn", "audit", "disabled"}, Modes)
	assert.Equal(t, "stateguard.dev/mode", ModeLabel)
	assert.Equal(t, "stateguard.dev/mode.", ModeLabelPrefix)
	assert.Equal(t, "stateguard.dev/snapshot-schedule", DefaultSnapshotLabelKey)
}
