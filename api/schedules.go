package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// Handlers of schedules: water a zone at the times of a cron expression in the farm's time zone,
// on the days allowed, unless a skip condition holds; a fixed duration (seasonally adjusted), or
// what the water balance says the zone lacks; in one go or in cycles with soaks between.

type scheduleJSON struct {
	ID                 int64      `json:"id"`
	ZoneID             int64      `json:"zone_id"`
	Name               string     `json:"name"`
	Cron               string     `json:"cron"`
	Timezone           string     `json:"timezone"` // the farm's, in which cron is read
	Mode               string     `json:"mode"`
	DurationS          *int       `json:"duration_s"`
	Enabled            bool       `json:"enabled"`
	Weekdays           []string   `json:"weekdays"`
	DayParity          string     `json:"day_parity"`
	SkipRainMM         *float64   `json:"skip_rain_mm"`
	SkipForecastRainMM *float64   `json:"skip_forecast_rain_mm"`
	SkipSoilVWC        *float64   `json:"skip_soil_vwc"`
	SkipFrostC         *float64   `json:"skip_frost_c"`
	SkipWindMS         *float64   `json:"skip_wind_ms"`
	SeasonalPct        int        `json:"seasonal_pct"`
	CycleS             *int       `json:"cycle_s"`
	SoakS              *int       `json:"soak_s"`
	PendingS           *int       `json:"pending_s"`  // still to water in further cycles
	PendingAt          *time.Time `json:"pending_at"` // when the next cycle is due
	LastFiredAt        *time.Time `json:"last_fired_at"`
	NextAt             *time.Time `json:"next_at"` // null when disabled
}

func optInt(v int) *int {
	if v <= 0 {
		return nil
	}
	return &v
}

func scheduleOf(sc irrigation.Schedule) scheduleJSON {
	out := scheduleJSON{ID: sc.ID, ZoneID: sc.ZoneID, Name: sc.Name, Cron: sc.Cron, Timezone: sc.Timezone, Mode: sc.Mode,
		DurationS: optInt(sc.DurationS), Enabled: sc.Enabled, Weekdays: sc.Weekdays, DayParity: sc.DayParity,
		SkipRainMM: sc.SkipRainMM, SkipForecastRainMM: sc.SkipForecastRainMM, SkipSoilVWC: sc.SkipSoilVWC,
		SkipFrostC: sc.SkipFrostC, SkipWindMS: sc.SkipWindMS, SeasonalPct: sc.SeasonalPct, CycleS: optInt(sc.CycleS),
		PendingS: optInt(sc.PendingS), PendingAt: utcp(sc.PendingAt), LastFiredAt: utcp(sc.LastFiredAt), NextAt: utcp(sc.NextAt)}
	if sc.CycleS > 0 {
		soak := sc.SoakS
		out.SoakS = &soak
	}
	if out.Weekdays == nil {
		out.Weekdays = []string{}
	}
	if out.SeasonalPct == 0 {
		out.SeasonalPct = 100
	}
	return out
}

// scheduleInput is the body of POST (name and cron required, duration_s too in fixed mode;
// enabled defaults to true) and PATCH (all optional; null clears the nullable members).
type scheduleInput struct {
	Name               *string           `json:"name"`
	Cron               *string           `json:"cron"`
	Mode               *string           `json:"mode"`
	DurationS          nullable[int]     `json:"duration_s"`
	Enabled            *bool             `json:"enabled"`
	Weekdays           *[]string         `json:"weekdays"`
	DayParity          *string           `json:"day_parity"`
	SkipRainMM         nullable[float64] `json:"skip_rain_mm"`
	SkipForecastRainMM nullable[float64] `json:"skip_forecast_rain_mm"`
	SkipSoilVWC        nullable[float64] `json:"skip_soil_vwc"`
	SkipFrostC         nullable[float64] `json:"skip_frost_c"`
	SkipWindMS         nullable[float64] `json:"skip_wind_ms"`
	SeasonalPct        *int              `json:"seasonal_pct"`
	CycleS             nullable[int]     `json:"cycle_s"`
	SoakS              nullable[int]     `json:"soak_s"`
}

