package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of a farm's emergency stop: everything closed at once, nothing waters until a person
// releases it.

type emergencyStopJSON struct {
	ID             int64      `json:"id"`
	FarmID         int64      `json:"farm_id"`
	StoppedAt      time.Time  `json:"stopped_at"`
	StoppedBy      *int64     `json:"stopped_by"`
	StoppedByName  string     `json:"stopped_by_name"`
	Reason         string     `json:"reason"`
	RunsStopped    int        `json:"runs_stopped"`
	ReleasedAt     *time.Time `json:"released_at"`
	ReleasedBy     *int64     `json:"released_by"`
	ReleasedByName *string    `json:"released_by_name"`
}

func emergencyStopOf(e irrigation.EmergencyStop) emergencyStopJSON {
	return emergencyStopJSON{ID: e.ID, FarmID: e.FarmID, StoppedAt: utc(e.StoppedAt), StoppedBy: e.StoppedBy,
		StoppedByName: e.StoppedByName, Reason: e.Reason, RunsStopped: e.RunsStopped, ReleasedAt: utcp(e.ReleasedAt),
		ReleasedBy: e.ReleasedBy, ReleasedByName: e.ReleasedByName}
}

type emergencyStopInput struct {
	Reason string `json:"reason"`
}

// callerPerson is the caller as irrigation records people: their id and name.
func callerPerson(c echo.Context) irrigation.Person {
	a := caller(c)
	id := a.User.ID
	return irrigation.Person{UserID: &id, Name: personName(a.User)}
}

// stopFarm: POST /farms/{farm}/emergency-stop {"reason"} (farmer) → 200 with the stop in
// force: every run of the farm stopped, every pump and master valve off, close_all to every
// controller; 200 with the one already in force (unchanged) when there is one.
func (s *Server) stopFarm(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleFarmer)
	if err != nil {
		return err
	}
	var in emergencyStopInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	st, created, err := s.irr.StopFarm(c.Request().Context(), farm.ID, callerPerson(c), in.Reason)
	if err != nil {
		return err
	}
	out := emergencyStopOf(st)
	if created {
		s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "emergency_stop", Entity: "farm", EntityID: farm.ID, Detail: out})
	} else {
		s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "emergency_stop_repeated", Entity: "farm", EntityID: farm.ID,
			Detail: map[string]any{"stop_id": st.ID, "reason": in.Reason}})
	}
	return c.JSON(http.StatusOK, out)
}

// releaseFarm: POST /farms/{farm}/emergency-stop/release (farmer) → 200 with the released stop;
// 409 when none is in force.
func (s *Server) releaseFarm(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleFarmer)
	if err != nil {
		return err
	}
	st, err := s.irr.ReleaseFarm(c.Request().Context(), farm.ID, callerPerson(c))
	if err != nil {
		return err
	}
	out := emergencyStopOf(st)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "emergency_release", Entity: "farm", EntityID: farm.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// listEmergencyStops: GET /farms/{farm}/emergency-stops?limit=20 — newest first.
func (s *Server) listEmergencyStops(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 20, 1, 1000)
	if err != nil {
		return err
	}
	list, err := s.irr.EmergencyStops(c.Request().Context(), farm.ID, limit)
	if err != nil {
		return err
	}
	out := make([]emergencyStopJSON, 0, len(list))
	for _, e := range list {
		out = append(out, emergencyStopOf(e))
	}
	return c.JSON(http.StatusOK, out)
}
