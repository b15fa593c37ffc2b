package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of a farm's weather: reference evapotranspiration (FAO-56) per day and hour from its
// stations' readings, the settings ET0 needs beyond the farm's location, and rain forecasts
// pushed by a forecast source.

// parseDate reads a calendar day "YYYY-MM-DD" (nil stays nil) as midnight UTC.
func parseDate(field string, v *string) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	d, err := time.Parse(time.DateOnly, strings.TrimSpace(*v))
	if err != nil {
		return nil, &ValidationError{Field: field, Problem: "not a date (YYYY-MM-DD)"}
	}
	return &d, nil
}

func dateOf(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.Format(time.DateOnly)
	return &s
}

// dayRange reads ?from= and ?to= (YYYY-MM-DD, inclusive), defaulting to the days back before
// to, and to to today in loc.
func dayRange(c echo.Context, now time.Time, loc *time.Location, back int) (from, to time.Time, err error) {
	l := now.In(loc)
	to = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)
	if v := c.QueryParam("to"); v != "" {
		d, err := parseDate("to", &v)
		if err != nil {
			return from, to, err
		}
		to = *d
	}
	from = to.AddDate(0, 0, -back)
	if v := c.QueryParam("from"); v != "" {
		d, err := parseDate("from", &v)
		if err != nil {
			return from, to, err
		}
		from = *d
	}
	if to.Before(from) {
		return from, to, &ValidationError{Field: "to", Problem: "must not be before from"}
	}
	return from, to, nil
}

type et0DayJSON struct {
	Day        string             `json:"day"`
	ET0        *float64           `json:"et0_mm"`
	Method     string             `json:"method"`
	ET0Hourly  *float64           `json:"et0_hourly_mm"`
	Tmax       *float64           `json:"tmax_c"`
	Tmin       *float64           `json:"tmin_c"`
	RHMax      *float64           `json:"rh_max_pct"`
	RHMin      *float64           `json:"rh_min_pct"`
	RHMean     *float64           `json:"rh_mean_pct"`
	DewPoint   *float64           `json:"dew_point_c"`
	Wind2m     *float64           `json:"wind_2m_ms"`
	Solar      *float64           `json:"solar_mj_m2"`
	Sunshine   *float64           `json:"sunshine_h"`
	Rain       *float64           `json:"rain_mm"`
	Hours      int                `json:"hours"`
	Sources    string             `json:"sources"`
	Terms      map[string]float64 `json:"terms"`
	Final      bool               `json:"final"`
	ComputedAt time.Time          `json:"computed_at"`
}

func et0DayOf(d irrigation.ET0Day) et0DayJSON {
	day := d.Day.Format(time.DateOnly)
	terms := d.Terms
	if terms == nil {
		terms = map[string]float64{}
	}
	return et0DayJSON{Day: day, ET0: d.ET0, Method: d.Method, ET0Hourly: d.ET0Hourly, Tmax: d.Tmax, Tmin: d.Tmin,
		RHMax: d.RHMax, RHMin: d.RHMin, RHMean: d.RHMean, DewPoint: d.DewPoint, Wind2m: d.Wind2m, Solar: d.SolarMJ,
		Sunshine: d.Sunshine, Rain: d.Rain, Hours: d.Hours, Sources: d.Sources, Terms: terms, Final: d.Final,
		ComputedAt: d.ComputedAt.UTC()}
}

// farmET0: GET /farms/{farm}/et0?from=&to= — daily ET0, the last 7 days by default.
func (s *Server) farmET0(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(farm.Timezone)
	if err != nil {
		return err
	}
	from, to, err := dayRange(c, s.now(), loc, 6)
	if err != nil {
		return err
	}
	dec, err := s.decider()
	if err != nil {
		return err
	}
	days, err := dec.Weather.Days(c.Request().Context(), farm.ID, from, to)
	if err != nil {
		return err
	}
	out := make([]et0DayJSON, 0, len(days))
	for _, d := range days {
		out = append(out, et0DayOf(d))
	}
	return c.JSON(http.StatusOK, out)
}

