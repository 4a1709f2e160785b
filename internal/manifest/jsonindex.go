package manifest

// jsonIndexer indexes one JSON value that encoding/json has already accepted, so it
// does not validate; it only tracks where things are. Columns count characters, as
// yaml.v3's do.
type jsonIndexer struct {
	data      []byte
	i         int
	line, col int32
	ents      []entry
}

func indexJSON(data []byte, line, col int32) []entry {
	j := &jsonIndexer{data: data, line: line, col: col}
	j.ws()
	j.value(j.line, j.col, 0, 0, false)
	return j.ents
}

func (j *jsonIndexer) adv(n int) {
	for k := 0; k < n && j.i < len(j.data); k++ {
		c := j.data[j.i]
		switch {
		case c == '\n':
			j.line++
			j.col = 1
		case c&0xC0 != 0x80:
			j.col++
		}
		j.i++
	}
}

func (j *jsonIndexer) ws() {
	for j.i < len(j.data) {
		switch j.data[j.i] {
		case ' ', '\t', '\r', '\n':
			j.adv(1)
		default:
			return
		}
	}
}

// str skips a string and returns the offset and length of its contents and whether it
// holds escapes.
func (j *jsonIndexer) str() (off, n uint32, escaped bool) {
	j.adv(1) // "
	start := j.i
	for j.i < len(j.data) && j.data[j.i] != '"' {
		if j.data[j.i] == '\\' {
			escaped = true
			j.adv(1)
		}
		j.adv(1)
	}
	off, n = uint32(start), uint32(j.i-start)
	j.adv(1)
	return
}

func (j *jsonIndexer) value(kl, kc int32, key, keyLen uint32, member bool) {
	e := len(j.ents)
	j.ents = append(j.ents, entry{kline: kl, kcol: kc, vline: j.line, vcol: j.col, key: key, keyLen: keyLen, start: uint32(j.i)})
	if member {
		j.ents[e].flags |= fMember
	}
	if j.i >= len(j.data) {
		j.ents[e].flags |= fScalar
		j.ents[e].end = uint32(j.i)
		j.ents[e].next = int32(len(j.ents))
		return
	}
	switch j.data[j.i] {
	case '{':
		j.ents[e].flags |= fObject
		j.adv(1)
		j.ws()
		for j.i < len(j.data) && j.data[j.i] == '"' {
			kl, kc := j.line, j.col
			off, n, esc := j.str()
			if esc {
				n |= keyEscaped
			}
			j.ws()
			j.adv(1) // :
			j.ws()
			j.value(kl, kc, off, n, true)
			j.ws()
			if j.i < len(j.data) && j.data[j.i] == ',' {
				j.adv(1)
				j.ws()
			}
		}
		j.adv(1) // }
	case '[':
		j.ents[e].flags |= fArray
		j.adv(1)
		j.ws()
		for idx := uint32(0); j.i < len(j.data) && j.data[j.i] != ']'; idx++ {
			before := j.i
			j.value(j.line, j.col, idx, 0, false)
			if j.i == before {
				break // not JSON after all; never loop
			}
			j.ws()
			if j.i < len(j.data) && j.data[j.i] == ',' {
				j.adv(1)
				j.ws()
			}
		}
		j.adv(1) // ]
	case '"':
		j.ents[e].flags |= fScalar
		j.str()
	default:
		j.ents[e].flags |= fScalar
		for j.i < len(j.data) {
			switch j.data[j.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				goto done
			}
			j.adv(1)
		}
	done:
	}
	j.ents[e].end = uint32(j.i)
	j.ents[e].next = int32(len(j.ents))
}
