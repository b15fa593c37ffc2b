package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aghali/aghali/irrigation/agronomy"
)

// et0Flags are the inputs of `aghali et0`. They are plain flags, not AGHALI_* configuration:
// each run is one calculation.
type et0Flags struct {
	date, method                       string
	hourly, json, verbose              bool
	lat, lon, utcOffset, elevation     float64
	hour                               int
	tmax, tmin, temp                   float64
	rhMax, rhMin, rhMean, rh, tdew, ea float64
	wind, windHeight                   float64
	sunshine, solarRad, krs, soilHeat  float64
	nightRsRso                         float64
}

// Flags that belong to one mode only, for the errors that say so.
func et0DailyOnlyFlags() []string {
	return []string{"tmax", "tmin", "rh-max", "rh-min", "rh-mean", "tdew", "ea", "sunshine", "krs", "soil-heat"}
}

func et0HourlyOnlyFlags() []string {
	return []string{"hour", "lon", "utc-offset", "temp", "rh", "night-rs-rso"}
}

func cmdET0(ctx context.Context, args []string, env Env) error {
	var f et0Flags
	fs := flag.NewFlagSet("et0", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.StringVar(&f.date, "date", "", "day, YYYY-MM-DD (hourly: local standard time)")
	fs.Float64Var(&f.lat, "lat", 0, "latitude, degrees, north positive")
	fs.Float64Var(&f.elevation, "elevation", 0, "elevation above sea level, m")
	fs.Float64Var(&f.tmax, "tmax", 0, "daily maximum air temperature, °C")
	fs.Float64Var(&f.tmin, "tmin", 0, "daily minimum air temperature, °C")
	fs.Float64Var(&f.rhMax, "rh-max", 0, "daily maximum relative humidity, % (with --rh-min, or alone)")
	fs.Float64Var(&f.rhMin, "rh-min", 0, "daily minimum relative humidity, % (needs --rh-max)")
	fs.Float64Var(&f.rhMean, "rh-mean", 0, "daily mean relative humidity, %")
	fs.Float64Var(&f.tdew, "tdew", 0, "dew point, °C")
	fs.Float64Var(&f.ea, "ea", 0, "actual vapour pressure, kPa")
	fs.Float64Var(&f.wind, "wind", 0, "wind speed at --wind-height, m/s (none: 2 m/s at 2 m)")
	fs.Float64Var(&f.windHeight, "wind-height", 2, "anemometer height, m")
	fs.Float64Var(&f.sunshine, "sunshine", 0, "bright sunshine, hours")
	fs.Float64Var(&f.solarRad, "solar-rad", 0, "solar radiation, MJ/m2/day (hourly: MJ/m2/hour)")
	fs.Float64Var(&f.krs, "krs", agronomy.KRsInterior, "kRs for radiation from the temperature range: 0.16 interior, 0.19 coastal")
	fs.Float64Var(&f.soilHeat, "soil-heat", 0, "soil heat flux G, MJ/m2/day")
	fs.StringVar(&f.method, "method", "pm", "pm (FAO-56 Penman–Monteith) or hargreaves")
	fs.BoolVar(&f.hourly, "hourly", false, "hourly Penman–Monteith (FAO-56 eq. 53)")
	fs.IntVar(&f.hour, "hour", 0, "hourly: start of the hour, 0–23, local standard time")
	fs.Float64Var(&f.lon, "lon", 0, "hourly: longitude, degrees, east positive")
	fs.Float64Var(&f.utcOffset, "utc-offset", 0, "hourly: local standard time minus UTC, hours (Azerbaijan: 4)")
	fs.Float64Var(&f.temp, "temp", 0, "hourly: mean air temperature of the hour, °C")
	fs.Float64Var(&f.rh, "rh", 0, "hourly: mean relative humidity of the hour, %")
	fs.Float64Var(&f.nightRsRso, "night-rs-rso", agronomy.DefaultNightRsRso, "hourly: Rs/Rso assumed while the sun is down (FAO-56: 0.7–0.8 arid, 0.4–0.6 humid)")
	fs.BoolVar(&f.json, "json", false, `print {"et0_mm": ..., intermediate terms} as JSON`)
	fs.BoolVar(&f.verbose, "verbose", false, "print the intermediate terms, one per line")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, `Usage: aghali et0 [flags]

FAO-56 reference evapotranspiration (grass reference, mm).

Daily:  aghali et0 --date 2025-07-06 --lat 39.09 --elevation 600 --tmax 34 --tmin 19 \
          [--rh-max % --rh-min % | --rh-mean % | --tdew C | --ea KPA] [--wind M/S [--wind-height M]] \
          [--sunshine HOURS | --solar-rad MJ/M2/DAY | --krs 0.16] [--soil-heat MJ/M2/DAY] [--method pm|hargreaves]
Hourly: aghali et0 --hourly --date 2025-07-06 --hour 14 --lat 39.09 --lon 46.63 --utc-offset 4 \
          --elevation 600 --temp 33 --rh 35 [--wind M/S] --solar-rad MJ/M2/HOUR

Missing humidity: dew point = Tmin. Missing wind: 2 m/s. Missing radiation: from Tmax − Tmin.

Flags:
`)
		fs.VisitAll(func(fl *flag.Flag) {
			def := ""
			if fl.DefValue != "" && fl.DefValue != "0" && fl.DefValue != "false" {
				def = " (default " + fl.DefValue + ")"
			}
			fmt.Fprintf(w, "  --%-13s %s%s\n", fl.Name, fl.Usage, def)
		})
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("et0: unexpected argument %q (flags are --name value)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	if f.hourly {
		return et0Hourly(f, set, env.Stdout)
	}
	return et0Daily(f, set, env.Stdout)
}

