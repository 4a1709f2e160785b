package manifest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// The position index is what is kept of a parsed document instead of its yaml.Node tree
// (a tree costs ~40 bytes of heap per byte of YAML, the index about 8): one entry per JSON
// value, in document order, saying where the value and its key are in the source, which
// bytes of the JSON it spans, and how it is named in its parent.

type entry struct {
	kline, kcol int32  // the field: its key for an object member, else the value
	vline, vcol int32  // the value
	key         uint32 // object member: offset of the key's JSON text (without quotes); array element: its index
	keyLen      uint32 // object member: length of that text, | keyEscaped if it holds escapes
	start, end  uint32 // the value's bytes in the JSON
	next        int32  // the entry after this value's subtree
	flags       uint8
}

const (
	fScalar = 1 << iota
	fObject
	fArray
	fMember // the value is an object member (else an array element or the root)

	keyEscaped = 1 << 31
)

type index struct {
	json []byte
	ents []entry
}

// keyIs reports whether entry e is the member named name.
func (x *index) keyIs(e *entry, name string) bool {
	n := e.keyLen &^ keyEscaped
	raw := x.json[e.key : e.key+n]
	if e.keyLen&keyEscaped == 0 {
		return string(raw) == name
	}
	return x.keyString(e) == name
}

func (x *index) keyString(e *entry) string {
	n := e.keyLen &^ keyEscaped
	raw := x.json[e.key : e.key+n]
	if e.keyLen&keyEscaped == 0 {
		return string(raw)
	}
	var s string
	if err := json.Unmarshal(x.json[e.key-1:e.key+n+1], &s); err != nil {
		return string(raw)
	}
	return s
}

// child finds the member name (objects) or the element at index name (arrays) of entry e,
// or -1. A later duplicate member wins, as it does when the JSON is decoded.
func (x *index) child(e int, name string) int {
	p := &x.ents[e]
	found := -1
	switch {
	case p.flags&fObject != 0:
		for c := e + 1; c < int(p.next); c = int(x.ents[c].next) {
			if x.keyIs(&x.ents[c], name) {
				found = c
			}
		}
	case p.flags&fArray != 0:
		i, err := strconv.Atoi(name)
		if err != nil || i < 0 {
			return -1
		}
		for c := e + 1; c < int(p.next); c = int(x.ents[c].next) {
			if int(x.ents[c].key) == i {
				return c
			}
		}
	}
	return found
}

// children returns the entries of the members or elements of entry e.
func (x *index) children(e int) []int {
	var out []int
	p := &x.ents[e]
	for c := e + 1; c < int(p.next); c = int(x.ents[c].next) {
		out = append(out, c)
	}
	return out
}

// at returns the deepest entry under root whose JSON span holds byte off.
func (x *index) at(root int, off int) int {
	e := root
	for {
		p := &x.ents[e]
		next := -1
		for c := e + 1; c < int(p.next); c = int(x.ents[c].next) {
			ce := &x.ents[c]
			if int(ce.start) <= off && off < int(ce.end) {
				next = c
				break
			}
		}
		if next < 0 {
			return e
		}
		e = next
	}
}

// str returns the string value of entry e, if it is a string.
func (x *index) str(e int) (string, bool) {
	if e < 0 {
		return "", false
	}
	p := &x.ents[e]
	if p.flags&fScalar == 0 || x.json[p.start] != '"' {
		return "", false
	}
	raw := x.json[p.start:p.end]
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// parseFieldPath splits a k8s.io/apimachinery field.Path string (`a.b[0].c[some/key.x]`)
// into its steps. Bracketed steps keep their text: whether it is an index or a map key
// depends on what the document holds there.
func parseFieldPath(p string) []string {
	var steps []string
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			i++
		case '[':
			j := strings.IndexByte(p[i+1:], ']')
			if j < 0 {
				steps = append(steps, p[i+1:])
				return steps
			}
			steps = append(steps, p[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			steps = append(steps, p[i:j])
			i = j
		}
	}
	return steps
}

// parsePointer splits an RFC 6901 JSON pointer into its reference tokens.
func parsePointer(p string) []string {
	if p == "" {
		return nil
	}
	p = strings.TrimPrefix(p, "/")
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.IndexByte(s, '~') >= 0 {
			parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		}
	}
	return parts
}

// walk follows steps from entry root and returns the deepest entry reached.
func (x *index) walk(root int, steps []string) int {
	e := root
	for _, s := range steps {
		c := x.child(e, s)
		if c < 0 {
			break
		}
		e = c
	}
	return e
}
