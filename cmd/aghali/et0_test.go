package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"strings"
	"testing"
)

func runET0(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"et0"}, args...), Env{Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
	return out.String(), errOut.String(), err
}

// with returns base followed by extra, leaving base alone.
func with(base []string, extra ...string) []string {
	return append(append([]string{}, base...), extra...)
}

// FAO-56 Example 18 (Uccle, 6 July) as flags: wind 10 km/h = 2.778 m/s at 10 m.
var uccle = []string{"--date", "2001-07-06", "--lat", "50.8", "--elevation", "100", "--tmax", "21.5", "--tmin", "12.3",
	"--rh-max", "84", "--rh-min", "63", "--wind", "2.778", "--wind-height", "10", "--sunshine", "9.25"}

// FAO-56 Example 19 (N'Diaye, 1 October): 16°13' N, 16°15' W, Lz 15° W (UTC−1).
var ndiaye = []string{"--hourly", "--date", "2001-10-01", "--lat", "16.2167", "--lon", "-16.25", "--utc-offset", "-1", "--elevation", "8"}

func TestET0PrintsTheValue(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"FAO-56 Example 18, daily", uccle, "ET0 3.88 mm/day\n"},
		{"--name=value form", []string{"--date=2001-07-06", "--lat=50.8", "--elevation=100", "--tmax=21.5", "--tmin=12.3",
			"--rh-max=84", "--rh-min=63", "--wind=2.778", "--wind-height=10", "--sunshine=9.25"}, "ET0 3.88 mm/day\n"},
		{"FAO-56 Example 17, Bangkok April (monthly)", []string{"--date", "2001-04-15", "--lat", "13.733", "--elevation", "2",
			"--tmax", "34.8", "--tmin", "25.6", "--ea", "2.85", "--wind", "2", "--sunshine", "8.5", "--soil-heat", "0.14"}, "ET0 5.72 mm/day\n"},
		{"FAO-56 Example 19, 14–15 h", with(ndiaye, "--hour", "14", "--temp", "38", "--rh", "52",
			"--wind", "3.3", "--solar-rad", "2.45"), "ET0 0.63 mm/hour\n"},
		{"FAO-56 Example 19, 02–03 h", with(ndiaye, "--hour", "2", "--temp", "28", "--rh", "90",
			"--wind", "1.9", "--solar-rad", "0"), "ET0 0.00 mm/hour\n"},
		// Hargreaves at Lyon, 15 July: 0.0023 · 38.5 · √11.8 · 0.408 · 40.555 = 5.03 mm/day.
		{"Hargreaves", []string{"--method", "hargreaves", "--date", "2001-07-15", "--lat", "45.7167", "--tmax", "26.6", "--tmin", "14.8"},
			"ET0 5.03 mm/day\n"},
		// Only temperatures (Lyon, 200 m, 15 July): ea = e°(Tmin) = 1.683 kPa, u2 = 2 m/s,
		// Rs = 0.16 · √11.8 · 40.555 = 22.29, Rso = 0.754 · 40.555 = 30.58, Rnl = 3.68, Rn = 13.48 MJ m-2 day-1,
		// ET0 = 4.560 mm/day (worked through eqs. 6–39 by hand, independently of the package).
		{"missing data", []string{"--date", "2001-07-15", "--lat", "45.7167", "--elevation", "200", "--tmax", "26.6", "--tmin", "14.8"},
			"ET0 4.56 mm/day\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := runET0(t, c.args...)
			if err != nil || out != c.want || errOut != "" {
				t.Errorf("out %q err %v stderr %q, want %q", out, err, errOut, c.want)
			}
		})
	}
}

