package manifest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sigsyaml "sigs.k8s.io/yaml"
)

// yaml11Scalars are plain scalars whose meaning differs between YAML 1.1 (kubectl) and
// YAML 1.2, or that are otherwise easy to get wrong.
var yaml11Scalars = []string{
	"yes", "Yes", "YES", "no", "No", "NO", "y", "Y", "n", "N", "on", "On", "ON", "off", "Off", "OFF",
	"true", "True", "TRUE", "false", "False", "FALSE", "yEs", "tRUE", "oN",
	"~", "null", "Null", "NULL", "", "nULL",
	"0", "-0", "+1", "017", "08", "0o17", "0x1F", "-0x1F", "0b101", "-0b101", "1_000", "0x_1F", "1__0",
	"9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616", "-9223372036854775809",
	"1.0", "1.5", "-1.5", ".5", "-.5", "+.5", "1e3", "1E3", "1e+3", "1.e3", "1e-7", "1e21", "1e20", "0.0000001",
	"1e999", ".1e999", "1.", "1._5", "1_000.5",
	".inf", "-.inf", "+.inf", ".Inf", ".NaN", ".nan", "inf", "nan", "NaN",
	"2001-12-14", "2001-12-14T21:59:43.10-05:00", "2001-12-14 21:59:43.10", "12:30", "1:20:30",
	"0.1.2", "1-2", "+", "-", ".", "..", "0x", "0o", "0b", "1e", "e3",
	"<<", "=", "!important", "hello world", "v1", "apps/v1", "250m", "1Gi", "16M",
}

func yaml11Doc(s string) string {
	return "apiVersion: v1\nkind: X\nvalue: " + s + "\nlist: [" + s + "]\n" + keyFor(s) + ": key\n"
}

func keyFor(s string) string {
	if s == "" || s == "<<" {
		return "x" + s
	}
	return s
}

// TestYAML11ScalarsMatchSigsYAML checks the JSON of plain scalars, as values and as keys,
// against sigs.k8s.io/yaml (what kubectl uses).
func TestYAML11ScalarsMatchSigsYAML(t *testing.T) {
	for _, s := range yaml11Scalars {
		t.Run(s, func(t *testing.T) {
			in := yaml11Doc(s)
			want, wantErr := sigsyaml.YAMLToJSON([]byte(in))
			docs, err := Read([]string{"-"}, Options{Stdin: strings.NewReader(in)})
			if wantErr != nil {
				require.Error(t, err, "sigs.k8s.io/yaml fails with %v", wantErr)
				for _, e := range Errors(err) {
					assert.GreaterOrEqual(t, e.Line, 1)
				}
				return
			}
			require.NoError(t, err)
			require.Len(t, docs, 1)
			assertSameJSON(t, want, docs[0].JSON)
		})
	}
}

// TestYAML11Quoted checks that quoted scalars stay strings.
func TestYAML11Quoted(t *testing.T) {
	for _, s := range yaml11Scalars {
		for _, q := range []string{`"`, `'`} {
			in := "apiVersion: v1\nkind: X\nvalue: " + q + s + q + "\n" + q + s + q + ": key\n"
			docs, err := Read([]string{"-"}, Options{Stdin: strings.NewReader(in)})
			require.NoError(t, err, in)
			var m map[string]any
			require.NoError(t, json.Unmarshal(docs[0].JSON, &m))
			assert.Equal(t, s, m["value"], in)
			assert.Equal(t, "key", m[s], in)
		}
	}
}

// TestYAML11Tagged checks explicit tags against sigs.k8s.io/yaml.
func TestYAML11Tagged(t *testing.T) {
	for _, in := range []string{
		"v: !!str on", "v: !!str 12", "v: !!int '12'", "v: !!int abc", "v: !!float 12", "v: !!bool yes",
		"v: !!bool 'yes'", "v: !!null ''", "v: !!null x", "v: !foo on", "v: !!binary aGVsbG8=",
		"v: !!binary '!!!'", "v: !!timestamp 2001-12-14", "v: !!float 1e999", "v: !!int 18446744073709551615",
		"v: !!float 18446744073709551615", "? !!str on\n: x", "? !!int 1\n: x",
		"v: ! 12", "v: ! on", "v: !", "v: &a ! 5\nw: *a", "! yes: 1", "v: [! 1, ! ]", "v: ! 'q'",
	} {
		t.Run(in, func(t *testing.T) {
			in := "apiVersion: v1\nkind: X\n" + in + "\n"
			want, wantErr := sigsyaml.YAMLToJSON([]byte(in))
			docs, err := Read([]string{"-"}, Options{Stdin: strings.NewReader(in)})
			if wantErr != nil {
				require.Error(t, err, "sigs.k8s.io/yaml fails with %v", wantErr)
				return
			}
			require.NoError(t, err)
			assertSameJSON(t, want, docs[0].JSON)
		})
	}
}

