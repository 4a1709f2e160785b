package policies

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const labelField = "metadata.labels[" + scheduleKey + "]"

func TestSnapshotScheduleValidateCreate(t *testing.T) {
	tests := []struct {
		name        string
		sts         *appsv1.StatefulSet
		want        []string
		wantMessage string
	}{{
		name: "known schedule",
		sts:  mkStatefulSet(withSchedule("hourly")),
	}, {
		name:        "label missing",
		sts:         mkStatefulSet(withoutLabel(scheduleKey)),
		want:        []string{"enforce metadata.labels"},
		wantMessage: "no stateguard.dev/snapshot-schedule label; add one naming a schedule: hourly, daily, weekly",
	}, {
		name:        "no labels at all",
		sts:         mkStatefulSet(withLabels(nil)),
		want:        []string{"enforce metadata.labels"},
		wantMessage: "no stateguard.dev/snapshot-schedule label",
	}, {
		name:        "unknown schedule",
		sts:         mkStatefulSet(withSchedule("monthly")),
		want:        []string{"enforce " + labelField},
		wantMessage: `"monthly" is not a known snapshot schedule; use one of: hourly, daily, weekly`,
	}, {
		name: "empty value",
		sts:  mkStatefulSet(withSchedule("")),
		want: []string{"enforce " + labelField},
	}, {
		name: "schedule names are case-sensitive",
		sts:  mkStatefulSet(withSchedule("Daily")),
		want: []string{"enforce " + labelField},
	}, {
		// Offline, nothing stops a manifest from carrying a cron string in a
		// label; it names no schedule.
		name:        "cron string",
		sts:         mkStatefulSet(withSchedule("0 * * * *")),
		want:        []string{"enforce " + labelField},
		wantMessage: `"0 * * * *" is not a known snapshot schedule`,
	}, {
		name: "cron-like value that is a valid label value",
		sts:  mkStatefulSet(withSchedule("0-5-x-x-x")),
		want: []string{"enforce " + labelField},
	}, {
		name: "the schedule on the pod template does not count",
		sts:  mkStatefulSet(withoutLabel(scheduleKey), withPodLabels(map[string]string{"app": "nginx", scheduleKey: "daily"})),
		want: []string{"enforce metadata.labels"},
	}}
	e := mkEngine(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, result := admit(t, e, create(tt.sts), mkCluster())
			got := findingsOf(result, SnapshotSchedule)
			assert.Equal(t, tt.want, nilIfEmpty(summary(got)))
			assert.Equal(t, tt.want != nil, result.Denied())
			if tt.wantMessage != "" {
				require.NotEmpty(t, got)
				assert.Contains(t, got[0].Message, tt.wantMessage)
			}
			requireMessagesReadable(t, "StatefulSet", result)
		})
	}
}

func TestSnapshotScheduleMutateCreate(t *testing.T) {
	e := mkEngine(t, Config{})
	sts := mkStatefulSet(
		withSchedule("weekly"),
		withClaim("data", modes(corev1.ReadWriteOnce), withClaimLabels(map[string]string{"app": "nginx"})),
		withClaim("shared", modes(corev1.ReadWriteMany), withClaimLabels(map[string]string{scheduleKey: "hourly"})),
		withClaimTemplate("wal", corev1.ReadWriteOncePod),
		withMount("data"), withMount("logs"), withInitMount("seed"),
	)
	mutated, ms, err := e.MutateStatefulSet(create(sts), mkCluster())
	require.NoError(t, err)

	names := make([]string, 0, len(mutated.Spec.VolumeClaimTemplates))
	for _, tmpl := range mutated.Spec.VolumeClaimTemplates {
		names = append(names, tmpl.Name)
		assert.Equal(t, "weekly", tmpl.Labels[scheduleKey], "template %s", tmpl.Name)
	}
	require.Equal(t, []string{"data", "shared", "wal", "seed", "logs"}, names, "templates made for dangling mounts get the label too")
	assert.Equal(t, "nginx", mutated.Spec.VolumeClaimTemplates[0].Labels["app"], "other template labels are kept")

	const escaped = "/metadata/labels/stateguard.dev~1snapshot-schedule"
	assert.Equal(t, []string{
		"/spec/volumeClaimTemplates/0" + escaped,
		"/spec/volumeClaimTemplates/1" + escaped,
		"/spec/volumeClaimTemplates/2" + escaped,
		"/spec/volumeClaimTemplates/3" + escaped,
		"/spec/volumeClaimTemplates/4" + escaped,
	}, paths(mutationsOf(ms, SnapshotSchedule)))
	for _, m := range mutationsOf(ms, SnapshotSchedule) {
		assert.Equal(t, "weekly", m.Value)
	}
	requireMutationsPointAtTheirValues(t, mutated, ms)
}