func et0Daily(f et0Flags, set map[string]bool, out io.Writer) error {
	if bad := present(set, et0HourlyOnlyFlags()...); len(bad) > 0 {
		return fmt.Errorf("et0: %s only with --hourly", flagList(bad))
	}
	switch f.method {
	case "pm", "hargreaves":
	default:
		return fmt.Errorf("et0: --method %q: want pm or hargreaves", f.method)
	}
	required := []string{"date", "lat", "elevation", "tmax", "tmin"}
	if f.method == "hargreaves" {
		required = []string{"date", "lat", "tmax", "tmin"}
	}
	if err := requireFlags(set, required...); err != nil {
		return err
	}
	date, err := parseDate(f.date)
	if err != nil {
		return err
	}

	if f.method == "hargreaves" {
		if extra := present(set, "rh-max", "rh-min", "rh-mean", "tdew", "ea", "wind", "wind-height",
			"sunshine", "solar-rad", "krs", "soil-heat"); len(extra) > 0 {
			return fmt.Errorf("et0: --method hargreaves uses only --date, --lat, --tmax and --tmin; remove %s", flagList(extra))
		}
		r, err := agronomy.Hargreaves(agronomy.HargreavesInput{Date: date, Latitude: f.lat, Tmax: f.tmax, Tmin: f.tmin})
		if err != nil {
			return flagError(err)
		}
		return printET0(out, f, r.ET0, "day", r.Terms(), [][2]string{{"method", "hargreaves"}})
	}

	in := agronomy.DailyInput{
		Date: date, Latitude: f.lat, Elevation: f.elevation, Tmax: f.tmax, Tmin: f.tmin, SoilHeatFlux: f.soilHeat,
	}
	// Humidity: one route at most.
	var routes []string
	if set["rh-max"] || set["rh-min"] {
		routes = append(routes, "--rh-max/--rh-min")
	}
	for _, name := range []string{"rh-mean", "tdew", "ea"} {
		if set[name] {
			routes = append(routes, "--"+name)
		}
	}
	if len(routes) > 1 {
		return fmt.Errorf("et0: conflicting humidity flags %s: give one of --rh-max [--rh-min], --rh-mean, --tdew or --ea", strings.Join(routes, " and "))
	}
	switch {
	case set["rh-min"] && !set["rh-max"]:
		return errors.New("et0: --rh-min needs --rh-max (FAO-56 eq. 17); without --rh-max give --rh-mean, --tdew or --ea")
	case set["rh-max"] && set["rh-min"]:
		in.Humidity = agronomy.RHMaxMin(f.rhMax, f.rhMin)
	case set["rh-max"]:
		in.Humidity = agronomy.RHMaxOnly(f.rhMax)
	case set["rh-mean"]:
		in.Humidity = agronomy.RHMean(f.rhMean)
	case set["tdew"]:
		in.Humidity = agronomy.DewPoint(f.tdew)
	case set["ea"]:
		in.Humidity = agronomy.VapourPressure(f.ea)
	}
	wind, err := windFlags(f, set)
	if err != nil {
		return err
	}
	in.Wind = wind
	switch {
	case set["sunshine"] && set["solar-rad"]:
		return errors.New("et0: conflicting radiation flags --sunshine and --solar-rad: give one")
	case set["krs"] && (set["sunshine"] || set["solar-rad"]):
		return errors.New("et0: --krs applies only when radiation is estimated from the temperature range (no --sunshine or --solar-rad)")
	case set["sunshine"]:
		in.Radiation = agronomy.Sunshine(f.sunshine)
	case set["solar-rad"]:
		in.Radiation = agronomy.MeasuredRs(f.solarRad)
	default:
		in.Radiation = agronomy.TempRange(f.krs)
		if set["krs"] && f.krs == 0 {
			return errors.New("et0: --krs 0: kRs must be between 0.1 and 0.3")
		}
	}
	r, err := agronomy.PenmanMonteithDaily(in)
	if err != nil {
		return flagError(err)
	}
	return printET0(out, f, r.ET0, "day", r.Terms(), [][2]string{
		{"method", "pm"},
		{"humidity_source", r.Humidity.String()},
		{"radiation_source", r.Radiation.String()},
	})
}

