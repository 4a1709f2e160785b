package manifest

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// parseChunk parses one source document into the objects it holds.
func parseChunk(ch *chunk) ([]*Document, []*Error) {
	if ch.json {
		return parseJSONChunk(ch, ch.data())
	}
	data := ch.yamlData()
	c := &converter{line0: ch.line, col0: ch.col, limit: 16<<20 + 64*len(data)}
	c.json = make([]byte, 0, len(data))
	if fastConvert(data, c) {
		return objects(ch, &index{json: c.json, ents: c.ents})
	}
	x, errs := slowConvert(ch, data, c)
	if x == nil {
		return nil, errs
	}
	return objects(ch, x)
}

// slowConvert converts a YAML chunk through yaml.v3's node tree. It returns a nil index
// for a document that is skipped or wrong.
func slowConvert(ch *chunk, data []byte, c *converter) (*index, []*Error) {
	if bytes.IndexByte(data, '!') >= 0 {
		c.src = data
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		if ch.jsonErr != nil {
			return nil, []*Error{ch.jsonErr}
		}
		return nil, []*Error{yamlError(ch, err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil // empty, or only comments
	}
	n := doc.Content[0]
	switch n.Kind {
	case yaml.MappingNode:
	case yaml.ScalarNode:
		v, _ := c.resolve(n)
		if v.kind == sNull {
			return nil, nil // kubectl skips a null document
		}
		l, col := c.pos(n)
		return nil, []*Error{{File: ch.src.name, Line: int(l), Column: int(col), Message: notObject("a scalar")}}
	case yaml.SequenceNode:
		l, col := c.pos(n)
		return nil, []*Error{{File: ch.src.name, Line: int(l), Column: int(col), Message: notObject("a sequence")}}
	default:
		l, col := c.pos(n)
		return nil, []*Error{{File: ch.src.name, Line: int(l), Column: int(col), Message: notObject("an alias")}}
	}
	if err := c.convert(n); err != nil {
		return nil, []*Error{{File: ch.src.name, Line: int(err.line), Column: int(err.col), Message: err.msg}}
	}
	return &index{json: c.json, ents: c.ents}, nil
}

func notObject(what string) string {
	return "document is " + what + ", not a Kubernetes object (a mapping with apiVersion and kind)"
}

func parseJSONChunk(ch *chunk, data []byte) ([]*Document, []*Error) {
	switch data[0] {
	case '{':
	case 'n': // null
		return nil, nil
	case '[':
		return nil, []*Error{{File: ch.src.name, Line: int(ch.line), Column: int(ch.col), Message: notObject("an array")}}
	default:
		return nil, []*Error{{File: ch.src.name, Line: int(ch.line), Column: int(ch.col), Message: notObject("a scalar")}}
	}
	return objects(ch, &index{json: data, ents: indexJSON(data, ch.line, ch.col)})
}

// objects makes the Documents of a converted source document: the object itself, or the
// items of a List. Like kubectl's unstructured decoder, any object with an "items" member
// is taken for a List.
func objects(ch *chunk, x *index) ([]*Document, []*Error) {
	items := x.child(0, "items")
	if items < 0 {
		d := newDocument(ch, x, 0, -1)
		if err := d.check(); err != nil {
			return nil, []*Error{err}
		}
		return []*Document{d}, nil
	}
	list := newDocument(ch, x, 0, -1)
	if err := list.check(); err != nil {
		return nil, []*Error{err}
	}
	ie := &x.ents[items]
	switch {
	case ie.flags&fArray != 0:
	case string(x.json[ie.start:ie.end]) == "null":
		return nil, nil
	default:
		return nil, []*Error{{File: ch.src.name, Line: int(ie.kline), Column: int(ie.kcol),
			Message: "items of " + list.Kind + " must be a list of objects"}}
	}
	var docs []*Document
	var errs []*Error
	for i, it := range x.children(items) {
		e := &x.ents[it]
		if e.flags&fObject == 0 {
			errs = append(errs, &Error{File: ch.src.name, Line: int(e.vline), Column: int(e.vcol),
				Message: "items[" + strconv.Itoa(i) + "] of " + list.Kind + " is not an object"})
			continue
		}
		d := newDocument(ch, x, it, i)
		if d.Kind == "" && d.APIVersion == "" && x.child(it, "kind") < 0 && x.child(it, "apiVersion") < 0 {
			// kubectl gives the items of a typed list (a ServiceList, say) the list's
			// apiVersion and the kind it names.
			d.inherit(strings.TrimSuffix(list.Kind, "List"), list.APIVersion)
		}
		if err := d.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		docs = append(docs, d)
	}
	return docs, errs
}

func newDocument(ch *chunk, x *index, root, item int) *Document {
	e := &x.ents[root]
	d := &Document{
		File:   ch.src.name,
		Line:   int(e.vline),
		Column: int(e.vcol),
		JSON:   x.json[e.start:e.end],
		ch:     ch,
		x:      x,
		root:   root,
		item:   item,
		jsBase: int(e.start),
	}
	d.APIVersion, _ = x.str(x.child(root, "apiVersion"))
	d.Kind, _ = x.str(x.child(root, "kind"))
	if m := x.child(root, "metadata"); m >= 0 {
		d.Name, _ = x.str(x.child(m, "name"))
		d.Namespace, _ = x.str(x.child(m, "namespace"))
	}
	return d
}

// inherit sets kind and apiVersion in d's JSON, in front of its members.
func (d *Document) inherit(kind, apiVersion string) {
	d.Kind, d.APIVersion = kind, apiVersion
	prefix := []byte(`{"apiVersion":`)
	prefix = appendJSONString(prefix, apiVersion)
	prefix = append(prefix, `,"kind":`...)
	prefix = appendJSONString(prefix, kind)
	rest := bytes.TrimLeft(d.JSON[1:], " \t\r\n")
	if len(rest) > 0 && rest[0] != '}' {
		prefix = append(prefix, ',')
	}
	e := &d.x.ents[d.root]
	d.jsMin = len(prefix)
	d.jsBase = int(e.start) + 1 - len(prefix)
	d.JSON = append(prefix, d.JSON[1:]...)
}

func (d *Document) check() *Error {
	for _, f := range []struct{ name, val string }{{"apiVersion", d.APIVersion}, {"kind", d.Kind}} {
		if f.val != "" {
			continue
		}
		if e := d.x.child(d.root, f.name); e >= 0 {
			en := &d.x.ents[e]
			return &Error{File: d.File, Line: int(en.vline), Column: int(en.vcol), Message: f.name + " must be a non-empty string"}
		}
		return &Error{File: d.File, Line: d.Line, Column: d.Column, Message: "object has no " + f.name + ": every Kubernetes object needs apiVersion and kind (kubectl rejects it too)"}
	}
	return nil
}

// yamlError locates a yaml.v3 parse error. yaml.v3's messages give a line at best, and
// for parser errors the line of the enclosing construct; go-yaml v2 (kubectl's parser)
// reports where the problem is, so its message is used when it fails too.
func yamlError(ch *chunk, err error) *Error {
	data := ch.yamlData()
	msg := err.Error()
	if _, err2 := sigsyaml.YAMLToJSON(data); err2 != nil && strings.HasPrefix(err2.Error(), "yaml: ") {
		msg = err2.Error()
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	rel := 1 // the chunk's line the problem is on
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				msg = rest[i+2:]
				rel = n
				if isParserProblem(msg) {
					rel++ // go-yaml reports parser errors by 0-based line
				}
			}
		}
	}
	col := 0
	switch {
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		if i := bytes.Index(data, []byte("*"+name)); i >= 0 {
			rel, col = lineCol(data, i)
		}
	case strings.Contains(msg, "control characters"), strings.Contains(msg, "UTF-8"), strings.Contains(msg, "Unicode"):
		if i := firstBadChar(data); i >= 0 {
			rel, col = lineCol(data, i)
		}
	}
	// An error at the end of the input (an unclosed bracket or quote) is reported on the
	// last line that has something on it, where the reader is more likely to look.
	if last := lastContentLine(data); rel > last {
		rel = last
	}
	if col == 0 {
		col = 1
		if text := lineText(data, rel); len(text) > 0 {
			col = 1 + len(text) - len(bytes.TrimLeft(text, " "))
		}
	}
	line := int(ch.line) + rel - 1
	if rel == 1 {
		col += int(ch.col) - 1
	}
	return &Error{File: ch.src.name, Line: line, Column: col, Message: "invalid YAML: " + msg}
}

func isParserProblem(msg string) bool {
	switch msg {
	case "did not find expected <stream-start>", "did not find expected <document start>",
		"found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive",
		"found undefined tag handle", "did not find expected node content", "did not find expected '-' indicator",
		"did not find expected key", "did not find expected ',' or ']'", "did not find expected ',' or '}'":
		return true
	}
	return false
}

func lastContentLine(data []byte) int {
	lines := bytes.Split(data, []byte("\n"))
	for i := len(lines) - 1; i > 0; i-- {
		if len(bytes.TrimSpace(lines[i])) > 0 {
			return i + 1
		}
	}
	return 1
}

func lineText(data []byte, line int) []byte {
	for i := 1; i < line; i++ {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			return nil
		}
		data = data[j+1:]
	}
	if j := bytes.IndexByte(data, '\n'); j >= 0 {
		data = data[:j]
	}
	return data
}

// firstBadChar returns the offset of the first byte YAML does not accept: invalid UTF-8
// or a control character other than tab and line breaks.
func firstBadChar(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return i
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r >= 0x7f && r <= 0x9f && r != 0x85,
			r == 0xfffe, r == 0xffff:
			return i
		}
		i += size
	}
	return -1
}
