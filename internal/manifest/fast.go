package manifest

import (
	"math"
	"strconv"
	"sync"
)

// The fast path converts the YAML that nearly every manifest is written in — block
// mappings and sequences, one-line plain or quoted scalars, one-line flow lists of
// scalars, comments — straight from the bytes to JSON and the position index, about
// five times faster than yaml.v3 builds its node tree. It produces exactly what the
// yaml.v3 path produces (FuzzFastPath checks this), and gives up on anything else —
// anchors, tags, block or multi-line scalars, flow mappings, tabs, non-ASCII, CRLF, keys
// that are not plain strings, duplicates, anything malformed — leaving it to yaml.v3.

type fastLine struct {
	start, end int // bytes of the line, without its newline
	indent     int // leading spaces; -1 for a blank or comment-only line
}

type fastParser struct {
	data  []byte
	lines []fastLine
	i     int // current line
	c     *converter
}

// errFast makes the fast path give up; it never escapes fastConvert.
type errFast struct{}

// fastConvert converts data (a chunk's YAML) into c, reporting false (and leaving c
// reset) if the fast path cannot take it.
func fastConvert(data []byte, c *converter) (ok bool) {
	p := &fastParser{data: data, c: c}
	lines := linePool.Get().(*[]fastLine)
	defer func() {
		*lines = p.lines[:0]
		linePool.Put(lines)
	}()
	p.lines = (*lines)[:0]
	if !p.scanLines() {
		return false
	}
	if c.ents == nil {
		// about an entry a line, and a few more for flow lists: sized so that append
		// rarely doubles it, as the index is kept
		c.ents = make([]entry, 0, len(p.lines)+len(p.lines)/8+8)
	}
	defer func() {
		if r := recover(); r != nil {
			if _, isFast := r.(errFast); !isFast {
				panic(r)
			}
			c.json, c.ents = c.json[:0], c.ents[:0]
			ok = false
		}
	}()
	p.skipBlank()
	if p.i == len(p.lines) {
		return false // empty or comments only: let the general path decide
	}
	ind := p.lines[p.i].indent
	p.mapping(p.i, ind, ind, 0, 0, 0, 0, false)
	p.skipBlank()
	if p.i != len(p.lines) {
		panic(errFast{})
	}
	return true
}

var linePool = sync.Pool{New: func() any { return new([]fastLine) }}

func (p *fastParser) scanLines() bool {
	data := p.data
	start := 0
	for start < len(data) {
		end := start
		for end < len(data) && data[end] != '\n' {
			c := data[end]
			if c < 0x20 || c >= 0x7f {
				return false // tabs, CR, control characters, non-ASCII
			}
			end++
		}
		ind := 0
		for start+ind < end && data[start+ind] == ' ' {
			ind++
		}
		if start+ind == end || data[start+ind] == '#' {
			ind = -1
		}
		p.lines = append(p.lines, fastLine{start, end, ind})
		start = end + 1
	}
	return true
}

func (p *fastParser) skipBlank() {
	for p.i < len(p.lines) && p.lines[p.i].indent < 0 {
		p.i++
	}
}

func (p *fastParser) pos(line, col int) (int32, int32) {
	l, cl := int32(line+1), int32(col+1)
	if l == 1 {
		cl += p.c.col0 - 1
	}
	return l + p.c.line0 - 1, cl
}

// open appends the entry of a value starting at line/col.
func (p *fastParser) open(kl, kc int32, line, col int, key, keyLen uint32, member bool, flags uint8) int {
	vl, vc := p.pos(line, col)
	if !member {
		kl, kc = vl, vc
	}
	if member {
		flags |= fMember
	}
	p.c.ents = append(p.c.ents, entry{kline: kl, kcol: kc, vline: vl, vcol: vc, key: key, keyLen: keyLen, start: uint32(len(p.c.json)), flags: flags})
	return len(p.c.ents) - 1
}

func (p *fastParser) close(e int) {
	p.c.ents[e].end = uint32(len(p.c.json))
	p.c.ents[e].next = int32(len(p.c.ents))
}

