package policies

import "fmt"

const (
	// ModeLabel sets the mode of every policy in a namespace.
	ModeLabel = "stateguard.dev/mode"
	// ModeLabelPrefix + a policy ID sets one policy's mode in a namespace.
	ModeLabelPrefix = ModeLabel + "."
)

// ResolveMode returns the mode in force for a policy in a namespace with the
// given labels. First match wins: the namespace's per-policy label, its
// all-policies label, the config's per-policy mode, the config's default.
//
// An unknown label value fails closed (enforce) and comes back as a warning,
// because a typo in a namespace label must not silently switch policy off.
func (c *Config) ResolveMode(id PolicyID, namespaceLabels map[string]string) (Mode, string) {
	for _, key := range []string{ModeLabelPrefix + string(id), ModeLabel} {
		value, ok := namespaceLabels[key]
		if !ok {
			continue
		}
		m, err := ParseMode(value)
		if err != nil {
			return Enforce, fmt.Sprintf("namespace label %s=%q is not a mode (want one of %s); enforcing", key, value, joinModes())
		}
		return m, ""
	}
	return c.PolicyMode(id), ""
}
