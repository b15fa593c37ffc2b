package lorawan

import (
	"fmt"
	"slices"
	"strings"
)

// DownTemplate is the topic a network server takes a device's downlinks on, with {placeholders}
// for what varies: "application/{application_id}/device/{dev_eui}/command/down". Its
// placeholders are filled from the device's uplink topic: the values its Template matched.
type DownTemplate struct {
	text  string
	parts []string // literal text at even indexes, placeholder names at odd ones
	names []string
}

// ParseDownTemplate checks and compiles a downlink topic template: no MQTT wildcards, no empty
// level, no {event}, and text between two placeholders.
func ParseDownTemplate(text string) (*DownTemplate, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("downlink topic template: empty")
	}
	if strings.ContainsAny(text, "+#") || strings.HasPrefix(text, "$") {
		return nil, fmt.Errorf("downlink topic template %q: no MQTT wildcards or $ topics; use {placeholders}", text)
	}
	if slices.Contains(strings.Split(text, "/"), "") {
		return nil, fmt.Errorf("downlink topic template %q: empty level", text)
	}
	t := &DownTemplate{text: text}
	rest := text
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.ContainsRune(rest, '}') {
				return nil, fmt.Errorf("downlink topic template %q: stray }", text)
			}
			t.parts = append(t.parts, rest)
			return t, nil
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("downlink topic template %q: unclosed {", text)
		}
		lit, name := rest[:open], rest[open+1:open+end]
		if strings.ContainsRune(lit, '}') {
			return nil, fmt.Errorf("downlink topic template %q: stray }", text)
		}
		if !validName(name) || name == "event" {
			return nil, fmt.Errorf("downlink topic template %q: bad placeholder {%s}", text, name)
		}
		if len(t.parts) > 0 && lit == "" {
			return nil, fmt.Errorf("downlink topic template %q: two placeholders need text between them", text)
		}
		t.parts = append(t.parts, lit, name)
		if !slices.Contains(t.names, name) {
			t.names = append(t.names, name)
		}
		rest = rest[open+end+1:]
	}
}

// String is the template as written.
func (t *DownTemplate) String() string { return t.text }

// Names are the template's placeholders, in the order they first appear.
func (t *DownTemplate) Names() []string { return slices.Clone(t.names) }

// Topic fills the placeholders with vars. A placeholder without a value, or a value that is
// empty or holds '/', '+' or '#', is an error: the topic would name another device or none.
func (t *DownTemplate) Topic(vars map[string]string) (string, error) {
	var b strings.Builder
	for i, p := range t.parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		v, ok := vars[p]
		if !ok || v == "" || strings.ContainsAny(v, "/+#") {
			return "", fmt.Errorf("downlink topic %s: no usable value for {%s} (got %q)", t.text, p, v)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// Filter is a subscription filter receiving every topic of the template and its siblings
// (the levels with a placeholder become +, the last level #): what a network server
// subscribes to for its downlinks, "application/+/device/+/command/#".
func (t *DownTemplate) Filter() string {
	levels := strings.Split(t.text, "/")
	for i, l := range levels {
		switch {
		case i == len(levels)-1:
			levels[i] = "#"
		case strings.ContainsRune(l, '{'):
			levels[i] = "+"
		}
	}
	return strings.Join(levels, "/")
}
