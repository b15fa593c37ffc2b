package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// Handlers of valves (the channels of a controller) and of opening and stopping them by hand.

type valveJSON struct {
	ID             int64           `json:"id"`
	ControllerID   int64           `json:"controller_id"`
	FarmID         int64           `json:"farm_id"`
	Channel        int             `json:"channel"`
	ZoneID         *int64          `json:"zone_id"`
	Name           string          `json:"name"`
	Location       json.RawMessage `json:"location"` // Point or null
	NominalFlowLPM *float64        `json:"nominal_flow_lpm"`
	Role           string          `json:"role"`            // zone, pump or master
	WaterSourceID  *int64          `json:"water_source_id"` // pumps and master valves: their source
	HoldUntil      *time.Time      `json:"hold_until"`      // pumps and master valves: on until at least then; null: off
	State          string          `json:"state"`           // as the controller last reported: open, closed, unknown
	StateAt        *time.Time      `json:"state_at"`
	Run            *runJSON        `json:"run"` // the live run, null when idle
}

func valveOf(v irrigation.Valve) (valveJSON, error) {
	loc, err := geo.Marshal(v.Location)
	if err != nil {
		return valveJSON{}, err
	}
	out := valveJSON{ID: v.ID, ControllerID: v.ControllerID, FarmID: v.FarmID, Channel: v.Channel, ZoneID: v.ZoneID,
		Name: v.Name, Location: loc, NominalFlowLPM: v.NominalFlowLPM, State: v.State, StateAt: utcp(v.StateAt),
		Role: v.Role, WaterSourceID: v.WaterSourceID, HoldUntil: utcp(v.HoldUntil)}
	if v.Run != nil {
		r := runOf(*v.Run)
		out.Run = &r
	}
	return out, nil
}

// valveInput is the body of POST (channel required) and PATCH (all optional). The controller is
// the one in the path of POST and never changes.
type valveInput struct {
	Channel        *int              `json:"channel"`
	ZoneID         nullable[int64]   `json:"zone_id"`
	Name           *string           `json:"name"`
	Location       json.RawMessage   `json:"location"` // absent: unchanged; null: none
	NominalFlowLPM nullable[float64] `json:"nominal_flow_lpm"`
	Role           *string           `json:"role"`
	WaterSourceID  nullable[int64]   `json:"water_source_id"`
}

func (in valveInput) apply(v *irrigation.Valve) error {
	set(&v.Channel, in.Channel)
	in.ZoneID.apply(&v.ZoneID)
	set(&v.Name, in.Name)
	in.NominalFlowLPM.apply(&v.NominalFlowLPM)
	set(&v.Role, in.Role)
	in.WaterSourceID.apply(&v.WaterSourceID)
	if in.Location != nil {
		p, err := geo.ParsePoint(in.Location)
		if err != nil {
			return renameField(err, "location")
		}
		v.Location = p
	}
	return nil
}