// mapping parses a block mapping whose keys are at column ind, the first one on line
// `line` at that column (possibly after a "- ").
func (p *fastParser) mapping(line, ind, col int, kl, kc int32, key, keyLen uint32, member bool) {
	e := p.open(kl, kc, line, col, key, keyLen, member, fObject)
	p.c.json = append(p.c.json, '{')
	var keysBuf [16][]byte
	keys := keysBuf[:0]
	var seen map[string]struct{} // once there are many keys
	first := true
	for {
		l := p.lines[p.i]
		text := p.data[l.start:l.end]
		// the key
		k, after := p.key(text, col)
		if after < 0 {
			panic(errFast{})
		}
		// duplicates are left to the general path, which applies go-yaml v2's rules
		if seen == nil {
			for _, prev := range keys {
				if string(prev) == string(k) {
					panic(errFast{})
				}
			}
			keys = append(keys, k)
			if len(keys) == 16 {
				seen = make(map[string]struct{}, 32)
				for _, x := range keys {
					seen[string(x)] = struct{}{}
				}
			}
		} else {
			if _, dup := seen[string(k)]; dup {
				panic(errFast{})
			}
			seen[string(k)] = struct{}{}
		}
		if !first {
			p.c.json = append(p.c.json, ',')
		}
		first = false
		off := uint32(len(p.c.json) + 1)
		p.c.json = appendJSONString(p.c.json, k)
		klen := uint32(len(p.c.json)) - 1 - off
		if klen != uint32(len(k)) {
			klen |= keyEscaped
		}
		p.c.json = append(p.c.json, ':')
		mkl, mkc := p.pos(p.i, col)
		// the value: on this line, or a block below
		v := skipSpaces(text, after)
		if v < len(text) && text[v] != '#' {
			if v == after {
				panic(errFast{}) // "key:value" is not a mapping entry
			}
			p.inline(text, v, mkl, mkc, off, klen, true)
			p.i++
			p.skipBlank()
			if p.i < len(p.lines) && p.lines[p.i].indent > ind {
				panic(errFast{}) // a multi-line scalar
			}
		} else {
			if v < len(text) && v == after {
				panic(errFast{}) // "key:#..." is not a comment
			}
			p.i++
			p.skipBlank()
			if p.i == len(p.lines) {
				panic(errFast{}) // null value
			}
			nl := p.lines[p.i]
			ntext := p.data[nl.start:nl.end]
			isSeq := isDash(ntext, nl.indent)
			switch {
			case isSeq && nl.indent >= ind:
				p.sequence(nl.indent, mkl, mkc, off, klen, true)
			case !isSeq && nl.indent > ind:
				p.mapping(p.i, nl.indent, nl.indent, mkl, mkc, off, klen, true)
			default:
				panic(errFast{}) // null value
			}
		}
		// what follows this member
		if p.i == len(p.lines) {
			break
		}
		nl := p.lines[p.i]
		if nl.indent < ind {
			break
		}
		if nl.indent > ind {
			panic(errFast{})
		}
		if isDash(p.data[nl.start:nl.end], nl.indent) {
			break // the parent's next item (indentless sequence)
		}
		col = ind
	}
	p.c.json = append(p.c.json, '}')
	p.close(e)
}

func isDash(text []byte, ind int) bool {
	return ind >= 0 && ind+1 < len(text) && text[ind] == '-' && text[ind+1] == ' '
}

// sequence parses a block sequence whose dashes are at column ind.
func (p *fastParser) sequence(ind int, kl, kc int32, key, keyLen uint32, member bool) {
	e := p.open(kl, kc, p.i, ind, key, keyLen, member, fArray)
	p.c.json = append(p.c.json, '[')
	for n := 0; ; n++ {
		l := p.lines[p.i]
		text := p.data[l.start:l.end]
		if n > 0 {
			p.c.json = append(p.c.json, ',')
		}
		col := skipSpaces(text, ind+1)
		if col == len(text) || text[col] == '#' || text[col] == '-' && col+1 < len(text) && text[col+1] == ' ' {
			panic(errFast{}) // empty item, or a nested sequence on the dash's line
		}
		if _, after := p.key(text, col); after >= 0 {
			p.mapping(p.i, col, col, 0, 0, uint32(n), 0, false)
		} else {
			p.inline(text, col, 0, 0, uint32(n), 0, false)
			p.i++
			p.skipBlank()
			if p.i < len(p.lines) && p.lines[p.i].indent > ind {
				panic(errFast{}) // a multi-line scalar
			}
		}
		if p.i == len(p.lines) {
			break
		}
		nl := p.lines[p.i]
		if nl.indent < ind {
			break
		}
		if nl.indent > ind {
			panic(errFast{})
		}
		if !isDash(p.data[nl.start:nl.end], nl.indent) {
			break // the parent mapping's next key
		}
	}
	p.c.json = append(p.c.json, ']')
	p.close(e)
}

