package manifest

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

var errorf = fmt.Errorf

// converter writes the JSON of a yaml.v3 node tree with kubectl's semantics (YAML 1.1
// scalars, last duplicate key wins, merge keys applied in order as go-yaml v2 does) and
// records the position index on the way.
type converter struct {
	json []byte
	ents []entry
	// where the chunk starts in its file: node positions are relative to the chunk.
	line0, col0 int32
	limit       int // cap on len(json), against alias bombs

	// src is the chunk's text when it has a `!` in it: a plain scalar tagged with the
	// non-specific tag `!` is a string to go-yaml v2, while yaml.v3 resolves it as if
	// untagged and records no tag, so the text has to be looked at.
	src        []byte
	lineStarts []int
	dry        int // > 0 while converting a value that a later duplicate key replaces

	// go-yaml v2's alias accounting, so that we refuse what kubectl refuses.
	decodeCount, aliasCount, aliasDepth int
	expanding                           []*yaml.Node // anchors being expanded, to catch cycles
}

// convError carries a conversion error and the node it is about through panics inside
// the converter; convert turns it back into a returned value.
type convError struct {
	line, col int32
	msg       string
}

func (c *converter) fail(n *yaml.Node, err error) {
	l, col := c.pos(n)
	panic(&convError{l, col, err.Error()})
}

func (c *converter) pos(n *yaml.Node) (int32, int32) {
	l, col := int32(n.Line), int32(n.Column)
	if l == 1 {
		col += c.col0 - 1
	}
	return l + c.line0 - 1, col
}

// convert writes n (a document's root value) as JSON and indexes it.
func (c *converter) convert(n *yaml.Node) (err *convError) {
	defer func() {
		if r := recover(); r != nil {
			ce, ok := r.(*convError)
			if !ok {
				panic(r)
			}
			err = ce
		}
	}()
	l, col := c.pos(n)
	c.value(n, l, col, 0, 0, false)
	return nil
}

func (c *converter) count() {
	c.decodeCount++
	if c.aliasDepth > 0 {
		c.aliasCount++
	}
	if c.aliasCount > 100 && c.decodeCount > 1000 && float64(c.aliasCount)/float64(c.decodeCount) > allowedAliasRatio(c.decodeCount) {
		panic(&convError{c.line0, c.col0, "document contains excessive aliasing"})
	}
}

// allowedAliasRatio is go-yaml v2's: the share of decoded nodes that may come from alias
// expansion, falling from 99% for small documents to 10% for very large ones.
func allowedAliasRatio(decodeCount int) float64 {
	const low, high = 400000, 4000000
	switch {
	case decodeCount <= low:
		return 0.99
	case decodeCount >= high:
		return 0.10
	default:
		return 0.99 - 0.89*(float64(decodeCount-low)/float64(high-low))
	}
}

// deref follows an alias, with v2's cycle check; the caller must call c.undo(n) after.
func (c *converter) deref(n *yaml.Node) *yaml.Node {
	if n.Kind != yaml.AliasNode {
		return n
	}
	for _, a := range c.expanding {
		if a == n.Alias {
			c.fail(n, errorf("anchor '%s' value contains itself", n.Value))
		}
	}
	if n.Alias == nil {
		c.fail(n, errorf("unknown anchor '%s' referenced", n.Value))
	}
	c.expanding = append(c.expanding, n.Alias)
	c.aliasDepth++
	c.count()
	return n.Alias
}

func (c *converter) undo(n *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		c.expanding = c.expanding[:len(c.expanding)-1]
		c.aliasDepth--
	}
}

