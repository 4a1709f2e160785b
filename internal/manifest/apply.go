package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// Patch is one JSON-patch-like operation, as the mutating policies produce them.
type Patch struct {
	// Op is "add" or "replace" (RFC 6902).
	Op string
	// Path is a JSON pointer into the object, e.g. `/spec/volumeClaimTemplates/0/spec/storageClassName`.
	Path string
	// Value is the new value: anything encoding/json can marshal (or a *yaml.Node).
	Value any
}

// Apply applies patches to the document and returns it re-encoded as YAML (2-space
// indent, sequences not indented under their key, as kubectl writes YAML).
//
// "add" creates missing objects on the way (unlike RFC 6902), replaces a member that
// exists, inserts into a list at an index and appends at `-`; "replace" requires the
// target to exist. Everything not patched keeps its comments, key order and style (a
// flow list stays a flow list, quoted strings stay quoted); blank lines and the exact
// indentation of the source are not kept. A document read as JSON, or written wholly in
// flow style, comes out in block style. Values are written so that they read back under
// YAML 1.1 as what they are (a string "on" is quoted, say). A path through an alias or a
// merge key changes only the object at that path: what the alias names is copied there
// first.
//
// For an item of a List, the whole List document is returned, with this item patched.
// To patch several items of one List, use WriteStream. Apply does not change d.
func (d *Document) Apply(patches []Patch) ([]byte, error) {
	var buf bytes.Buffer
	if err := applyChunk(&buf, d.ch, []*Document{d}, map[*Document][]Patch{d: patches}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteStream writes docs (as returned by Read) as one YAML stream, the output of
// `stateguard mutate`: each source document once, in order, separated by `---` lines. A
// source document none of whose objects has patches is written exactly as it was read
// (Source); the others are re-encoded with their patches applied, as Apply does, all the
// patched items of a List together.
func WriteStream(w io.Writer, docs []*Document, patches map[*Document][]Patch) error {
	first := true
	for i := 0; i < len(docs); {
		ch := docs[i].ch
		j := i + 1
		for j < len(docs) && docs[j].ch == ch {
			j++
		}
		group := docs[i:j]
		i = j
		if !first {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		first = false
		touched := false
		for _, d := range group {
			if len(patches[d]) > 0 {
				touched = true
			}
		}
		if !touched {
			src := group[0].Source()
			if _, err := w.Write(src); err != nil {
				return err
			}
			if len(src) > 0 && src[len(src)-1] != '\n' {
				if _, err := io.WriteString(w, "\n"); err != nil {
					return err
				}
			}
			continue
		}
		if err := applyChunk(w, ch, group, patches); err != nil {
			return err
		}
	}
	return nil
}

func applyChunk(w io.Writer, ch *chunk, docs []*Document, patches map[*Document][]Patch) error {
	var doc yaml.Node
	if ch.json {
		// Built from the JSON tokens rather than parsed as YAML: encoding/json accepts a
		// little more than yaml.v3 (invalid UTF-8, say), and this yields block style.
		dec := json.NewDecoder(bytes.NewReader(ch.data()))
		dec.UseNumber()
		root, err := jsonNode(dec)
		if err != nil {
			return &Error{File: ch.src.name, Line: int(ch.line), Column: int(ch.col), Message: "cannot parse again: " + err.Error()}
		}
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
	} else {
		if err := yaml.Unmarshal(ch.yamlData(), &doc); err != nil {
			return &Error{File: ch.src.name, Line: int(ch.line), Column: int(ch.col), Message: "cannot parse again: " + err.Error()}
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
			return &Error{File: ch.src.name, Line: int(ch.line), Column: int(ch.col), Message: "empty document"}
		}
		if data := ch.yamlData(); bytes.IndexByte(data, '!') >= 0 {
			// `! 12` is the string "12" to kubectl; yaml.v3 would write it back as 12.
			quoteNonSpecific(&doc, &converter{src: data})
		}
		if doc.Content[0].Style&yaml.FlowStyle != 0 {
			// yaml.v3 writes a flow mapping on one line however long: a whole document
			// in flow style is better rewritten in block style.
			blockCollections(&doc)
		}
	}
	a := &applier{doc: &doc}
	for _, d := range docs {
		ps := patches[d]
		if len(ps) == 0 {
			continue
		}
		target := doc.Content[0]
		if d.item >= 0 {
			var err error
			if target, err = a.descend(target, "items", false, ""); err == nil {
				target, err = a.descend(target, strconv.Itoa(d.item), false, "")
			}
			if err != nil {
				return d.errorf("cannot find item %d of the List: %v", d.item, err)
			}
		}
		for _, p := range ps {
			if err := a.apply(target, p); err != nil {
				return d.errorf("%s %s: %v", p.Op, p.Path, err)
			}
		}
	}
	emptyNulls(&doc, false)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(&doc); err != nil {
		return docs[0].errorf("cannot encode: %v", err)
	}
	return enc.Close()
}

func (d *Document) errorf(format string, args ...any) *Error {
	return &Error{File: d.File, Line: d.Line, Column: d.Column, Message: fmt.Sprintf(format, args...)}
}

// emptyNulls spells out null values that are written as nothing inside flow
// collections (`{a}`, `[a, ]`), which yaml.v3's emitter would otherwise quote into empty
// strings.
func emptyNulls(n *yaml.Node, flow bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if flow && n.Value == "" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && isNull(n) {
			n.Value = "null"
		}
		return
	case yaml.MappingNode, yaml.SequenceNode:
		flow = flow || n.Style&yaml.FlowStyle != 0
	}
	for _, c := range n.Content {
		emptyNulls(c, flow)
	}
}

func quoteNonSpecific(n *yaml.Node, c *converter) {
	if n.Kind == yaml.ScalarNode && n.Style == 0 && c.nonSpecific(n) {
		n.Style, n.Tag = yaml.DoubleQuotedStyle, "!!str"
	}
	for _, x := range n.Content {
		quoteNonSpecific(x, c)
	}
}

func blockCollections(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	for _, c := range n.Content {
		blockCollections(c)
	}
}

type applier struct {
	doc *yaml.Node
}

func (a *applier) apply(root *yaml.Node, p Patch) error {
	if p.Op != "add" && p.Op != "replace" {
		return fmt.Errorf("unsupported operation %q (add and replace are)", p.Op)
	}
	val, err := toNode(p.Value)
	if err != nil {
		return err
	}
	steps := parsePointer(p.Path)
	if len(steps) == 0 {
		return fmt.Errorf("cannot replace the whole object")
	}
	create := p.Op == "add"
	n := root
	for i, s := range steps[:len(steps)-1] {
		if n, err = a.descend(n, s, create, steps[i+1]); err != nil {
			return err
		}
	}
	last := steps[len(steps)-1]
	switch n.Kind {
	case yaml.MappingNode:
		i, merged := a.member(n, last)
		if i >= 0 && merged == nil {
			old := n.Content[i+1]
			a.detach(old)
			val.HeadComment, val.LineComment, val.FootComment = old.HeadComment, old.LineComment, old.FootComment
			if val.Kind != yaml.ScalarNode && val.LineComment != "" {
				// a comment after `key:` stays on that line only for a scalar
				n.Content[i].LineComment, val.LineComment = val.LineComment, ""
			}
			n.Content[i+1] = val
			return nil
		}
		if merged == nil && !create {
			return fmt.Errorf("%q does not exist", last)
		}
		n.Content = append(n.Content, keyNode(last), val)
	case yaml.SequenceNode:
		if last == "-" {
			if !create {
				return fmt.Errorf(`"-" is only valid for add`)
			}
			n.Content = append(n.Content, val)
			return nil
		}
		idx, err := strconv.Atoi(last)
		if err != nil || idx < 0 || idx > len(n.Content) || idx == len(n.Content) && !create {
			return fmt.Errorf("index %q out of range for a list of %d", last, len(n.Content))
		}
		if !create {
			old := n.Content[idx]
			a.detach(old)
			val.HeadComment, val.LineComment, val.FootComment = old.HeadComment, old.LineComment, old.FootComment
			n.Content[idx] = val
			return nil
		}
		n.Content = append(n.Content, nil)
		copy(n.Content[idx+1:], n.Content[idx:])
		n.Content[idx] = val
	default:
		return fmt.Errorf("cannot set %q inside a scalar", last)
	}
	return nil
}

// descend returns the child step of n, ready to be changed: an alias there is replaced by
// a copy of what it names and an anchored node is unshared from its aliases, so that a
// change never shows anywhere else. With create, a missing (or null) child becomes an
// empty mapping, or a sequence when the step after it is "-".
func (a *applier) descend(n *yaml.Node, step string, create bool, next string) (*yaml.Node, error) {
	switch n.Kind {
	case yaml.MappingNode:
		i, merged := a.member(n, step)
		var v *yaml.Node
		switch {
		case merged != nil:
			v = copyNode(merged)
			n.Content = append(n.Content, keyNode(step), v)
		case i >= 0:
			v = n.Content[i+1]
			if v.Kind == yaml.AliasNode {
				v = copyNode(v.Alias)
				n.Content[i+1] = v
			}
			if isNull(v) && create {
				v = newContainer(next)
				old := n.Content[i+1]
				a.detach(old)
				v.LineComment, v.HeadComment, v.FootComment = old.LineComment, old.HeadComment, old.FootComment
				n.Content[i+1] = v
			}
		case create:
			v = newContainer(next)
			n.Content = append(n.Content, keyNode(step), v)
		default:
			return nil, fmt.Errorf("%q does not exist", step)
		}
		a.unshare(v)
		return v, nil
	case yaml.SequenceNode:
		idx, err := strconv.Atoi(step)
		if err != nil || idx < 0 || idx >= len(n.Content) {
			return nil, fmt.Errorf("index %q out of range for a list of %d", step, len(n.Content))
		}
		v := n.Content[idx]
		if v.Kind == yaml.AliasNode {
			v = copyNode(v.Alias)
			n.Content[idx] = v
		}
		a.unshare(v)
		return v, nil
	}
	return nil, fmt.Errorf("cannot descend into a scalar at %q", step)
}

// newContainer makes the missing parent of a path step: a list when the step
// appends ("-") or adds the first element ("0"), as adding the first claim
// template to a StatefulSet without volumeClaimTemplates does.
func newContainer(next string) *yaml.Node {
	if next == "-" || next == "0" {
		return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	}
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
}

func isNull(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	v, err := resolveNode(n)
	return err == nil && v.kind == sNull
}

// member finds the member key of mapping n as go-yaml v2 sees it (last one wins, merge
// keys apply in place): the index of its key in n.Content if it is written there, or the
// value node it gets from a merge.
func (a *applier) member(n *yaml.Node, key string) (int, *yaml.Node) {
	idx, merged := -1, (*yaml.Node)(nil)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if isMerge(k) {
			if v := mergedValue(n.Content[i+1], key, 0); v != nil {
				idx, merged = -1, v
			}
			continue
		}
		if nodeKey(k) == key {
			idx, merged = i, nil
		}
	}
	return idx, merged
}

// mergedValue returns the value of key in what a merge key's value merges in, if any.
func mergedValue(v *yaml.Node, key string, depth int) *yaml.Node {
	if depth > 100 {
		return nil
	}
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		var found *yaml.Node
		for i := 0; i+1 < len(v.Content); i += 2 {
			k := v.Content[i]
			if isMerge(k) {
				if m := mergedValue(v.Content[i+1], key, depth+1); m != nil {
					found = m
				}
				continue
			}
			if nodeKey(k) == key {
				found = v.Content[i+1]
			}
		}
		return found
	case yaml.SequenceNode:
		for _, item := range v.Content { // the first mapping listed wins
			if m := mergedValue(item, key, depth+1); m != nil {
				return m
			}
		}
	}
	return nil
}

