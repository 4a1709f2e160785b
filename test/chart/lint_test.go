package chart_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/policies"
)

func TestLintStrict(t *testing.T) {
	for _, vs := range append([]string{""}, valueSets(t)...) {
		name := vs
		if name == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := []string{"lint", "--strict", chartDir, "--namespace", defaultNamespace, "--kube-version", kubeVersion}
			if vs != "" {
				args = append(args, "--values", testdataPath(vs))
			}
			out, err := runHelm(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "[WARNING]") || strings.Contains(line, "[ERROR]") {
					t.Errorf("helm lint: %s", line)
				}
			}
		})
	}
}

// Bad values fail at install time, before anything reaches the cluster,
// with a message that names the value.
func TestBadValuesFailWithAClearMessage(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want []string
	}{
		{[]string{"webhook.failurePolicy=Maybe"}, []string{"/webhook/failurePolicy", "'Fail', 'Ignore'"}},
		{[]string{"webhook.timeoutSeconds=31"}, []string{"/webhook/timeoutSeconds", "maximum"}},
		{[]string{"webhook.timeoutSeconds=0"}, []string{"/webhook/timeoutSeconds", "minimum"}},
		{[]string{"replicaCount=0"}, []string{"/replicaCount", "minimum"}},
		{[]string{"replicaCount=two"}, []string{"/replicaCount"}},
		{[]string{"replicaCont=3"}, []string{"additional properties 'replicaCont'"}},
		{[]string{"config.defaultMode=off"}, []string{"/config/defaultMode", "'enforce', 'warn', 'audit', 'disabled'"}},
		{[]string{"config.profile=azure"}, []string{"/config/profile", "'aks', 'eks', 'gke'"}},
		{[]string{"config.policies.storage-clas.mode=warn"}, []string{"/config/policies", "storage-clas"}},
		{[]string{"config.policies.snapshot-schedule.schedules={0 * * * *}"}, []string{"/config/policies/snapshot-schedule/schedules/0"}},
		{[]string{"config.exemptNamespaces={Kube_System}"}, []string{"/config/exemptNamespaces/0"}},
		{[]string{"config.apiVersion=v2"}, []string{"additional properties 'apiVersion'"}},
		{[]string{"certManager.enabled=yes please"}, []string{"/certManager/enabled"}},
		{[]string{"podDisruptionBudget.minAvailable=3"}, []string{"podDisruptionBudget.minAvailable (3) must be below replicaCount (3)"}},
		{[]string{"terminationGracePeriodSeconds=10"}, []string{"terminationGracePeriodSeconds (10)", "webhook.timeoutSeconds (5)"}},
		{[]string{"image.digest=latest"}, []string{"/image/digest"}},
		{[]string{"metrics.serviceMonitor.interval=often"}, []string{"/metrics/serviceMonitor/interval"}},
		{[]string{"logFormat=xml"}, []string{"/logFormat"}},
		{[]string{"networkPolicy.enabled=yes"}, []string{"/networkPolicy/enabled"}},
		{[]string{"networkPolicy.egress[0].ports[0].port=443"}, []string{"additional properties 'egress'"}},
		{[]string{"networkPolicy.webhookFrom=10.0.0.0/8"}, []string{"/networkPolicy/webhookFrom"}},
		{[]string{"networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.1"}, []string{"/networkPolicy/webhookFrom/0/ipBlock/cidr"}},
		{[]string{"networkPolicy.metricsFrom[0].namespaceSelecter.matchLabels.team=monitoring"}, []string{"/networkPolicy/metricsFrom/0", "'namespaceSelecter'"}},
		{[]string{"networkPolicy.probesFrom[0].podSelector.matchExpressions[0].key=app", "networkPolicy.probesFrom[0].podSelector.matchExpressions[0].operator=Equals"},
			[]string{"/networkPolicy/probesFrom/0/podSelector/matchExpressions/0/operator", "'In', 'NotIn', 'Exists', 'DoesNotExist'"}},
		{[]string{"networkPolicy.enabled=true", "networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/8", "networkPolicy.webhookFrom[0].namespaceSelector.matchLabels.team=a"},
			[]string{"networkPolicy.webhookFrom[0]: an ipBlock cannot be combined with namespaceSelector"}},
	} {
		out, err := runHelm(t, renderOpts{Set: tc.set}.args()...)
		if err == nil {
			t.Errorf("--set %v: rendered, want an error\n%.300s", tc.set, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("--set %v: error does not mention %q:\n%v", tc.set, w, err)
			}
		}
	}
}

