package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const positionDoc = `# A StatefulSet for position tests.
apiVersion: v1
kind: Service
metadata: {name: svc}
---
# leading comment
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  labels:
    app: web
    stateguard.dev/snapshot-schedule: daily   # why
    "quoted.key/x": "1"
spec:
  serviceName: web
  template:
    spec:
      containers:
      - name: app
        ports:
        - containerPort: 80
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: fast
  -   metadata:
        name: logs
      spec: {accessModes: [ReadWriteMany], resources: {requests: {storage: 1Gi}}}
`

func TestPosition(t *testing.T) {
	docs, err := readString(t, positionDoc)
	require.NoError(t, err)
	require.Len(t, docs, 2)
	d := docs[1]
	assert.Equal(t, [2]int{7, 1}, [2]int{d.Line, d.Column})

	for _, tc := range []struct {
		path      string
		line, col int
	}{
		{"", 7, 1},
		{"kind", 8, 1},
		{"metadata.name", 10, 3},
		{"metadata.labels[stateguard.dev/snapshot-schedule]", 13, 5},
		{"metadata.labels[quoted.key/x]", 14, 5},
		{"metadata.labels[missing/key]", 11, 3},
		{"spec.template.spec.containers[0].ports[0].containerPort", 22, 11},
		{"spec.template.spec.containers[0]", 20, 9},
		{"spec.template.spec.containers[3].image", 19, 7},
		{"spec.volumeClaimTemplates[0].spec.storageClassName", 28, 7},
		{"spec.volumeClaimTemplates[0].spec.accessModes[0]", 27, 21},
		{"spec.volumeClaimTemplates[1]", 29, 7},
		{"spec.volumeClaimTemplates[1].spec.storageClassName", 31, 7},
		{"spec.volumeClaimTemplates[1].spec.resources.requests.storage", 31, 67},
		{"spec.volumeClaimTemplates[1].metadata.name", 30, 9},
		{"spec.volumeClaimTemplates[x]", 23, 3},
		{"nothing.at.all", 7, 1},
	} {
		line, col := d.Position(tc.path)
		assert.Equal(t, [2]int{tc.line, tc.col}, [2]int{line, col}, tc.path)
	}

	for _, tc := range []struct {
		ptr       string
		line, col int
	}{
		{"", 7, 1},
		{"/metadata/labels/stateguard.dev~1snapshot-schedule", 13, 5},
		{"/spec/volumeClaimTemplates/0/spec/storageClassName", 28, 7},
		{"/spec/volumeClaimTemplates/1/spec/storageClassName", 31, 7},
		{"/spec/volumeClaimTemplates/-", 23, 3},
		{"/spec/volumeClaimTemplates/2/spec", 23, 3},
	} {
		line, col := d.PointerPosition(tc.ptr)
		assert.Equal(t, [2]int{tc.line, tc.col}, [2]int{line, col}, tc.ptr)
	}

	assert.True(t, d.Has("/spec/volumeClaimTemplates/0/spec/storageClassName"))
	assert.False(t, d.Has("/spec/volumeClaimTemplates/1/spec/storageClassName"))
	assert.True(t, d.Has("/metadata/labels/quoted.key~1x"))
}

func TestPositionJSON(t *testing.T) {
	in := "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Service\",\n  \"metadata\": {\"name\": \"a\", \"labels\": {\"x\\/y\": \"z\"}},\n  \"spec\": {\"ports\": [{\"port\": 80}, {\"port\": 81}]}\n}\n"
	docs, err := readString(t, in)
	require.NoError(t, err)
	d := docs[0]
	for _, tc := range []struct {
		path      string
		line, col int
	}{
		{"kind", 3, 3},
		{"metadata.name", 4, 16},
		{"metadata.labels[x/y]", 4, 40},
		{"spec.ports[1].port", 5, 37},
		{"spec.ports[1]", 5, 36},
	} {
		line, col := d.Position(tc.path)
		assert.Equal(t, [2]int{tc.line, tc.col}, [2]int{line, col}, tc.path)
	}
}