// listValves: GET /farms/{farm}/valves, each with its live run.
func (s *Server) listValves(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	list, err := s.irr.Valves(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	out := make([]valveJSON, 0, len(list))
	for _, v := range list {
		j, err := valveOf(v)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

// createValve: POST /controllers/{id}/valves (agronomist) → 201 valve.
func (s *Server) createValve(c echo.Context) error {
	ctl, farm, err := s.controllerOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in valveInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Channel == nil {
		return &ValidationError{Field: "channel", Problem: "required"}
	}
	v := irrigation.Valve{ControllerID: ctl.ID}
	if err := in.apply(&v); err != nil {
		return err
	}
	v, err = s.irr.CreateValve(c.Request().Context(), v)
	if err != nil {
		return err
	}
	out, err := valveOf(v)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "create", Entity: "valve", EntityID: v.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) valveOfPath(c echo.Context, min Role) (irrigation.Valve, geo.Farm, error) {
	return onFarm(s, c, "valve", min, s.irr.Valve, func(v irrigation.Valve) int64 { return v.FarmID })
}

// getValve: GET /valves/{valve}.
func (s *Server) getValve(c echo.Context) error {
	v, _, err := s.valveOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	out, err := valveOf(v)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// updateValve: PATCH /valves/{valve} (agronomist). While the valve is being watered its channel
// and zone cannot change (409).
func (s *Server) updateValve(c echo.Context) error {
	v, farm, err := s.valveOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in valveInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if err := in.apply(&v); err != nil {
		return err
	}
	v, err = s.irr.UpdateValve(c.Request().Context(), v)
	if err != nil {
		if errors.Is(err, irrigation.ErrBusy) {
			return &refusal{detail: "the valve is being watered; stop it before changing its channel or zone", cause: err}
		}
		return err
	}
	out, err := valveOf(v)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "valve", EntityID: v.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// deleteValve: DELETE /valves/{valve} (agronomist) deletes it with its past runs; a valve being
// watered is 409.
func (s *Server) deleteValve(c echo.Context) error {
	v, farm, err := s.valveOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	if err := s.irr.DeleteValve(c.Request().Context(), v.ID); err != nil {
		if errors.Is(err, irrigation.ErrBusy) {
			return &refusal{detail: "the valve is being watered; stop it before deleting it", cause: err}
		}
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "delete", Entity: "valve", EntityID: v.ID,
		Detail: map[string]any{"name": v.Name, "controller_id": v.ControllerID, "channel": v.Channel}})
	return c.NoContent(http.StatusNoContent)
}

// maxOpenMinutes bounds a manual open: a day. The zone's max runtime caps it further.
const maxOpenMinutes = 24 * 60

type openInput struct {
	Minutes *int `json:"minutes"`
}

// openValve: POST /valves/{valve}/open {"minutes": N} (farmer) → 202 with the run: persisted,
// its open command queued for the controller, its duration capped at the zone's max runtime.
// A valve that already has a live run is 409.
func (s *Server) openValve(c echo.Context) error {
	v, farm, err := s.valveOfPath(c, RoleFarmer)
	if err != nil {
		return err
	}
	var in openInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Minutes == nil {
		return &ValidationError{Field: "minutes", Problem: "required"}
	}
	minutes := *in.Minutes
	if minutes < 1 || minutes > maxOpenMinutes {
		return &ValidationError{Field: "minutes", Problem: fmt.Sprintf("want a whole number of minutes from 1 to %d", maxOpenMinutes)}
	}
	a := caller(c)
	userID := a.User.ID
	run, err := s.irr.StartRun(c.Request().Context(), irrigation.RunRequest{
		ValveID:     v.ID,
		DurationS:   minutes * 60,
		Origin:      irrigation.OriginUser,
		RequestedBy: &userID,
		Reason:      fmt.Sprintf("manual open by %s for %d min", personName(a.User), minutes),
	})
	if err != nil {
		return busyRefusal(err, "the valve is already running; stop it before opening it again")
	}
	out := runOf(run)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "open", Entity: "valve", EntityID: v.ID,
		Detail: map[string]any{"minutes": minutes, "run_id": run.ID, "duration_s": run.DurationS, "reason": run.Reason}})
	return c.JSON(http.StatusAccepted, out)
}

// stopValve: POST /valves/{valve}/stop (farmer) → 202 with the run being closed (or aborted, if
// its open had not been sent yet). A valve with nothing running is 409.
func (s *Server) stopValve(c echo.Context) error {
	v, farm, err := s.valveOfPath(c, RoleFarmer)
	if err != nil {
		return err
	}
	a := caller(c)
	userID := a.User.ID
	run, err := s.irr.StopValve(c.Request().Context(), v.ID, &userID, "manual stop by "+personName(a.User))
	if err != nil {
		if errors.Is(err, irrigation.ErrConflict) {
			return &refusal{detail: "nothing is running on this valve", cause: err}
		}
		return err
	}
	out := runOf(run)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "stop", Entity: "valve", EntityID: v.ID,
		Detail: map[string]any{"run_id": run.ID, "state": run.State}})
	return c.JSON(http.StatusAccepted, out)
}

// busyRefusal words a refusal to water: an emergency stop, a hold, or what busy means here.
func busyRefusal(err error, busy string) error {
	switch {
	case errors.Is(err, irrigation.ErrEmergencyStop):
		return &refusal{detail: "an emergency stop is in force on this farm; nothing is watered until it is released: " + why(err), cause: err}
	case errors.Is(err, irrigation.ErrHeld):
		return &refusal{detail: "a manual override holds this zone closed: " + why(err), cause: err}
	case errors.Is(err, irrigation.ErrBusy):
		return &refusal{detail: busy, cause: err}
	}
	return err
}

// why is the part of an irrigation refusal a person can act on: its words before the sentinels'.
func why(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": irrigation:"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// personName is how a person is named in reasons: their name, else their e-mail.
func personName(u User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}
