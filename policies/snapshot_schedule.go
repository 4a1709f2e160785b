package policies

// snapshot-schedule: the control plane can be rebuilt, volume data cannot, so
// no StatefulSet is admitted without naming the snapshot schedule its data is
// protected by.
//
// Reads: the StatefulSet's label (stateguard.dev/snapshot-schedule by
// default), whose value must be one of the configured schedule names, never a
// cron string (label values hold neither spaces nor '*'; the cron lives in the
// snapshot tool's own schedule object).
//
// Mutates (CREATE): copies the label into every claim template's labels, so
// the PVCs the StatefulSet controller creates carry it and label-selecting
// snapshot tools (snapscheduler claimSelector, Velero, k8up,
// VolumeGroupSnapshot) actually pick them up. On UPDATE it only copies the
// label back from the live templates, since templates are immutable and a
// re-applied manifest lacks it (or still has the value CREATE overwrote).
//
// On UPDATE, removing the label or setting an unknown value is a violation;
// switching between known schedules is allowed with a warning, because claims
// that already exist keep the old label. An unknown value the live object
// already had (a schedule since removed from the config) is only a warning. A StatefulSet that never had the
// label (it predates the policy) only gets a warning, so it can still scale.

import (
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var snapshotSchedulePolicy = Policy{
	ID:                  SnapshotSchedule,
	MutateStatefulSet:   mutateSnapshotSchedule,
	ValidateStatefulSet: validateSnapshotSchedule,
}

func mutateSnapshotSchedule(r *StatefulSetReview, sts *appsv1.StatefulSet) []Mutation {
	key := r.Config.Policies.SnapshotSchedule.LabelKey
	var source func(i int) (string, bool)
	switch r.Operation {
	case Create:
		value, ok := sts.Labels[key]
		if !ok {
			return nil
		}
		source = func(int) (string, bool) { return value, true }
	case Update:
		old := r.OldObject
		if old == nil {
			return nil
		}
		copied, oldHas := old.Labels[key]
		source = func(i int) (string, bool) {
			if i >= len(old.Spec.VolumeClaimTemplates) || old.Spec.VolumeClaimTemplates[i].Name != sts.Spec.VolumeClaimTemplates[i].Name {
				return "", false
			}
			value, ok := old.Spec.VolumeClaimTemplates[i].Labels[key]
			if !ok {
				return "", false
			}
			// CREATE overwrote whatever the manifest had with the
			// StatefulSet's label, so a re-applied manifest may carry a
			// different value here; any other difference is the user's.
			if current, has := sts.Spec.VolumeClaimTemplates[i].Labels[key]; has && current != value && (!oldHas || value != copied) {
				return "", false
			}
			return value, true
		}
	default:
		return nil
	}
	var out []Mutation
	for i := range sts.Spec.VolumeClaimTemplates {
		value, ok := source(i)
		tmpl := &sts.Spec.VolumeClaimTemplates[i]
		if current, has := tmpl.Labels[key]; !ok || (has && current == value) {
			continue
		}
		if tmpl.Labels == nil {
			tmpl.Labels = map[string]string{}
		}
		tmpl.Labels[key] = value
		out = append(out, Mutation{Policy: SnapshotSchedule, Path: labelPointer(i, key), Value: value})
	}
	return out
}

func validateSnapshotSchedule(r *StatefulSetReview) ([]Issue, error) {
	cfg := &r.Config.Policies.SnapshotSchedule
	key := cfg.LabelKey
	known := strings.Join(cfg.Schedules, ", ")
	labelsPath := field.NewPath("metadata", "labels")
	value, has := r.Object.Labels[key]

	var oldValue string
	var oldHas bool
	if r.Operation == Update && r.OldObject != nil {
		oldValue, oldHas = r.OldObject.Labels[key]
	}
	switch {
	case !has && r.Operation == Update && !oldHas:
		return []Issue{advisory(labelsPath, "",
			"no %s label; add one naming a schedule: %s", key, known)}, nil
	case !has && r.Operation == Update:
		return []Issue{violation(labelsPath.Key(key), "",
			"removing the snapshot schedule (was %q) is not allowed; keep one of: %s", oldValue, known)}, nil
	case !has:
		return []Issue{violation(labelsPath, "",
			"no %s label; add one naming a schedule: %s", key, known)}, nil
	case !slices.Contains(cfg.Schedules, value) && r.Operation == Update && oldHas && oldValue == value:
		// The value was known once and left the config since: denying would
		// block scaling a StatefulSet nobody touched; only setting it is denied.
		return []Issue{advisory(labelsPath.Key(key), value,
			"%q is no longer a known snapshot schedule; use one of: %s", value, known)}, nil
	case !slices.Contains(cfg.Schedules, value):
		return []Issue{violation(labelsPath.Key(key), value,
			"%q is not a known snapshot schedule; use one of: %s", value, known)}, nil
	case r.Operation == Update && oldHas && oldValue != value && slices.Contains(cfg.Schedules, oldValue):
		return []Issue{advisory(labelsPath.Key(key), value,
			"schedule changed from %q to %q: existing claims keep %q until relabelled", oldValue, value, oldValue)}, nil
	}
	return nil, nil
}
