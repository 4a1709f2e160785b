package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode"
	"unicode/utf8"
)

// chunk is one source document: what kubectl's YAMLReader returns between `---` lines,
// or one object of a JSON stream.
type chunk struct {
	src        *source
	start, end int   // bytes of src.data
	line, col  int32 // where start is
	json       bool  // a JSON value, already validated by encoding/json
	jsonErr    *Error
}

func (c *chunk) data() []byte { return c.src.data[c.start:c.end] }

// yamlData is what kubectl's YAMLReader hands the YAML parser: the lines of the
// document, each ended by a newline, even the last line of a file that has none (which
// matters to a block scalar there, whose value then ends in a newline).
func (c *chunk) yamlData() []byte {
	d := c.data()
	if len(d) > 0 && d[len(d)-1] != '\n' {
		d = append(d[:len(d):len(d)], '\n')
	}
	return d
}

// split cuts a file into chunks as kubectl's YAMLOrJSONDecoder does: if the first
// non-space character (within 4096 bytes) is `{`, the input is first read as a stream of
// JSON values; when that fails before a second value was read, the rest is read as YAML,
// split into documents on lines that start with `---`.
func split(src *source) (chunks []chunk, errs []*Error) {
	data := src.data
	off := 0
	line, col := int32(1), int32(1)
	var jsonErr *Error
	if looksLikeJSONStream(data) {
		dec := json.NewDecoder(bytes.NewReader(data))
		count := 0
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if err == io.EOF {
				return chunks, errs
			}
			if err != nil {
				o := off
				var se *json.SyntaxError
				if errors.As(err, &se) {
					o = int(se.Offset) - 1 // Offset is just past the offending byte
				} else if errors.Is(err, io.ErrUnexpectedEOF) {
					o = len(bytes.TrimRightFunc(data, unicode.IsSpace)) // just after the last thing written
				}
				l, c := lineCol(data, o)
				msg := err.Error()
				if errors.Is(err, io.ErrUnexpectedEOF) {
					msg = "unexpected end of JSON input"
				}
				jsonErr = &Error{File: src.name, Line: l, Column: c, Message: "invalid JSON: " + msg}
				if count > 1 {
					// kubectl's rule: after two values it is a JSON stream for sure.
					errs = append(errs, jsonErr)
					return chunks, errs
				}
				break
			}
			end := int(dec.InputOffset())
			start := end - len(raw)
			l, c := lineCol(data, start)
			chunks = append(chunks, chunk{src: src, start: start, end: end, line: int32(l), col: int32(c), json: true})
			count++
			off = end
		}
		// kubectl eats the whitespace after the last JSON value up to the end of its line.
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if !unicode.IsSpace(r) {
				break
			}
			off += size
			if r == '\n' {
				break
			}
		}
		l, c := lineCol(data, off)
		line, col = int32(l), int32(c)
	}
	first := len(chunks)
	chunks, errs = splitYAML(src, off, line, col, chunks, errs)
	if jsonErr != nil && first < len(chunks) && looksLikeJSON(data[off:]) {
		// kubectl reports the JSON error when the YAML reading fails too; do so when the
		// text was meant as JSON, and the YAML error (more to the point) otherwise.
		chunks[first].jsonErr = jsonErr
	}
	return chunks, errs
}

func looksLikeJSONStream(data []byte) bool {
	if len(data) > 4096 {
		data = data[:4096]
	}
	return bytes.HasPrefix(bytes.TrimLeftFunc(data, unicode.IsSpace), []byte("{"))
}

// looksLikeJSON reports whether data starts an object whose first key is quoted, as
// JSON's are and hand-written flow-style YAML's mostly are not.
func looksLikeJSON(data []byte) bool {
	data = bytes.TrimLeftFunc(data, unicode.IsSpace)
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	data = bytes.TrimLeftFunc(data[1:], unicode.IsSpace)
	return len(data) > 0 && (data[0] == '"' || data[0] == '}')
}

// splitYAML is kubectl's YAMLReader: a line starting with `---` ends a document, and may
// only be followed by spaces or a comment.
func splitYAML(src *source, off int, line, col int32, chunks []chunk, errs []*Error) ([]chunk, []*Error) {
	data := src.data
	start := -1
	var startLine, startCol int32
	for pos := off; pos < len(data); {
		eol := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if eol >= 0 {
			next = pos + eol + 1
		}
		text := data[pos:next]
		if bytes.HasPrefix(text, []byte("---")) {
			if rest := bytes.TrimSpace(text[3:]); len(rest) > 0 && rest[0] != '#' {
				// kubectl stops reading the file here; going on reports more at once.
				errs = append(errs, &Error{File: src.name, Line: int(line), Column: int(col),
					Message: "invalid document separator: only spaces or a comment may follow `---` on its line (kubectl rejects this too)"})
			}
			if start >= 0 {
				chunks = append(chunks, chunk{src: src, start: start, end: pos, line: startLine, col: startCol})
				start = -1
			}
		} else if start < 0 {
			start, startLine, startCol = pos, line, col
		}
		pos = next
		line++
		col = 1
	}
	if start >= 0 {
		chunks = append(chunks, chunk{src: src, start: start, end: len(data), line: startLine, col: startCol})
	}
	return chunks, errs
}

// lineCol returns the 1-based line and column (in characters) of byte off of data.
func lineCol(data []byte, off int) (int, int) {
	if off > len(data) {
		off = len(data)
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	ls := bytes.LastIndexByte(data[:off], '\n') + 1
	return line, 1 + utf8.RuneCount(data[ls:off])
}