func TestSnapshotScheduleMutateCreateWithoutLabel(t *testing.T) {
	e := mkEngine(t, Config{})
	sts := mkStatefulSet(withoutLabel(scheduleKey), withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi")))
	got, ms, err := e.MutateStatefulSet(create(sts), mkCluster())
	require.NoError(t, err)
	assert.Empty(t, ms)
	assert.Same(t, sts, got)
}

func TestSnapshotScheduleUpdate(t *testing.T) {
	tests := []struct {
		name        string
		old, sts    *appsv1.StatefulSet
		want        []string
		wantMessage string
	}{{
		name: "unchanged",
		old:  mkStatefulSet(),
		sts:  mkStatefulSet(),
	}, {
		name:        "label removed",
		old:         mkStatefulSet(),
		sts:         mkStatefulSet(withoutLabel(scheduleKey)),
		want:        []string{"enforce " + labelField},
		wantMessage: `removing the snapshot schedule (was "daily") is not allowed`,
	}, {
		name:        "unknown value set",
		old:         mkStatefulSet(),
		sts:         mkStatefulSet(withSchedule("monthly")),
		want:        []string{"enforce " + labelField},
		wantMessage: `"monthly" is not a known snapshot schedule`,
	}, {
		name:        "switch between known schedules is a warning",
		old:         mkStatefulSet(withSchedule("daily")),
		sts:         mkStatefulSet(withSchedule("hourly")),
		want:        []string{"warn " + labelField},
		wantMessage: `schedule changed from "daily" to "hourly": existing claims keep "daily"`,
	}, {
		name: "switch from an unknown to a known schedule fixes it",
		old:  mkStatefulSet(withSchedule("monthly")),
		sts:  mkStatefulSet(withSchedule("weekly")),
	}, {
		name:        "never had the label: a warning, so it can still scale",
		old:         mkStatefulSet(withoutLabel(scheduleKey)),
		sts:         mkStatefulSet(withoutLabel(scheduleKey), func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(3)) }),
		want:        []string{"warn metadata.labels"},
		wantMessage: "no stateguard.dev/snapshot-schedule label",
	}, {
		name:        "never had the label and no live object to compare",
		old:         nil,
		sts:         mkStatefulSet(withoutLabel(scheduleKey)),
		want:        []string{"warn metadata.labels"},
		wantMessage: "no stateguard.dev/snapshot-schedule label",
	}, {
		name: "label added on UPDATE",
		old:  mkStatefulSet(withoutLabel(scheduleKey)),
		sts:  mkStatefulSet(withSchedule("daily")),
	}, {
		name:        "an unknown value the live object already had only warns, so it can still scale",
		old:         mkStatefulSet(withSchedule("monthly")),
		sts:         mkStatefulSet(withSchedule("monthly"), func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(3)) }),
		want:        []string{"warn " + labelField},
		wantMessage: `"monthly" is no longer a known snapshot schedule`,
	}, {
		name: "label added on UPDATE with an unknown value",
		old:  mkStatefulSet(withoutLabel(scheduleKey)),
		sts:  mkStatefulSet(withSchedule("monthly")),
		want: []string{"enforce " + labelField},
	}}
	e := mkEngine(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result, err := e.ValidateStatefulSet(update(tt.sts, tt.old), mkCluster())
			require.NoError(t, err)
			got := findingsOf(result, SnapshotSchedule)
			assert.Equal(t, tt.want, nilIfEmpty(summary(got)))
			assert.Equal(t, tt.want != nil && strings.HasPrefix(tt.want[0], "enforce "), result.Denied())
			if tt.wantMessage != "" {
				require.NotEmpty(t, got)
				assert.Contains(t, got[0].Message, tt.wantMessage)
			}
			requireMessagesReadable(t, "StatefulSet", result)
		})
	}
}

