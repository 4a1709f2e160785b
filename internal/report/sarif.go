package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/stateguard/stateguard/policies"
)

// SARIF 2.1.0, as GitHub code scanning reads it. Only the properties written
// are declared; names follow the spec (sarif-v2.1.0, section 3).
const (
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion = "2.1.0"
	// fingerprintKey names our partialFingerprints entry: it identifies a
	// finding by object and content, not line, so alerts survive edits that
	// only move the object. Bump the version if its inputs change.
	fingerprintKey = "stateguardFinding/v1"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name,omitempty"`
	ShortDescription     sarifMessage       `json:"shortDescription"`
	FullDescription      sarifMessage       `json:"fullDescription"`
	Help                 *sarifMessage      `json:"help,omitempty"`
	HelpURI              string             `json:"helpUri"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifMessage      `json:"message"`
	Locations           []sarifLocation   `json:"locations,omitempty"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation  `json:"physicalLocation"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           sarifRegion           `json:"region"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
}

type sarifLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	// Kind "resource" is the closest of SARIF's well-known kinds to a
	// Kubernetes object.
	Kind string `json:"kind"`
}

func writeSARIF(w *bytes.Buffer, r *Report, opts Options) error {
	rules, index := sarifRules(r.Results)
	results := make([]sarifResult, 0, len(r.Results))
	for _, res := range r.Results {
		out := sarifResult{
			RuleID:    res.Policy,
			RuleIndex: index[res.Policy],
			Level:     sarifLevel(res.Mode),
			Message:   sarifMessage{Text: res.Kind + " " + objectName(res.Namespace, res.Name) + ": " + detail(res)},
			PartialFingerprints: map[string]string{
				fingerprintKey: fingerprint(res),
			},
		}
		// GitHub rejects a location without a file; one without is better
		// left out than pointed at "".
		if res.File != "" {
			out.Locations = []sarifLocation{{
				PhysicalLocation: sarifPhysicalLocation{
					ArtifactLocation: sarifArtifactLocation{URI: artifactURI(res.File)},
					Region:           sarifRegion{StartLine: max(res.Line, 1), StartColumn: max(res.Column, 1)},
				},
				LogicalLocations: []sarifLogicalLocation{{
					Name:               res.Name,
					FullyQualifiedName: objectRef(res.Namespace, res.Kind, res.Name),
					Kind:               "resource",
				}},
			}}
		}
		results = append(results, out)
	}
	log := sarifLog{
		Schema:  sarifSchema,
		Version: sarifVersion,
		Runs: []sarifRun{{
			Tool: sarifTool{Driver: sarifDriver{
				Name:           "stateguard",
				InformationURI: informationURI,
				Version:        opts.Version,
				Rules:          rules,
			}},
			Results: results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(log)
}

// sarifRules lists a rule for every registered policy, in registry order,
// then one for any other policy a result names (so that every ruleIndex
// resolves), and returns each rule's index by ID.
func sarifRules(results []Result) ([]sarifRule, map[string]int) {
	var ids []string
	for _, p := range policies.Registry() {
		ids = append(ids, string(p.ID))
	}
	var extra []string
	for _, res := range results {
		if !slices.Contains(ids, res.Policy) && !slices.Contains(extra, res.Policy) {
			extra = append(extra, res.Policy)
		}
	}
	slices.Sort(extra)
	ids = append(ids, extra...)

	rules := make([]sarifRule, len(ids))
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		doc, ok := ruleDocs[policies.PolicyID(id)]
		if !ok {
			doc = ruleDoc{Short: "stateguard policy " + id + ".", Full: "stateguard policy " + id + "."}
		}
		rules[i] = sarifRule{
			ID:               id,
			Name:             doc.Name,
			ShortDescription: sarifMessage{Text: doc.Short},
			FullDescription:  sarifMessage{Text: doc.Full},
			HelpURI:          helpURI(id),
			// Enforce is the default mode, so a finding is an error unless
			// the mode in force says otherwise (each result carries its level).
			DefaultConfiguration: sarifConfiguration{Level: sarifLevel(string(policies.Enforce))},
		}
		if doc.Help != "" {
			rules[i].Help = &sarifMessage{Text: doc.Help}
		}
		index[id] = i
	}
	return rules, index
}

// sarifLevel maps a mode to a SARIF level. An unknown mode is shown as a
// warning rather than dropped.
func sarifLevel(mode string) string {
	switch policies.Mode(mode) {
	case policies.Enforce:
		return "error"
	case policies.Audit:
		return "note"
	default:
		return "warning"
	}
}

// fingerprint identifies a finding by what it is about, independent of where
// in the file it sits.
func fingerprint(r Result) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{
		r.APIVersion, r.Kind, r.Namespace, r.Name, r.Policy, r.Field, r.Message,
	}, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// artifactURI turns a file path as the user gave it into a SARIF artifact
// URI: forward slashes, each segment percent-encoded where a URI needs it,
// and still relative when the path was (code scanning resolves relative URIs
// against the repository root). Absolute paths become file:// URIs.
func artifactURI(file string) string {
	p := strings.ReplaceAll(file, `\`, "/")
	abs := strings.HasPrefix(p, "/")
	if len(p) >= 3 && isASCIILetter(p[0]) && p[1] == ':' && p[2] == '/' { // C:/...
		abs = true
		p = "/" + p
	}
	segments := strings.Split(p, "/")
	for i, s := range segments {
		// PathEscape leaves ':' alone, but in a relative URI's first segment
		// it would read as a scheme; a drive letter is the one colon kept.
		s = url.PathEscape(s)
		if !(abs && i == 1) {
			s = strings.ReplaceAll(s, ":", "%3A")
		}
		segments[i] = s
	}
	p = strings.Join(segments, "/")
	if abs {
		return "file://" + p
	}
	return p
}

func isASCIILetter(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
