package profile_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/profile"
)

var at = time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)

func ms(kv ...any) []codec.Measurement {
	var out []codec.Measurement
	for i := 0; i < len(kv); i += 2 {
		out = append(out, codec.Measurement{Metric: kv[i].(string), Time: at, Value: kv[i+1].(float64)})
	}
	return out
}

func apply(t *testing.T, c *profile.Compiled, in []codec.Measurement) map[string]profile.Value {
	t.Helper()
	vs, err := c.Apply(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]profile.Value{}
	for _, v := range vs {
		if _, dup := out[v.Metric]; dup {
			t.Fatalf("metric %s twice", v.Metric)
		}
		out[v.Metric] = v
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestBuiltinsCompileAndAreDocumented(t *testing.T) {
	all := profile.Builtins()
	if len(all) < 8 {
		t.Fatalf("%d built-in profiles", len(all))
	}
	for _, c := range all {
		if !c.BuiltIn || c.Description == "" || c.ExpectedIntervalS <= 0 {
			t.Errorf("%s: built_in %v, description %q, interval %d", c.Name, c.BuiltIn, c.Description, c.ExpectedIntervalS)
		}
		for _, src := range c.Sources() {
			if m := c.Map[src].Metric; m != "" && profile.MetricUnit(m) == "" {
				t.Errorf("%s maps %s to %s, which is not a contract metric", c.Name, src, m)
			}
		}
	}
	if _, ok := profile.Builtin("no-such"); ok {
		t.Error("an unknown name is built in")
	}
}

func TestChirpStackFixtureThroughAProfile(t *testing.T) {
	c, err := profile.Parse([]byte(`{"name":"north-plot","decoder":"cayenne","map":{
		"temperature_3":{"metric":"air_temp_c"},"temperature_5":{"metric":"soil_temp_c","depth_m":0.1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := apply(t, c, ms("temperature_3", 27.2, "temperature_5", 25.5))
	if got["air_temp_c"].Value != 27.2 || got["soil_temp_c"].Value != 25.5 || got["soil_temp_c"].Flags != 0 || len(got) != 2 {
		t.Errorf("got %+v", got)
	}
}

func TestToppCalibrationAndConversions(t *testing.T) {
	soil, _ := profile.Builtin(profile.AghaliSoilLPP)
	got := apply(t, soil, ms("analog_input_1", 20.0, "temperature_2", 18.5, "analog_input_3", 0.42, "voltage_5", 3.61, "humidity_9", 40.0))
	eps := 20.0
	topp := -5.3e-2 + 2.92e-2*eps - 5.5e-4*eps*eps + 4.3e-6*eps*eps*eps
	if !near(got["soil_vwc"].Value, topp) || got["soil_ec_ds_m"].Value != 0.42 || got["battery_v"].Value != 3.61 ||
		got["humidity_9"].Value != 40 || got["soil_temp_c"].Value != 18.5 {
		t.Errorf("got %+v (Topp at ε=20: %g)", got, topp)
	}

	lse, _ := profile.Builtin(profile.DraginoLSE01)
	got = apply(t, lse, ms("water_SOIL", 23.45, "temp_SOIL", 19.5, "conduct_SOIL", 420.0, "Bat", 3.2, "Mod", 0.0))
	if !near(got["soil_vwc"].Value, 0.2345) || !near(got["soil_ec_ds_m"].Value, 0.42) || got["battery_v"].Value != 3.2 || len(got) != 4 {
		t.Errorf("LSE01: %+v (Mod should be dropped)", got)
	}

	c, err := profile.Parse([]byte(`{"name":"us-station","decoder":"object","map":{
		"tempF":{"metric":"air_temp_c","unit":"°F"},"windMph":{"metric":"wind_speed_ms","unit":"mph"},
		"rainIn":{"metric":"rain_mm","unit":"in"},"baro":{"metric":"pressure_hpa","unit":"inHg"},
		"raw":{"metric":"soil_vwc","calibration":{"linear":{"scale":0.001,"offset":-0.05}}},
		"counts":{"metric":"soil_vwc_30cm","calibration":{"poly":[1,2,3]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got = apply(t, c, ms("tempF", 212.0, "windMph", 10.0, "rainIn", 1.0, "baro", 29.92, "raw", 350.0, "counts", 2.0, "Leaf.Wet", 1.0))
	if !near(got["air_temp_c"].Value, 100) || !near(got["wind_speed_ms"].Value, 4.4704) || !near(got["rain_mm"].Value, 25.4) ||
		math.Abs(got["pressure_hpa"].Value-1013.2) > 0.01 || !near(got["soil_vwc"].Value, 0.3) || got["soil_vwc_30cm"].Value != 17 ||
		got["leaf_wet"].Value != 1 {
		t.Errorf("got %+v", got)
	}
}

func TestOutOfRangeIsFlaggedNotDropped(t *testing.T) {
	c, err := profile.Parse([]byte(`{"name":"strict","ranges":{"soil_temp_c":{"min":0,"max":40},"custom":{"max":5}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := apply(t, c, ms("soil_vwc", 1.7, "soil_temp_c", 45.0, "air_temp_c", 20.0, "custom", 6.0, "other", 1e9))
	if got["soil_vwc"].Flags != profile.FlagOutOfRange || got["soil_vwc"].Value != 1.7 || got["soil_temp_c"].Flags != profile.FlagOutOfRange ||
		got["air_temp_c"].Flags != 0 || got["custom"].Flags != profile.FlagOutOfRange || got["other"].Flags != 0 || len(got) != 5 {
		t.Errorf("got %+v", got)
	}
}

func TestCalibrationToInfinityIsAnError(t *testing.T) {
	c, err := profile.Parse([]byte(`{"name":"wild","map":{"x":{"metric":"soil_vwc","calibration":{"poly":[0,0,1e300]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := c.Apply(nil, ms("x", 1e10)); err == nil {
		t.Errorf("Apply = %+v, want an error", vs)
	}
}

func TestParseRefuses(t *testing.T) {
	for body, field := range map[string]string{
		`{"name":"Bad Name"}`:                                                                            "name",
		`{"name":"x","decoder":"protobuf"}`:                                                              "decoder",
		`{"name":"x","unmapped":"maybe"}`:                                                                "unmapped",
		`{"name":"x","expected_interval_s":-5}`:                                                          "expected_interval_s",
		`{"name":"x","map":{"a":{"metric":"Soil VWC"}}}`:                                                 "map.a.metric",
		`{"name":"x","map":{"a":{"metric":"soil_vwc","unit":"°C"}}}`:                                     "map.a.unit",
		`{"name":"x","map":{"a":{"metric":"custom","unit":"°C"}}}`:                                       "map.a.unit",
		`{"name":"x","map":{"a":{"metric":"soil_vwc","unit":"parsec"}}}`:                                 "map.a.unit",
		`{"name":"x","map":{"a":{"metric":"soil_vwc","calibration":{}}}}`:                                "map.a.calibration",
		`{"name":"x","map":{"a":{"metric":"soil_vwc","calibration":{"poly":[1],"linear":{"scale":1}}}}}`: "map.a.calibration",
		`{"name":"x","ranges":{"soil_vwc":{"min":2,"max":1}}}`:                                           "ranges.soil_vwc",
		`{"name":"x","colour":"green"}`:                                                                  "json",
		`{"name":"x"} {"name":"y"}`:                                                                      "json",
		`not json`:                                                                                       "json",
	} {
		_, err := profile.Parse([]byte(body))
		pe, ok := err.(*profile.Error)
		if !ok || pe.Field != field {
			t.Errorf("Parse(%s) = %v, want an error about %s", body, err, field)
		}
	}
}

func TestMetricName(t *testing.T) {
	for in, want := range map[string]string{"soil.Moisture": "soil_moisture", "BatV": "batv", "probes.0.vwc": "probes_0_vwc",
		"..x..": "x", "€": "", "a--b": "a_b", strings.Repeat("ab", 40): strings.Repeat("ab", 32)} {
		if got := profile.MetricName(in); got != want {
			t.Errorf("MetricName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse: no profile text crashes Parse, and whatever compiles applies to any value
// without producing a non-finite reading.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"name":"x","decoder":"cayenne","map":{"temperature_3":{"metric":"air_temp_c","unit":"°F","calibration":{"linear":{"scale":2,"offset":1}}}},"ranges":{"air_temp_c":{"min":-10}}}`), 12.5)
	f.Add([]byte(`{"name":"y","decoder":"object","unmapped":"keep","map":{"a.b":{"metric":"soil_vwc","calibration":{"poly":[1,2,3,4]}}}}`), -3.0)
	f.Fuzz(func(t *testing.T, body []byte, x float64) {
		c, err := profile.Parse(body)
		if err != nil {
			return
		}
		in := []codec.Measurement{{Metric: "temperature_3", Time: at, Value: x}, {Metric: "a.b", Time: at, Value: x}, {Metric: "z", Time: at, Value: x}}
		vs, err := c.Apply(nil, in)
		if err != nil {
			return
		}
		for _, v := range vs {
			if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) && !math.IsInf(x, 0) || v.Metric == "" {
				t.Fatalf("reading %+v from %g", v, x)
			}
		}
	})
}