func et0Hourly(f et0Flags, set map[string]bool, out io.Writer) error {
	if bad := present(set, et0DailyOnlyFlags()...); len(bad) > 0 {
		return fmt.Errorf("et0: %s not used with --hourly (hourly takes --temp, --rh, --wind, --solar-rad)", flagList(bad))
	}
	if set["method"] && f.method != "pm" {
		return fmt.Errorf("et0: --method %s has no hourly form; --hourly is FAO-56 Penman–Monteith", f.method)
	}
	if err := requireFlags(set, "date", "hour", "lat", "lon", "utc-offset", "elevation", "temp", "rh", "solar-rad"); err != nil {
		return err
	}
	date, err := parseDate(f.date)
	if err != nil {
		return err
	}
	wind, err := windFlags(f, set)
	if err != nil {
		return err
	}
	r, err := agronomy.PenmanMonteithHourly(agronomy.HourlyInput{
		Date: date, Hour: f.hour, Latitude: f.lat, Longitude: f.lon, UTCOffset: f.utcOffset,
		Elevation: f.elevation, T: f.temp, RH: f.rh, Wind: wind, Rs: f.solarRad, NightRsRso: f.nightRsRso,
	})
	if err != nil {
		return flagError(err)
	}
	return printET0(out, f, r.ET0, "hour", r.Terms(), [][2]string{{"method", "pm"}})
}

func windFlags(f et0Flags, set map[string]bool) (agronomy.Wind, error) {
	if set["wind-height"] && !set["wind"] {
		return agronomy.Wind{}, errors.New("et0: --wind-height needs --wind")
	}
	if !set["wind"] {
		return agronomy.Wind{}, nil
	}
	if f.windHeight == 0 {
		return agronomy.Wind{}, errors.New("et0: --wind-height 0: the anemometer must be above the ground")
	}
	return agronomy.WindAt(f.wind, f.windHeight), nil
}

func parseDate(s string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("et0: --date %q: want YYYY-MM-DD", s)
	}
	return d, nil
}

func requireFlags(set map[string]bool, names ...string) error {
	var missing []string
	for _, n := range names {
		if !set[n] {
			missing = append(missing, n)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("et0: missing required flag --%s", missing[0])
	}
	return fmt.Errorf("et0: missing required flags %s", flagList(missing))
}

func present(set map[string]bool, names ...string) []string {
	var out []string
	for _, n := range names {
		if set[n] {
			out = append(out, n)
		}
	}
	return out
}

func flagList(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "--" + n
	}
	return strings.Join(out, ", ")
}

