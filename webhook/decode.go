package webhook

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"strconv"
	"strings"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"
)

// Decoding is most of a review's cost, and most of it is spent on what no
// policy reads. The objects under review come from the API server, and two
// of their fields are most of their bytes: metadata.managedFields and the
// kubectl.kubernetes.io/last-applied-configuration annotation (the whole
// applied manifest again, as an escaped string). decodeObject cuts both out
// of the JSON before decoding the rest into the API type. decodeReview, for
// reviewServer, decodes an AdmissionReview as controller-runtime does, but
// scans the objects' bytes once, cutting them on the way, where
// controller-runtime's decoding and the webhook's own read them six times.
//
// What a policy, the patch (which diffs only /spec/volumeClaimTemplates, see
// patch.go) or a response sees is unchanged, with two deliberate exceptions,
// both about JSON the API server never sends: object field names match
// case-sensitively, as the API server matches them (encoding/json also took
// "Spec" for "spec"), and what the cut fields hold is not decoded, so a
// value of the wrong type there no longer fails the review. The rest of the
// object decodes with json-iterator, or, when it has what json-iterator
// decodes otherwise than encoding/json (repeated or escaped keys, invalid
// UTF-8, escaped surrogates), with sigs.k8s.io/json, the API server's own
// decoder. What the webhook answers to JSON that does not decode is
// unchanged: on any error the object is decoded again with encoding/json,
// as before, and its error is the one used.

// lastAppliedAnnotation is the annotation kubectl's client-side apply keeps
// the applied manifest in.
const lastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

// objectDecoder decodes the objects: json-iterator, configured as the API
// server configured it for years (case-sensitive, otherwise compatible with
// encoding/json; API types with their own UnmarshalJSON decode with it).
var objectDecoder = jsoniter.Config{
	EscapeHTML:             true,
	SortMapKeys:            true,
	ValidateJsonRawMessage: true,
	CaseSensitive:          true,
}.Froze()

// decodeObject decodes one reviewed object, without its managedFields and
// last-applied-configuration annotation, or returns nil for an absent one.
// When ctx comes from reviewServer, raw was cut already.
func decodeObject[T any](ctx context.Context, raw []byte) (*T, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	slim, unusual, ok := cutFromContext(ctx, raw)
	if !ok {
		slim, unusual, ok = withoutUnreadFields(raw)
	}
	if ok {
		obj := new(T)
		var err error
		if unusual {
			// Escaped keys (json-iterator matches struct fields by their
			// bytes), repeated keys (json-iterator decodes a null over a
			// string), invalid UTF-8 or escaped surrogates (encoding/json
			// turns them into U+FFFD): the API server's own decoder.
			err = sigsjson.UnmarshalCaseSensitivePreserveInts(slim, obj)
		} else {
			err = objectDecoder.Unmarshal(slim, obj)
		}
		if err == nil {
			return obj, nil
		}
	}
	// Not JSON, or not of the type's shape.
	return decodeWhole[T](ctx, raw)
}