// value writes n and its index entry. kl/kc is the position the entry reports as the
// field's (the key for a mapping member); key/keyLen identify it in its parent.
func (c *converter) value(n *yaml.Node, kl, kc int32, key, keyLen uint32, member bool) {
	c.count()
	t := c.deref(n)
	vl, vc := c.pos(n)
	e := len(c.ents)
	c.ents = append(c.ents, entry{kline: kl, kcol: kc, vline: vl, vcol: vc, key: key, keyLen: keyLen, start: uint32(len(c.json))})
	if member {
		c.ents[e].flags |= fMember
	}
	switch t.Kind {
	case yaml.ScalarNode:
		c.ents[e].flags |= fScalar
		c.scalar(t)
	case yaml.MappingNode:
		c.ents[e].flags |= fObject
		c.mapping(t)
	case yaml.SequenceNode:
		c.ents[e].flags |= fArray
		c.json = append(c.json, '[')
		for i, item := range t.Content {
			if i > 0 {
				c.json = append(c.json, ',')
			}
			l, col := c.pos(item)
			c.value(item, l, col, uint32(i), 0, false)
		}
		c.json = append(c.json, ']')
	case yaml.DocumentNode:
		c.fail(t, errorf("unexpected document node"))
	default:
		c.fail(t, errorf("unknown YAML node kind %d", t.Kind))
	}
	c.undo(n)
	if len(c.json) > c.limit {
		c.fail(n, errorf("document expands to more than %d bytes of JSON (aliases)", c.limit))
	}
	c.ents[e].end = uint32(len(c.json))
	c.ents[e].next = int32(len(c.ents))
}

func (c *converter) scalar(n *yaml.Node) {
	v, err := c.resolve(n)
	if err != nil {
		c.fail(n, err)
	}
	switch v.kind {
	case sString:
		c.json = appendJSONString(c.json, v.s)
	case sNull:
		c.json = append(c.json, "null"...)
	case sBool:
		c.json = strconv.AppendBool(c.json, v.b)
	case sInt:
		c.json = strconv.AppendInt(c.json, v.i, 10)
	case sUint:
		c.json = strconv.AppendUint(c.json, v.u, 10)
	case sFloat:
		if (math.IsNaN(v.f) || math.IsInf(v.f, 0)) && c.dry == 0 {
			c.fail(n, errorf("json: unsupported value: %s (JSON has no NaN or infinity; quote it to make it a string)", n.Value))
		}
		c.json = appendJSONFloat(c.json, v.f)
	}
}

// member is one key/value pair of a mapping as it ends up in JSON.
type member struct {
	key  string
	k, v *yaml.Node
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge"
}

func (c *converter) mapping(n *yaml.Node) {
	cont := n.Content
	npairs := len(cont) / 2
	// Most mappings have neither merge keys nor duplicates: write them straight.
	var keysBuf [16]string
	keys := keysBuf[:0]
	simple := true
	for i := 0; i+1 < len(cont); i += 2 {
		k := cont[i]
		if isMerge(k) {
			simple = false
			break
		}
		ks := c.key(k)
		if npairs <= 16 {
			for _, p := range keys {
				if p == ks {
					simple = false
					break
				}
			}
		}
		keys = append(keys, ks)
	}
	if simple && npairs > 16 {
		seen := make(map[string]struct{}, npairs)
		for _, k := range keys {
			if _, dup := seen[k]; dup {
				simple = false
				break
			}
			seen[k] = struct{}{}
		}
	}
	c.json = append(c.json, '{')
	if simple {
		for i, ks := range keys {
			c.member(i, ks, cont[2*i], cont[2*i+1])
		}
	} else {
		var ms []member
		c.collect(n, &ms)
		for i, m := range ms {
			c.member(i, m.key, m.k, m.v)
		}
	}
	c.json = append(c.json, '}')
}

func (c *converter) member(i int, key string, k, v *yaml.Node) {
	if i > 0 {
		c.json = append(c.json, ',')
	}
	off := uint32(len(c.json) + 1)
	c.json = appendJSONString(c.json, key)
	klen := uint32(len(c.json)) - 1 - off
	if klen != uint32(len(key)) {
		klen |= keyEscaped
	}
	c.json = append(c.json, ':')
	l, col := c.pos(k)
	c.value(v, l, col, off, klen, true)
}

// collect gathers the members of mapping n with go-yaml v2's semantics: entries are
// applied in order and a later one replaces an earlier one of the same key, and a merge
// key (<<) applies the merged mappings at its place (of a list of them, the first wins).
func (c *converter) collect(n *yaml.Node, ms *[]member) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			c.merge(v, ms)
			continue
		}
		c.set(ms, member{c.key(k), k, v})
	}
}

