package profile

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
)

// Decoders: what turns a payload into measurements.
const (
	DecoderNative  = "native"  // Aghali's JSON object, or a SenML pack (a JSON array)
	DecoderCayenne = "cayenne" // Cayenne LPP
	DecoderObject  = "object"  // the network server's decoded object (ChirpStack object, TTS decoded_payload)
)

// What happens to a value the map does not name.
const (
	UnmappedKeep = "keep" // stored under its own name (made a valid metric name for decoded objects)
	UnmappedDrop = "drop"
)

// FlagOutOfRange marks a reading outside its metric's plausible range (readings.flags bit 0).
const FlagOutOfRange int16 = 1

// Profile says how a device type's payloads become readings. Its JSON form is how custom
// profiles are written.
type Profile struct {
	// Name: 1 to 64 of a-z 0-9 . _ - (starting with a letter or digit).
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Decoder of the payload: native, cayenne or object. Default native.
	Decoder string `json:"decoder"`
	// Map: the decoder's name for a value → what to make of it.
	Map map[string]Rule `json:"map,omitempty"`
	// Unmapped: keep (default) or drop values the map does not name.
	Unmapped string `json:"unmapped,omitempty"`
	// ExpectedIntervalS is how often the device reports, seconds; 0: the node's own setting.
	ExpectedIntervalS int `json:"expected_interval_s,omitempty"`
	// BatteryLowV and BatteryLowPct: a battery at or below either is low (alerts). nil: no
	// threshold of that kind (defaults apply, see Thresholds).
	BatteryLowV   *float64 `json:"battery_low_v,omitempty"`
	BatteryLowPct *float64 `json:"battery_low_pct,omitempty"`
	// DepthM and HeightM: where the sensor sits (below or above ground); given to a node
	// registered with this profile that has none of its own.
	DepthM  *float64 `json:"depth_m,omitempty"`
	HeightM *float64 `json:"height_m,omitempty"`
	// Ranges: plausible range of a metric, replacing DefaultRange.
	Ranges map[string]Range `json:"ranges,omitempty"`
	// BuiltIn: defined by Aghali (read only). Set by the registry, ignored in input.
	BuiltIn bool `json:"built_in"`
}

// Rule is what to make of one value.
type Rule struct {
	// Metric to store it as; "" drops the value.
	Metric string `json:"metric"`
	// Calibration applied to the decoded value first.
	Calibration *Calibration `json:"calibration,omitempty"`
	// Unit the (calibrated) value is in, converted to the metric's unit; "" when it already is.
	Unit string `json:"unit,omitempty"`
	// DepthM and HeightM of this sensor when it differs from the profile's (documentation).
	DepthM  *float64 `json:"depth_m,omitempty"`
	HeightM *float64 `json:"height_m,omitempty"`
}

// Calibration maps a raw value x to a physical one: Linear y = scale·x + offset, or Poly
// y = c0 + c1·x + c2·x² + … (one of the two).
type Calibration struct {
	Linear *Linear   `json:"linear,omitempty"`
	Poly   []float64 `json:"poly,omitempty"`
}

// Linear is y = Scale·x + Offset.
type Linear struct {
	Scale  float64 `json:"scale"`
	Offset float64 `json:"offset"`
}

