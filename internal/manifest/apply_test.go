package manifest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const applyDoc = `# The web tier.
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web  # the name
  labels:
    app: web
spec:
  serviceName: "web"
  # claim templates below
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ "ReadWriteOnce" ]   # flow style stays
      resources:
        requests:
          storage: 1Gi
  - metadata: {name: logs}
    spec:
      storageClassName: ""
`

func TestApply(t *testing.T) {
	docs, err := readString(t, applyDoc)
	require.NoError(t, err)
	d := docs[0]
	out, err := d.Apply([]Patch{
		{Op: "add", Path: "/spec/volumeClaimTemplates/0/spec/storageClassName", Value: "managed-csi"},
		{Op: "add", Path: "/metadata/labels/stateguard.dev~1snapshot-schedule", Value: "daily"},
		{Op: "add", Path: "/spec/volumeClaimTemplates/0/metadata/labels", Value: map[string]string{"stateguard.dev/snapshot-schedule": "daily"}},
		{Op: "add", Path: "/spec/volumeClaimTemplates/1/metadata/labels/on", Value: "yes"},
		{Op: "replace", Path: "/spec/volumeClaimTemplates/1/spec/storageClassName", Value: "static"},
		{Op: "add", Path: "/spec/template/spec/containers", Value: []any{map[string]any{"name": "app", "image": "nginx"}}},
		{Op: "add", Path: "/spec/template/spec/containers/-", Value: map[string]any{"name": "sidecar", "args": []string{"012", "1.5", "true", "a: b"}}},
	})
	require.NoError(t, err)
	assert.Equal(t, `# The web tier.
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web # the name
  labels:
    app: web
    stateguard.dev/snapshot-schedule: daily
spec:
  serviceName: "web"
  # claim templates below
  volumeClaimTemplates:
  - metadata:
      name: data
      labels:
        stateguard.dev/snapshot-schedule: daily
    spec:
      accessModes: ["ReadWriteOnce"] # flow style stays
      resources:
        requests:
          storage: 1Gi
      storageClassName: managed-csi
  - metadata: {name: logs, labels: {"on": "yes"}}
    spec:
      storageClassName: static
  template:
    spec:
      containers:
      - image: nginx
        name: app
      - args:
        - "012"
        - "1.5"
        - "true"
        - 'a: b'
        name: sidecar
`, string(out))

	// The output reads back as the patched object.
	again, err := readString(t, string(out))
	require.NoError(t, err)
	assert.JSONEq(t, `{"apiVersion":"apps/v1","kind":"StatefulSet",
		"metadata":{"name":"web","labels":{"app":"web","stateguard.dev/snapshot-schedule":"daily"}},
		"spec":{"serviceName":"web",
		  "volumeClaimTemplates":[
		    {"metadata":{"name":"data","labels":{"stateguard.dev/snapshot-schedule":"daily"}},
		     "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"storageClassName":"managed-csi"}},
		    {"metadata":{"name":"logs","labels":{"on":"yes"}},"spec":{"storageClassName":"static"}}],
		  "template":{"spec":{"containers":[{"image":"nginx","name":"app"},{"args":["012","1.5","true","a: b"],"name":"sidecar"}]}}}}`,
		string(again[0].JSON))

	// Apply leaves the document alone.
	assert.Equal(t, applyDoc, string(d.Source()))
	out2, err := d.Apply(nil)
	require.NoError(t, err)
	assert.NotContains(t, string(out2), "managed-csi")
}

func TestApplyErrors(t *testing.T) {
	docs, err := readString(t, applyDoc)
	require.NoError(t, err)
	for _, p := range []Patch{
		{Op: "replace", Path: "/spec/missing", Value: 1},
		{Op: "replace", Path: "/spec/missing/deeper", Value: 1},
		{Op: "remove", Path: "/spec/serviceName"},
		{Op: "add", Path: "/spec/volumeClaimTemplates/5/spec", Value: 1},
		{Op: "add", Path: "/spec/serviceName/x", Value: 1},
		{Op: "replace", Path: "/spec/volumeClaimTemplates/-", Value: 1},
		{Op: "add", Path: "", Value: 1},
		{Op: "add", Path: "/spec/x", Value: func() {}},
	} {
		_, err := docs[0].Apply([]Patch{p})
		require.Error(t, err, "%+v", p)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 2, e.Line)
	}
}

