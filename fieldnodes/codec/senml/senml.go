package senml

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
)

// Name is the codec's name in errors and rejection records.
const Name = "senml"

// relativeLimit: times below 2^28 seconds are relative to now (RFC 8428 section 4.5.3).
const relativeLimit = 1 << 28

// maxVersion is the SenML version this decoder understands (RFC 8428's default).
const maxVersion = 10

// record is one SenML record; pointers tell absent from zero.
type record struct {
	BaseName    *string  `json:"bn"`
	BaseTime    *float64 `json:"bt"`
	BaseUnit    *string  `json:"bu"`
	BaseValue   *float64 `json:"bv"`
	BaseSum     *float64 `json:"bs"`
	BaseVersion *float64 `json:"bver"`
	Name        *string  `json:"n"`
	Unit        *string  `json:"u"`
	Value       *float64 `json:"v"`
	StringValue *string  `json:"vs"`
	BoolValue   *bool    `json:"vb"`
	DataValue   *string  `json:"vd"`
	Sum         *float64 `json:"s"`
	Time        *float64 `json:"t"`
	UpdateTime  *float64 `json:"ut"`
}

// Decode returns the measurements of the SenML pack payload; received resolves relative times.
func Decode(payload []byte, received time.Time) ([]codec.Measurement, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return nil, codec.Errorf(Name, codec.ReasonSyntax, "empty payload")
	}
	if !json.Valid(trimmed) {
		return nil, codec.Errorf(Name, codec.ReasonSyntax, "not JSON")
	}
	if trimmed[0] != '[' {
		return nil, codec.Errorf(Name, codec.ReasonSchema, "want a JSON array (a SenML pack)")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, codec.Errorf(Name, codec.ReasonSchema, "%v", err)
	}
	if len(raws) == 0 {
		return nil, codec.Errorf(Name, codec.ReasonSchema, "empty pack")
	}

	var (
		baseName                     string
		baseTime, baseValue, baseSum float64
		out                          = make([]codec.Measurement, 0, len(raws))
	)
	for i, raw := range raws {
		if err := mustUnderstand(raw); err != nil {
			return nil, recordError(i, codec.ReasonSchema, "%v", err)
		}
		var r record
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, recordError(i, codec.ReasonSchema, "%s", fieldError(err))
		}
		if r.BaseVersion != nil && *r.BaseVersion > maxVersion {
			return nil, recordError(i, codec.ReasonValue, "bver %g is newer than this decoder (10)", *r.BaseVersion)
		}
		if r.BaseName != nil {
			baseName = *r.BaseName
		}
		if r.BaseTime != nil {
			baseTime = *r.BaseTime
		}
		if r.BaseValue != nil {
			baseValue = *r.BaseValue
		}
		if r.BaseSum != nil {
			baseSum = *r.BaseSum
		}

		hasValue := r.Value != nil || r.Sum != nil || r.BoolValue != nil || r.StringValue != nil || r.DataValue != nil
		hasBase := r.BaseName != nil || r.BaseTime != nil || r.BaseValue != nil || r.BaseSum != nil ||
			r.BaseVersion != nil || r.BaseUnit != nil
		if !hasValue && r.Name == nil && hasBase {
			// A record of base fields only: it sets what follows and has no measurement itself.
			continue
		}

		name := baseName
		if r.Name != nil {
			name += *r.Name
		}
		if name == "" {
			return nil, recordError(i, codec.ReasonSchema, "no name (neither bn nor n)")
		}
		if !validName(name) {
			return nil, recordError(i, codec.ReasonSchema, "name %q has characters RFC 8428 does not allow", name)
		}
		device, metric := split(name)
		if metric == "" {
			return nil, recordError(i, codec.ReasonSchema, "name %q has no metric after its device part", name)
		}

		var value float64
		switch {
		case r.Value != nil:
			value = baseValue + *r.Value
		case r.Sum != nil:
			value = baseSum + *r.Sum
		case r.BoolValue != nil:
			if *r.BoolValue {
				value = 1
			}
		case r.StringValue != nil:
			return nil, recordError(i, codec.ReasonValue, "%s: string values (vs) are not supported", name)
		case r.DataValue != nil:
			return nil, recordError(i, codec.ReasonValue, "%s: data values (vd) are not supported", name)
		default:
			return nil, recordError(i, codec.ReasonSchema, "%s: no value (v, vb or s)", name)
		}
		if math.IsInf(value, 0) || math.IsNaN(value) {
			return nil, recordError(i, codec.ReasonValue, "%s: value out of range", name)
		}

		t := baseTime
		if r.Time != nil {
			t += *r.Time
		}
		ts, ok := resolveTime(t, received)
		if !ok {
			return nil, recordError(i, codec.ReasonValue, "%s: time %g is out of range", name, t)
		}
		out = append(out, codec.Measurement{Device: device, Metric: metric, Time: ts, Value: value})
	}
	if len(out) == 0 {
		return nil, codec.Errorf(Name, codec.ReasonSchema, "pack has no values")
	}
	return out, nil
}

// resolveTime turns SenML seconds into a time: relative to received below 2^28, absolute above.
func resolveTime(t float64, received time.Time) (time.Time, bool) {
	if math.IsNaN(t) || math.IsInf(t, 0) {
		return time.Time{}, false
	}
	if math.Abs(t) < relativeLimit {
		if t == 0 {
			return received, true
		}
		ts := received.Add(time.Duration(math.Round(t * float64(time.Second))))
		return ts, codec.InRange(ts)
	}
	if t < 0 || t > codec.MaxUnix {
		return time.Time{}, false
	}
	sec := math.Floor(t)
	nsec := math.Round((t - sec) * 1e9)
	return time.Unix(int64(sec), int64(nsec)).UTC(), true
}

// split cuts a resolved name into its device part and metric at the last ':' or '/'.
func split(name string) (device, metric string) {
	i := strings.LastIndexAny(name, ":/")
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

// validName: RFC 8428 section 4.5.1.
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return false
		}
		if !alnum && c != '-' && c != ':' && c != '.' && c != '/' && c != '_' {
			return false
		}
	}
	return true
}

// mustUnderstand refuses a record with a field whose name ends in "_" (RFC 8428 section 4.4).
func mustUnderstand(raw json.RawMessage) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return errors.New("want a JSON object")
	}
	for k := range fields {
		if strings.HasSuffix(k, "_") {
			return errors.New("must-understand field " + k + " is not supported")
		}
	}
	return nil
}

func fieldError(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return typ.Field + ": wrong type (JSON " + typ.Value + ")"
	}
	return err.Error()
}

func recordError(i int, reason, format string, args ...any) error {
	e := codec.Errorf(Name, reason, format, args...)
	e.Detail = "record " + strconv.Itoa(i) + ": " + e.Detail
	return e
}
