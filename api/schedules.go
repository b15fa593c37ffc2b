package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// Handlers of schedules: water a zone at the times of a cron expression in the farm's time zone.

type scheduleJSON struct {
	ID          int64      `json:"id"`
	ZoneID      int64      `json:"zone_id"`
	Name        string     `json:"name"`
	Cron        string     `json:"cron"`
	Timezone    string     `json:"timezone"` // the farm's, in which cron is read
	DurationS   int        `json:"duration_s"`
	Enabled     bool       `json:"enabled"`
	LastFiredAt *time.Time `json:"last_fired_at"`
	NextAt      *time.Time `json:"next_at"` // null when disabled
}

func scheduleOf(sc irrigation.Schedule) scheduleJSON {
	return scheduleJSON{ID: sc.ID, ZoneID: sc.ZoneID, Name: sc.Name, Cron: sc.Cron, Timezone: sc.Timezone,
		DurationS: sc.DurationS, Enabled: sc.Enabled, LastFiredAt: utcp(sc.LastFiredAt), NextAt: utcp(sc.NextAt)}
}

// scheduleInput is the body of POST (name, cron and duration_s required; enabled defaults to
// true) and PATCH (all optional).
type scheduleInput struct {
	Name      *string `json:"name"`
	Cron      *string `json:"cron"`
	DurationS *int    `json:"duration_s"`
	Enabled   *bool   `json:"enabled"`
}

func (in scheduleInput) apply(sc *irrigation.Schedule) {
	set(&sc.Name, in.Name)
	set(&sc.Cron, in.Cron)
	set(&sc.DurationS, in.DurationS)
	set(&sc.Enabled, in.Enabled)
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
	in.apply(&sc)
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

// updateSchedule: PATCH /schedules/{id} (agronomist). A new cron expression, or enabling a
// disabled schedule, starts afresh from now: earlier occurrences are not made up.
func (s *Server) updateSchedule(c echo.Context) error {
	sc, farm, err := s.scheduleOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in scheduleInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	in.apply(&sc)
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
