package policies

import "testing"

func TestParseTemplateChangeReadsBackThePoliciesPointers(t *testing.T) {
	for _, tc := range []struct {
		path string
		want TemplateChange
	}{
		{ClaimTemplatePointer(3, ""), TemplateChange{Template: 3}},
		{ClaimTemplatePointer(0, templateClassField), TemplateChange{Template: 0, Class: true}},
		{labelPointer(1, "stateguard.dev/snapshot-schedule"), TemplateChange{Template: 1, LabelKey: "stateguard.dev/snapshot-schedule"}},
		{labelPointer(2, "a~b/c"), TemplateChange{Template: 2, LabelKey: "a~b/c"}},
	} {
		got, ok := ParseTemplateChange(tc.path)
		if !ok || got != tc.want {
			t.Errorf("ParseTemplateChange(%q) = %+v, %v; want %+v", tc.path, got, ok, tc.want)
		}
	}
	for _, path := range []string{
		"", "/spec/serviceName", ClaimTemplatesPath, ClaimTemplatesPath + "/x", ClaimTemplatesPath + "/-1",
		ClaimTemplatesPath + "/01", ClaimTemplatesPath + "/0/spec/volumeMode", ClaimTemplatesPath + "/0/metadata/labels",
		ClaimTemplatesPath + "/0/metadata/labels/a/b", ClaimTemplatesPath + "/0/metadata/labels/a~2",
	} {
		if got, ok := ParseTemplateChange(path); ok {
			t.Errorf("ParseTemplateChange(%q) = %+v, want not ok", path, got)
		}
	}
}