// nodeKey is the JSON key of a key node, or "\x00" if it has none.
func nodeKey(k *yaml.Node) string {
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "\x00"
	}
	v, err := resolveNode(k)
	if err != nil {
		return "\x00"
	}
	s, err := keyString(v)
	if err != nil {
		return "\x00"
	}
	return s
}

// unshare makes n safe to change: aliases to it elsewhere get copies of it.
func (a *applier) unshare(n *yaml.Node) {
	if n.Anchor == "" {
		return
	}
	var walk func(p *yaml.Node, depth int)
	walk = func(p *yaml.Node, depth int) {
		if depth > 10000 {
			return
		}
		for i, c := range p.Content {
			if c.Kind == yaml.AliasNode {
				if c.Alias == n {
					cp := copyNode(n)
					cp.HeadComment, cp.LineComment, cp.FootComment = c.HeadComment, c.LineComment, c.FootComment
					p.Content[i] = cp
				}
				continue
			}
			walk(c, depth+1)
		}
	}
	walk(a.doc, 0)
	n.Anchor = ""
}

// detach prepares the removal of subtree n: aliases elsewhere to anchors inside it get
// copies, as the anchors go with it.
func (a *applier) detach(n *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		return
	}
	a.unshare(n)
	for _, c := range n.Content {
		a.detach(c)
	}
}

// copyNode copies n deeply, without anchors (aliases inside stay aliases).
func copyNode(n *yaml.Node) *yaml.Node {
	c := *n
	c.Anchor = ""
	if n.Content != nil {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, x := range n.Content {
			if x.Kind == yaml.AliasNode {
				ax := *x
				c.Content[i] = &ax
				continue
			}
			c.Content[i] = copyNode(x)
		}
	}
	return &c
}

func keyNode(key string) *yaml.Node {
	return strNode(key)
}

func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if needsQuotes(s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// toNode makes the YAML for a patch value, keeping the member order encoding/json gives.
func toNode(v any) (*yaml.Node, error) {
	switch v := v.(type) {
	case *yaml.Node:
		return copyNode(v), nil
	case string:
		return strNode(v), nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("value: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return jsonNode(dec)
}

func jsonNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := jsonNode(dec)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, keyNode(kt.(string)), v)
			}
			_, err := dec.Token()
			return n, err
		}
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for dec.More() {
			v, err := jsonNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		_, err := dec.Token()
		return n, err
	case string:
		return strNode(t), nil
	case json.Number:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatBool(t)}, nil
	default:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: "null"}, nil
	}
}
