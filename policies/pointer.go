package policies

import (
	"strconv"
	"strings"
)

// ClaimTemplatesPath is the JSON pointer of a StatefulSet's claim templates.
// Every mutation the policies make lies under it: the webhook writes its
// patch from these pointers.
const ClaimTemplatesPath = "/spec/volumeClaimTemplates"

// Fields of a claim template that the policies set, relative to the template.
const (
	templateClassField  = "/spec/storageClassName"
	templateLabelsField = "/metadata/labels"
)

// ClaimTemplatePointer is the pointer to rest (a field, or "" for the whole
// template) in claim template i.
func ClaimTemplatePointer(i int, rest string) string {
	return ClaimTemplatesPath + "/" + strconv.Itoa(i) + rest
}

// labelPointer is the pointer to one label of claim template i.
func labelPointer(i int, key string) string {
	return ClaimTemplatePointer(i, templateLabelsField+"/"+escapePointer(key))
}

// escapePointer escapes a map key for use in a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// TemplateChange is what one mutation changes in a claim template, read back
// from its pointer (ParseTemplateChange).
type TemplateChange struct {
	// Template is the claim template's index.
	Template int
	// Class: its storageClassName was set. LabelKey: that label was set.
	// Neither: the template itself was added.
	Class    bool
	LabelKey string
}

// ParseTemplateChange reads a pointer that the policies wrote for a claim
// template (ClaimTemplatePointer, labelPointer) back into what it changes.
// It reports false for any other pointer.
func ParseTemplateChange(path string) (TemplateChange, bool) {
	rest, ok := strings.CutPrefix(path, ClaimTemplatesPath+"/")
	if !ok {
		return TemplateChange{}, false
	}
	index, field, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || strconv.Itoa(i) != index {
		return TemplateChange{}, false
	}
	c := TemplateChange{Template: i}
	switch field = "/" + field; {
	case field == "/":
	case field == templateClassField:
		c.Class = true
	case strings.HasPrefix(field, templateLabelsField+"/"):
		token := strings.TrimPrefix(field, templateLabelsField+"/")
		key := strings.ReplaceAll(strings.ReplaceAll(token, "~1", "/"), "~0", "~")
		if strings.Contains(token, "/") || escapePointer(key) != token {
			return TemplateChange{}, false
		}
		c.LabelKey = key
	default:
		return TemplateChange{}, false
	}
	return c, true
}