// The schema's `config` must describe the PolicyConfig type field for field:
// a field the Go type gained but the schema lacks would be refused at
// install time, one the schema keeps after the Go type dropped it would be
// refused by the webhook at start.
func TestSchemaMatchesPolicyConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	defs := schema["definitions"].(map[string]any)
	cfg := schema["properties"].(map[string]any)["config"].(map[string]any)

	var walk func(path string, node map[string]any, typ reflect.Type)
	walk = func(path string, node map[string]any, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if ref, ok := node["$ref"].(string); ok {
			node = defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
		}
		switch typ.Kind() {
		case reflect.Struct:
			if typ.PkgPath() != reflect.TypeFor[policies.Config]().PkgPath() {
				return // e.g. resource.Quantity: a string in the schema
			}
			if node["additionalProperties"] != false {
				t.Errorf("%s: the schema must refuse unknown fields (additionalProperties: false)", path)
			}
			props, _ := node["properties"].(map[string]any)
			goFields := map[string]reflect.StructField{}
			for i := 0; i < typ.NumField(); i++ {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "" || name == "-" {
					continue
				}
				goFields[name] = f
			}
			for name, f := range goFields {
				if path == "config" && (name == "apiVersion" || name == "kind") {
					if _, ok := props[name]; ok {
						t.Errorf("config.%s is the chart's to set, the schema must refuse it", name)
					}
					continue
				}
				sub, ok := props[name].(map[string]any)
				if !ok {
					t.Errorf("%s.%s: in the PolicyConfig type, missing from values.schema.json", path, name)
					continue
				}
				walk(path+"."+name, sub, f.Type)
			}
			for name := range props {
				if _, ok := goFields[name]; !ok {
					t.Errorf("%s.%s: in values.schema.json, not a PolicyConfig field", path, name)
				}
			}
		case reflect.Slice:
			if items, ok := node["items"].(map[string]any); ok {
				walk(path+"[]", items, typ.Elem())
			}
		case reflect.Map:
			// classes: keyed by access mode; the schema lists the known ones.
		}
	}
	walk("config", cfg, reflect.TypeFor[policies.Config]())

	// Enumerations follow the Go constants.
	var modes []string
	for _, m := range policies.Modes {
		modes = append(modes, string(m))
	}
	if got := toStrings(defs["mode"].(map[string]any)["enum"]); !equalSorted(got, modes) {
		t.Errorf("schema modes %v, policies.Modes %v", got, modes)
	}
	profile := cfg["properties"].(map[string]any)["profile"].(map[string]any)
	if got := toStrings(profile["enum"]); !equalSorted(got, policies.ProfileNames()) {
		t.Errorf("schema profiles %v, policies.ProfileNames() %v", got, policies.ProfileNames())
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func equalSorted(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// Every value in values.yaml has a row in the README's values table, and
// every row names a value that exists.
func TestREADMEDocumentsEveryValue(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "\n## Values\n")
	if !ok {
		t.Fatalf("README.md has no \"## Values\" section")
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(table, -1) {
		rows[m[1]] = true
	}
	vals := readYAMLMap(t, filepath.Join(chartDir, "values.yaml"))
	var leaves []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			path := prefix + k
			// A map documented as a whole (resources, affinity, ...) is a leaf.
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !rows[path] {
				walk(path+".", sub)
				continue
			}
			leaves = append(leaves, path)
		}
	}
	walk("", vals)
	for _, l := range leaves {
		if !rows[l] {
			t.Errorf("value %s is not in the README's values table", l)
		}
		delete(rows, l)
	}
	for r := range rows {
		t.Errorf("README documents %s, which values.yaml does not have", r)
	}
}
