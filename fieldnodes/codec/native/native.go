package native

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"sort"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
)

// Name is the codec's name in errors and rejection records.
const Name = "native"

// Metric names the top-level health members become.
const (
	MetricBatteryV = "battery_v"
	MetricRSSI     = "rssi_dbm"
)

type object struct {
	TS       json.RawMessage            `json:"ts"`
	Readings map[string]json.RawMessage `json:"readings"`
	BatteryV json.RawMessage            `json:"battery_v"`
	RSSI     json.RawMessage            `json:"rssi"`
}

// Decode returns the measurements of payload; received is the time used when the payload has no
// ts.
func Decode(payload []byte, received time.Time) ([]codec.Measurement, error) {
	if ms, ok := decodeFast(payload, received); ok {
		return ms, nil
	}
	return decodeGeneral(payload, received)
}

// decodeGeneral is Decode through encoding/json: every payload, every error.
func decodeGeneral(payload []byte, received time.Time) ([]codec.Measurement, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return nil, codec.Errorf(Name, codec.ReasonSyntax, "empty payload")
	}
	if trimmed[0] != '{' {
		if !json.Valid(trimmed) {
			return nil, codec.Errorf(Name, codec.ReasonSyntax, "not JSON")
		}
		return nil, codec.Errorf(Name, codec.ReasonSchema, "want a JSON object")
	}
	var o object
	if err := json.Unmarshal(trimmed, &o); err != nil {
		return nil, jsonError(err)
	}

	ts := received
	if len(o.TS) > 0 && string(o.TS) != "null" {
		var s string
		if err := json.Unmarshal(o.TS, &s); err != nil {
			return nil, codec.Errorf(Name, codec.ReasonSchema, "ts: want an RFC 3339 time string")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, codec.Errorf(Name, codec.ReasonValue, "ts: %q is not an RFC 3339 time", s)
		}
		if !codec.InRange(t) {
			return nil, codec.Errorf(Name, codec.ReasonValue, "ts: %s is out of range", s)
		}
		ts = t.UTC()
	}

	values := make(map[string]float64, len(o.Readings)+2)
	for name, raw := range o.Readings {
		if name == "" {
			return nil, codec.Errorf(Name, codec.ReasonSchema, "readings: empty metric name")
		}
		v, err := number(raw)
		if err != nil {
			return nil, codec.Errorf(Name, err.reason, "readings.%s: %s", name, err.detail)
		}
		values[name] = v
	}
	for _, h := range []struct {
		member, metric string
		raw            json.RawMessage
	}{{"battery_v", MetricBatteryV, o.BatteryV}, {"rssi", MetricRSSI, o.RSSI}} {
		if len(h.raw) == 0 || string(h.raw) == "null" {
			continue
		}
		v, err := number(h.raw)
		if err != nil {
			return nil, codec.Errorf(Name, err.reason, "%s: %s", h.member, err.detail)
		}
		values[h.metric] = v
	}
	if len(values) == 0 {
		return nil, codec.Errorf(Name, codec.ReasonSchema, "no readings")
	}

	out := make([]codec.Measurement, 0, len(values))
	for name, v := range values {
		out = append(out, codec.Measurement{Metric: name, Time: ts, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metric < out[j].Metric })
	return out, nil
}

type numberError struct{ reason, detail string }

func number(raw json.RawMessage) (float64, *numberError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return 0, &numberError{codec.ReasonSchema, "want a number"}
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, &numberError{codec.ReasonValue, "number out of range"}
	}
	return v, nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return codec.Errorf(Name, codec.ReasonSyntax, "not JSON: %v (at byte %d)", syn, syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := typ.Field
		if field == "" {
			field = "payload"
		}
		return codec.Errorf(Name, codec.ReasonSchema, "%s: want %s, got JSON %s", field, want(typ), typ.Value)
	}
	return codec.Errorf(Name, codec.ReasonSchema, "%v", err)
}

func want(typ *json.UnmarshalTypeError) string {
	if typ.Type == nil {
		return "another type"
	}
	switch typ.Type.Kind().String() {
	case "map", "struct":
		return "an object"
	}
	return typ.Type.String()
}
