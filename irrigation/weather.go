package irrigation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation/agronomy"
)

// Weather metrics the reference evapotranspiration is computed from (DESIGN.md's contract, and
// sunshine_h, hours of bright sunshine since the previous report, where a station has a
// sunshine recorder).
const (
	MetricAirTemp  = "air_temp_c"
	MetricAirRH    = "air_rh_pct"
	MetricDewPoint = "dew_point_c"
	MetricWind     = "wind_speed_ms"
	MetricSolarRad = "solar_rad_wm2"
	MetricRain     = "rain_mm"
	MetricSunshine = "sunshine_h"
	MetricSoilVWC  = "soil_vwc"
)

// ET0 methods of a day.
const (
	ET0PenmanMonteith = "pm"
	ET0Hargreaves     = "hargreaves"
	ET0None           = "none"
)

// WeatherSettings are what ET0 needs to know about a farm beyond its location.
type WeatherSettings struct {
	FarmID     int64
	ElevationM float64 // m above sea level; pressure and clear-sky radiation depend on it
	KRs        float64 // Hargreaves' radiation coefficient: 0.16 inland (default), 0.19 coastal
	UpdatedAt  *time.Time
}

// WeatherSettings returns a farm's settings (defaults when none were saved).
func (s *Store) WeatherSettings(ctx context.Context, farmID int64) (WeatherSettings, error) {
	w := WeatherSettings{FarmID: farmID, KRs: agronomy.KRsInterior}
	err := s.db.QueryRow(ctx, `SELECT elevation_m, krs, updated_at FROM farm_weather_settings WHERE farm_id = $1`, farmID).
		Scan(&w.ElevationM, &w.KRs, &w.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return w, nil
	}
	return w, interpretError(err, "weather settings")
}

// SetWeatherSettings saves a farm's settings; days not yet final are recomputed with them.
func (s *Store) SetWeatherSettings(ctx context.Context, w WeatherSettings) (WeatherSettings, error) {
	if w.KRs == 0 {
		w.KRs = agronomy.KRsInterior
	}
	if !(w.ElevationM >= -500 && w.ElevationM <= 9000) {
		return WeatherSettings{}, invalid("elevation_m", "must be between -500 and 9000 m")
	}
	if !(w.KRs >= 0.1 && w.KRs <= 0.3) {
		return WeatherSettings{}, invalid("krs", "must be between 0.1 and 0.3 (0.16 inland, 0.19 near the coast)")
	}
	err := s.withTx(ctx, func(t *txn) error {
		if _, err := t.tx.Exec(ctx, `INSERT INTO farm_weather_settings (farm_id, elevation_m, krs, updated_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (farm_id) DO UPDATE
			SET elevation_m = EXCLUDED.elevation_m, krs = EXCLUDED.krs, updated_at = EXCLUDED.updated_at`,
			w.FarmID, w.ElevationM, w.KRs, t.now); err != nil {
			return interpretError(err, "weather settings")
		}
		_, err := t.tx.Exec(ctx, `DELETE FROM farm_et0_daily WHERE farm_id = $1 AND NOT final`, w.FarmID)
		return interpretError(err, "weather settings")
	})
	if err != nil {
		return WeatherSettings{}, err
	}
	return s.WeatherSettings(ctx, w.FarmID)
}

// ET0Day is a farm's reference evapotranspiration for one local calendar day, with the daily
// weather it was computed from.
type ET0Day struct {
	FarmID int64
	Day    time.Time // the local calendar day, as midnight UTC
	ET0    *float64  // mm; nil when there is not enough data
	Method string    // pm, hargreaves, none
	// ET0Hourly is the sum of the day's hourly (eq. 53) values, when every hour had data.
	ET0Hourly *float64
	Tmax      *float64
	Tmin      *float64
	RHMax     *float64
	RHMin     *float64
	RHMean    *float64
	DewPoint  *float64
	Wind2m    *float64
	SolarMJ   *float64 // MJ m⁻² day⁻¹
	Sunshine  *float64 // hours
	Rain      *float64 // mm, mean of the farm's gauges
	Hours     int      // hours with temperature data
	Sources   string   // how humidity, wind and radiation were obtained, and what was missing
	Terms     map[string]float64
	// Final: the day is over and its data is in; a day in progress is provisional and its ET0
	// is the part of the day so far.
	Final      bool
	ComputedAt time.Time
}