// key parses a mapping key at text[col:]: a plain or quoted string followed by ':' and a
// space or the end of the line. It returns the key and the offset after the ':', or -1.
func (p *fastParser) key(text []byte, col int) ([]byte, int) {
	if col >= len(text) {
		return nil, -1
	}
	switch text[col] {
	case '"', '\'':
		s, end, ok := quoted(text, col)
		if !ok || end >= len(text) || text[end] != ':' || end+1 < len(text) && text[end+1] != ' ' {
			return nil, -1
		}
		if len(s) > 1000 {
			return nil, -1
		}
		return s, end + 1
	}
	if !plainStart(text, col) {
		return nil, -1
	}
	for i := col; i < len(text); i++ {
		switch text[i] {
		case ':':
			if i+1 == len(text) || text[i+1] == ' ' {
				k := text[col:i]
				if i-col > 1000 || k[len(k)-1] == ' ' || !plainIsString(k) {
					return nil, -1
				}
				return k, i + 1
			}
		case '#':
			if text[i-1] == ' ' {
				return nil, -1
			}
		}
	}
	return nil, -1
}

// plainIsString reports whether plain scalar k resolves to a string, without allocating
// for the usual key.
func plainIsString(k []byte) bool {
	switch resolveHint[k[0]] {
	case 0:
		return true
	case 'M':
		_, word := resolveWords[string(k)]
		return !word
	}
	return resolvePlain(string(k)).kind == sString
}

// plainStart reports whether a plain scalar may start at text[col] (and is one the fast
// path takes on).
func plainStart(text []byte, col int) bool {
	c := text[col]
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '/', c == '.', c == '_', c == '$', c == '~', c == '(', c == '=', c == '+', c == '^', c == ';', c == ')':
		return true
	case c == '-':
		return col+1 < len(text) && text[col+1] != ' ' && text[col+1] != '-'
	}
	return false
}

// quoted parses a one-line quoted scalar starting at text[col] (double-quoted ones only
// without escapes) and returns its value and the offset after the closing quote.
func quoted(text []byte, col int) ([]byte, int, bool) {
	q := text[col]
	if q == '"' {
		for i := col + 1; i < len(text); i++ {
			switch text[i] {
			case '\\':
				return nil, 0, false
			case '"':
				return text[col+1 : i], i + 1, true
			}
		}
		return nil, 0, false
	}
	var buf []byte
	from := col + 1
	for i := col + 1; i < len(text); i++ {
		if text[i] != '\'' {
			continue
		}
		if i+1 < len(text) && text[i+1] == '\'' {
			buf = append(buf, text[from:i+1]...)
			i++
			from = i + 1
			continue
		}
		if buf == nil {
			return text[from:i], i + 1, true
		}
		buf = append(buf, text[from:i]...)
		return buf, i + 1, true
	}
	return nil, 0, false
}

// inline writes the value on the rest of the line from text[col] and its entry.
func (p *fastParser) inline(text []byte, col int, kl, kc int32, key, keyLen uint32, member bool) {
	var end int
	switch text[col] {
	case '"', '\'':
		s, e, ok := quoted(text, col)
		if !ok {
			panic(errFast{})
		}
		en := p.open(kl, kc, p.i, col, key, keyLen, member, fScalar)
		p.c.json = appendJSONString(p.c.json, s)
		p.close(en)
		end = e
	case '[':
		end = p.flowSequence(text, col, kl, kc, key, keyLen, member)
	case '{':
		if col+1 >= len(text) || text[col+1] != '}' {
			panic(errFast{})
		}
		en := p.open(kl, kc, p.i, col, key, keyLen, member, fObject)
		p.c.json = append(p.c.json, '{', '}')
		p.close(en)
		end = col + 2
	default:
		if !plainStart(text, col) {
			panic(errFast{})
		}
		e := col
		for e < len(text) {
			c := text[e]
			if c == ':' && (e+1 == len(text) || text[e+1] == ' ') {
				panic(errFast{}) // a mapping where a scalar should be
			}
			if c == '#' && text[e-1] == ' ' {
				break
			}
			e++
		}
		for text[e-1] == ' ' {
			e--
		}
		en := p.open(kl, kc, p.i, col, key, keyLen, member, fScalar)
		p.scalar(text[col:e])
		p.close(en)
		end = e
	}
	p.lineEnd(text, end)
}