// decodeWhole decodes the whole object, managedFields and all, as the API
// server does (sigs.k8s.io/json), or returns nil for an absent one. JSON
// that does not decode fails with the error of encoding/json, the webhook's
// decoder before decodeObject, so that the answer to it stays the same.
func decodeWhole[T any](_ context.Context, raw []byte) (*T, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	obj := new(T)
	if sigsjson.UnmarshalCaseSensitivePreserveInts(raw, obj) == nil {
		return obj, nil
	}
	// encoding/json, which also takes keys in other cases, fails whenever
	// sigs.k8s.io/json does: the same decoder, on the same or more keys.
	obj = new(T)
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// withoutUnreadFields returns the JSON object raw without
// metadata.managedFields and the last-applied-configuration annotation (raw
// itself when it has neither). ok is false when raw is not a valid JSON
// object by the rules of encoding/json; unusual says that json-iterator
// would decode it otherwise than encoding/json (scanner.unusual).
func withoutUnreadFields(raw []byte) (out []byte, unusual, ok bool) {
	s := scanner{data: raw}
	s.skipSpace()
	out, unusual, ok = s.cutObject()
	if !ok || !s.atEnd() {
		return nil, false, false
	}
	return out, unusual, true
}

// cutObject scans the object at pos and returns it without
// metadata.managedFields and the last-applied-configuration annotation (a
// subslice of data when it has neither), ok false unless it is a valid JSON
// object; unusual as the scanner's.
func (s *scanner) cutObject() (out []byte, unusual, ok bool) {
	if !s.atObject() {
		return nil, false, s.fail()
	}
	o := scanner{data: s.data[s.pos:], depth: s.depth}
	var obj, meta, ann objectScan
	var m, field, a member
	for o.openObject(&obj); o.next(&obj, &m); o.endMember(&obj, &m) {
		if !o.is(&m, "metadata") || !o.atObject() {
			continue
		}
		for o.openObject(&meta); o.next(&meta, &field); o.endMember(&meta, &field) {
			switch {
			case o.is(&field, "managedFields"):
				field.drop = true
				o.skipDropped()
			case o.is(&field, "annotations") && o.atObject():
				for o.openObject(&ann); o.next(&ann, &a); o.endMember(&ann, &a) {
					if a.drop = o.is(&a, lastAppliedAnnotation); a.drop {
						o.skipDropped()
					}
				}
			}
		}
	}
	if o.failed {
		return nil, false, s.fail()
	}
	s.pos += o.pos
	o.data = o.data[:o.pos:o.pos]
	return o.withoutDropped(), o.unusual, true
}

// cutObjects carries, from reviewServer to decodeObject, the reviewed
// objects already cut by decodeReview.
type cutObjects struct {
	raw, cut [2][]byte
	unusual  [2]bool
}

type cutObjectsKey struct{}

// cutFromContext returns the cut form of raw if ctx carries it.
func cutFromContext(ctx context.Context, raw []byte) (cut []byte, unusual, ok bool) {
	c, _ := ctx.Value(cutObjectsKey{}).(*cutObjects)
	if c == nil {
		return nil, false, false
	}
	for i, r := range c.raw {
		// The very bytes decodeReview cut, not merely equal ones.
		if len(r) == len(raw) && len(r) > 0 && &r[0] == &raw[0] && c.cut[i] != nil {
			return c.cut[i], c.unusual[i], true
		}
	}
	return nil, false, false
}

// unversionedReview is controller-runtime's unversionedAdmissionReview: a
// type its scheme does not know, so that v1 and v1beta1 reviews both decode
// into it, straight from the JSON.
type unversionedReview struct {
	admissionv1.AdmissionReview
}

var _ runtime.Object = &unversionedReview{}

// decodeReview decodes an AdmissionReview as controller-runtime's
// admission.Webhook.ServeHTTP does, returning the request and the review's
// apiVersion and kind, with the objects cut (cutObject) for decodeObject.
//
// ServeHTTP decodes with the API machinery's universal deserializer, which
// for a JSON object decodes the body twice: with encoding/json for its
// apiVersion and kind (matched case-insensitively), then, since the target
// type is not in the scheme, with sigs.k8s.io/json into it; each pass reads
// the objects (most of the body) twice, validating then decoding.
// decodeReview reads the body once: it validates it, finds apiVersion and
// kind, finds and cuts the objects, and decodes the request's other fields
// when they have their usual shape (requestDecoder); when they do not, it
// has sigs.k8s.io/json decode the body without the objects. It sets the
// objects' raw JSON as runtime.RawExtension.UnmarshalJSON would.
//
// ok is false for any body this does not handle exactly as
// controller-runtime does, which the caller must then hand to
// controller-runtime: anything but a single valid JSON object with one
// request object, and any body where matching keys the way
// controller-runtime does would take more than comparing bytes: keys with
// escapes or non-ASCII bytes at the top level or in the request, keys that
// only differ in case from apiVersion or kind, non-ASCII or escaped values
// of these, repeated apiVersion, kind, request, object or oldObject members.
func decodeReview(body []byte) (req admission.Request, gvk *schema.GroupVersionKind, cut *cutObjects, ok bool) {
	s := scanner{data: body}
	s.skipSpace()
	if !s.atObject() {
		return req, nil, nil, false
	}
	var c cutObjects
	var seen [2]bool
	var typeMeta [2]string // apiVersion, kind
	var typeMetaSeen [2]bool
	requests := 0
	d := requestDecoder{s: &s, req: &req.AdmissionRequest, usual: true}
	var top, request objectScan
	var m, f member
	for s.openObject(&top); s.next(&top, &m); s.endMember(&top, &m) {
		if m.escaped || !ascii(body[m.keyStart:m.keyEnd]) {
			return req, nil, nil, false
		}
		key := string(body[m.keyStart+1 : m.keyEnd-1])
		switch {
		case strings.EqualFold(key, "apiVersion") || strings.EqualFold(key, "kind"):
			// encoding/json matches them case-insensitively.
			i := 0
			if len(key) == len("kind") {
				i = 1
			}
			if key != [2]string{"apiVersion", "kind"}[i] || typeMetaSeen[i] {
				return req, nil, nil, false
			}
			start := s.pos
			escaped, ok := s.skipString()
			if !ok || escaped || !ascii(body[start:s.pos]) {
				return req, nil, nil, false
			}
			typeMeta[i], typeMetaSeen[i] = string(body[start+1:s.pos-1]), true
		case key == "request":
			if requests++; requests > 1 || !s.atObject() {
				return req, nil, nil, false
			}
			for s.openObject(&request); s.next(&request, &f); s.endMember(&request, &f) {
				if f.escaped || !ascii(body[f.keyStart:f.keyEnd]) {
					return req, nil, nil, false
				}
				i := 0
				switch {
				case s.is(&f, "object"):
				case s.is(&f, "oldObject"):
					i = 1
				default:
					d.member(&f)
					continue
				}
				if seen[i] {
					return req, nil, nil, false
				}
				seen[i], f.drop = true, true
				if s.atObject() {
					if c.cut[i], c.unusual[i], ok = s.cutObject(); !ok {
						return req, nil, nil, false
					}
				} else if !s.skipValue() {
					return req, nil, nil, false
				}
				c.raw[i] = body[f.start:s.pos:s.pos]
			}
		case key == "response":
			d.usual = false // for sigs.k8s.io/json to decode (or reject)
		}
	}
	if !s.atEnd() || requests != 1 {
		return req, nil, nil, false
	}
	// SimpleMetaFactory.Interpret
	gv, err := schema.ParseGroupVersion(typeMeta[0])
	if err != nil {
		return req, nil, nil, false
	}
	gvk = &schema.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: typeMeta[1]}
	if !d.usual {
		// The deserializer's decoding into a type its scheme does not know.
		req = admission.Request{}
		ar := unversionedReview{}
		ar.Request = &req.AdmissionRequest
		ar.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(s.withoutDropped(), &ar); err != nil || ar.Request != &req.AdmissionRequest {
			return req, nil, nil, false
		}
	}
	// runtime.RawExtension.UnmarshalJSON: null leaves Raw nil. The slices
	// share the body's array, which nothing writes to.
	for i, raw := range [2]*runtime.RawExtension{&req.Object, &req.OldObject} {
		if c.raw[i] != nil && string(c.raw[i]) != "null" {
			raw.Raw = c.raw[i]
		}
	}
	return req, gvk, &c, true
}