// set adds or replaces member m. go-yaml v2 decodes a value even when a later key
// replaces it, so the replaced one is converted anyway, for the errors it may have (an
// alias to its own anchor, say); v2 only fails on NaN when writing the JSON, which never
// holds the replaced value.
func (c *converter) set(ms *[]member, m member) {
	for i := range *ms {
		if (*ms)[i].key == m.key {
			c.discard((*ms)[i].v)
			(*ms)[i] = m
			return
		}
	}
	*ms = append(*ms, m)
}

func (c *converter) discard(v *yaml.Node) {
	jl, el := len(c.json), len(c.ents)
	c.dry++
	c.value(v, 0, 0, 0, 0, false)
	c.dry--
	c.json, c.ents = c.json[:jl], c.ents[:el]
}

// resolve is resolveNode, but knows the non-specific tag `!`.
func (c *converter) resolve(n *yaml.Node) (scalar, error) {
	if n.Style == 0 && c.src != nil && c.nonSpecific(n) {
		return scalar{s: n.Value}, nil
	}
	return resolveNode(n)
}

// nonSpecific reports whether plain scalar n is written with the tag `!` (after its
// anchor, if any).
func (c *converter) nonSpecific(n *yaml.Node) bool {
	if c.lineStarts == nil {
		c.lineStarts = append(c.lineStarts, 0)
		for i, b := range c.src {
			if b == '\n' {
				c.lineStarts = append(c.lineStarts, i+1)
			}
		}
	}
	if n.Line < 1 || n.Line > len(c.lineStarts) {
		return false
	}
	text := c.src[c.lineStarts[n.Line-1]:]
	for col := 1; col < n.Column && len(text) > 0; col++ {
		_, size := utf8.DecodeRune(text)
		text = text[size:]
	}
	if len(text) > 0 && text[0] == '&' {
		for len(text) > 0 && text[0] != ' ' && text[0] != '\t' && text[0] != '\n' {
			text = text[1:]
		}
		for len(text) > 0 && (text[0] == ' ' || text[0] == '\t') {
			text = text[1:]
		}
	}
	return len(text) > 1 && text[0] == '!' && (text[1] == ' ' || text[1] == '\t' || text[1] == '\n' || text[1] == '\r' || text[1] == ',' || text[1] == ']' || text[1] == '}') ||
		len(text) == 1 && text[0] == '!'
}

func (c *converter) merge(v *yaml.Node, ms *[]member) {
	c.count()
	t := c.deref(v)
	defer c.undo(v)
	switch t.Kind {
	case yaml.MappingNode:
		c.collect(t, ms)
		return
	case yaml.SequenceNode:
		if v.Kind == yaml.AliasNode {
			break // v2 accepts an alias to a mapping, not to a list of them
		}
		for i := len(t.Content) - 1; i >= 0; i-- {
			item := t.Content[i]
			it := item
			if it.Kind == yaml.AliasNode {
				it = it.Alias
			}
			if it == nil || it.Kind != yaml.MappingNode {
				c.fail(item, errorf("map merge requires map or sequence of maps as the value"))
			}
			c.count()
			it = c.deref(item)
			c.collect(it, ms)
			c.undo(item)
		}
		return
	}
	c.fail(v, errorf("map merge requires map or sequence of maps as the value"))
}

// key returns the JSON key of a mapping key node.
func (c *converter) key(k *yaml.Node) string {
	t := k
	if t.Kind == yaml.AliasNode {
		t = t.Alias
		if t == nil {
			c.fail(k, errorf("unknown anchor '%s' referenced", k.Value))
		}
	}
	if t.Kind != yaml.ScalarNode {
		c.fail(k, errorf("invalid map key: a mapping or sequence cannot be a key"))
	}
	c.count()
	v, err := c.resolve(t)
	if err != nil {
		c.fail(k, err)
	}
	if v.kind == sString {
		return v.s
	}
	s, err := keyString(v)
	if err != nil {
		c.fail(k, err)
	}
	return s
}

// appendJSONString appends s as a JSON string. Unlike encoding/json it does not escape
// <, > and &: the result is read by programs, not embedded in HTML.
func appendJSONString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONFloat formats f as encoding/json does.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
