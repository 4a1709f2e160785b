package report

import (
	"bytes"
	"fmt"
)

// writeText prints one finding a line, compiler-style:
//
//	file:line:col: mode policy namespace/name: field: message
//
// then, after a blank line, a one-line summary. Mutations are only counted:
// `stateguard mutate` is the command that shows them.
func writeText(w *bytes.Buffer, r *Report, _ Options) error {
	for _, res := range r.Results {
		fmt.Fprintf(w, "%s: %s %s %s", position(res.File, res.Line, res.Column),
			res.Mode, res.Policy, objectName(res.Namespace, res.Name))
		if d := detail(res); d != "" {
			w.WriteString(": " + d)
		}
		w.WriteByte('\n')
	}
	if len(r.Results) > 0 {
		w.WriteByte('\n')
	}
	s := r.Summary
	fmt.Fprintf(w, "%s, %s, %s: %s, %s, %d audited, %s\n",
		plural(s.Files, "file"), plural(s.Objects, "object"), plural(s.StatefulSets, "StatefulSet"),
		plural(s.Violations, "violation"), plural(s.Warnings, "warning"), s.Audits,
		plural(len(r.Mutations), "mutation"))
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
