package cayenne

import (
	"strconv"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
)

// Name is the codec's name in errors and rejection records.
const Name = "cayenne"

// Type is one LPP data type: its code, the name its measurements carry, its unit, the size of
// its value in bytes and how the raw integers become values.
type Type struct {
	Code   byte
	Name   string   // measurement name before "_<channel>"; for several axes, one per axis
	Axes   []string // names of a multi-value type's parts ("accel_x", ...); nil for one value
	Unit   string
	Size   int     // bytes per value (all axes together)
	Signed bool    // the raw integers are two's complement
	Scale  float64 // value = raw × Scale
}

// Type codes with a meaning beyond a value.
const (
	TypeUnixtime = 133
	TypeGPS      = 136
)

// typeOf is the LPP table: original types first, then the extended ones. A function, not a
// package variable, so that nothing can change it.
func typeOf(code byte) (Type, bool) {
	switch code {
	case 0:
		return Type{Code: 0, Name: "digital_input", Size: 1, Scale: 1}, true
	case 1:
		return Type{Code: 1, Name: "digital_output", Size: 1, Scale: 1}, true
	case 2:
		return Type{Code: 2, Name: "analog_input", Size: 2, Signed: true, Scale: 0.01}, true
	case 3:
		return Type{Code: 3, Name: "analog_output", Size: 2, Signed: true, Scale: 0.01}, true
	case 100:
		return Type{Code: 100, Name: "generic", Size: 4, Scale: 1}, true
	case 101:
		return Type{Code: 101, Name: "illuminance", Unit: "lx", Size: 2, Scale: 1}, true
	case 102:
		return Type{Code: 102, Name: "presence", Size: 1, Scale: 1}, true
	case 103:
		return Type{Code: 103, Name: "temperature", Unit: "°C", Size: 2, Signed: true, Scale: 0.1}, true
	case 104:
		return Type{Code: 104, Name: "humidity", Unit: "%", Size: 1, Scale: 0.5}, true
	case 113:
		return Type{Code: 113, Name: "accelerometer", Axes: []string{"accel_x", "accel_y", "accel_z"}, Unit: "g", Size: 6, Signed: true, Scale: 0.001}, true
	case 115:
		return Type{Code: 115, Name: "barometer", Unit: "hPa", Size: 2, Scale: 0.1}, true
	case 116:
		return Type{Code: 116, Name: "voltage", Unit: "V", Size: 2, Scale: 0.01}, true
	case 117:
		return Type{Code: 117, Name: "current", Unit: "A", Size: 2, Scale: 0.001}, true
	case 118:
		return Type{Code: 118, Name: "frequency", Unit: "Hz", Size: 4, Scale: 1}, true
	case 120:
		return Type{Code: 120, Name: "percentage", Unit: "%", Size: 1, Scale: 1}, true
	case 121:
		return Type{Code: 121, Name: "altitude", Unit: "m", Size: 2, Signed: true, Scale: 1}, true
	case 125:
		return Type{Code: 125, Name: "concentration", Unit: "ppm", Size: 2, Scale: 1}, true
	case 128:
		return Type{Code: 128, Name: "power", Unit: "W", Size: 2, Scale: 1}, true
	case 130:
		return Type{Code: 130, Name: "distance", Unit: "m", Size: 4, Scale: 0.001}, true
	case 131:
		return Type{Code: 131, Name: "energy", Unit: "kWh", Size: 4, Scale: 0.001}, true
	case 132:
		return Type{Code: 132, Name: "direction", Unit: "°", Size: 2, Scale: 1}, true
	case 133:
		return Type{Code: 133, Name: "unixtime", Unit: "s", Size: 4, Scale: 1}, true
	case 134:
		return Type{Code: 134, Name: "gyrometer", Axes: []string{"gyro_x", "gyro_y", "gyro_z"}, Unit: "°/s", Size: 6, Signed: true, Scale: 0.01}, true
	case 135:
		return Type{Code: 135, Name: "colour", Axes: []string{"colour_r", "colour_g", "colour_b"}, Size: 3, Scale: 1}, true
	case 136:
		return Type{Code: 136, Name: "gps", Axes: []string{"latitude", "longitude", "gps_altitude"}, Unit: "°, °, m", Size: 9, Signed: true}, true
	case 142:
		return Type{Code: 142, Name: "switch", Size: 1, Scale: 1}, true
	}
	return Type{}, false
}