// lineEnd checks that only spaces and a comment follow offset end.
func (p *fastParser) lineEnd(text []byte, end int) {
	i := skipSpaces(text, end)
	if i < len(text) && (text[i] != '#' || i == end) {
		panic(errFast{})
	}
}

func (p *fastParser) scalar(b []byte) {
	switch resolveHint[b[0]] {
	case 0:
		p.c.json = appendJSONString(p.c.json, b)
		return
	case 'M':
		if _, word := resolveWords[string(b)]; !word {
			p.c.json = appendJSONString(p.c.json, b)
			return
		}
	case 'D':
		if len(b) < 19 && b[0] != '0' {
			// the usual decimal number
			n := int64(0)
			for _, c := range b {
				if c < '0' || c > '9' {
					goto general
				}
				n = n*10 + int64(c-'0')
			}
			p.c.json = strconv.AppendInt(p.c.json, n, 10)
			return
		}
	}
general:
	v := resolvePlain(string(b))
	switch v.kind {
	case sString:
		p.c.json = appendJSONString(p.c.json, v.s)
	case sNull:
		p.c.json = append(p.c.json, "null"...)
	case sBool:
		p.c.json = strconv.AppendBool(p.c.json, v.b)
	case sInt:
		p.c.json = strconv.AppendInt(p.c.json, v.i, 10)
	case sUint:
		p.c.json = strconv.AppendUint(p.c.json, v.u, 10)
	case sFloat:
		if math.IsNaN(v.f) || math.IsInf(v.f, 0) {
			panic(errFast{})
		}
		p.c.json = appendJSONFloat(p.c.json, v.f)
	}
}

// flowSequence parses a one-line flow sequence of scalars: [a, "b", 'c'].
func (p *fastParser) flowSequence(text []byte, col int, kl, kc int32, key, keyLen uint32, member bool) int {
	en := p.open(kl, kc, p.i, col, key, keyLen, member, fArray)
	p.c.json = append(p.c.json, '[')
	i := skipSpaces(text, col+1)
	for n := 0; ; n++ {
		if i >= len(text) {
			panic(errFast{})
		}
		if text[i] == ']' && n == 0 {
			break
		}
		if n > 0 {
			p.c.json = append(p.c.json, ',')
		}
		var e int
		switch text[i] {
		case '"', '\'':
			s, end, ok := quoted(text, i)
			if !ok {
				panic(errFast{})
			}
			ie := p.open(0, 0, p.i, i, uint32(n), 0, false, fScalar)
			p.c.json = appendJSONString(p.c.json, s)
			p.close(ie)
			e = end
		default:
			if !plainStart(text, i) {
				panic(errFast{})
			}
			e = i
			for e < len(text) && flowPlainByte(text[e]) {
				e++
			}
			ie := p.open(0, 0, p.i, i, uint32(n), 0, false, fScalar)
			p.scalar(text[i:e])
			p.close(ie)
		}
		i = skipSpaces(text, e)
		if i >= len(text) {
			panic(errFast{})
		}
		if text[i] == ']' {
			break
		}
		if text[i] != ',' {
			panic(errFast{})
		}
		i = skipSpaces(text, i+1)
		if i < len(text) && text[i] == ']' {
			panic(errFast{}) // trailing comma
		}
	}
	p.c.json = append(p.c.json, ']')
	p.close(en)
	return i + 1
}

// flowPlainByte: the characters the fast path takes in a plain scalar inside [...].
func flowPlainByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '/', '.', '_', '-', '$', '~', '(', ')', '=', '+', '^', ';', '@':
		return true
	}
	return false
}

func skipSpaces(text []byte, i int) int {
	for i < len(text) && text[i] == ' ' {
		i++
	}
	return i
}
