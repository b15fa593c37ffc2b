package rule

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Reading functions: aggregates of a metric over a window of readings.
const (
	FuncMean  = "mean"  // mean of the readings
	FuncMin   = "min"   // lowest reading
	FuncMax   = "max"   // highest reading
	FuncLast  = "last"  // newest reading
	FuncTrend = "trend" // least-squares slope, units per hour
	FuncSum   = "sum"   // sum of the readings (rain_mm, volume)
	FuncCount = "count" // number of readings; never missing (0 when none)
)

var seriesFuncs = []string{FuncMean, FuncMin, FuncMax, FuncLast, FuncTrend, FuncSum, FuncCount}

// Scopes of a reading function: the nodes whose readings it aggregates.
const (
	ScopeZone = "zone" // the nodes in the zone being decided on (the default)
	ScopeFarm = "farm" // every node of the farm, e.g. its weather station
)

// MaxWindow is the longest window a reading function may look back.
const MaxWindow = 31 * 24 * time.Hour

// DefaultLastWindow is how far back last(metric) looks when no window is given.
const DefaultLastWindow = 24 * time.Hour

// Series is a reading fact: Func of Metric over the last Window of readings of the Scope's nodes.
type Series struct {
	Func   string
	Metric string
	Window time.Duration
	Scope  string
}

// Key is the canonical way to write the series in a condition, e.g. mean("soil_vwc", "1h") or
// min("air_temp_c", "3h", "farm").
func (s Series) Key() string {
	if s.Scope == ScopeFarm {
		return fmt.Sprintf("%s(%q, %q, %q)", s.Func, s.Metric, FormatDuration(s.Window), s.Scope)
	}
	return fmt.Sprintf("%s(%q, %q)", s.Func, s.Metric, FormatDuration(s.Window))
}

var metricName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// ValidMetric reports whether name may be a metric name.
func ValidMetric(name string) bool { return metricName.MatchString(name) }

// Kind is the type of a named fact.
type Kind int

// Kinds of named facts.
const (
	Number Kind = iota // float64; NaN when missing
	Integer
	Bool
	Text
)

func (k Kind) String() string {
	switch k {
	case Number:
		return "number"
	case Integer:
		return "integer"
	case Bool:
		return "bool"
	case Text:
		return "text"
	}
	return "unknown"
}

func (k Kind) zero() any {
	switch k {
	case Integer:
		return 0
	case Bool:
		return false
	case Text:
		return ""
	}
	return 0.0
}

// Var is a named fact a condition may use.
type Var struct {
	Name  string
	Kind  Kind
	Group string // weather, balance, time, history, zone
	Unit  string
	Doc   string
}

// Groups of named facts.
const (
	GroupWeather = "weather"
	GroupBalance = "balance"
	GroupTime    = "time"
	GroupHistory = "history"
	GroupZone    = "zone"
)

// Named facts. Weather facts come from the farm's weather stations (and, for the forecast, a
// forecast source); balance facts from the zone's FAO-56 water balance; time facts are in the
// farm's time zone; history facts from the zone's runs.
const (
	VarRain24h          = "rain_24h"
	VarRainToday        = "rain_today"
	VarET0Today         = "et0_today"
	VarET0Yesterday     = "et0_yesterday"
	VarForecastRain24h  = "forecast_rain_24h"
	VarDepletion        = "depletion_mm"
	VarRAW              = "raw_mm"
	VarTAW              = "taw_mm"
	VarDepletionPct     = "depletion_pct"
	VarNeedsWater       = "needs_water"
	VarRefill           = "refill_mm"
	VarKc               = "kc"
	VarETcToday         = "etc_today"
	VarHour             = "hour"
	VarMinute           = "minute"
	VarTimeOfDay        = "time_of_day"
	VarWeekday          = "weekday"
	VarDay              = "day"
	VarMonth            = "month"
	VarDayOfYear        = "day_of_year"
	VarSunrise          = "sunrise"
	VarSunset           = "sunset"
	VarDaylight         = "daylight"
	VarHoursSinceIrr    = "hours_since_irrigation"
	VarLastIrrMinutes   = "last_irrigation_min"
	VarIrrigated24hMin  = "irrigated_24h_min"
	VarRunsToday        = "runs_today"
	VarDaysSincePlanted = "days_since_planting"
)

// NeverIrrigatedHours is hours_since_irrigation of a zone that was never watered: larger than any
// sensible threshold, so "hours_since_irrigation > 48" holds.
const NeverIrrigatedHours = 100000.0

