// Package config loads the PolicyConfig file that serve, check and mutate
// share: strictly decoded, so a misspelt field is an error that names
// file:line instead of a setting silently ignored.
package config

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"

	"github.com/stateguard/stateguard/internal/manifest"
	"github.com/stateguard/stateguard/policies"
)

// Options selects where the config comes from.
type Options struct {
	// Path is the config file; empty means the built-in defaults.
	Path string
	// Profile, when set, overrides the file's profile (the --profile flag).
	Profile string
}

// Load reads, decodes, completes and validates the config. Every error names
// the file and line of the offending field; several are joined.
func Load(opts Options) (*policies.Engine, error) {
	var cfg policies.Config
	var doc *manifest.Document
	if opts.Path != "" {
		docs, err := manifest.Read([]string{opts.Path}, manifest.Options{})
		if err != nil {
			return nil, err
		}
		if len(docs) != 1 {
			return nil, &manifest.Error{File: opts.Path, Line: 1, Column: 1,
				Message: fmt.Sprintf("want exactly one %s document, found %d", policies.ConfigKind, len(docs))}
		}
		doc = docs[0]
		if doc.APIVersion != policies.ConfigAPIVersion || doc.Kind != policies.ConfigKind {
			return nil, &manifest.Error{File: doc.File, Line: doc.Line, Column: doc.Column,
				Message: fmt.Sprintf("want apiVersion %s, kind %s; found %s, %s", policies.ConfigAPIVersion, policies.ConfigKind, doc.APIVersion, doc.Kind)}
		}
		strict, err := kjson.UnmarshalStrict(doc.JSON, &cfg)
		if err != nil {
			return nil, decodeError(doc, err)
		}
		if len(strict) > 0 {
			errs := make([]error, 0, len(strict))
			for _, e := range strict {
				errs = append(errs, fieldError(doc, e))
			}
			return nil, errors.Join(errs...)
		}
	}
	if opts.Profile != "" {
		cfg.Profile = opts.Profile
	}
	engine, err := policies.NewEngine(cfg)
	if ce := (*policies.ConfigError)(nil); errors.As(err, &ce) {
		return nil, validationErrors(doc, opts, ce.Errs)
	}
	return engine, err
}

func decodeError(doc *manifest.Document, err error) error {
	var fe kjson.FieldError
	if errors.As(err, &fe) {
		return fieldError(doc, err)
	}
	// A type error (a list where a map belongs, a string for a bool) is
	// positioned by the manifest package from the JSON decoder's field.
	var cfg policies.Config
	if derr := doc.Decode(&cfg); derr != nil {
		return derr
	}
	return &manifest.Error{File: doc.File, Line: doc.Line, Column: doc.Column, Message: err.Error()}
}

func fieldError(doc *manifest.Document, err error) error {
	msg := err.Error()
	var fe kjson.FieldError
	if !errors.As(err, &fe) {
		return &manifest.Error{File: doc.File, Line: doc.Line, Column: doc.Column, Message: msg}
	}
	line, col := doc.Position(fe.FieldPath())
	return &manifest.Error{File: doc.File, Line: line, Column: col, Message: msg}
}

func validationErrors(doc *manifest.Document, opts Options, list field.ErrorList) error {
	errs := make([]error, 0, len(list))
	for _, e := range list {
		switch {
		case e.Field == "profile" && opts.Profile != "":
			// The flag overrode the file: blame the flag, not the file's line.
			errs = append(errs, fmt.Errorf("--profile: %s", e.ErrorBody()))
		case doc != nil:
			line, col := doc.Position(e.Field)
			errs = append(errs, &manifest.Error{File: doc.File, Line: line, Column: col, Message: e.Error()})
		default:
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}