func TestPositionMergeAndAlias(t *testing.T) {
	in := "apiVersion: v1\nkind: A\ndefaults: &d\n  size: 1Gi\n  class: x\nspec:\n  <<: *d\n  class: z\n  copy: *d\n"
	docs, err := readString(t, in)
	require.NoError(t, err)
	d := docs[0]
	assert.JSONEq(t, `{"apiVersion":"v1","kind":"A","defaults":{"size":"1Gi","class":"x"},"spec":{"size":"1Gi","class":"z","copy":{"size":"1Gi","class":"x"}}}`, string(d.JSON))
	for _, tc := range []struct {
		path      string
		line, col int
	}{
		{"spec.size", 4, 3},  // where the merged value is written
		{"spec.class", 8, 3}, // the override
		{"spec.copy", 9, 3},
		{"spec.copy.class", 5, 3},
	} {
		line, col := d.Position(tc.path)
		assert.Equal(t, [2]int{tc.line, tc.col}, [2]int{line, col}, tc.path)
	}
}

func TestDecode(t *testing.T) {
	in := `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  labels:
    app: web
    enabled: on
spec:
  replicas: 2
`
	docs, err := readString(t, in)
	require.NoError(t, err)
	var sts appsv1.StatefulSet
	err = docs[0].Decode(&sts)
	require.Error(t, err)
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, StdinName, e.File)
	assert.Equal(t, [2]int{7, 14}, [2]int{e.Line, e.Column}, "the value on")
	assert.Contains(t, e.Message, "metadata.labels.enabled: cannot unmarshal bool into a string")
	assert.Contains(t, e.Message, "quote the value")
	assert.Equal(t, "<stdin>:7:14: "+e.Message, e.Error())

	for _, tc := range []struct {
		name, in  string
		line, col int
		msg       string
	}{
		{
			name: "string for an int, in a list",
			in:   "apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n      - name: b\n        ports:\n        - containerPort: \"80\"\n",
			line: 10, col: 26,
			msg: "spec.template.spec.containers[1].ports[0].containerPort: cannot unmarshal string into an integer",
		},
		{
			name: "object for a string",
			in:   "apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  serviceName:\n    a: b\n",
			line: 5, col: 5,
			msg: "spec.serviceName: cannot unmarshal object into a string",
		},
		{
			name: "number for a string, in JSON",
			in:   "{\"apiVersion\": \"apps/v1\", \"kind\": \"StatefulSet\",\n \"spec\": {\"serviceName\": 12}}",
			line: 2, col: 26,
			msg: "spec.serviceName: cannot unmarshal number into a string (quote the value",
		},
		{
			name: "in a List item",
			in:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: StatefulSet\n  metadata:\n    labels: {a: yes}\n",
			line: 7, col: 17,
			msg: "metadata.labels.a: cannot unmarshal bool into a string",
		},
		{
			name: "in a typed List item",
			in:   "apiVersion: apps/v1\nkind: StatefulSetList\nitems:\n- metadata:\n    labels: {a: yes}\n",
			line: 5, col: 17,
			msg: "metadata.labels.a: cannot unmarshal bool into a string",
		},
		{
			name: "an invalid quantity is located at the object",
			in:   "apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  volumeClaimTemplates:\n  - spec:\n      resources:\n        requests:\n          storage: lots\n",
			line: 1, col: 1,
			msg: "quantities must match",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := readString(t, tc.in)
			require.NoError(t, err)
			require.Len(t, docs, 1)
			var sts appsv1.StatefulSet
			err = docs[0].Decode(&sts)
			require.Error(t, err)
			var e *Error
			require.True(t, errors.As(err, &e))
			assert.Equal(t, [2]int{tc.line, tc.col}, [2]int{e.Line, e.Column})
			assert.True(t, strings.HasPrefix(e.Message, tc.msg), "got %q", e.Message)
		})
	}

	// Field names match case-sensitively, as in the API server.
	docs, err = readString(t, "apiVersion: v1\nkind: Service\nspec:\n  ClusterIP: None\n")
	require.NoError(t, err)
	var svc corev1.Service
	require.NoError(t, docs[0].Decode(&svc))
	assert.Empty(t, svc.Spec.ClusterIP)
}