// requestDecoder decodes the members of an AdmissionRequest (but the
// objects) as sigs.k8s.io/json does, as long as they have the shape the API
// server gives them: each member at most once, strings without escapes and
// valid UTF-8 (so that they decode to their bytes), no nulls. Otherwise it
// sets usual to false, and decodeReview has sigs.k8s.io/json decode the
// request. Members it does not know are ignored, as sigs.k8s.io/json
// ignores them.
type requestDecoder struct {
	s     *scanner
	req   *admissionv1.AdmissionRequest
	usual bool
	seen  uint32 // the members decoded, by bit
}

// requestFields are the members requestDecoder decodes, in bit order.
var requestFields = [...]string{"uid", "kind", "resource", "subResource", "requestKind", "requestResource",
	"requestSubResource", "name", "namespace", "operation", "userInfo", "dryRun", "options"}

// member decodes one member of the request. pos is then after its value, or
// at it (for the scanner to skip) when the member is not decoded.
func (d *requestDecoder) member(m *member) {
	if !d.usual {
		return
	}
	s := d.s
	field := -1
	for i, name := range requestFields {
		if s.is(m, name) {
			field = i
			break
		}
	}
	if field < 0 {
		return
	}
	if d.seen&(1<<field) != 0 {
		d.usual = false
		return
	}
	d.seen |= 1 << field
	depth := s.depth
	if !d.decode(requestFields[field], m) {
		d.usual = false
		// Back to the value, for the scanner to check and skip it.
		s.pos, s.depth = m.start, depth
	}
}

