package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of manual overrides: a named person opening a zone now, or holding it closed, for a
// while.

type overrideJSON struct {
	ID              int64      `json:"id"`
	FarmID          int64      `json:"farm_id"`
	ZoneID          int64      `json:"zone_id"`
	Mode            string     `json:"mode"`
	ByUser          *int64     `json:"by_user"`
	ByName          string     `json:"by_name"`
	Reason          string     `json:"reason"`
	CreatedAt       time.Time  `json:"created_at"`
	EndsAt          time.Time  `json:"ends_at"`
	CancelledAt     *time.Time `json:"cancelled_at"`
	CancelledByName *string    `json:"cancelled_by_name"`
	RunID           *int64     `json:"run_id"`
}

func overrideOf(o irrigation.Override) overrideJSON {
	return overrideJSON{ID: o.ID, FarmID: o.FarmID, ZoneID: o.ZoneID, Mode: o.Mode, ByUser: o.ByUser, ByName: o.ByName,
		Reason: o.Reason, CreatedAt: utc(o.CreatedAt), EndsAt: utc(o.EndsAt), CancelledAt: utcp(o.CancelledAt),
		CancelledByName: o.CancelledByName, RunID: o.RunID}
}

type overrideInput struct {
	Mode    *string `json:"mode"`
	Minutes *int    `json:"minutes"`
	Reason  string  `json:"reason"`
}

type overrideCreatedJSON struct {
	overrideJSON
	Run *runJSON `json:"run"` // the run an open override started
}

// createOverride: POST /zones/{zone}/overrides {"mode":"open"|"hold","minutes":N,"reason"}
// (farmer) → 201 with the override (and the run it started). 409 during an emergency stop or
// while another hold is in force.
func (s *Server) createOverride(c echo.Context) error {
	z, farm, err := onFarm(s, c, "zone", RoleFarmer, s.irr.Zone, func(z irrigation.Zone) int64 { return z.FarmID })
	if err != nil {
		return err
	}
	var in overrideInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Mode == nil {
		return &ValidationError{Field: "mode", Problem: "required: open or hold"}
	}
	if in.Minutes == nil || *in.Minutes < 1 || *in.Minutes > maxOpenMinutes {
		return &ValidationError{Field: "minutes", Problem: fmt.Sprintf("want a whole number of minutes from 1 to %d", maxOpenMinutes)}
	}
	o, run, err := s.irr.CreateOverride(c.Request().Context(), irrigation.OverrideRequest{ZoneID: z.ID, Mode: *in.Mode,
		DurationS: *in.Minutes * 60, By: callerPerson(c), Reason: in.Reason})
	if err != nil {
		return busyRefusal(err, "the zone's valve is already running; stop it first")
	}
	out := overrideCreatedJSON{overrideJSON: overrideOf(o)}
	if run != nil {
		r := runOf(*run)
		out.Run = &r
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "override", Entity: "zone", EntityID: z.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}

// listOverrides: GET /farms/{farm}/overrides?active=true&limit=50 — newest first.
func (s *Server) listOverrides(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	active, err := queryBool(c, "active", false)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 50, 1, 1000)
	if err != nil {
		return err
	}
	list, err := s.irr.Overrides(c.Request().Context(), farm.ID, active, limit)
	if err != nil {
		return err
	}
	out := make([]overrideJSON, 0, len(list))
	for _, o := range list {
		out = append(out, overrideOf(o))
	}
	return c.JSON(http.StatusOK, out)
}

// cancelOverride: DELETE /overrides/{id} (farmer) → 200 with the cancelled override; a hold
// lets the zone water again, an open stops its run. 409 when it is already over.
func (s *Server) cancelOverride(c echo.Context) error {
	o, farm, err := onFarm(s, c, "id", RoleFarmer, s.irr.Override, func(o irrigation.Override) int64 { return o.FarmID })
	if err != nil {
		return err
	}
	o, err = s.irr.CancelOverride(c.Request().Context(), o.ID, callerPerson(c))
	if err != nil {
		return err
	}
	out := overrideOf(o)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "cancel_override", Entity: "zone", EntityID: o.ZoneID, Detail: out})
	return c.JSON(http.StatusOK, out)
}