// Range is a plausible range, both ends included; a nil end is open.
type Range struct {
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// Value is a reading a profile made of a measurement.
type Value struct {
	Metric string
	Time   time.Time
	Value  float64
	Flags  int16
}

// Compiled is a checked profile, ready to Apply. Read only; safe for concurrent use.
type Compiled struct {
	Profile
	rules  map[string]compiledRule
	ranges map[string][2]float64
}

type compiledRule struct {
	metric  string
	poly    []float64 // nil: no calibration
	convert func(float64) float64
}

// ValidName reports whether s may name a profile.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// validMetric is the catalogue's rule for metric names (^[a-z0-9_]{1,64}$).
func validMetric(s string) bool {
	if len(s) == 0 || len(s) > 64 {
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

// Error is a profile that cannot be used; Field names what is wrong ("map.temperature_3.unit").
type Error struct {
	Field   string
	Problem string
}

func (e *Error) Error() string { return fmt.Sprintf("profile %s: %s", e.Field, e.Problem) }

func errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Parse reads a profile's JSON form (unknown members are refused) and compiles it.
func Parse(b []byte) (*Compiled, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, errorf("json", "%v", err)
	}
	if dec.More() {
		return nil, errorf("json", "more than one JSON value")
	}
	p.BuiltIn = false
	return p.Compile()
}

// Compile checks p and returns it ready to Apply.
func (p Profile) Compile() (*Compiled, error) {
	if !ValidName(p.Name) {
		return nil, errorf("name", "must be 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
	}
	if p.Decoder == "" {
		p.Decoder = DecoderNative
	}
	switch p.Decoder {
	case DecoderNative, DecoderCayenne, DecoderObject:
	default:
		return nil, errorf("decoder", "%q is not one of native, cayenne, object", p.Decoder)
	}
	if p.Unmapped == "" {
		p.Unmapped = UnmappedKeep
	}
	if p.Unmapped != UnmappedKeep && p.Unmapped != UnmappedDrop {
		return nil, errorf("unmapped", "%q is neither keep nor drop", p.Unmapped)
	}
	if p.ExpectedIntervalS < 0 {
		return nil, errorf("expected_interval_s", "must not be negative")
	}
	for field, v := range map[string]*float64{"battery_low_v": p.BatteryLowV, "battery_low_pct": p.BatteryLowPct, "depth_m": p.DepthM, "height_m": p.HeightM} {
		if v != nil && !finite(*v) {
			return nil, errorf(field, "must be a number")
		}
	}
	c := &Compiled{Profile: p, rules: make(map[string]compiledRule, len(p.Map)), ranges: map[string][2]float64{}}
	for src, r := range p.Map {
		field := "map." + src
		if src == "" {
			return nil, errorf("map", "empty source name")
		}
		cr := compiledRule{metric: r.Metric}
		if r.Metric != "" && !validMetric(r.Metric) {
			return nil, errorf(field+".metric", "%q is not a metric name (1 to 64 of a-z, 0-9, _)", r.Metric)
		}
		if cal := r.Calibration; cal != nil {
			switch {
			case cal.Linear != nil && cal.Poly != nil:
				return nil, errorf(field+".calibration", "linear or poly, not both")
			case cal.Linear != nil:
				cr.poly = []float64{cal.Linear.Offset, cal.Linear.Scale}
			case len(cal.Poly) > 0 && len(cal.Poly) <= 8:
				cr.poly = append([]float64(nil), cal.Poly...)
			default:
				return nil, errorf(field+".calibration", "linear, or poly with 1 to 8 coefficients")
			}
			for _, k := range cr.poly {
				if !finite(k) {
					return nil, errorf(field+".calibration", "coefficients must be numbers")
				}
			}
		}
		if r.Unit != "" && r.Metric != "" {
			to := MetricUnit(r.Metric)
			conv, ok := converter(r.Unit, to)
			if !ok {
				if to == "" {
					return nil, errorf(field+".unit", "metric %s has no unit to convert %s to", r.Metric, r.Unit)
				}
				return nil, errorf(field+".unit", "%s cannot be converted to %s (the unit of %s)", r.Unit, to, r.Metric)
			}
			cr.convert = conv
		}
		c.rules[src] = cr
	}
	for metric, rg := range p.Ranges {
		if !validMetric(metric) {
			return nil, errorf("ranges", "%q is not a metric name", metric)
		}
		lo, hi := math.Inf(-1), math.Inf(1)
		if rg.Min != nil {
			lo = *rg.Min
		}
		if rg.Max != nil {
			hi = *rg.Max
		}
		if math.IsNaN(lo) || math.IsNaN(hi) || lo > hi {
			return nil, errorf("ranges."+metric, "min must not be above max")
		}
		c.ranges[metric] = [2]float64{lo, hi}
	}
	return c, nil
}

// Apply makes readings of decoded measurements, appending them to dst: each value goes through
// the map (calibration, then unit conversion, then its metric), unmapped values are kept or
// dropped as the profile says, and every reading outside its metric's plausible range is
// flagged. It fails when a calibration or conversion gives no finite number, or when a kept
// name cannot be a metric name.
func (c *Compiled) Apply(dst []Value, ms []codec.Measurement) ([]Value, error) {
	for _, m := range ms {
		metric, v := m.Metric, m.Value
		if r, ok := c.rules[m.Metric]; ok {
			if r.metric == "" {
				continue
			}
			metric = r.metric
			if r.poly != nil {
				v = horner(r.poly, v)
			}
			if r.convert != nil {
				v = r.convert(v)
			}
		} else {
			if c.Unmapped == UnmappedDrop {
				continue
			}
			if c.Decoder == DecoderObject {
				metric = MetricName(metric)
				if metric == "" {
					continue // nothing of the name survives; not a value we can name
				}
			}
		}
		if !finite(v) {
			return dst, fmt.Errorf("%s: %g gives no finite number", m.Metric, m.Value)
		}
		dst = append(dst, Value{Metric: metric, Time: m.Time, Value: v, Flags: c.flags(metric, v)})
	}
	return dst, nil
}

func (c *Compiled) flags(metric string, v float64) int16 {
	lo, hi, ok := DefaultRange(metric)
	if r, own := c.ranges[metric]; own {
		lo, hi, ok = r[0], r[1], true
	}
	if ok && (v < lo || v > hi) {
		return FlagOutOfRange
	}
	return 0
}

// MetricName makes a metric name of a decoded object's path: lower case, runs of anything
// outside a-z 0-9 become one "_", at most 64 characters; "" when nothing is left.
// "soil.Moisture" → "soil_moisture", "BatV" → "batv".
func MetricName(path string) string {
	var b strings.Builder
	under := false
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	s := strings.TrimRight(b.String(), "_")
	if len(s) > 64 {
		s = strings.TrimRight(s[:64], "_")
	}
	return s
}

func horner(poly []float64, x float64) float64 {
	y := 0.0
	for i := len(poly) - 1; i >= 0; i-- {
		y = y*x + poly[i]
	}
	return y
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Thresholds are a profile's battery thresholds with the defaults filled in: 3.3 V and 20 %
// unless the profile says otherwise.
func (c *Compiled) Thresholds() (lowV, lowPct float64) {
	lowV, lowPct = 3.3, 20
	if c.BatteryLowV != nil {
		lowV = *c.BatteryLowV
	}
	if c.BatteryLowPct != nil {
		lowPct = *c.BatteryLowPct
	}
	return lowV, lowPct
}

// Sources lists the map's source names, sorted (for documentation).
func (c *Compiled) Sources() []string {
	out := make([]string, 0, len(c.Map))
	for k := range c.Map {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