// Types returns the supported types by code (for documentation and profile checks).
func Types() []Type {
	var out []Type
	for c := range 256 {
		if t, ok := typeOf(byte(c)); ok {
			out = append(out, t)
		}
	}
	return out
}

// Decode returns the measurements of the LPP payload; received dates them unless the payload
// carries a unixtime.
func Decode(payload []byte, received time.Time) ([]codec.Measurement, error) {
	if len(payload) == 0 {
		return nil, codec.Errorf(Name, codec.ReasonSyntax, "empty payload")
	}
	out := make([]codec.Measurement, 0, len(payload)/3)
	var (
		dated    bool // a unixtime record was seen
		firstRun = 0  // measurements before the first unixtime: out[:firstRun] once dated
		ts       = received
	)
	for i := 0; i < len(payload); {
		if len(payload)-i < 2 {
			return nil, codec.Errorf(Name, codec.ReasonSchema, "byte %d: record cut short (channel without type)", i)
		}
		ch, code := payload[i], payload[i+1]
		t, ok := typeOf(code)
		if !ok {
			return nil, codec.Errorf(Name, codec.ReasonValue, "byte %d: channel %d has unknown type %d (0x%02x)", i, ch, code, code)
		}
		start := i + 2
		if len(payload)-start < t.Size {
			return nil, codec.Errorf(Name, codec.ReasonSchema, "byte %d: channel %d %s needs %d bytes, %d left", i, ch, t.Name, t.Size, len(payload)-start)
		}
		v := payload[start : start+t.Size]
		suffix := "_" + strconv.Itoa(int(ch))
		switch {
		case code == TypeUnixtime:
			sec := int64(uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]))
			at := time.Unix(sec, 0).UTC()
			if !codec.InRange(at) || sec == 0 {
				return nil, codec.Errorf(Name, codec.ReasonValue, "byte %d: unixtime %d is out of range", i, sec)
			}
			if !dated {
				for k := range out[:firstRun] {
					out[k].Time = at
				}
				dated = true
			}
			ts = at
		case code == TypeGPS:
			lat := float64(sint(v[0:3])) / 10000
			lon := float64(sint(v[3:6])) / 10000
			alt := float64(sint(v[6:9])) / 100
			if lat < -90 || lat > 90 || lon < -180 || lon > 180 {
				return nil, codec.Errorf(Name, codec.ReasonValue, "byte %d: channel %d gps %g,%g is not a position", i, ch, lat, lon)
			}
			out = append(out,
				codec.Measurement{Metric: t.Axes[0] + suffix, Time: ts, Value: lat},
				codec.Measurement{Metric: t.Axes[1] + suffix, Time: ts, Value: lon},
				codec.Measurement{Metric: t.Axes[2] + suffix, Time: ts, Value: alt})
		case t.Axes != nil:
			per := t.Size / len(t.Axes)
			for k, axis := range t.Axes {
				out = append(out, codec.Measurement{Metric: axis + suffix, Time: ts, Value: value(t, v[k*per:(k+1)*per])})
			}
		default:
			out = append(out, codec.Measurement{Metric: t.Name + suffix, Time: ts, Value: value(t, v)})
		}
		if !dated {
			firstRun = len(out)
		}
		i = start + t.Size
	}
	if len(out) == 0 {
		return nil, codec.Errorf(Name, codec.ReasonSchema, "no values (only unixtime records)")
	}
	return out, nil
}

func value(t Type, b []byte) float64 {
	if t.Signed {
		return roundScale(float64(sint(b)), t.Scale)
	}
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	return roundScale(float64(u), t.Scale)
}

// roundScale multiplies raw by scale and rounds to the scale's decimals, so that 272 × 0.1 is
// 27.2 and not 27.200000000000003.
func roundScale(raw, scale float64) float64 {
	switch scale {
	case 1:
		return raw
	case 0.1:
		return raw / 10
	case 0.01:
		return raw / 100
	case 0.001:
		return raw / 1000
	case 0.5:
		return raw / 2
	}
	return raw * scale
}

// sint reads a big-endian two's complement integer of len(b) bytes.
func sint(b []byte) int64 {
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	shift := 64 - 8*uint(len(b))
	return int64(u<<shift) >> shift
}