// decode decodes the value of the request's member named name.
func (d *requestDecoder) decode(name string, m *member) bool {
	s, r := d.s, d.req
	switch name {
	case "uid":
		return d.string((*string)(&r.UID))
	case "subResource":
		return d.string(&r.SubResource)
	case "requestSubResource":
		return d.string(&r.RequestSubResource)
	case "name":
		return d.string(&r.Name)
	case "namespace":
		return d.string(&r.Namespace)
	case "operation":
		return d.string((*string)(&r.Operation))
	case "kind":
		return d.fields(&r.Kind.Group, &r.Kind.Version, "kind", &r.Kind.Kind)
	case "requestKind":
		r.RequestKind = new(metav1.GroupVersionKind)
		return d.fields(&r.RequestKind.Group, &r.RequestKind.Version, "kind", &r.RequestKind.Kind)
	case "resource":
		return d.fields(&r.Resource.Group, &r.Resource.Version, "resource", &r.Resource.Resource)
	case "requestResource":
		r.RequestResource = new(metav1.GroupVersionResource)
		return d.fields(&r.RequestResource.Group, &r.RequestResource.Version, "resource", &r.RequestResource.Resource)
	case "userInfo":
		return d.userInfo()
	case "dryRun":
		for _, v := range []bool{true, false} {
			lit := strconv.FormatBool(v)
			if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
				s.pos += len(lit)
				r.DryRun = ptr(v)
				return true
			}
		}
		return false
	case "options":
		if !s.skipValue() {
			return false
		}
		if raw := s.data[m.start:s.pos:s.pos]; string(raw) != "null" {
			r.Options.Raw = raw
		}
		return true
	}
	return false
}

// string decodes a string at pos into *to.
func (d *requestDecoder) string(to *string) bool {
	start := d.s.pos
	escaped, ok := d.s.skipString()
	if !ok || escaped || !utf8.Valid(d.s.data[start+1:d.s.pos-1]) {
		return false
	}
	*to = string(d.s.data[start+1 : d.s.pos-1])
	return true
}

