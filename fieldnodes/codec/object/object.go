package object

import (
	"bytes"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
)

// Name is the codec's name in errors and rejection records.
const Name = "object"

// Limits that keep a hostile object from costing much.
const (
	MaxDepth  = 8
	MaxValues = 1000
)

// Decode returns the measurements of the decoded object in payload; received dates them unless
// the object carries its own time.
func Decode(payload []byte, received time.Time) ([]codec.Measurement, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return nil, codec.Errorf(Name, codec.ReasonSyntax, "empty payload")
	}
	if !json.Valid(trimmed) {
		return nil, codec.Errorf(Name, codec.ReasonSyntax, "not JSON")
	}
	if trimmed[0] != '{' {
		return nil, codec.Errorf(Name, codec.ReasonSchema, "want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, codec.Errorf(Name, codec.ReasonSchema, "%v", err)
	}

	ts := received
	for _, k := range []string{"ts", "time", "timestamp"} {
		s, ok := root[k].(string)
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !codec.InRange(t) {
			return nil, codec.Errorf(Name, codec.ReasonValue, "%s: %q is not an RFC 3339 time within 1970–9999", k, s)
		}
		ts = t.UTC()
		delete(root, k)
		break
	}

	w := walker{ts: ts}
	if err := w.walk("", root, 1); err != nil {
		return nil, err
	}
	if len(w.out) == 0 {
		return nil, codec.Errorf(Name, codec.ReasonSchema, "no numeric values")
	}
	sort.Slice(w.out, func(i, j int) bool { return w.out[i].Metric < w.out[j].Metric })
	return w.out, nil
}

type walker struct {
	ts  time.Time
	out []codec.Measurement
}

func (w *walker) walk(path string, v any, depth int) error {
	switch x := v.(type) {
	case map[string]any:
		if depth > MaxDepth {
			return codec.Errorf(Name, codec.ReasonSchema, "%s: nested deeper than %d", path, MaxDepth)
		}
		for k, c := range x {
			if err := w.walk(join(path, k), c, depth+1); err != nil {
				return err
			}
		}
	case []any:
		if depth > MaxDepth {
			return codec.Errorf(Name, codec.ReasonSchema, "%s: nested deeper than %d", path, MaxDepth)
		}
		for i, c := range x {
			if err := w.walk(join(path, strconv.Itoa(i)), c, depth+1); err != nil {
				return err
			}
		}
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return codec.Errorf(Name, codec.ReasonValue, "%s: number out of range", path)
		}
		return w.add(path, f)
	case bool:
		if x {
			return w.add(path, 1)
		}
		return w.add(path, 0)
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return w.add(path, f)
		}
	}
	return nil // null, other strings: not a value
}

func (w *walker) add(path string, v float64) error {
	if path == "" {
		return codec.Errorf(Name, codec.ReasonSchema, "a value without a name")
	}
	if len(w.out) >= MaxValues {
		return codec.Errorf(Name, codec.ReasonValue, "too many values: more than %d", MaxValues)
	}
	w.out = append(w.out, codec.Measurement{Metric: path, Time: w.ts, Value: v})
	return nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
