package policies

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Level says how serious an issue is before modes apply.
type Level int

const (
	// Violation breaks the policy: denied in enforce mode.
	Violation Level = iota
	// Advisory is worth knowing but never denies, whatever the mode.
	Advisory
)

// Issue is what a policy check reports, before the mode turns it into a Finding.
type Issue struct {
	Level   Level
	Field   *field.Path
	Value   string
	Message string
}

func violation(p *field.Path, value, format string, args ...any) Issue {
	return Issue{Level: Violation, Field: p, Value: value, Message: fmt.Sprintf(format, args...)}
}

func advisory(p *field.Path, value, format string, args ...any) Issue {
	return Issue{Level: Advisory, Field: p, Value: value, Message: fmt.Sprintf(format, args...)}
}

// StatefulSetReview is what StatefulSet checks and mutations read: the
// request, under the engine's config and a lookup of the cluster.
type StatefulSetReview struct {
	StatefulSetRequest
	Config *Config
	Lookup Lookup
}

// ServiceReview is what Service checks read.
type ServiceReview struct {
	ServiceRequest
	Config *Config
	Lookup Lookup
}

// Policy is one registered policy. Any of its functions may be nil.
type Policy struct {
	ID PolicyID
	// MutateStatefulSet changes sts, a copy the engine owns, and returns what
	// it changed. It runs on CREATE and UPDATE and must be idempotent.
	MutateStatefulSet func(r *StatefulSetReview, sts *appsv1.StatefulSet) []Mutation
	// ValidateStatefulSet checks the (already mutated) StatefulSet.
	ValidateStatefulSet func(r *StatefulSetReview) ([]Issue, error)
	// AdvisoryOnUpdate turns ValidateStatefulSet's violations into advisories
	// on UPDATE, for checks of what an update cannot fix (claim templates are
	// immutable; a Service is fixed by writing the Service): denying then
	// would only block scaling and image changes.
	AdvisoryOnUpdate bool
	// ValidateService guards Services that StatefulSets depend on.
	ValidateService func(r *ServiceReview) ([]Issue, error)
}

// Registry returns the built-in policies, in the order mutations apply:
// storage-class may add claim templates that snapshot-schedule then labels.
func Registry() []Policy {
	return []Policy{headlessServicePolicy, storageClassPolicy, snapshotSchedulePolicy}
}

// validateRegistry rejects a registry with a missing or duplicate ID.
func validateRegistry(policies []Policy) error {
	seen := map[PolicyID]bool{}
	for i, p := range policies {
		if p.ID == "" {
			return fmt.Errorf("policy %d has no ID", i)
		}
		if seen[p.ID] {
			return fmt.Errorf("policy %q is registered twice", p.ID)
		}
		seen[p.ID] = true
	}
	return nil
}

// Engine evaluates the registered policies under one config. It is safe for
// concurrent use.
type Engine struct {
	config   Config
	policies []Policy
}

// NewEngine completes and validates cfg and returns an engine for it.
func NewEngine(cfg Config) (*Engine, error) {
	return newEngine(cfg, Registry())
}

func newEngine(cfg Config, policies []Policy) (*Engine, error) {
	if err := validateRegistry(policies); err != nil {
		return nil, err
	}
	complete := cfg.Complete()
	if errs := complete.Validate(); len(errs) > 0 {
		return nil, &ConfigError{Errs: errs}
	}
	return &Engine{config: complete, policies: policies}, nil
}

// ConfigError is NewEngine's error for a config that does not validate: the
// problems by field, so that a caller holding the config file can point at
// their lines.
type ConfigError struct{ Errs field.ErrorList }

func (e *ConfigError) Error() string { return e.Errs.ToAggregate().Error() }

// Config returns the completed config. It is shared and must not be modified.
func (e *Engine) Config() *Config { return &e.config }

// Policies returns the registered policies' IDs in evaluation order.
func (e *Engine) Policies() []PolicyID {
	out := make([]PolicyID, len(e.policies))
	for i, p := range e.policies {
		out[i] = p.ID
	}
	return out
}

// StatefulSetRequest is a StatefulSet under admission or offline check.
type StatefulSetRequest struct {
	Operation Operation
	Namespace string
	// Object is the StatefulSet under review; OldObject is the live one on UPDATE.
	Object    *appsv1.StatefulSet
	OldObject *appsv1.StatefulSet
}

// ServiceRequest is a Service under admission or offline check.
type ServiceRequest struct {
	Operation Operation
	Namespace string
	// Object is nil on DELETE; OldObject is nil on CREATE.
	Object    *corev1.Service
	OldObject *corev1.Service
}