// fields decodes, at pos, a GroupVersionKind or GroupVersionResource: an
// object of string members group, version and third.
func (d *requestDecoder) fields(group, version *string, third string, to *string) bool {
	s := d.s
	if !s.atObject() {
		return false
	}
	var o objectScan
	var m member
	var seen [3]bool
	for s.openObject(&o); s.next(&o, &m); s.endMember(&o, &m) {
		if m.escaped || !ascii(s.data[m.keyStart:m.keyEnd]) {
			return false
		}
		i := 0
		switch {
		case s.is(&m, "group"):
		case s.is(&m, "version"):
			i = 1
		case s.is(&m, third):
			i = 2
		default:
			continue // ignored
		}
		if seen[i] || !d.string([3]*string{group, version, to}[i]) {
			return false
		}
		seen[i] = true
	}
	return !s.failed
}

// userInfo decodes an authenticationv1.UserInfo at pos.
func (d *requestDecoder) userInfo() bool {
	s, u := d.s, &d.req.UserInfo
	if !s.atObject() {
		return false
	}
	var o objectScan
	var m member
	var seen [4]bool
	for s.openObject(&o); s.next(&o, &m); s.endMember(&o, &m) {
		if m.escaped || !ascii(s.data[m.keyStart:m.keyEnd]) {
			return false
		}
		i := 0
		switch {
		case s.is(&m, "username"):
		case s.is(&m, "uid"):
			i = 1
		case s.is(&m, "groups"):
			i = 2
		case s.is(&m, "extra"):
			i = 3
		default:
			continue // ignored
		}
		if seen[i] {
			return false
		}
		seen[i] = true
		ok := false
		switch i {
		case 0:
			ok = d.string(&u.Username)
		case 1:
			ok = d.string(&u.UID)
		case 2:
			u.Groups, ok = d.strings()
		case 3:
			ok = d.extra()
		}
		if !ok {
			return false
		}
	}
	return !s.failed
}

// extra decodes UserInfo.Extra at pos: an object of string lists.
func (d *requestDecoder) extra() bool {
	s := d.s
	if !s.atObject() {
		return false
	}
	extra := map[string]authenticationv1.ExtraValue{}
	var o objectScan
	var m member
	for s.openObject(&o); s.next(&o, &m); s.endMember(&o, &m) {
		var key string
		s.pos = m.keyStart
		if !d.string(&key) {
			return false
		}
		if _, repeated := extra[key]; repeated {
			return false
		}
		s.pos = m.start
		values, ok := d.strings()
		if !ok {
			return false
		}
		extra[key] = values
	}
	d.req.UserInfo.Extra = extra
	return !s.failed
}

// strings decodes an array of strings at pos (not null).
func (d *requestDecoder) strings() ([]string, bool) {
	s := d.s
	if s.pos >= len(s.data) || s.data[s.pos] != '[' {
		return nil, false
	}
	out := []string{}
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return out, true
	}
	for {
		s.skipSpace()
		var v string
		if !d.string(&v) {
			return nil, false
		}
		out = append(out, v)
		s.skipSpace()
		if s.pos >= len(s.data) {
			return nil, false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return out, true
		default:
			return nil, false
		}
	}
}

// ascii reports whether b is all ASCII.
func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// maxScanDepth bounds nesting. encoding/json allows 10000 levels; objects
// the API server sends have a few dozen at most, and deeper input is left to
// encoding/json, which decides it as before.
const maxScanDepth = 512

// scanner validates and skips JSON values in data, as strictly as
// encoding/json (which accepts any byte in a string but the quote, the
// backslash and control characters, and does not check UTF-8), and cuts
// members out of objects. After the first error it reads nothing more and
// atEnd reports false.
type scanner struct {
	data   []byte
	pos    int
	depth  int
	failed bool
	// unusual is set by a key with escapes or repeated in its object, and
	// by the strings that skipString notes: JSON that json-iterator would
	// decode otherwise than encoding/json (and sigs.k8s.io/json).
	unusual bool
	// cuts are the ranges of data that dropped members take, in order.
	cuts [][2]int
}

// objectScan is the state of the scan of one object's members.
type objectScan struct {
	done bool
	// kept says whether a member before this one is kept; comma is the
	// position of the comma before this member.
	kept  bool
	comma int
	// keys are hashes of the keys so far, to find a repeated one.
	keys  [maxObjectKeys]uint64
	nkeys int
}

