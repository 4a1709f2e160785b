package manifest

import (
	"reflect"
	"strings"

	sigsjson "sigs.k8s.io/json"
)

// Decode unmarshals the document's JSON into into (say a *appsv1.StatefulSet) the way the
// API server does: field names match case-sensitively and integers stay integers. A value
// of the wrong type becomes an *Error at that value's line and column, naming the field;
// other errors (from a type's own UnmarshalJSON, say an invalid quantity) are located at
// the document.
func (d *Document) Decode(into any) error {
	err := sigsjson.UnmarshalCaseSensitivePreserveInts(d.JSON, into)
	if err == nil {
		return nil
	}
	msg := err.Error()
	off, typeErr := errorOffset(err)
	if off < 0 {
		return &Error{File: d.File, Line: d.Line, Column: d.Column, Message: msg}
	}
	// Type errors give the offset just past the offending value (or its opening bracket).
	at := off - 1
	if at < 0 {
		at = 0
	}
	line, col := d.offsetPosition(at)
	if typeErr != nil {
		msg = typeMessage(typeErr, d.fieldName(at))
	}
	return &Error{File: d.File, Line: line, Column: col, Message: msg}
}

type typeError struct {
	value  string
	goType reflect.Type
}

// errorOffset digs the byte offset out of sigs.k8s.io/json's errors, whose types are
// internal to it (copies of encoding/json's).
func errorOffset(err error) (int, *typeError) {
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return -1, nil
	}
	s := v.Elem()
	f := s.FieldByName("Offset")
	if !f.IsValid() || f.Kind() != reflect.Int64 {
		return -1, nil
	}
	off := int(f.Int())
	if strings.HasSuffix(s.Type().Name(), "UnmarshalTypeError") {
		te := &typeError{}
		if fv := s.FieldByName("Value"); fv.IsValid() && fv.Kind() == reflect.String {
			te.value = fv.String()
		}
		if ft := s.FieldByName("Type"); ft.IsValid() && !ft.IsNil() {
			if t, ok := ft.Interface().(reflect.Type); ok {
				te.goType = t
			}
		}
		return off, te
	}
	return off, nil
}

func typeMessage(te *typeError, field string) string {
	want := "a value"
	if te.goType != nil {
		switch te.goType.Kind() {
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "a boolean"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = "an integer"
		case reflect.Float32, reflect.Float64:
			want = "a number"
		case reflect.Map, reflect.Struct:
			want = "an object"
		case reflect.Slice, reflect.Array:
			want = "a list"
		default:
			want = te.goType.String()
		}
	}
	msg := "cannot unmarshal " + te.value + " into " + want
	if field != "" {
		msg = field + ": " + msg
	}
	switch {
	case te.value == "bool" && want == "a string":
		msg += " (YAML 1.1, which kubectl speaks, reads unquoted yes/no/on/off/y/n/true/false as booleans: quote the value)"
	case strings.HasPrefix(te.value, "number") && want == "a string":
		msg += " (quote the value to make it a string)"
	}
	return msg
}