// et0FlagFor names the flag that sets an agronomy input field, so that errors name what the
// person typed.
func et0FlagFor(field string) (string, bool) {
	switch field {
	case "Date":
		return "--date", true
	case "Latitude":
		return "--lat", true
	case "Elevation":
		return "--elevation", true
	case "Tmax":
		return "--tmax", true
	case "Tmin":
		return "--tmin", true
	case "Humidity.RHMax":
		return "--rh-max", true
	case "Humidity.RHMin":
		return "--rh-min", true
	case "Humidity.RHMean":
		return "--rh-mean", true
	case "Humidity.DewPoint":
		return "--tdew", true
	case "Humidity.VapourPressure":
		return "--ea", true
	case "Wind.Speed":
		return "--wind", true
	case "Wind.Height":
		return "--wind-height", true
	case "Radiation.SunshineHours":
		return "--sunshine", true
	case "Radiation.Rs", "Rs":
		return "--solar-rad", true
	case "Radiation.KRs":
		return "--krs", true
	case "SoilHeatFlux":
		return "--soil-heat", true
	case "Hour":
		return "--hour", true
	case "Longitude":
		return "--lon", true
	case "UTCOffset":
		return "--utc-offset", true
	case "T":
		return "--temp", true
	case "RH":
		return "--rh", true
	case "NightRsRso":
		return "--night-rs-rso", true
	}
	return "", false
}

// flagError rewrites an *agronomy.InputError in terms of flags: "--tmin 30: above --tmax (20)".
func flagError(err error) error {
	var ie *agronomy.InputError
	if !errors.As(err, &ie) {
		return fmt.Errorf("et0: %w", err)
	}
	name, ok := et0FlagFor(ie.Field)
	if !ok {
		return fmt.Errorf("et0: %w", err)
	}
	// Reasons mention other fields by their Go names ("above Tmax (20)"); name the flags instead.
	reason := strings.NewReplacer("RHMax", "--rh-max", "Tmax", "--tmax").Replace(ie.Reason)
	if ie.Field == "Date" {
		return fmt.Errorf("et0: %s: %s", name, reason)
	}
	return fmt.Errorf("et0: %s %s: %s", name, strconv.FormatFloat(ie.Value, 'g', -1, 64), reason)
}

// printET0 writes the result: one line by default, the terms with --verbose, JSON with --json.
func printET0(w io.Writer, f et0Flags, et0 float64, period string, terms []agronomy.Term, labels [][2]string) error {
	if f.json {
		var b strings.Builder
		b.WriteString(`{"et0_mm":` + jsonNumber(et0) + `,"period":"` + period + `"`)
		for _, l := range labels {
			v, _ := json.Marshal(l[1])
			b.WriteString(`,"` + l[0] + `":` + string(v))
		}
		for _, t := range terms {
			b.WriteString(`,"` + t.Key + `":`)
			switch t.Key {
			case "wind_assumed", "daytime":
				b.WriteString(strconv.FormatBool(t.Value != 0))
			default:
				b.WriteString(jsonNumber(t.Value))
			}
		}
		b.WriteString("}\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	if _, err := fmt.Fprintf(w, "ET0 %s mm/%s\n", strconv.FormatFloat(roundTo(et0, 2), 'f', 2, 64), period); err != nil {
		return err
	}
	if !f.verbose {
		return nil
	}
	for _, l := range labels {
		fmt.Fprintf(w, "%-34s %s\n", l[0], l[1])
	}
	for _, t := range terms {
		desc := t.Description
		if t.Symbol != "" {
			desc = t.Symbol + ": " + desc
		}
		if _, err := fmt.Fprintf(w, "%-34s %12s  %s\n", t.Key, strconv.FormatFloat(roundSig(t.Value), 'g', -1, 64), desc); err != nil {
			return err
		}
	}
	return nil
}

// jsonNumber prints six significant digits: more than any input carries.
func jsonNumber(v float64) string { return strconv.FormatFloat(roundSig(v), 'g', -1, 64) }

func roundSig(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	if r == 0 {
		return 0 // no "-0"
	}
	return r
}

func roundTo(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	r := math.Round(v*p) / p
	if r == 0 {
		return 0
	}
	return r
}
