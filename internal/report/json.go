package report

import (
	"bytes"
	"encoding/json"
)

// writeJSON prints the report as the product's `-o json` schema, indented two
// spaces. HTML escaping is off: messages quote names and fields, and
// "\u003c" helps nobody reading the output.
func writeJSON(w *bytes.Buffer, r *Report, _ Options) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