func (in scheduleInput) apply(sc *irrigation.Schedule) error {
	set(&sc.Name, in.Name)
	set(&sc.Cron, in.Cron)
	set(&sc.Mode, in.Mode)
	if in.DurationS.Set {
		sc.DurationS = 0
		if in.DurationS.Value != nil {
			if *in.DurationS.Value <= 0 {
				return &ValidationError{Field: "duration_s", Problem: "must be a positive number of seconds"}
			}
			sc.DurationS = *in.DurationS.Value
		}
	}
	set(&sc.Enabled, in.Enabled)
	if in.Weekdays != nil {
		sc.Weekdays = *in.Weekdays
	}
	set(&sc.DayParity, in.DayParity)
	in.SkipRainMM.apply(&sc.SkipRainMM)
	in.SkipForecastRainMM.apply(&sc.SkipForecastRainMM)
	in.SkipSoilVWC.apply(&sc.SkipSoilVWC)
	in.SkipFrostC.apply(&sc.SkipFrostC)
	in.SkipWindMS.apply(&sc.SkipWindMS)
	if in.SeasonalPct != nil {
		if *in.SeasonalPct < 1 || *in.SeasonalPct > 300 {
			return &ValidationError{Field: "seasonal_pct", Problem: "must be between 1 and 300"}
		}
		sc.SeasonalPct = *in.SeasonalPct
	}
	for _, m := range []struct {
		in    nullable[int]
		dst   *int
		field string
	}{{in.CycleS, &sc.CycleS, "cycle_s"}, {in.SoakS, &sc.SoakS, "soak_s"}} {
		if !m.in.Set {
			continue
		}
		*m.dst = 0
		if m.in.Value != nil {
			if *m.in.Value < 0 || (m.field == "cycle_s" && *m.in.Value == 0) {
				return &ValidationError{Field: m.field, Problem: "must be a positive number of seconds"}
			}
			*m.dst = *m.in.Value
		}
	}
	if in.CycleS.Set && in.CycleS.Value == nil {
		sc.SoakS = 0 // no cycles, no soak
	}
	return nil
}

// listSchedules: GET /zones/{zone}/schedules.
func (s *Server) listSchedules(c echo.Context) error {
	z, _, err := s.zoneOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	list, err := s.irr.Schedules(c.Request().Context(), z.ID)
	if err != nil {
		return err
	}
	out := make([]scheduleJSON, 0, len(list))
	for _, sc := range list {
		out = append(out, scheduleOf(sc))
	}
	return c.JSON(http.StatusOK, out)
}

// createSchedule: POST /zones/{zone}/schedules (agronomist) → 201 schedule; its first
// occurrence is the first after now.
func (s *Server) createSchedule(c echo.Context) error {
	z, farm, err := s.zoneOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in scheduleInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Cron == nil {
		return &ValidationError{Field: "cron", Problem: "required"}
	}
	sc := irrigation.Schedule{ZoneID: z.ID, Enabled: true}
	if err := in.apply(&sc); err != nil {
		return err
	}
	sc, err = s.irr.CreateSchedule(c.Request().Context(), sc)
	if err != nil {
		return err
	}
	out := scheduleOf(sc)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "create", Entity: "schedule", EntityID: sc.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) scheduleOfPath(c echo.Context, min Role) (irrigation.Schedule, geo.Farm, error) {
	return onFarm(s, c, "id", min, s.irr.Schedule, func(sc irrigation.Schedule) int64 { return sc.FarmID })
}

// getSchedule: GET /schedules/{id}.
func (s *Server) getSchedule(c echo.Context) error {
	sc, _, err := s.scheduleOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, scheduleOf(sc))
}

// updateSchedule: PATCH /schedules/{id} (agronomist). A new cron expression or day
// restriction, or enabling a disabled schedule, starts afresh from now: earlier occurrences are
// not made up.
func (s *Server) updateSchedule(c echo.Context) error {
	sc, farm, err := s.scheduleOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in scheduleInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if err := in.apply(&sc); err != nil {
		return err
	}
	sc, err = s.irr.UpdateSchedule(c.Request().Context(), sc)
	if err != nil {
		return err
	}
	out := scheduleOf(sc)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "schedule", EntityID: sc.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// deleteSchedule: DELETE /schedules/{id} (agronomist); the runs it started stay.
func (s *Server) deleteSchedule(c echo.Context) error {
	sc, farm, err := s.scheduleOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	if err := s.irr.DeleteSchedule(c.Request().Context(), sc.ID); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "delete", Entity: "schedule", EntityID: sc.ID, Detail: map[string]any{"name": sc.Name, "zone_id": sc.ZoneID}})
	return c.NoContent(http.StatusNoContent)
}
