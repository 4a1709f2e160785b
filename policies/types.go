package policies

import (
	"fmt"
	"strings"
)

// PolicyID names a policy. IDs are part of the product contract: they appear in
// output, metric labels, config keys and namespace labels, so they never change.
type PolicyID string

const (
	HeadlessService  PolicyID = "headless-service"
	StorageClass     PolicyID = "storage-class"
	SnapshotSchedule PolicyID = "snapshot-schedule"
)

// Mode says what a policy's violations do.
type Mode string

const (
	// Enforce denies the request.
	Enforce Mode = "enforce"
	// Warn admits it with admission warnings that kubectl prints.
	Warn Mode = "warn"
	// Audit admits it silently; findings go to metrics and audit annotations.
	Audit Mode = "audit"
	// Disabled turns the policy off: no findings, no mutations.
	Disabled Mode = "disabled"
)

// Modes lists the valid modes, strictest first.
var Modes = []Mode{Enforce, Warn, Audit, Disabled}

// ParseMode parses a mode name. "off" is deliberately not accepted: YAML 1.1
// reads an unquoted off as a boolean, so it can never reach us as a label value.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown mode %q (want one of %s)", s, joinModes())
}

func joinModes() string { return strings.Join(modeNames(), ", ") }

// Operation is the admission operation under review.
type Operation string

const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
)

// Finding is one thing a policy found, already resolved against the mode in
// force: Mode is the action taken (enforce: denied, warn: warned, audit:
// recorded), never Disabled.
type Finding struct {
	Policy PolicyID
	Mode   Mode
	// Field is the offending field as a field.Path string, e.g.
	// "spec.volumeClaimTemplates[0].spec.storageClassName".
	Field string
	// Value is what was found there, if anything useful ("" when absent).
	Value string
	// Message is one line that says what is wrong and how to fix it.
	Message string
}

// String renders the finding on one line, the way denials and warnings show it.
func (f Finding) String() string {
	if f.Field == "" {
		return fmt.Sprintf("[%s] %s", f.Policy, f.Message)
	}
	return fmt.Sprintf("[%s] %s: %s", f.Policy, f.Field, f.Message)
}

// Mutation is one change the engine made to an object, as a JSON pointer and
// the value set there. Every change is one: the webhook writes its JSON patch
// from them (webhook TestPatchMatchesWholeObjectDiff holds it to a diff of
// the original and mutated objects), and the CLI reports them.
type Mutation struct {
	Policy PolicyID
	Path   string
	Value  any
}

// Result is the outcome of validating one object.
type Result struct {
	// Exempt is true when the object's namespace is exempt from every policy.
	Exempt bool
	// Modes is the mode each evaluated policy was in (disabled ones included),
	// so callers can count decisions per policy even when nothing was found.
	Modes    map[PolicyID]Mode
	Findings []Finding
	// Warnings are problems with the policy setup itself (e.g. an unknown mode
	// label on the namespace), to be surfaced as admission warnings.
	Warnings []string
}

// Denied reports whether any finding is enforced.
func (r Result) Denied() bool {
	for _, f := range r.Findings {
		if f.Mode == Enforce {
			return true
		}
	}
	return false
}

// Count returns how many findings have the given mode.
func (r Result) Count(m Mode) int {
	n := 0
	for _, f := range r.Findings {
		if f.Mode == m {
			n++
		}
	}
	return n
}