func TestET0JSON(t *testing.T) {
	out, _, err := runET0(t, with(uccle, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, `{"et0_mm":3.88`) {
		t.Errorf("JSON does not start with et0_mm: %s", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	num := func(k string) float64 {
		v, ok := m[k].(float64)
		if !ok {
			t.Errorf("%s missing or not a number: %v", k, m[k])
		}
		return v
	}
	for k, want := range map[string]float64{
		"et0_mm": 3.88, "net_rad_mj_m2_day": 13.28, "extraterrestrial_rad_mj_m2_day": 41.09,
		"actual_vapour_pressure_kpa": 1.409, "wind_speed_2m_m_per_s": 2.078, "svp_slope_kpa_per_c": 0.122,
	} {
		if got := num(k); math.Abs(got-want) > 0.006 {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	if m["period"] != "day" || m["method"] != "pm" || m["wind_assumed"] != false {
		t.Errorf("labels: %v %v %v", m["period"], m["method"], m["wind_assumed"])
	}

	out, _, err = runET0(t, with(ndiaye, "--hour", "14", "--temp", "38", "--rh", "52",
		"--wind", "3.3", "--solar-rad", "2.45", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	m = nil
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m["period"] != "hour" || m["daytime"] != true || math.Abs(num("extraterrestrial_rad_mj_m2_hour")-3.543) > 0.001 {
		t.Errorf("hourly JSON: %s", out)
	}
}

func TestET0Verbose(t *testing.T) {
	out, _, err := runET0(t, with(uccle, "--verbose")...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "ET0 3.88 mm/day" || len(lines) < 25 {
		t.Fatalf("verbose output:\n%s", out)
	}
	for _, want := range []string{"net_rad_mj_m2_day", "13.2832", "Rn: net radiation", "humidity_source", "RHmax and RHmin", "clear_sky_rad_mj_m2_day"} {
		if !strings.Contains(out, want) {
			t.Errorf("verbose output lacks %q", want)
		}
	}
}

func TestET0Errors(t *testing.T) {
	daily := func(extra ...string) []string {
		return append([]string{"--date", "2025-07-06", "--lat", "39.09", "--elevation", "600", "--tmax", "34", "--tmin", "19"}, extra...)
	}
	hourly := func(extra ...string) []string {
		return append([]string{"--hourly", "--date", "2025-07-06", "--hour", "14", "--lat", "39.09", "--lon", "46.63",
			"--utc-offset", "4", "--elevation", "600", "--temp", "33", "--rh", "35", "--solar-rad", "3"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"tmin above tmax", []string{"--date", "2025-07-06", "--lat", "39", "--elevation", "600", "--tmax", "19", "--tmin", "34"}, "--tmin 34: above --tmax (19)"},
		{"rh out of range", daily("--rh-max", "120", "--rh-min", "40"), "--rh-max 120: relative humidity in % must be between 0 and 100"},
		{"rh min above max", daily("--rh-max", "40", "--rh-min", "60"), "--rh-min 60: above --rh-max (40)"},
		{"rh mean negative", daily("--rh-mean", "-5"), "--rh-mean -5"},
		{"latitude", []string{"--date", "2025-07-06", "--lat", "95", "--elevation", "600", "--tmax", "34", "--tmin", "19"}, "--lat 95: latitude in degrees must be between -90 and 90"},
		{"missing one", []string{"--date", "2025-07-06", "--lat", "39", "--elevation", "600", "--tmin", "19"}, "missing required flag --tmax"},
		{"missing several", []string{"--tmin", "19"}, "missing required flags --date, --lat, --elevation, --tmax"},
		{"bad date", daily("--date", "06.07.2025"), `--date "06.07.2025": want YYYY-MM-DD`},
		{"conflicting humidity", daily("--rh-mean", "40", "--tdew", "12"), "conflicting humidity flags --rh-mean and --tdew"},
		{"conflicting humidity with pair", daily("--rh-max", "80", "--ea", "1.2"), "conflicting humidity flags --rh-max/--rh-min and --ea"},
		{"rh-min alone", daily("--rh-min", "30"), "--rh-min needs --rh-max"},
		{"dew point above tmax", daily("--tdew", "40"), "--tdew 40: above --tmax (34)"},
		{"ea above saturation", daily("--ea", "9"), "--ea 9: above the saturation vapour pressure at --tmax"},
		{"nan", daily("--tmax", "NaN"), "--tmax NaN: not a finite number"},
		{"conflicting radiation", daily("--sunshine", "10", "--solar-rad", "25"), "conflicting radiation flags --sunshine and --solar-rad"},
		{"krs with sunshine", daily("--sunshine", "10", "--krs", "0.19"), "--krs applies only when radiation is estimated from the temperature range"},
		{"krs out of range", daily("--krs", "0.5"), "--krs 0.5"},
		{"sunshine beyond day length", daily("--sunshine", "16"), "--sunshine 16: exceeds the day length"},
		{"W/m2 for MJ", daily("--solar-rad", "310"), "--solar-rad 310: exceeds extraterrestrial radiation"},
		{"negative wind", daily("--wind", "-2"), "--wind -2"},
		{"wind height alone", daily("--wind-height", "10"), "--wind-height needs --wind"},
		{"anemometer on the ground", daily("--wind", "2", "--wind-height", "0.01"), "--wind-height 0.01"},
		{"soil heat", daily("--soil-heat", "99"), "--soil-heat 99"},
		{"unknown method", daily("--method", "thornthwaite"), `--method "thornthwaite": want pm or hargreaves`},
		{"hargreaves with wind", []string{"--method", "hargreaves", "--date", "2025-07-06", "--lat", "39", "--tmax", "34", "--tmin", "19", "--wind", "3"}, "remove --wind"},
		{"hourly flag in daily mode", daily("--hour", "14", "--temp", "30"), "--hour, --temp only with --hourly"},
		{"daily flag in hourly mode", hourly("--tmax", "34"), "--tmax not used with --hourly"},
		{"hourly hargreaves", hourly("--method", "hargreaves"), "--method hargreaves has no hourly form"},
		{"hourly missing lon", []string{"--hourly", "--date", "2025-07-06", "--hour", "14", "--lat", "39", "--utc-offset", "4", "--elevation", "600", "--temp", "33", "--rh", "35", "--solar-rad", "3"}, "missing required flag --lon"},
		{"hour 24", hourly("--hour", "24"), "--hour 24: hour must be between 0 and 23"},
		{"hourly rh", hourly("--rh", "150"), "--rh 150"},
		{"longitude", hourly("--lon", "200"), "--lon 200"},
		{"utc offset", hourly("--utc-offset", "20"), "--utc-offset 20"},
		{"hourly W/m2", hourly("--solar-rad", "800"), "--solar-rad 800"},
		{"night ratio", hourly("--night-rs-rso", "2"), "--night-rs-rso 2"},
		{"positional argument", daily("extra"), `unexpected argument "extra"`},
		{"unknown flag", daily("--tmean", "20"), "flag provided but not defined: -tmean"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := runET0(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
			if out != "" {
				t.Errorf("printed %q despite the error", out)
			}
		})
	}
}

func TestET0Help(t *testing.T) {
	_, errOut, err := runET0(t, "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	// Every flag an error can name is one the command defines.
	for _, field := range []string{"Date", "Latitude", "Elevation", "Tmax", "Tmin", "Humidity.RHMax", "Humidity.RHMin",
		"Humidity.RHMean", "Humidity.DewPoint", "Humidity.VapourPressure", "Wind.Speed", "Wind.Height",
		"Radiation.SunshineHours", "Radiation.Rs", "Radiation.KRs", "SoilHeatFlux", "Hour", "Longitude", "UTCOffset",
		"T", "RH", "Rs", "NightRsRso"} {
		name, ok := et0FlagFor(field)
		if !ok || !strings.Contains(errOut, "  "+name+" ") {
			t.Errorf("field %s: flag %q not in the usage", field, name)
		}
	}
	for _, want := range []string{"Usage: aghali et0", "--hourly", "--json", "--verbose", "(default 0.16)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}