func TestSnapshotScheduleRestoredOnUpdate(t *testing.T) {
	e := mkEngine(t, Config{})
	manifest := func(schedule string) *appsv1.StatefulSet {
		return mkStatefulSet(withSchedule(schedule),
			withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi")),
			withClaim("wal", modes(corev1.ReadWriteOnce), withClass("managed-csi")),
		)
	}
	created, _ := admit(t, e, create(manifest("daily")), mkCluster())
	live := roundTrip(t, created)

	t.Run("re-applied manifest gets the label back", func(t *testing.T) {
		mutated, ms, err := e.MutateStatefulSet(update(manifest("daily"), live), mkCluster())
		require.NoError(t, err)
		assert.Equal(t, live.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates)
		assert.Equal(t, []string{
			"/spec/volumeClaimTemplates/0/metadata/labels/stateguard.dev~1snapshot-schedule",
			"/spec/volumeClaimTemplates/1/metadata/labels/stateguard.dev~1snapshot-schedule",
		}, paths(ms))
	})
	t.Run("a switched schedule does not reach the immutable templates", func(t *testing.T) {
		mutated, _, err := e.MutateStatefulSet(update(manifest("hourly"), live), mkCluster())
		require.NoError(t, err)
		for _, tmpl := range mutated.Spec.VolumeClaimTemplates {
			assert.Equal(t, "daily", tmpl.Labels[scheduleKey])
		}
		assert.Equal(t, "hourly", mutated.Labels[scheduleKey])
	})
	t.Run("a manifest's own template label, which CREATE overwrote, is copied back", func(t *testing.T) {
		incoming := manifest("daily")
		incoming.Spec.VolumeClaimTemplates[1].Labels = map[string]string{scheduleKey: "weekly"}
		mutated, ms, err := e.MutateStatefulSet(update(incoming, live), mkCluster())
		require.NoError(t, err)
		assert.Equal(t, live.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates)
		assert.Len(t, ms, 2)
	})
	t.Run("a template label CREATE never wrote is the user's: left alone", func(t *testing.T) {
		// Created before the policy: the templates' label is the user's own.
		old := roundTrip(t, manifest("daily"))
		old.Spec.VolumeClaimTemplates[0].Labels = map[string]string{scheduleKey: "hourly"}
		old.Spec.VolumeClaimTemplates[1].Labels = map[string]string{scheduleKey: "hourly"}
		incoming := manifest("daily")
		incoming.Spec.VolumeClaimTemplates[1].Labels = map[string]string{scheduleKey: "weekly"}
		mutated, ms, err := e.MutateStatefulSet(update(incoming, old), mkCluster())
		require.NoError(t, err)
		assert.Equal(t, "hourly", mutated.Spec.VolumeClaimTemplates[0].Labels[scheduleKey], "absent: copied back")
		assert.Equal(t, "weekly", mutated.Spec.VolumeClaimTemplates[1].Labels[scheduleKey], "present: the request's")
		assert.Len(t, ms, 1)
	})
	t.Run("templates renamed or added get nothing", func(t *testing.T) {
		incoming := mkStatefulSet(
			withClaim("data2", modes(corev1.ReadWriteOnce), withClass("managed-csi")),
			withClaim("wal", modes(corev1.ReadWriteOnce), withClass("managed-csi")),
			withClaim("extra", modes(corev1.ReadWriteOnce), withClass("managed-csi")),
		)
		mutated, ms, err := e.MutateStatefulSet(update(incoming, live), mkCluster())
		require.NoError(t, err)
		assert.Equal(t, []string{"/spec/volumeClaimTemplates/1/metadata/labels/stateguard.dev~1snapshot-schedule"}, paths(ms))
		assert.NotContains(t, mutated.Spec.VolumeClaimTemplates[0].Labels, scheduleKey)
		assert.NotContains(t, mutated.Spec.VolumeClaimTemplates[2].Labels, scheduleKey)
	})
	t.Run("the StatefulSet's new label is never copied into templates on UPDATE", func(t *testing.T) {
		old := roundTrip(t, manifest("daily"))
		old.Labels = nil // predates the policy: nothing was injected
		mutated, ms, err := e.MutateStatefulSet(update(manifest("daily"), old), mkCluster())
		require.NoError(t, err)
		assert.Empty(t, ms)
		assert.Equal(t, old.Spec.VolumeClaimTemplates, mutated.Spec.VolumeClaimTemplates)
	})
}

func TestSnapshotScheduleCustomConfig(t *testing.T) {
	const key = "backup.example.com/schedule"
	cfg := Config{Policies: PoliciesConfig{SnapshotSchedule: SnapshotScheduleConfig{LabelKey: key, Schedules: []string{"nightly", "gold"}}}}
	e := mkEngine(t, cfg)

	sts := mkStatefulSet(withLabels(map[string]string{key: "gold"}), withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi")))
	mutated, result := admit(t, e, create(sts), mkCluster())
	assert.Empty(t, result.Findings)
	assert.Equal(t, "gold", mutated.Spec.VolumeClaimTemplates[0].Labels[key])
	assert.NotContains(t, mutated.Spec.VolumeClaimTemplates[0].Labels, scheduleKey)

	_, result = admit(t, e, create(mkStatefulSet(withClaim("data", modes(corev1.ReadWriteOnce), withClass("managed-csi")))), mkCluster())
	got := findingsOf(result, SnapshotSchedule)
	require.Len(t, got, 1, "the default key counts for nothing once another is configured")
	assert.Equal(t, "no backup.example.com/schedule label; add one naming a schedule: nightly, gold", got[0].Message)

	_, result = admit(t, e, create(mkStatefulSet(withLabels(map[string]string{key: "daily"}))), mkCluster())
	got = findingsOf(result, SnapshotSchedule)
	require.Len(t, got, 1, "the default schedules count for nothing once others are configured")
	assert.Equal(t, "metadata.labels[backup.example.com/schedule]", got[0].Field)
	assert.Contains(t, got[0].Message, "use one of: nightly, gold")
}