// TestYAMLStructureMatchesSigsYAML covers anchors, merge keys, duplicates and styles.
func TestYAMLStructureMatchesSigsYAML(t *testing.T) {
	for name, body := range map[string]string{
		"anchor and alias":     "a: &x {b: 1, c: [1, 2]}\nd: *x\n",
		"alias of scalar":      "a: &x on\nb: *x\nc: {*x : 1}\n",
		"merge":                "base: &b {x: 1, y: 2}\nobj:\n  <<: *b\n  y: 3\n",
		"merge after keys":     "base: &b {x: 1, y: 2}\nobj:\n  y: 3\n  <<: *b\n",
		"merge list":           "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nobj:\n  <<: [*a, *b]\n  z: 3\n",
		"merge inline":         "obj:\n  <<: {x: 1}\n  <<: {x: 2}\n",
		"nested merge":         "a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nobj: {<<: *b, z: 3}\n",
		"quoted merge key":     "obj: {'<<': {x: 1}}\n",
		"duplicates":           "a: 1\na: 2\nb: {c: 1, c: {d: 2}}\n",
		"replaced NaN":         "a: .nan\na: 1\n",
		"replaced cycle":       "a: &d {b: *d, b: 1}\n",
		"key collisions":       "on: 1\ntrue: 2\n",
		"numeric keys":         "1: a\n1.5: b\n0x10: c\n1e3: d\n-1: e\n",
		"block scalars":        "a: |\n  line1\n  line2\nb: >\n  folded\n  text\nc: |-\n  strip\nd: >+\n  keep\n\n",
		"multi-line plain":     "a: this is\n  a long\n  string\n",
		"escapes":              "a: \"tab\\there \\u00e9 \\\\ \\\" \\x41 \\/\"\nb: 'it''s'\n",
		"unicode":              "a: héllo wörld ✓\nb: \"\\U0001F600\"\n",
		"control chars":        "a: \"\\x01\\x1f\\x7f\"\n",
		"empty values":         "a:\nb: ~\nc: []\nd: {}\ne: ''\n",
		"flow":                 "a: {b: [1, {c: d}], e: f}\n",
		"document end":         "a: 1\n...\n",
		"comments":             "# head\na: 1 # line\n# foot\n",
		"long key":             "? " + strings.Repeat("k", 200) + "\n: v\n",
		"null key":             "~: 1\n",
		"deep":                 strings.Repeat("a:\n  ", 50) + "b: 1\n",
		"html chars":           "a: <b>&amp;</b>\n",
		"windows line endings": "a: 1\r\nb: |\r\n  x\r\n  y\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			in := "apiVersion: v1\nkind: X\n" + body
			want, wantErr := sigsyaml.YAMLToJSON([]byte(in))
			docs, err := Read([]string{"-"}, Options{Stdin: strings.NewReader(in)})
			if wantErr != nil {
				require.Error(t, err, "sigs.k8s.io/yaml fails with %v", wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, docs, 1)
			assertSameJSON(t, want, docs[0].JSON)
		})
	}
}

func assertSameJSON(t *testing.T, want, got []byte) {
	t.Helper()
	assert.JSONEq(t, string(want), string(got))
	// JSONEq compares numbers as float64; compare their text too.
	var w, g any
	dw := json.NewDecoder(bytes.NewReader(want))
	dw.UseNumber()
	dg := json.NewDecoder(bytes.NewReader(got))
	dg.UseNumber()
	require.NoError(t, dw.Decode(&w))
	require.NoError(t, dg.Decode(&g), string(got))
	assert.Equal(t, w, g)
}