// maxObjectKeys is the number of keys of an object checked for repeats;
// an object with more is unusual.
const maxObjectKeys = 64

var keySeed = maphash.MakeSeed()

// member is the member of an object being scanned.
type member struct {
	// keyStart and keyEnd delimit the key, quotes included; start is where
	// the value starts.
	keyStart, keyEnd, start int
	// escaped is set when the key has escapes: is then matches nothing.
	escaped bool
	// drop removes the member from the data (withoutDropped).
	drop bool
}

func (s *scanner) fail() bool {
	s.failed = true
	return false
}

// atObject reports whether an object starts at pos.
func (s *scanner) atObject() bool {
	return s.pos < len(s.data) && s.data[s.pos] == '{'
}

// is reports whether the member's key is key, byte for byte.
func (s *scanner) is(m *member, key string) bool {
	return !m.escaped && m.keyEnd-m.keyStart == len(key)+2 && string(s.data[m.keyStart+1:m.keyEnd-1]) == key
}

// skipDropped skips the value at pos, of a dropped member: what it holds
// does not make the data unusual.
func (s *scanner) skipDropped() {
	unusual := s.unusual
	s.skipValue()
	s.unusual = unusual
}

// withoutDropped returns the data without the dropped members (the data
// itself when there are none).
func (s *scanner) withoutDropped() []byte {
	if len(s.cuts) == 0 {
		return s.data
	}
	size := len(s.data)
	for _, c := range s.cuts {
		size -= c[1] - c[0]
	}
	out := make([]byte, 0, size)
	last := 0
	for _, c := range s.cuts {
		out = append(out, s.data[last:c[0]]...)
		last = c[1]
	}
	return append(out, s.data[last:]...)
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// atEnd reports whether everything was valid and only whitespace is left.
func (s *scanner) atEnd() bool {
	s.skipSpace()
	return !s.failed && s.pos == len(s.data)
}

// openObject starts the scan of the object at pos (after whitespace):
//
//	for s.openObject(&o); s.next(&o, &m); s.endMember(&o, &m) {
//		// pos is at m's value: scan it, or leave it to endMember; set m.drop
//	}
func (s *scanner) openObject(o *objectScan) {
	o.done, o.kept, o.comma, o.nkeys = true, false, -1, 0
	s.skipSpace()
	if s.failed || s.pos >= len(s.data) || s.data[s.pos] != '{' {
		s.fail()
		return
	}
	if s.depth++; s.depth > maxScanDepth {
		s.fail()
		return
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return
	}
	o.done = false
}

// next reads the next member's key and colon, leaving pos at its value.
func (s *scanner) next(o *objectScan, m *member) bool {
	if o.done || s.failed {
		return false
	}
	s.skipSpace()
	*m = member{keyStart: s.pos}
	escaped, ok := s.skipString()
	if !ok {
		return s.fail()
	}
	m.keyEnd, m.escaped = s.pos, escaped
	s.unusual = s.unusual || escaped || o.repeated(s.data[m.keyStart:m.keyEnd])
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return s.fail()
	}
	s.pos++
	s.skipSpace()
	m.start = s.pos
	return true
}

// repeated records a key and reports whether the object had it already
// (or may have: hashes collide, and past maxObjectKeys keys any may repeat).
func (o *objectScan) repeated(key []byte) bool {
	h := maphash.Bytes(keySeed, key)
	for _, k := range o.keys[:o.nkeys] {
		if k == h {
			return true
		}
	}
	if o.nkeys == maxObjectKeys {
		return true
	}
	o.keys[o.nkeys] = h
	o.nkeys++
	return false
}