type et0HourJSON struct {
	Start   time.Time `json:"start"`
	ET0     *float64  `json:"et0_mm"`
	T       *float64  `json:"temp_c"`
	RH      *float64  `json:"rh_pct"`
	Wind2m  *float64  `json:"wind_2m_ms"`
	Solar   *float64  `json:"solar_mj_m2"`
	Problem string    `json:"problem"`
}

// farmET0Hourly: GET /farms/{farm}/et0/hourly?date= — the hourly ET0 (eq. 53) of one day,
// today by default.
func (s *Server) farmET0Hourly(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(farm.Timezone)
	if err != nil {
		return err
	}
	l := s.now().In(loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)
	if v := c.QueryParam("date"); v != "" {
		d, err := parseDate("date", &v)
		if err != nil {
			return err
		}
		day = *d
	}
	dec, err := s.decider()
	if err != nil {
		return err
	}
	hours, err := dec.Weather.Hours(c.Request().Context(), farm.ID, day)
	if err != nil {
		return err
	}
	out := make([]et0HourJSON, 0, len(hours))
	for _, h := range hours {
		out = append(out, et0HourJSON{Start: h.Start.UTC(), ET0: h.ET0, T: h.T, RH: h.RH, Wind2m: h.Wind2m, Solar: h.SolarMJ, Problem: h.Problem})
	}
	return c.JSON(http.StatusOK, out)
}

type weatherSettingsJSON struct {
	ElevationM float64    `json:"elevation_m"`
	KRs        float64    `json:"krs"`
	UpdatedAt  *time.Time `json:"updated_at"`
}

// getWeatherSettings: GET /farms/{farm}/weather-settings.
func (s *Server) getWeatherSettings(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	w, err := s.irr.WeatherSettings(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, weatherSettingsJSON{ElevationM: w.ElevationM, KRs: w.KRs, UpdatedAt: utcp(w.UpdatedAt)})
}

// putWeatherSettings: PUT /farms/{farm}/weather-settings (agronomist) {"elevation_m","krs"}.
func (s *Server) putWeatherSettings(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in struct {
		ElevationM *float64 `json:"elevation_m"`
		KRs        *float64 `json:"krs"`
	}
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	w, err := s.irr.WeatherSettings(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	set(&w.ElevationM, in.ElevationM)
	set(&w.KRs, in.KRs)
	if w, err = s.irr.SetWeatherSettings(c.Request().Context(), w); err != nil {
		return err
	}
	out := weatherSettingsJSON{ElevationM: w.ElevationM, KRs: w.KRs, UpdatedAt: utcp(w.UpdatedAt)}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "weather_settings", EntityID: farm.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// putForecast: PUT /farms/{farm}/forecast (agronomist)
// {"source","periods":[{"from","to","rain_mm"}]} replaces the farm's rain forecast.
func (s *Server) putForecast(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in struct {
		Source  string `json:"source"`
		Periods []struct {
			From   time.Time `json:"from"`
			To     time.Time `json:"to"`
			RainMM float64   `json:"rain_mm"`
		} `json:"periods"`
	}
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	periods := make([]irrigation.ForecastPeriod, 0, len(in.Periods))
	for _, p := range in.Periods {
		periods = append(periods, irrigation.ForecastPeriod{From: p.From, To: p.To, RainMM: p.RainMM})
	}
	if err := s.irr.SetForecast(c.Request().Context(), farm.ID, in.Source, periods); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "forecast", EntityID: farm.ID,
		Detail: map[string]any{"source": in.Source, "periods": len(periods)}})
	return c.NoContent(http.StatusNoContent)
}

// decider is the configured Decider (dry runs, backtests, ET0, water balances).
func (s *Server) decider() (*irrigation.Decider, error) {
	return s.cfg.Decider, nil
}
