package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of a farm's interlock status and run queue: what may water now, what waits and why.

type actuatorJSON struct {
	ValveID      int64      `json:"valve_id"`
	Role         string     `json:"role"`
	ControllerID int64      `json:"controller_id"`
	Channel      int        `json:"channel"`
	Reported     string     `json:"reported"`
	On           bool       `json:"on"`
	HoldUntil    *time.Time `json:"hold_until"`
}

type sourceStatusJSON struct {
	WaterSource      waterSourceJSON `json:"water_source"`
	FlowLimitM3H     *float64        `json:"flow_limit_m3h"`
	InUseM3H         float64         `json:"in_use_m3h"`
	Drawing          int             `json:"drawing"`
	UnknownFlow      int             `json:"unknown_flow"`
	EnergyWindowOpen bool            `json:"energy_window_open"`
	NextWindowAt     *time.Time      `json:"next_window_at"`
	Actuators        []actuatorJSON  `json:"actuators"`
	Admitted         []runJSON       `json:"admitted"`
	Queue            []runJSON       `json:"queue"`
}

type interlocksJSON struct {
	FarmID        int64              `json:"farm_id"`
	EmergencyStop *emergencyStopJSON `json:"emergency_stop"`
	Overrides     []overrideJSON     `json:"overrides"`
	Sources       []sourceStatusJSON `json:"sources"`
}

func runsOf(rs []irrigation.Run) []runJSON {
	out := make([]runJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, runOf(r))
	}
	return out
}

// farmInterlocks: GET /farms/{farm}/interlocks — the emergency stop in force, the overrides in
// force, and for each water source its flow limit and use, energy window, pump and master
// valves, and the runs it feeds and those waiting for it.
func (s *Server) farmInterlocks(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	st, err := s.irr.InterlockStatus(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	out := interlocksJSON{FarmID: farm.ID, Overrides: make([]overrideJSON, 0, len(st.Overrides)), Sources: make([]sourceStatusJSON, 0, len(st.Sources))}
	if st.Stop != nil {
		j := emergencyStopOf(*st.Stop)
		out.EmergencyStop = &j
	}
	for _, o := range st.Overrides {
		out.Overrides = append(out.Overrides, overrideOf(o))
	}
	for _, src := range st.Sources {
		ws, err := waterSourceOf(src.Source)
		if err != nil {
			return err
		}
		j := sourceStatusJSON{WaterSource: ws, FlowLimitM3H: src.FlowLimitM3H, InUseM3H: src.InUseM3H, Drawing: src.Drawing,
			UnknownFlow: src.Unknown, EnergyWindowOpen: src.EnergyWindowOpen, NextWindowAt: utcp(src.NextWindowAt),
			Actuators: make([]actuatorJSON, 0, len(src.Actuators)), Admitted: runsOf(src.Admitted), Queue: runsOf(src.Queue)}
		for _, a := range src.Actuators {
			j.Actuators = append(j.Actuators, actuatorJSON{ValveID: a.ValveID, Role: a.Role, ControllerID: a.ControllerID,
				Channel: a.Channel, Reported: a.Reported, On: a.On, HoldUntil: utcp(a.HoldUntil)})
		}
		out.Sources = append(out.Sources, j)
	}
	return c.JSON(http.StatusOK, out)
}

// runQueue: GET /farms/{farm}/run-queue — the planned runs waiting for their water source, each
// source's queue in the order its runs will be admitted, with why each waits.
func (s *Server) runQueue(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	runs, err := s.irr.RunQueue(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, runsOf(runs))
}