// endMember skips the member's value unless it was scanned, and reads the
// comma or the closing brace after it.
func (s *scanner) endMember(o *objectScan, m *member) {
	if s.failed {
		return
	}
	if s.pos == m.start && !s.skipValue() {
		return
	}
	end := s.pos
	s.skipSpace()
	if s.pos >= len(s.data) || (s.data[s.pos] != ',' && s.data[s.pos] != '}') {
		s.fail()
		return
	}
	last := s.data[s.pos] == '}'
	switch {
	case !m.drop:
		o.kept = true
	case o.kept:
		// After a kept member: cut from the comma before it.
		s.cuts = append(s.cuts, [2]int{o.comma, end})
	case !last:
		// Before any kept one: cut through the comma after it.
		s.cuts = append(s.cuts, [2]int{m.keyStart, s.pos + 1})
	default:
		// The object's only member left: cut it alone.
		s.cuts = append(s.cuts, [2]int{m.keyStart, end})
	}
	o.comma = s.pos
	s.pos++
	if last {
		o.done = true
		s.depth--
	}
}

// skipValue skips the value at pos (whitespace already skipped).
func (s *scanner) skipValue() bool {
	if s.pos >= len(s.data) {
		return s.fail()
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		if _, ok := s.skipString(); !ok {
			return s.fail()
		}
		return true
	case c == '{':
		var o objectScan
		var m member
		for s.openObject(&o); s.next(&o, &m); s.endMember(&o, &m) {
		}
		return !s.failed
	case c == '[':
		return s.skipArray()
	case c == '-' || ('0' <= c && c <= '9'):
		return s.skipNumber()
	case c == 't':
		return s.skipLiteral("true")
	case c == 'f':
		return s.skipLiteral("false")
	case c == 'n':
		return s.skipLiteral("null")
	}
	return s.fail()
}

func (s *scanner) skipLiteral(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.fail()
	}
	s.pos += len(lit)
	return true
}

func (s *scanner) skipArray() bool {
	if s.depth++; s.depth > maxScanDepth {
		return s.fail()
	}
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return true
	}
	for {
		s.skipSpace()
		if !s.skipValue() {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.fail()
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return true
		default:
			return s.fail()
		}
	}
}

// skipString skips the string at pos and reports whether it has escapes.
// It notes in unusual a string that encoding/json would decode to other
// bytes than json-iterator: one with invalid UTF-8 or an escaped UTF-16
// surrogate.
func (s *scanner) skipString() (escaped, ok bool) {
	d := s.data
	if s.pos >= len(d) || d[s.pos] != '"' {
		return false, false
	}
	i := s.pos + 1
	for {
		// Eight bytes at a time while all are plain ASCII.
		for i+8 <= len(d) && !hasSpecialByte(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && d[i] >= 0x20 && d[i] < utf8.RuneSelf && d[i] != '"' && d[i] != '\\' {
			i++
		}
		if i >= len(d) {
			return false, false
		}
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			return escaped, true
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				s.unusual = true
			}
			i += size
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return false, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return false, false
				}
				if (d[i+2] == 'd' || d[i+2] == 'D') && strings.IndexByte("89abAB", d[i+3]) >= 0 {
					s.unusual = true // \uD800 to \uDFFF
				}
				i += 6
			default:
				return false, false
			}
		default: // a control character
			return false, false
		}
	}
}

// hasSpecialByte reports whether any of the eight bytes in x ends a run of
// plain string bytes: a quote, a backslash, a control character or a byte
// of a multi-byte UTF-8 sequence.
func hasSpecialByte(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// A byte is < 0x20 when subtracting 0x20 borrows into its high bit
	// while its own high bit was clear; equal to c when x^c has a zero byte.
	lessThanSpace := (x - ones*0x20) &^ x & highs
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	return x&highs|lessThanSpace|((quote-ones)&^quote&highs)|((backslash-ones)&^backslash&highs) != 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipNumber skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) skipNumber() bool {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return s.fail()
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return s.fail()
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return s.fail()
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return true
}
