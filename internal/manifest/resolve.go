package manifest

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// kubectl decodes YAML with sigs.k8s.io/yaml, which is go-yaml v2 (YAML 1.1) underneath;
// yaml.v3 resolves plain scalars by YAML 1.2 rules. So the tags yaml.v3 puts on nodes are
// ignored and every scalar is resolved again here, by a copy of go-yaml v2's resolve().

type scalarKind uint8

const (
	sString scalarKind = iota
	sNull
	sBool
	sInt   // i holds the value
	sUint  // u holds the value (above MaxInt64)
	sFloat // f holds the value
)

type scalar struct {
	kind scalarKind
	s    string
	b    bool
	i    int64
	u    uint64
	f    float64
}

// resolveHint is go-yaml v2's resolveTable: the first byte says which resolutions to try.
var resolveHint = func() (t [256]byte) {
	t['+'], t['-'] = 'S', 'S'
	for c := '0'; c <= '9'; c++ {
		t[c] = 'D'
	}
	for _, c := range "yYnNtTfFoO~" {
		t[c] = 'M'
	}
	t['.'] = '.'
	return t
}()

var resolveWords = func() map[string]scalar {
	m := map[string]scalar{}
	for _, s := range []string{"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"} {
		m[s] = scalar{kind: sBool, b: true}
	}
	for _, s := range []string{"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"} {
		m[s] = scalar{kind: sBool}
	}
	for _, s := range []string{"", "~", "null", "Null", "NULL"} {
		m[s] = scalar{kind: sNull}
	}
	for _, s := range []string{".nan", ".NaN", ".NAN"} {
		m[s] = scalar{kind: sFloat, f: math.NaN()}
	}
	for _, s := range []string{".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"} {
		m[s] = scalar{kind: sFloat, f: math.Inf(1)}
	}
	for _, s := range []string{"-.inf", "-.Inf", "-.INF"} {
		m[s] = scalar{kind: sFloat, f: math.Inf(-1)}
	}
	return m
}()

// resolvePlain resolves an untagged plain scalar the way go-yaml v2 does.
func resolvePlain(in string) scalar {
	hint := byte('N')
	if in != "" {
		hint = resolveHint[in[0]]
	}
	switch hint {
	case 0:
		return scalar{s: in}
	case 'M', 'N':
		if v, ok := resolveWords[in]; ok {
			return v
		}
	case '.':
		if v, ok := resolveWords[in]; ok {
			return v
		}
		if f, err := strconv.ParseFloat(in, 64); err == nil {
			return scalar{kind: sFloat, f: f}
		}
	case 'D', 'S':
		if v, ok := resolveWords[in]; ok { // "+.inf", "-.inf"
			return v
		}
		// v2 tries a timestamp first, but a timestamp (YYYY-...) is never a number and v2
		// hands timestamps to interface{} targets as the original string: nothing to do.
		plain := in
		if strings.IndexByte(in, '_') >= 0 {
			plain = strings.ReplaceAll(in, "_", "")
		}
		// strconv's errors allocate, and most of what gets here ("250m", "1Gi") is no
		// number: try only what has an integer's shape.
		if looksInteger(plain) {
			if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
				return scalar{kind: sInt, i: i}
			}
			if u, err := strconv.ParseUint(plain, 0, 64); err == nil {
				return scalar{kind: sUint, u: u}
			}
		}
		if isYAMLStyleFloat(plain) {
			if f, err := strconv.ParseFloat(plain, 64); err == nil {
				return scalar{kind: sFloat, f: f}
			}
		}
		// v2's extra "0b"/"-0b" branches only retry what ParseInt/ParseUint with base 0
		// already accept or reject, so they are left out.
	}
	return scalar{s: in}
}

// looksInteger reports whether s could be accepted by strconv.ParseInt or ParseUint
// with base 0: an optional sign, then digits, or a 0x, 0o or 0b prefix and hex digits.
func looksInteger(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X', 'o', 'O', 'b', 'B':
			s = s[2:]
		}
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isYAMLStyleFloat matches ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ (v2's yamlStyleFloat).
func isYAMLStyleFloat(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	} else {
		if digits() == 0 {
			return false
		}
		if i < len(s) && s[i] == '.' {
			i++
			digits()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// resolveNode resolves a scalar node with v2's rules: quoted and block scalars are strings,
// plain ones are resolved, and explicit tags are honoured as v2 honours them.
func resolveNode(n *yaml.Node) (scalar, error) {
	if n.Style&yaml.TaggedStyle == 0 {
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return scalar{s: n.Value}, nil
		}
		return resolvePlain(n.Value), nil
	}
	return resolveTagged(n.Tag, n.Value)
}

func resolveTagged(tag, in string) (scalar, error) {
	switch tag {
	case "!!str", "!!timestamp":
		return scalar{s: in}, nil
	case "!!binary":
		data, err := base64.StdEncoding.DecodeString(in)
		if err != nil {
			return scalar{}, errorf("!!binary value contains invalid base64 data")
		}
		return scalar{s: string(data)}, nil
	case "!!bool", "!!int", "!!float", "!!null":
	default:
		// v2 leaves the value of a tag it does not resolve (custom tags, !!map on a
		// scalar, ...) as the string.
		return scalar{s: in}, nil
	}
	v := resolvePlain(in)
	want := map[string]scalarKind{"!!bool": sBool, "!!int": sInt, "!!float": sFloat, "!!null": sNull}[tag]
	switch {
	case v.kind == want, want == sInt && v.kind == sUint:
		return v, nil
	case want == sFloat && v.kind == sInt:
		return scalar{kind: sFloat, f: float64(v.i)}, nil
	}
	return scalar{}, errorf("cannot decode %s `%s` as a %s", kindTag(v.kind), in, tag)
}

func kindTag(k scalarKind) string {
	switch k {
	case sNull:
		return "!!null"
	case sBool:
		return "!!bool"
	case sInt, sUint:
		return "!!int"
	case sFloat:
		return "!!float"
	}
	return "!!str"
}

// keyString is the JSON object key sigs.k8s.io/yaml makes of a resolved YAML key.
func keyString(v scalar) (string, error) {
	switch v.kind {
	case sString:
		return v.s, nil
	case sBool:
		if v.b {
			return "true", nil
		}
		return "false", nil
	case sInt:
		return strconv.FormatInt(v.i, 10), nil
	case sFloat:
		// sigs.k8s.io/yaml formats float keys with 32-bit precision.
		s := strconv.FormatFloat(v.f, 'g', -1, 32)
		switch s {
		case "+Inf":
			s = ".inf"
		case "-Inf":
			s = "-.inf"
		case "NaN":
			s = ".nan"
		}
		return s, nil
	case sUint:
		return "", errorf("unsupported map key %d: kubectl cannot convert an integer key above 2^63-1 to JSON", v.u)
	}
	return "", errorf("unsupported map key: null (quote it to use it as a string)")
}

// needsQuotes reports whether s, written as a plain scalar, would not read back as the
// string s under YAML 1.1.
func needsQuotes(s string) bool {
	return resolvePlain(s).kind != sString
}
