package native

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
)

// decodeFast decodes the common shape of a native payload without encoding/json: one pass,
// few allocations. It takes only what it can decode exactly as Decode's general path would
// (plain member names, numbers, a ts string without escapes) and gives up (ok false) on
// anything else: unusual names, escapes, errors of any kind. Decode then takes the general
// path, which also words the errors. FuzzFastMatchesGeneral holds the two to the same results.
func decodeFast(p []byte, received time.Time) (ms []codec.Measurement, ok bool) {
	s := scanner{b: p}
	s.space()
	if !s.eat('{') {
		return nil, false
	}
	var (
		ts                       = received
		seenTS, seenR, seenB, sR bool
		battery, rssi            float64
		hasBattery, hasRSSI      bool
	)
	out := make([]codec.Measurement, 0, 6)
	s.space()
	if s.eat('}') {
		return nil, false // no readings: the general path says so
	}
	for {
		s.space()
		key, ok := s.plainString()
		if !ok {
			return nil, false
		}
		s.space()
		if !s.eat(':') {
			return nil, false
		}
		s.space()
		switch string(key) {
		case "ts":
			if seenTS {
				return nil, false
			}
			seenTS = true
			if s.literal("null") {
				break
			}
			v, ok := s.plainString()
			if !ok {
				return nil, false
			}
			t, err := time.Parse(time.RFC3339Nano, string(v))
			if err != nil || !codec.InRange(t) {
				return nil, false
			}
			ts = t.UTC()
		case "readings":
			if seenR {
				return nil, false
			}
			seenR = true
			if s.literal("null") {
				break
			}
			if !s.eat('{') {
				return nil, false
			}
			s.space()
			if !s.eat('}') {
				for {
					s.space()
					name, ok := s.plainString()
					if !ok || len(name) == 0 {
						return nil, false
					}
					s.space()
					if !s.eat(':') {
						return nil, false
					}
					s.space()
					v, ok := s.number()
					if !ok {
						return nil, false
					}
					metric := metricName(name)
					for _, m := range out {
						if m.Metric == metric {
							return nil, false // a repeated name: the general path keeps the last
						}
					}
					out = append(out, codec.Measurement{Metric: metric, Value: v})
					s.space()
					if s.eat('}') {
						break
					}
					if !s.eat(',') {
						return nil, false
					}
				}
			}
		case "battery_v", "rssi":
			if string(key) == "battery_v" {
				if seenB {
					return nil, false
				}
				seenB = true
			} else {
				if sR {
					return nil, false
				}
				sR = true
			}
			if s.literal("null") {
				break
			}
			v, ok := s.number()
			if !ok {
				return nil, false
			}
			if string(key) == "battery_v" {
				battery, hasBattery = v, true
			} else {
				rssi, hasRSSI = v, true
			}
		default:
			if foldsToField(key) {
				return nil, false // encoding/json matches names case-insensitively
			}
			if !s.skipValue(0) {
				return nil, false
			}
		}
		s.space()
		if s.eat('}') {
			break
		}
		if !s.eat(',') {
			return nil, false
		}
	}
	s.space()
	if s.i != len(s.b) {
		return nil, false
	}
	// The top-level health members win over the same names inside readings.
	for _, h := range []struct {
		metric string
		v      float64
		has    bool
	}{{MetricBatteryV, battery, hasBattery}, {MetricRSSI, rssi, hasRSSI}} {
		if !h.has {
			continue
		}
		replaced := false
		for i := range out {
			if out[i].Metric == h.metric {
				out[i].Value, replaced = h.v, true
			}
		}
		if !replaced {
			out = append(out, codec.Measurement{Metric: h.metric, Value: h.v})
		}
	}
	if len(out) == 0 {
		return nil, false
	}
	for i := range out {
		out[i].Time = ts
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metric < out[j].Metric })
	return out, true
}

// foldsToField: a member name encoding/json would take for one of the object's fields.
func foldsToField(key []byte) bool {
	for _, f := range [...]string{"ts", "readings", "battery_v", "rssi"} {
		if len(key) == len(f) && equalFoldASCII(key, f) {
			return true
		}
	}
	// Non-ASCII letters (the Kelvin sign folds to k, the long s to s): leave to the general path.
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func equalFoldASCII(b []byte, s string) bool {
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// metricName returns name as a string, without allocating for the contract's metrics.
func metricName(b []byte) string {
	switch string(b) {
	case "soil_vwc":
		return "soil_vwc"
	case "soil_temp_c":
		return "soil_temp_c"
	case "soil_ec_ds_m":
		return "soil_ec_ds_m"
	case "air_temp_c":
		return "air_temp_c"
	case "air_rh_pct":
		return "air_rh_pct"
	case "dew_point_c":
		return "dew_point_c"
	case "wind_speed_ms":
		return "wind_speed_ms"
	case "wind_dir_deg":
		return "wind_dir_deg"
	case "solar_rad_wm2":
		return "solar_rad_wm2"
	case "rain_mm":
		return "rain_mm"
	case "pressure_hpa":
		return "pressure_hpa"
	case "leaf_wetness":
		return "leaf_wetness"
	case "flow_lpm":
		return "flow_lpm"
	case "volume_l":
		return "volume_l"
	case "water_level_m":
		return "water_level_m"
	case "battery_v":
		return "battery_v"
	case "battery_pct":
		return "battery_pct"
	case "rssi_dbm":
		return "rssi_dbm"
	case "snr_db":
		return "snr_db"
	}
	return string(b)
}

// scanner reads JSON tokens from b.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// plainString reads a string without escapes or control characters (anything else: not ok).
// Non-ASCII bytes are taken only when they are valid UTF-8, as encoding/json would keep them.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// number reads a JSON number that number() of the general path accepts: finite, as a float64.
func (s *scanner) number() (float64, bool) {
	start := s.i
	if s.eat('-') {
	}
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
	default:
		return 0, false
	}
	if s.eat('.') {
		if !s.digits() {
			return 0, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// skipValue passes over any JSON value (validating it), up to a nesting depth.
func (s *scanner) skipValue(depth int) bool {
	if depth > 32 || s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.i++
		s.space()
		if s.eat(end) {
			return true
		}
		for {
			s.space()
			if c == '{' {
				if !s.skipString() {
					return false
				}
				s.space()
				if !s.eat(':') {
					return false
				}
				s.space()
			}
			if !s.skipValue(depth + 1) {
				return false
			}
			s.space()
			if s.eat(end) {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		_, ok := s.number()
		return ok
	}
}

// skipString passes over a string, escapes included; strings with anything unusual (invalid
// escapes, control characters, bytes beyond ASCII) are left to the general path.
func (s *scanner) skipString() bool {
	if !s.eat('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				s.i += 6
			default:
				return false
			}
		case c < 0x20 || c >= 0x80:
			return false
		default:
			s.i++
		}
	}
	return false
}