func TestApplyAliasesAndMerges(t *testing.T) {
	in := `apiVersion: v1
kind: A
defaults: &d
  size: 1Gi
  labels: &l {team: x}
first:
  <<: *d
  name: one
second:
  <<: *d
  name: two
third: *l
`
	docs, err := readString(t, in)
	require.NoError(t, err)
	out, err := docs[0].Apply([]Patch{
		{Op: "add", Path: "/first/labels/tier", Value: "db"},
		{Op: "replace", Path: "/second/size", Value: "2Gi"},
		{Op: "add", Path: "/defaults/labels/shared", Value: "no"},
	})
	require.NoError(t, err)
	again, err := readString(t, string(out))
	require.NoError(t, err, string(out))
	assert.JSONEq(t, `{"apiVersion":"v1","kind":"A",
		"defaults":{"size":"1Gi","labels":{"team":"x","shared":"no"}},
		"first":{"size":"1Gi","labels":{"team":"x","tier":"db"},"name":"one"},
		"second":{"size":"2Gi","labels":{"team":"x"},"name":"two"},
		"third":{"team":"x"}}`, string(again[0].JSON), string(out))
}

func TestApplyJSON(t *testing.T) {
	in := `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "labels": {"x": "on", "n": "12"}}, "spec": {"ports": [{"port": 80}]}}`
	docs, err := readString(t, in)
	require.NoError(t, err)
	out, err := docs[0].Apply([]Patch{{Op: "add", Path: "/spec/clusterIP", Value: "None"}})
	require.NoError(t, err)
	assert.Equal(t, `apiVersion: v1
kind: Service
metadata:
  name: a
  labels:
    x: "on"
    "n": "12"
spec:
  ports:
  - port: 80
  clusterIP: None
`, string(out))
}

func TestWriteStream(t *testing.T) {
	files := "# svc\napiVersion: v1\nkind: Service\nmetadata:\n  name: a   # keep this odd spacing\n" +
		"---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n" +
		"---\n{\"apiVersion\": \"v1\", \"kind\": \"Secret\"}"
	docs, err := readString(t, files)
	require.NoError(t, err)
	require.Len(t, docs, 4)

	var buf bytes.Buffer
	require.NoError(t, WriteStream(&buf, docs, nil))
	assert.Equal(t, files+"\n", buf.String(), "untouched documents are kept byte for byte")

	buf.Reset()
	require.NoError(t, WriteStream(&buf, docs, map[*Document][]Patch{
		docs[1]: {{Op: "add", Path: "/data/x", Value: "1"}},
		docs[2]: {{Op: "add", Path: "/data/y", Value: "2"}},
	}))
	assert.Equal(t, "# svc\napiVersion: v1\nkind: Service\nmetadata:\n  name: a   # keep this odd spacing\n"+
		"---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n  data:\n    x: \"1\"\n"+
		"- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n  data:\n    \"y\": \"2\"\n"+
		"---\n{\"apiVersion\": \"v1\", \"kind\": \"Secret\"}\n", buf.String())

	again, err := readString(t, buf.String())
	require.NoError(t, err)
	require.Len(t, again, 4)
	var cm map[string]any
	require.NoError(t, json.Unmarshal(again[2].JSON, &cm))
	assert.Equal(t, map[string]any{"y": "2"}, cm["data"])

	// A single item's Apply gives its whole List.
	out, err := docs[2].Apply([]Patch{{Op: "add", Path: "/data/y", Value: "2"}})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(out), "apiVersion: v1\nkind: List\n"))
	assert.Contains(t, string(out), `"y": "2"`)
	assert.NotContains(t, string(out), "x: \"1\"")
}

func TestApplyFlowDocument(t *testing.T) {
	docs, err := Read([]string{"../../test/testdata/real-world/rabbitmq/rabbitmq-statefulset.yaml"}, Options{})
	require.NoError(t, err)
	out, err := docs[0].Apply([]Patch{{Op: "add", Path: "/metadata/labels/stateguard.dev~1snapshot-schedule", Value: "daily"}})
	require.NoError(t, err)
	again, err := readString(t, string(out))
	require.NoError(t, err, string(out))
	var want map[string]any
	require.NoError(t, json.Unmarshal(docs[0].JSON, &want))
	want["metadata"].(map[string]any)["labels"].(map[string]any)["stateguard.dev/snapshot-schedule"] = "daily"
	wantJSON, _ := json.Marshal(want)
	assert.JSONEq(t, string(wantJSON), string(again[0].JSON))
	for _, line := range strings.Split(string(out), "\n") {
		assert.Less(t, len(line), 100, "a flow document is written in block style when changed")
	}
}

func TestApplyKeepsNonSpecificTag(t *testing.T) {
	docs, err := readString(t, "apiVersion: v1\nkind: A\nv: ! 12\nw: [! on]\n")
	require.NoError(t, err)
	assert.JSONEq(t, `{"apiVersion":"v1","kind":"A","v":"12","w":["on"]}`, string(docs[0].JSON))
	out, err := docs[0].Apply([]Patch{{Op: "add", Path: "/x", Value: 1}})
	require.NoError(t, err)
	again, err := readString(t, string(out))
	require.NoError(t, err)
	assert.JSONEq(t, `{"apiVersion":"v1","kind":"A","v":"12","w":["on"],"x":1}`, string(again[0].JSON), string(out))
}
