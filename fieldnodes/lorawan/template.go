package lorawan

import (
	"fmt"
	"regexp"
	"strings"
)

// Template is a topic template such as "application/{application_id}/device/{dev_eui}/event/{event}":
// literal text and {placeholders}. A placeholder stands for text within one topic level, except
// {event}, which must be the template's last level and may span several ("down/ack"). Filter is
// the subscription that receives every matching topic; Match takes a topic apart.
type Template struct {
	text   string
	filter string
	re     *regexp.Regexp
	names  []string
}

// ParseTemplate checks and compiles a topic template.
func ParseTemplate(text string) (*Template, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("topic template: empty")
	}
	if strings.ContainsAny(text, "+#") || strings.HasPrefix(text, "$") {
		return nil, fmt.Errorf("topic template %q: no MQTT wildcards or $ topics; use {placeholders}", text)
	}
	levels := strings.Split(text, "/")
	if levels[len(levels)-1] != "{event}" {
		return nil, fmt.Errorf("topic template %q: the last level must be {event}", text)
	}
	var (
		pattern strings.Builder
		filter  []string
		names   []string
		seen    = map[string]bool{}
	)
	pattern.WriteString("^")
	for i, level := range levels {
		if i > 0 {
			pattern.WriteString("/")
		}
		if i == len(levels)-1 {
			pattern.WriteString("(.+)")
			filter = append(filter, "#")
			names = append(names, "event")
			break
		}
		if level == "" {
			return nil, fmt.Errorf("topic template %q: empty level", text)
		}
		wild := false
		rest := level
		for rest != "" {
			open := strings.IndexByte(rest, '{')
			if open < 0 {
				pattern.WriteString(regexp.QuoteMeta(rest))
				break
			}
			pattern.WriteString(regexp.QuoteMeta(rest[:open]))
			end := strings.IndexByte(rest[open:], '}')
			if end < 0 {
				return nil, fmt.Errorf("topic template %q: unclosed {", text)
			}
			name := rest[open+1 : open+end]
			if !validName(name) || name == "event" || seen[name] {
				return nil, fmt.Errorf("topic template %q: bad or repeated placeholder {%s}", text, name)
			}
			seen[name] = true
			names = append(names, name)
			pattern.WriteString("([^/]*?)")
			wild = true
			rest = rest[open+end+1:]
			if strings.HasPrefix(rest, "{") {
				return nil, fmt.Errorf("topic template %q: two placeholders need text between them", text)
			}
		}
		if strings.ContainsAny(strings.ReplaceAll(level, "{", ""), "}") && !wild {
			return nil, fmt.Errorf("topic template %q: stray }", text)
		}
		if wild {
			filter = append(filter, "+")
		} else {
			filter = append(filter, level)
		}
	}
	pattern.WriteString("$")
	re, err := regexp.Compile(pattern.String())
	if err != nil {
		return nil, fmt.Errorf("topic template %q: %w", text, err)
	}
	return &Template{text: text, filter: strings.Join(filter, "/"), re: re, names: names}, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// String is the template as written.
func (t *Template) String() string { return t.text }

// Filter is the MQTT subscription filter that receives every topic the template matches.
func (t *Template) Filter() string { return t.filter }

// Names are the template's placeholders other than {event}, in order.
func (t *Template) Names() []string {
	out := make([]string, 0, len(t.names))
	for _, n := range t.names {
		if n != "event" {
			out = append(out, n)
		}
	}
	return out
}

// Match reports whether topic fits the template, and the value of each placeholder (the event
// under "event").
func (t *Template) Match(topic string) (map[string]string, bool) {
	m := t.re.FindStringSubmatch(topic)
	if m == nil {
		return nil, false
	}
	out := make(map[string]string, len(t.names))
	for i, n := range t.names {
		out[n] = m[i+1]
	}
	return out, true
}
