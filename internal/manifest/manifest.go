// Package manifest reads Kubernetes manifests the way kubectl does — files, directories,
// stdin; multi-document YAML, JSON streams, flow-style YAML and List objects; YAML 1.1
// scalars as sigs.k8s.io/yaml resolves them — and keeps the file, line and column of every
// field, so that findings can point at the source.
//
// Parsing uses yaml.v3 for the syntax and re-implements go-yaml v2's scalar resolution,
// merge keys and alias limits on top, because kubectl decodes with go-yaml v2. Instead of
// the yaml.Node tree, a compact position index is kept per document; Apply parses the
// document's source again when it is asked to change it.
package manifest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// Document is one Kubernetes object read from the input. It is not changed after Read
// returns it, and its methods are safe for concurrent use.
type Document struct {
	// File is the path as the user named it (joined with the walked directory), or
	// "<stdin>".
	File string
	// Line and Column (1-based) are where the object starts: its first key, or the `{`
	// that opens it in flow style and JSON.
	Line, Column int
	// APIVersion, Kind, Name and Namespace are read from the object; Name and Namespace
	// are "" when absent.
	APIVersion, Kind, Name, Namespace string
	// JSON is the object as kubectl would send it: YAML converted with YAML 1.1 rules, or
	// the JSON text itself when the input was JSON. An item of a List lacking both kind and
	// apiVersion has them filled in from the List, as kubectl does.
	JSON []byte

	ch     *chunk
	x      *index
	root   int // the object's entry in x
	item   int // which element of the List's items this object is, or -1
	jsBase int // an offset o >= jsMin into JSON is offset o+jsBase into x.json
	jsMin  int
}

// Error is a problem with the input, located as precisely as the source allows. Line
// and Column are 0 when the problem is with a path rather than its content.
type Error struct {
	File         string
	Line, Column int
	Message      string
}

func (e *Error) Error() string {
	switch {
	case e.Line == 0:
		return e.File + ": " + e.Message
	case e.Column == 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Message)
}

// Errors returns the *Error values in err (as returned by Read, which joins them).
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var e *Error
		if errors.As(err, &e) {
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

// Options configure Read.
type Options struct {
	// Stdin is read for the path "-"; nil means os.Stdin.
	Stdin io.Reader
	// Workers is how many documents are parsed at once; 0 means GOMAXPROCS.
	Workers int
}

// StdinName is the File of documents read from "-".
const StdinName = "<stdin>"

type source struct {
	name string
	data []byte
}

// Read reads every path: a file (whatever its extension), a directory (recursively, its
// *.yaml, *.yml and *.json files in lexical order, leaving out files and directories whose
// names start with a dot, such as .git or .pre-commit-config.yaml, and not following
// symbolic links to directories inside it) or "-" for Options.Stdin.
//
// The documents come back in a deterministic order: paths in the order given, files within
// a directory sorted, documents in source order, List items in place of their List. Empty
// documents, documents holding only comments and null documents are skipped, as kubectl
// skips them.
//
// Read does not stop at the first problem: the error it returns joins an *Error for every
// problem found (use Errors to get them), and the documents that could be read are
// returned with it.
func Read(paths []string, opts Options) ([]*Document, error) {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	stdin := opts.Stdin
	if stdin == nil {
		stdin = os.Stdin
	}

	// One slot per input file, in output order; a path that cannot be walked gets a slot
	// holding its error, so errors come out in input order too.
	type slot struct {
		path   string // to read; "" for stdin or a failed path
		src    *source
		chunks []chunk
		errs   []*Error
	}
	var slots []*slot
	stdinUsed := false
	for _, p := range paths {
		if p == "-" {
			s := &slot{src: &source{name: StdinName}}
			if stdinUsed {
				s.errs = append(s.errs, &Error{File: StdinName, Message: `"-" (stdin) given more than once`})
			} else {
				stdinUsed = true
				data, err := io.ReadAll(stdin)
				if err != nil {
					s.errs = append(s.errs, &Error{File: StdinName, Message: err.Error()})
				}
				s.src.data = data
			}
			slots = append(slots, s)
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			slots = append(slots, &slot{errs: []*Error{pathError(p, err)}})
			continue
		}
		if !fi.IsDir() {
			slots = append(slots, &slot{path: p, src: &source{name: p}})
			continue
		}
		root := p
		if lfi, err := os.Lstat(p); err == nil && lfi.Mode()&os.ModeSymlink != 0 {
			root = p + string(filepath.Separator) // so that WalkDir follows it
		}
		err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				slots = append(slots, &slot{errs: []*Error{pathError(path, err)}})
				if d != nil && d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if path != root && strings.HasPrefix(d.Name(), ".") {
				// .git, .github, .pre-commit-config.yaml: tooling, not manifests
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			switch filepath.Ext(path) {
			case ".yaml", ".yml", ".json":
				slots = append(slots, &slot{path: path, src: &source{name: path}})
			}
			return nil
		})
		if err != nil {
			slots = append(slots, &slot{errs: []*Error{pathError(p, err)}})
		}
	}

	Parallel(len(slots), workers, func(i int) {
		s := slots[i]
		if s.src == nil {
			return
		}
		if s.path != "" {
			data, err := os.ReadFile(s.path)
			if err != nil {
				s.errs = append(s.errs, pathError(s.path, err))
				return
			}
			s.src.data = data
		}
		var errs []*Error
		s.chunks, errs = split(s.src)
		s.errs = append(s.errs, errs...)
	})

	type task struct {
		ch   *chunk
		docs []*Document
		errs []*Error
	}
	var tasks []task
	for _, s := range slots {
		for i := range s.chunks {
			tasks = append(tasks, task{ch: &s.chunks[i]})
		}
	}
	Parallel(len(tasks), workers, func(i int) {
		tasks[i].docs, tasks[i].errs = parseChunk(tasks[i].ch)
	})

	// Merge in order. Split errors (bad separators, broken JSON) are reported where they
	// occur relative to the documents of the same file.
	var docs []*Document
	var errs []error
	ti := 0
	for _, s := range slots {
		var serrs []*Error
		serrs = append(serrs, s.errs...)
		for range s.chunks {
			t := &tasks[ti]
			ti++
			docs = append(docs, t.docs...)
			serrs = append(serrs, t.errs...)
		}
		sortErrors(serrs)
		for _, e := range serrs {
			errs = append(errs, e)
		}
	}
	return docs, errors.Join(errs...)
}