// modes resolves every policy's mode for a namespace, with any warnings about
// the namespace's labels. It returns exempt=true for an exempt namespace.
func (e *Engine) modes(namespace string, lookup Lookup) (modes map[PolicyID]Mode, warnings []string, exempt bool, err error) {
	if e.config.IsExempt(namespace) {
		return nil, nil, true, nil
	}
	ns, err := lookup.Namespace(namespace)
	if err != nil {
		return nil, nil, false, fmt.Errorf("looking up namespace %q: %w", namespace, err)
	}
	var labels map[string]string
	if ns != nil {
		labels = ns.Labels
	}
	modes = make(map[PolicyID]Mode, len(e.policies))
	for _, p := range e.policies {
		m, warning := e.config.ResolveMode(p.ID, labels)
		modes[p.ID] = m
		// One bad namespace-wide label would otherwise warn once per policy.
		if warning != "" && !slices.Contains(warnings, warning) {
			warnings = append(warnings, warning)
		}
	}
	return modes, warnings, false, nil
}

// MutateStatefulSet returns a mutated copy of req.Object and the changes made.
// When nothing changes it returns req.Object itself and no mutations.
func (e *Engine) MutateStatefulSet(req StatefulSetRequest, lookup Lookup) (*appsv1.StatefulSet, []Mutation, error) {
	if req.Object == nil || (req.Operation != Create && req.Operation != Update) {
		return req.Object, nil, nil
	}
	modes, _, exempt, err := e.modes(req.Namespace, lookup)
	if err != nil || exempt {
		return req.Object, nil, err
	}
	review := e.statefulSetReview(req, lookup)
	out := req.Object.DeepCopy()
	var mutations []Mutation
	for _, p := range e.policies {
		if p.MutateStatefulSet == nil || modes[p.ID] == Disabled {
			continue
		}
		mutations = append(mutations, p.MutateStatefulSet(review, out)...)
	}
	if len(mutations) == 0 {
		return req.Object, nil, nil
	}
	return out, mutations, nil
}

// ValidateStatefulSet checks a StatefulSet (as mutation left it).
func (e *Engine) ValidateStatefulSet(req StatefulSetRequest, lookup Lookup) (Result, error) {
	if req.Object == nil || (req.Operation != Create && req.Operation != Update) {
		return Result{}, nil
	}
	modes, warnings, exempt, err := e.modes(req.Namespace, lookup)
	if err != nil || exempt {
		return Result{Exempt: exempt}, err
	}
	review := e.statefulSetReview(req, lookup)
	result := Result{Modes: modes, Warnings: warnings}
	for _, p := range e.policies {
		if p.ValidateStatefulSet == nil || modes[p.ID] == Disabled {
			continue
		}
		issues, err := p.ValidateStatefulSet(review)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", p.ID, err)
		}
		if p.AdvisoryOnUpdate && req.Operation == Update {
			for i := range issues {
				issues[i].Level = Advisory
			}
		}
		result.Findings = appendFindings(result.Findings, p.ID, modes[p.ID], issues)
	}
	return result, nil
}

// ValidateService checks a Service write against the StatefulSets that need it.
func (e *Engine) ValidateService(req ServiceRequest, lookup Lookup) (Result, error) {
	modes, warnings, exempt, err := e.modes(req.Namespace, lookup)
	if err != nil || exempt {
		return Result{Exempt: exempt}, err
	}
	review := &ServiceReview{ServiceRequest: req, Config: &e.config, Lookup: lookup}
	result := Result{Modes: map[PolicyID]Mode{}, Warnings: warnings}
	for _, p := range e.policies {
		if p.ValidateService != nil {
			result.Modes[p.ID] = modes[p.ID]
		}
		if p.ValidateService == nil || modes[p.ID] == Disabled {
			continue
		}
		issues, err := p.ValidateService(review)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", p.ID, err)
		}
		result.Findings = appendFindings(result.Findings, p.ID, modes[p.ID], issues)
	}
	return result, nil
}

func (e *Engine) statefulSetReview(req StatefulSetRequest, lookup Lookup) *StatefulSetReview {
	return &StatefulSetReview{StatefulSetRequest: req, Config: &e.config, Lookup: lookup}
}

// appendFindings resolves issues against the policy's mode: a violation takes
// the mode as it is, an advisory is at most a warning.
func appendFindings(out []Finding, id PolicyID, mode Mode, issues []Issue) []Finding {
	for _, is := range issues {
		m := mode
		if is.Level == Advisory && m == Enforce {
			m = Warn
		}
		f := Finding{Policy: id, Mode: m, Value: is.Value, Message: is.Message}
		if is.Field != nil {
			f.Field = is.Field.String()
		}
		out = append(out, f)
	}
	return out
}