// ET0Hour is one hour's reference evapotranspiration (FAO-56 eq. 53).
type ET0Hour struct {
	Start   time.Time
	ET0     *float64 // mm; nil when the hour lacks temperature, humidity or radiation
	T       *float64
	RH      *float64
	Wind2m  *float64
	SolarMJ *float64 // MJ m⁻² h⁻¹
	Problem string   // why there is no value
}

// RainForecaster tells how much rain is expected at a farm over a period; ok is false when it
// has no forecast for it. It is the seam for weather services.
type RainForecaster interface {
	ForecastRain(ctx context.Context, farmID int64, from, to time.Time) (mm float64, ok bool, err error)
}

// WeatherConfig tunes a Weather. Zero values mean the defaults.
type WeatherConfig struct {
	// Forecast answers forecast_rain_24h and schedules' forecast skip. Default: the forecasts
	// pushed through the API (Store.SetForecast).
	Forecast RainForecaster
	// StaleAfter: a provisional day computed longer ago than this is computed again when asked
	// for. Default 15 min.
	StaleAfter time.Duration
	// FinalAfter: a day becomes final this long after it ended (late readings still count).
	// Default 1 h.
	FinalAfter time.Duration
}

// Weather turns a farm's weather-station readings into daily and hourly reference
// evapotranspiration (FAO-56), stored per farm and day, and answers rain questions.
type Weather struct {
	store    *Store
	readings Readings
	cfg      WeatherConfig
}

// NewWeather returns a Weather over store and readings.
func NewWeather(store *Store, readings Readings, cfg WeatherConfig) (*Weather, error) {
	if store == nil || readings == nil {
		return nil, errors.New("irrigation: NewWeather needs a store and readings")
	}
	if cfg.Forecast == nil {
		cfg.Forecast = storedForecasts{store}
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 15 * time.Minute
	}
	if cfg.FinalAfter <= 0 {
		cfg.FinalAfter = time.Hour
	}
	return &Weather{store: store, readings: readings, cfg: cfg}, nil
}

// farmSite is where a farm is and how it keeps time.
type farmSite struct {
	id       int64
	loc      *time.Location
	lat, lon *float64
	settings WeatherSettings
}

func (w *Weather) site(ctx context.Context, farmID int64) (farmSite, error) {
	f := farmSite{id: farmID}
	var tz string
	err := w.store.db.QueryRow(ctx, `SELECT timezone, ST_Y(location), ST_X(location) FROM farms WHERE id = $1`, farmID).
		Scan(&tz, &f.lat, &f.lon)
	if err != nil {
		return f, interpretError(err, fmt.Sprintf("farm %d", farmID))
	}
	if f.loc, err = w.store.location(tz); err != nil {
		return f, err
	}
	f.settings, err = w.store.WeatherSettings(ctx, farmID)
	return f, err
}

// localDay returns the local calendar day of t as midnight UTC, and its start and end instants.
func localDay(t time.Time, loc *time.Location) (day, start, end time.Time) {
	l := t.In(loc)
	day = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)
	start, end = dayBounds(day, loc)
	return day, start, end
}

// dayBounds returns the instants a local calendar day (midnight UTC) starts and ends.
func dayBounds(day time.Time, loc *time.Location) (start, end time.Time) {
	start = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
	end = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	return start, end
}

const et0Columns = `farm_id, day, et0_mm, method, et0_hourly_mm, tmax_c, tmin_c, rh_max_pct, rh_min_pct, rh_mean_pct,
	dew_point_c, wind_2m_ms, solar_mj_m2, sunshine_h, rain_mm, hours, sources, terms, final, computed_at`

func scanET0Day(row pgx.Row) (ET0Day, error) {
	var d ET0Day
	var terms []byte
	err := row.Scan(&d.FarmID, &d.Day, &d.ET0, &d.Method, &d.ET0Hourly, &d.Tmax, &d.Tmin, &d.RHMax, &d.RHMin, &d.RHMean,
		&d.DewPoint, &d.Wind2m, &d.SolarMJ, &d.Sunshine, &d.Rain, &d.Hours, &d.Sources, &terms, &d.Final, &d.ComputedAt)
	if err != nil {
		return d, err
	}
	d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
	err = json.Unmarshal(terms, &d.Terms)
	return d, err
}