// vars is the catalogue of named facts, read only.
var vars = []Var{
	{VarRain24h, Number, GroupWeather, "mm", "rain over the last 24 h (mean of the farm's rain gauges)"},
	{VarRainToday, Number, GroupWeather, "mm", "rain since local midnight"},
	{VarET0Today, Number, GroupWeather, "mm", "reference evapotranspiration (FAO-56) of today so far"},
	{VarET0Yesterday, Number, GroupWeather, "mm", "reference evapotranspiration of yesterday"},
	{VarForecastRain24h, Number, GroupWeather, "mm", "forecast rain over the next 24 h; missing when no forecast source has one"},
	{VarDepletion, Number, GroupBalance, "mm", "root-zone depletion Dr below field capacity, now"},
	{VarRAW, Number, GroupBalance, "mm", "readily available water: depletion the crop takes without stress"},
	{VarTAW, Number, GroupBalance, "mm", "total available water of the root zone"},
	{VarDepletionPct, Number, GroupBalance, "%", "depletion as a share of TAW"},
	{VarNeedsWater, Bool, GroupBalance, "", "depletion ≥ RAW"},
	{VarRefill, Number, GroupBalance, "mm", "net depth that brings the root zone back to field capacity"},
	{VarKc, Number, GroupBalance, "", "crop coefficient today"},
	{VarETcToday, Number, GroupBalance, "mm", "crop evapotranspiration Kc·ET0 of today so far"},
	{VarHour, Integer, GroupTime, "", "local hour, 0–23"},
	{VarMinute, Integer, GroupTime, "", "local minute, 0–59"},
	{VarTimeOfDay, Number, GroupTime, "h", "local time as hours, e.g. 5.5 at 05:30"},
	{VarWeekday, Text, GroupTime, "", `local weekday: "mon" … "sun"`},
	{VarDay, Integer, GroupTime, "", "local day of the month, 1–31"},
	{VarMonth, Integer, GroupTime, "", "local month, 1–12"},
	{VarDayOfYear, Integer, GroupTime, "", "local day of the year, 1–366"},
	{VarSunrise, Number, GroupTime, "h", "today's sunrise at the farm, local hours (e.g. 5.62)"},
	{VarSunset, Number, GroupTime, "h", "today's sunset at the farm, local hours"},
	{VarDaylight, Bool, GroupTime, "", "the sun is up at the farm"},
	{VarHoursSinceIrr, Number, GroupHistory, "h", "hours since the zone's last run started (100000 when never)"},
	{VarLastIrrMinutes, Number, GroupHistory, "min", "how long the zone's last run watered"},
	{VarIrrigated24hMin, Number, GroupHistory, "min", "minutes the zone was watered over the last 24 h"},
	{VarRunsToday, Integer, GroupHistory, "", "runs that started watering the zone since local midnight"},
	{VarDaysSincePlanted, Number, GroupZone, "d", "days since the zone's planting date"},
}

// Vars returns the catalogue of named facts.
func Vars() []Var { return slices.Clone(vars) }

// LookupVar returns a named fact of the catalogue.
func LookupVar(name string) (Var, bool) {
	for _, v := range vars {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}

// Value is what a fact was at evaluation time.
type Value struct {
	V       any    // float64, int, bool or string, by Kind; float64 for series
	Missing bool   // no data: numbers are NaN
	N       int    // readings behind a series value
	Note    string // where it came from, for people: "2 nodes", "Hargreaves", ...
}

// Facts are the values a program is evaluated over: named facts by name, series by Series.
type Facts struct {
	Vars   map[string]Value
	Series map[Series]Value
}

// Missing is a fact without data.
func Missing(note string) Value { return Value{Missing: true, Note: note} }

// Number is a known numeric fact.
func NumberValue(v float64) Value { return Value{V: v} }

// Describe writes a fact's value for a reason or a dry run: 0.152 (3 readings), or "no data".
func (v Value) Describe() string {
	if v.Missing {
		if v.Note != "" {
			return "no data (" + v.Note + ")"
		}
		return "no data"
	}
	var s string
	switch x := v.V.(type) {
	case float64:
		s = FormatValue(x)
	case string:
		s = fmt.Sprintf("%q", x)
	default:
		s = fmt.Sprint(x)
	}
	var extra []string
	if v.N > 0 {
		if v.N == 1 {
			extra = append(extra, "1 reading")
		} else {
			extra = append(extra, fmt.Sprintf("%d readings", v.N))
		}
	}
	if v.Note != "" {
		extra = append(extra, v.Note)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}