func sortErrors(errs []*Error) {
	// insertion sort: few errors, and a stable order by position within one file
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Line < errs[j-1].Line; j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

func pathError(p string, err error) *Error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &Error{File: p, Message: pe.Err.Error()}
	}
	return &Error{File: p, Message: err.Error()}
}

// Parallel runs f(0..n-1) on up to workers goroutines (GOMAXPROCS when
// workers <= 0), each taking the next index as it is done with one.
func Parallel(n, workers int, f func(int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// Source returns the bytes of the source document this object was read from, exactly as
// they were (comments included, without the `---` line). For an item of a List that is
// the whole List document.
func (d *Document) Source() []byte {
	return d.ch.src.data[d.ch.start:d.ch.end]
}

// Position returns the 1-based line and column of the field named by fieldPath, a
// k8s.io/apimachinery field.Path string such as `spec.volumeClaimTemplates[0].spec.storageClassName`
// or `metadata.labels[stateguard.dev/snapshot-schedule]` (bracketed map keys may hold dots
// and slashes). The position of an object member is that of its key; of an array element,
// that of the element. When the field is not in the source, it returns the position of its
// nearest ancestor that is, and at worst the document's own.
func (d *Document) Position(fieldPath string) (line, col int) {
	e := &d.x.ents[d.x.walk(d.root, parseFieldPath(fieldPath))]
	return int(e.kline), int(e.kcol)
}

// PointerPosition is Position for an RFC 6901 JSON pointer such as
// `/spec/volumeClaimTemplates/0/spec/storageClassName`.
func (d *Document) PointerPosition(pointer string) (line, col int) {
	e := &d.x.ents[d.x.walk(d.root, parsePointer(pointer))]
	return int(e.kline), int(e.kcol)
}

// Has reports whether the field named by the JSON pointer is present in the document.
func (d *Document) Has(pointer string) bool {
	steps := parsePointer(pointer)
	e := d.root
	for _, s := range steps {
		if e = d.x.child(e, s); e < 0 {
			return false
		}
	}
	return true
}

// offsetPosition returns the position of the value at byte off of d.JSON.
func (d *Document) offsetPosition(off int) (line, col int) {
	if off < d.jsMin {
		return d.Line, d.Column
	}
	e := &d.x.ents[d.x.at(d.root, off+d.jsBase)]
	return int(e.vline), int(e.vcol)
}

// fieldName returns the field.Path-style name of the value at byte off of d.JSON.
func (d *Document) fieldName(off int) string {
	if off < d.jsMin {
		return ""
	}
	target := d.x.at(d.root, off+d.jsBase)
	var b strings.Builder
	e := d.root
	for e != target {
		next := -1
		for _, c := range d.x.children(e) {
			ce := &d.x.ents[c]
			if c <= target && target < int(ce.next) {
				next = c
				break
			}
		}
		if next < 0 {
			break
		}
		ce := &d.x.ents[next]
		if ce.flags&fMember != 0 {
			k := d.x.keyString(ce)
			if strings.ContainsAny(k, "./[]") {
				b.WriteString("[" + k + "]")
			} else {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(k)
			}
		} else {
			fmt.Fprintf(&b, "[%d]", ce.key)
		}
		e = next
	}
	return b.String()
}