// Days returns the farm's ET0 for the local days from..to (inclusive, midnight UTC each),
// computing the days that are missing or stale.
func (w *Weather) Days(ctx context.Context, farmID int64, from, to time.Time) ([]ET0Day, error) {
	if to.Before(from) {
		return nil, invalid("to", "must not be before from")
	}
	if to.Sub(from) > 400*24*time.Hour {
		return nil, invalid("to", "at most 400 days at a time")
	}
	f, err := w.site(ctx, farmID)
	if err != nil {
		return nil, err
	}
	stored := map[time.Time]ET0Day{}
	rows, err := w.store.db.Query(ctx, `SELECT `+et0Columns+` FROM farm_et0_daily WHERE farm_id = $1 AND day BETWEEN $2 AND $3`,
		farmID, from, to)
	if err != nil {
		return nil, interpretError(err, "ET0 days")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ET0Day, error) { return scanET0Day(r) })
	if err != nil {
		return nil, interpretError(err, "ET0 days")
	}
	for _, d := range list {
		stored[d.Day] = d
	}
	now := w.store.now()
	today, _, _ := localDay(now, f.loc)
	var out []ET0Day
	for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
		if day.After(today) {
			out = append(out, ET0Day{FarmID: farmID, Day: day, Method: ET0None, Sources: "the day has not begun", Terms: map[string]float64{}})
			continue
		}
		d, ok := stored[day]
		if !ok || (!d.Final && now.Sub(d.ComputedAt) > w.cfg.StaleAfter) {
			if d, err = w.compute(ctx, f, day, now); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// Day returns the farm's ET0 for one local day.
func (w *Weather) Day(ctx context.Context, farmID int64, day time.Time) (ET0Day, error) {
	days, err := w.Days(ctx, farmID, day, day)
	if err != nil {
		return ET0Day{}, err
	}
	return days[0], nil
}

// Update computes today's (provisional) and yesterday's ET0 of every farm that has a
// location; the leader calls it periodically.
func (w *Weather) Update(ctx context.Context) error {
	rows, err := w.store.db.Query(ctx, `SELECT id, timezone FROM farms WHERE location IS NOT NULL ORDER BY id`)
	if err != nil {
		return interpretError(err, "farms")
	}
	type farm struct {
		id int64
		tz string
	}
	farms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (farm, error) {
		var f farm
		return f, r.Scan(&f.id, &f.tz)
	})
	if err != nil {
		return interpretError(err, "farms")
	}
	now := w.store.now()
	var errs []error
	for _, f := range farms {
		loc, err := w.store.location(f.tz)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		today, _, _ := localDay(now, loc)
		if _, err := w.Days(ctx, f.id, today.AddDate(0, 0, -1), today); err != nil {
			errs = append(errs, fmt.Errorf("farm %d: %w", f.id, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// hourly is one metric over the hours of a local day, combined over the farm's nodes.
type hourly struct {
	n        []int
	sum      []float64 // Σ mean·n
	min, max []float64
	nodes    int // nodes with readings in the period
	// reporting is how many of the farm's nodes report the metric at all (a rain gauge that
	// stayed silent on a dry day still says "no rain").
	reporting int
}

func newHourly(hours int) *hourly {
	h := &hourly{n: make([]int, hours), sum: make([]float64, hours), min: make([]float64, hours), max: make([]float64, hours)}
	for i := range h.min {
		h.min[i], h.max[i] = math.Inf(1), math.Inf(-1)
	}
	return h
}

func (h *hourly) covered() int {
	c := 0
	for _, n := range h.n {
		if n > 0 {
			c++
		}
	}
	return c
}

func (h *hourly) mean(i int) (float64, bool) {
	if h.n[i] == 0 {
		return 0, false
	}
	return h.sum[i] / float64(h.n[i]), true
}

// dayStats are the day's extremes and means over the covered hours.
func (h *hourly) dayStats() (lo, hi, mean float64, hours int) {
	lo, hi = math.Inf(1), math.Inf(-1)
	var s float64
	for i := range h.n {
		if h.n[i] == 0 {
			continue
		}
		lo, hi = math.Min(lo, h.min[i]), math.Max(hi, h.max[i])
		m, _ := h.mean(i)
		s += m
		hours++
	}
	if hours > 0 {
		mean = s / float64(hours)
	}
	return lo, hi, mean, hours
}

// weatherNodes lists the farm's nodes that report metric.
func weatherNodes(nodes []fieldnodes.Node, metric string) []fieldnodes.Node {
	var out []fieldnodes.Node
	for _, n := range nodes {
		if _, ok := n.Latest[metric]; ok {
			out = append(out, n)
		}
	}
	return out
}

// loadHourly reads metric of the nodes for the hours from start, transforming each value
// (wind to 2 m) per node.
func (w *Weather) loadHourly(ctx context.Context, nodes []fieldnodes.Node, metric string, start time.Time, hours int,
	transform func(n fieldnodes.Node, v float64) float64) (*hourly, error) {
	h := newHourly(hours)
	end := start.Add(time.Duration(hours) * time.Hour)
	reporting := weatherNodes(nodes, metric)
	h.reporting = len(reporting)
	for _, n := range reporting {
		series, err := w.readings.Readings(ctx, n.ID, metric, start, end, hours)
		if err != nil {
			return nil, fmt.Errorf("%s of node %d: %w", metric, n.ID, err)
		}
		if len(series.Points) > 0 {
			h.nodes++
		}
		for _, p := range series.Points {
			i := int(p.TS.Sub(start) / time.Hour)
			if i < 0 || i >= hours {
				continue
			}
			mean, lo, hi := p.Mean, p.Min, p.Max
			if transform != nil {
				mean, lo, hi = transform(n, mean), transform(n, lo), transform(n, hi)
			}
			h.n[i] += p.N
			h.sum[i] += mean * float64(p.N)
			h.min[i] = math.Min(h.min[i], lo)
			h.max[i] = math.Max(h.max[i], hi)
		}
	}
	return h, nil
}

// wind2m converts a node's wind reading to 2 m (eq. 47) from its height (2 m when unknown).
func wind2m(n fieldnodes.Node, v float64) float64 {
	if n.HeightM == nil || *n.HeightM <= 0 {
		return v
	}
	return agronomy.WindAt2m(v, *n.HeightM)
}

// dayWeather is a local day's weather, hour by hour.
type dayWeather struct {
	start    time.Time
	hours    int // hours of the day that have begun (all of them once it is over)
	dayHours int // 23, 24 or 25
	t, rh    *hourly
	dew      *hourly
	wind     *hourly
	solar    *hourly
	sunshine *hourly
	rain     *hourly
}

func (w *Weather) loadDay(ctx context.Context, f farmSite, day, now time.Time) (dayWeather, error) {
	start, end := dayBounds(day, f.loc)
	dw := dayWeather{start: start, dayHours: int(end.Sub(start) / time.Hour)}
	dw.hours = dw.dayHours
	if now.Before(end) {
		dw.hours = max(0, int(math.Ceil(now.Sub(start).Hours())))
		dw.hours = min(dw.hours, dw.dayHours)
	}
	nodes, err := w.readings.Nodes(ctx, f.id)
	if err != nil {
		return dw, fmt.Errorf("nodes of farm %d: %w", f.id, err)
	}
	hours := max(dw.hours, 1)
	load := func(metric string, tr func(fieldnodes.Node, float64) float64) (*hourly, error) {
		return w.loadHourly(ctx, nodes, metric, start, hours, tr)
	}
	if dw.t, err = load(MetricAirTemp, nil); err != nil {
		return dw, err
	}
	if dw.rh, err = load(MetricAirRH, nil); err != nil {
		return dw, err
	}
	if dw.dew, err = load(MetricDewPoint, nil); err != nil {
		return dw, err
	}
	if dw.wind, err = load(MetricWind, wind2m); err != nil {
		return dw, err
	}
	if dw.solar, err = load(MetricSolarRad, nil); err != nil {
		return dw, err
	}
	if dw.sunshine, err = load(MetricSunshine, nil); err != nil {
		return dw, err
	}
	if dw.rain, err = load(MetricRain, nil); err != nil {
		return dw, err
	}
	if dw.hours == 0 { // the day has not begun
		dw.t, dw.rh, dw.dew, dw.wind, dw.solar, dw.sunshine, dw.rain = newHourly(1), newHourly(1), newHourly(1),
			newHourly(1), newHourly(1), newHourly(1), newHourly(1)
	}
	return dw, nil
}

// rainTotal is the mean over the farm's gauges of each gauge's total (a silent gauge counts
// as 0); ok is false when the farm has none.
func rainTotal(h *hourly) (float64, bool) {
	if h.reporting == 0 {
		return 0, false
	}
	total := 0.0
	for i := range h.n {
		total += h.sum[i]
	}
	return total / float64(h.reporting), true
}

// sunshineTotal is the mean over the recorders that reported of their totals; ok is false
// when none reported that day (a missing day is no sunshine data, not a dull day).
func sunshineTotal(h *hourly) (float64, bool) {
	if h.nodes == 0 {
		return 0, false
	}
	total := 0.0
	for i := range h.n {
		total += h.sum[i]
	}
	return total / float64(h.nodes), true
}

func ptr(v float64) *float64 { return &v }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// standardOffset is the zone's standard-time UTC offset in hours (eq. 31 wants standard time):
// the smaller of its January and July offsets.
func standardOffset(loc *time.Location, year int) float64 {
	_, jan := time.Date(year, 1, 1, 12, 0, 0, 0, loc).Zone()
	_, jul := time.Date(year, 7, 1, 12, 0, 0, 0, loc).Zone()
	return float64(min(jan, jul)) / 3600
}

// compute works out and stores one day's ET0.
func (w *Weather) compute(ctx context.Context, f farmSite, day, now time.Time) (ET0Day, error) {
	d := ET0Day{FarmID: f.id, Day: day, Method: ET0None, Terms: map[string]float64{}, ComputedAt: now}
	_, dayEnd := dayBounds(day, f.loc)
	d.Final = !now.Before(dayEnd.Add(w.cfg.FinalAfter))
	var notes []string
	if f.lat == nil || f.lon == nil {
		d.Sources = "the farm has no location: ET0 needs its latitude"
		return w.save(ctx, d)
	}
	dw, err := w.loadDay(ctx, f, day, now)
	if err != nil {
		return ET0Day{}, err
	}
	if total, ok := rainTotal(dw.rain); ok {
		d.Rain = ptr(round3(total))
	}
	tmin, tmax, _, th := dw.t.dayStats()
	d.Hours = th
	if th == 0 {
		d.Sources = "no air temperature readings"
		return w.save(ctx, d)
	}
	d.Tmax, d.Tmin = ptr(tmax), ptr(tmin)
	if th < dw.hours*3/4 {
		notes = append(notes, fmt.Sprintf("temperature in %d of %d hours only", th, dw.hours))
	}

	in := agronomy.DailyInput{Date: day, Latitude: *f.lat, Elevation: f.settings.ElevationM, Tmax: tmax, Tmin: tmin}
	// Humidity: the dew point first (FAO-56's preferred source), then RHmax/RHmin, then RHmean.
	_, _, dewMean, dewH := dw.dew.dayStats()
	rhLo, rhHi, rhMean, rhH := dw.rh.dayStats()
	enough := max(1, dw.hours*3/4)
	switch {
	case dewH >= enough:
		in.Humidity = agronomy.DewPoint(math.Min(dewMean, tmax))
		d.DewPoint = ptr(dewMean)
		notes = append(notes, "humidity from the dew point")
	case rhH >= enough:
		in.Humidity = agronomy.RHMaxMin(math.Min(rhHi, 100), math.Max(rhLo, 0))
		d.RHMax, d.RHMin, d.RHMean = ptr(rhHi), ptr(rhLo), ptr(rhMean)
		notes = append(notes, "humidity from RHmax and RHmin")
	case rhH > 0:
		in.Humidity = agronomy.RHMean(math.Min(math.Max(rhMean, 0), 100))
		d.RHMean = ptr(rhMean)
		notes = append(notes, fmt.Sprintf("humidity from RHmean of %d hours", rhH))
	default:
		notes = append(notes, "no humidity: dew point taken as Tmin")
	}
	_, _, u2, windH := dw.wind.dayStats()
	if windH >= max(1, dw.hours/2) {
		in.Wind = agronomy.WindAt(u2, 2)
		d.Wind2m = ptr(u2)
		notes = append(notes, "wind adjusted to 2 m")
	} else {
		notes = append(notes, "no wind: 2 m/s")
	}
	_, _, solarMean, solarH := dw.solar.dayStats()
	sunshine, haveSunshine := sunshineTotal(dw.sunshine)
	switch {
	case solarH >= dw.dayHours-1 && d.Final:
		// The mean of the hourly means over the day, in MJ: W/m² × 86400 s / 10⁶.
		rs := solarMean * float64(dw.dayHours) * 3600 / 1e6
		in.Radiation = agronomy.MeasuredRs(rs)
		d.SolarMJ = ptr(rs)
		notes = append(notes, "measured solar radiation")
	case haveSunshine && d.Final:
		in.Radiation = agronomy.Sunshine(sunshine)
		d.Sunshine = ptr(sunshine)
		notes = append(notes, "radiation from sunshine hours (Angström)")
	default:
		in.Radiation = agronomy.TempRange(f.settings.KRs)
		notes = append(notes, fmt.Sprintf("radiation from the temperature range (kRs %g)", f.settings.KRs))
	}
	onlyTemperature := in.Humidity.Source == agronomy.HumidityMissing && !in.Wind.Measured &&
		in.Radiation.Source == agronomy.RadiationFromTempRange
	var et0 float64
	var terms []agronomy.Term
	if onlyTemperature && tmax > tmin {
		r, err := agronomy.Hargreaves(agronomy.HargreavesInput{Date: day, Latitude: *f.lat, Tmax: tmax, Tmin: tmin})
		if err != nil {
			d.Sources = strings.Join(append(notes, "Hargreaves: "+err.Error()), "; ")
			return w.save(ctx, d)
		}
		et0, terms, d.Method = r.ET0, r.Terms(), ET0Hargreaves
		notes = []string{"only temperature: Hargreaves (eq. 52)"}
	} else {
		r, err := agronomy.PenmanMonteithDaily(in)
		if err != nil && in.Radiation.Source == agronomy.RadiationMeasured {
			// A pyranometer reading more than the sky can give is a sensor or unit fault.
			notes = append(notes, "measured radiation refused ("+err.Error()+"), from the temperature range instead")
			in.Radiation = agronomy.TempRange(f.settings.KRs)
			d.SolarMJ = nil
			r, err = agronomy.PenmanMonteithDaily(in)
		}
		if err != nil {
			d.Sources = strings.Join(append(notes, "Penman–Monteith: "+err.Error()), "; ")
			return w.save(ctx, d)
		}
		et0, terms, d.Method = r.ET0, r.Terms(), ET0PenmanMonteith
	}
	for _, t := range terms {
		d.Terms[t.Key] = t.Value
	}
	// The hourly equation, hour by hour, where temperature, humidity and radiation are known.
	hoursET0, complete := w.hourlyET0(f, dw)
	if complete && len(hoursET0) == dw.dayHours {
		sum := 0.0
		for _, h := range hoursET0 {
			sum += *h.ET0
		}
		d.ET0Hourly = ptr(round3(sum))
	}
	if !d.Final {
		// A day in progress: the part of it so far, by the hourly equation where it can be
		// computed, else the daily value pro rata of the hours gone by.
		if complete && len(hoursET0) == dw.hours {
			sum := 0.0
			for _, h := range hoursET0 {
				sum += *h.ET0
			}
			et0 = sum
			notes = append(notes, fmt.Sprintf("so far: sum of %d hourly values (eq. 53)", dw.hours))
		} else {
			et0 *= float64(dw.hours) / float64(dw.dayHours)
			notes = append(notes, fmt.Sprintf("so far: %d/%d of the daily value", dw.hours, dw.dayHours))
		}
	}
	d.ET0 = ptr(round3(math.Max(0, et0)))
	d.Sources = strings.Join(notes, "; ")
	return w.save(ctx, d)
}

// hourlyET0 computes eq. 53 for the hours that have begun; complete is false when an hour
// lacked temperature, humidity or radiation.
func (w *Weather) hourlyET0(f farmSite, dw dayWeather) ([]ET0Hour, bool) {
	out := make([]ET0Hour, 0, dw.hours)
	complete := true
	night := 0.0 // Rs/Rso carried into the night (0: the default)
	for i := 0; i < dw.hours; i++ {
		start := dw.start.Add(time.Duration(i) * time.Hour)
		h := ET0Hour{Start: start}
		t, okT := dw.t.mean(i)
		rh, okRH := dw.rh.mean(i)
		if !okRH {
			if dew, ok := dw.dew.mean(i); ok && okT {
				rh, okRH = math.Min(100, 100*agronomy.SatVapourPressure(dew)/agronomy.SatVapourPressure(t)), true
			}
		}
		solar, okS := dw.solar.mean(i)
		u, okU := dw.wind.mean(i)
		if okT {
			h.T = ptr(t)
		}
		if okRH {
			h.RH = ptr(rh)
		}
		if okU {
			h.Wind2m = ptr(u)
		}
		if okS {
			h.SolarMJ = ptr(solar * 3600 / 1e6)
		}
		if !okT || !okRH || !okS {
			h.Problem = "needs temperature, humidity and solar radiation"
			complete = false
			out = append(out, h)
			continue
		}
		off := standardOffset(f.loc, start.Year())
		std := start.Add(time.Duration(off * float64(time.Hour))).UTC()
		in := agronomy.HourlyInput{Date: std, Hour: std.Hour(), Latitude: *f.lat, Longitude: *f.lon, UTCOffset: off,
			Elevation: f.settings.ElevationM, T: t, RH: math.Max(0, math.Min(100, rh)), Rs: solar * 3600 / 1e6, NightRsRso: night}
		if okU {
			in.Wind = agronomy.WindAt(u, 2)
		}
		r, err := agronomy.PenmanMonteithHourly(in)
		if err != nil {
			h.Problem = err.Error()
			complete = false
			out = append(out, h)
			continue
		}
		if r.Daytime {
			night = r.RsRso
		}
		h.ET0 = ptr(round3(math.Max(0, r.ET0)))
		out = append(out, h)
	}
	return out, complete
}

// Hours returns the hourly ET0 (eq. 53) of a farm's local day, computed from its readings (not
// stored).
func (w *Weather) Hours(ctx context.Context, farmID int64, day time.Time) ([]ET0Hour, error) {
	f, err := w.site(ctx, farmID)
	if err != nil {
		return nil, err
	}
	if f.lat == nil || f.lon == nil {
		return nil, invalid("farm", "the farm has no location: ET0 needs its latitude and longitude")
	}
	dw, err := w.loadDay(ctx, f, day, w.store.now())
	if err != nil {
		return nil, err
	}
	hours, _ := w.hourlyET0(f, dw)
	return hours, nil
}

func (w *Weather) save(ctx context.Context, d ET0Day) (ET0Day, error) {
	terms, err := json.Marshal(d.Terms)
	if err != nil {
		return d, err
	}
	_, err = w.store.db.Exec(ctx, `INSERT INTO farm_et0_daily (`+et0Columns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		ON CONFLICT (farm_id, day) DO UPDATE SET et0_mm = EXCLUDED.et0_mm, method = EXCLUDED.method,
			et0_hourly_mm = EXCLUDED.et0_hourly_mm, tmax_c = EXCLUDED.tmax_c, tmin_c = EXCLUDED.tmin_c,
			rh_max_pct = EXCLUDED.rh_max_pct, rh_min_pct = EXCLUDED.rh_min_pct, rh_mean_pct = EXCLUDED.rh_mean_pct,
			dew_point_c = EXCLUDED.dew_point_c, wind_2m_ms = EXCLUDED.wind_2m_ms, solar_mj_m2 = EXCLUDED.solar_mj_m2,
			sunshine_h = EXCLUDED.sunshine_h, rain_mm = EXCLUDED.rain_mm, hours = EXCLUDED.hours,
			sources = EXCLUDED.sources, terms = EXCLUDED.terms, final = EXCLUDED.final, computed_at = EXCLUDED.computed_at
		WHERE NOT farm_et0_daily.final`,
		d.FarmID, d.Day, d.ET0, d.Method, d.ET0Hourly, d.Tmax, d.Tmin, d.RHMax, d.RHMin, d.RHMean, d.DewPoint, d.Wind2m,
		d.SolarMJ, d.Sunshine, d.Rain, d.Hours, d.Sources, terms, d.Final, d.ComputedAt)
	if err != nil {
		return d, interpretError(err, "store ET0")
	}
	return d, nil
}

// Rain returns the rain at a farm over [from, to): the mean over its rain gauges of each one's
// total; gauges is how many gauges the farm has (0: rain is unknown).
func (w *Weather) Rain(ctx context.Context, farmID int64, from, to time.Time) (mm float64, gauges int, err error) {
	nodes, err := w.readings.Nodes(ctx, farmID)
	if err != nil {
		return 0, 0, fmt.Errorf("nodes of farm %d: %w", farmID, err)
	}
	gs := weatherNodes(nodes, MetricRain)
	if len(gs) == 0 || !to.After(from) {
		return 0, len(gs), nil
	}
	total := 0.0
	for _, g := range gs {
		s, err := w.readings.Readings(ctx, g.ID, MetricRain, from, to, 1)
		if err != nil {
			return 0, 0, fmt.Errorf("rain of node %d: %w", g.ID, err)
		}
		for _, p := range s.Points {
			total += p.Mean * float64(p.N)
		}
	}
	return total / float64(len(gs)), len(gs), nil
}

// Forecast returns the forecast rain at a farm over [from, to).
func (w *Weather) Forecast(ctx context.Context, farmID int64, from, to time.Time) (float64, bool, error) {
	return w.cfg.Forecast.ForecastRain(ctx, farmID, from, to)
}

// ForecastPeriod is rain forecast for a period.
type ForecastPeriod struct {
	From, To time.Time
	RainMM   float64
}

// SetForecast replaces a farm's rain forecast with periods from source (received now).
func (s *Store) SetForecast(ctx context.Context, farmID int64, source string, periods []ForecastPeriod) error {
	if len(periods) == 0 || len(periods) > 1000 {
		return invalid("periods", "give 1 to 1000 periods")
	}
	for i, p := range periods {
		if !p.To.After(p.From) {
			return invalid("periods", "period %d: to must be after from", i+1)
		}
		if !(p.RainMM >= 0 && p.RainMM < 1000) {
			return invalid("periods", "period %d: rain_mm must be between 0 and 1000", i+1)
		}
	}
	return s.withTx(ctx, func(t *txn) error {
		if _, err := t.tx.Exec(ctx, `DELETE FROM weather_forecasts WHERE farm_id = $1`, farmID); err != nil {
			return interpretError(err, "forecast")
		}
		for _, p := range periods {
			if _, err := t.tx.Exec(ctx, `INSERT INTO weather_forecasts (farm_id, valid_from, valid_to, rain_mm, source, received_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, farmID, p.From, p.To, p.RainMM, source, t.now); err != nil {
				return interpretError(err, "forecast")
			}
		}
		return nil
	})
}

// storedForecasts answers from the forecasts pushed through the API: the rain of the periods
// overlapping [from, to), pro rata of the overlap. A forecast received more than 48 h ago, or
// one covering less than half the period, is no forecast.
type storedForecasts struct{ store *Store }

func (f storedForecasts) ForecastRain(ctx context.Context, farmID int64, from, to time.Time) (float64, bool, error) {
	rows, err := f.store.db.Query(ctx, `SELECT valid_from, valid_to, rain_mm FROM weather_forecasts
		WHERE farm_id = $1 AND valid_to > $2 AND valid_from < $3 AND received_at >= $4`,
		farmID, from, to, f.store.now().Add(-48*time.Hour))
	if err != nil {
		return 0, false, interpretError(err, "forecast")
	}
	defer rows.Close()
	var rain float64
	var covered time.Duration
	for rows.Next() {
		var a, b time.Time
		var mm float64
		if err := rows.Scan(&a, &b, &mm); err != nil {
			return 0, false, interpretError(err, "forecast")
		}
		lo, hi := a, b
		if lo.Before(from) {
			lo = from
		}
		if hi.After(to) {
			hi = to
		}
		if hi.After(lo) {
			rain += mm * float64(hi.Sub(lo)) / float64(b.Sub(a))
			covered += hi.Sub(lo)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, false, interpretError(err, "forecast")
	}
	if covered*2 < to.Sub(from) {
		return 0, false, nil
	}
	return rain, true, nil
}
