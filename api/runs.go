package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of irrigation runs: every watering, whoever decided it, with its history and the
// commands sent for it.

type runJSON struct {
	ID          int64      `json:"id"`
	FarmID      int64      `json:"farm_id"`
	ZoneID      int64      `json:"zone_id"`
	ValveID     int64      `json:"valve_id"`
	Origin      string     `json:"origin"`
	OriginID    *int64     `json:"origin_id"`
	RequestedBy *int64     `json:"requested_by"`
	Reason      string     `json:"reason"`
	State       string     `json:"state"`
	DurationS   int        `json:"duration_s"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at"`
	EndsAt      *time.Time `json:"ends_at"`
	EndedAt     *time.Time `json:"ended_at"`
	EndReason   string     `json:"end_reason"`
	// The water source the run draws on, the flow it was admitted with, its queue priority
	// (1: a manual override), why a planned run waits, the water metered for it, and the
	// override that started it.
	WaterSourceID *int64   `json:"water_source_id"`
	FlowLPM       *float64 `json:"flow_lpm"`
	Priority      int      `json:"priority"`
	WaitReason    string   `json:"wait_reason"`
	VolumeL       *float64 `json:"volume_l"`
	OverrideID    *int64   `json:"override_id"`
}

func runOf(r irrigation.Run) runJSON {
	return runJSON{ID: r.ID, FarmID: r.FarmID, ZoneID: r.ZoneID, ValveID: r.ValveID, Origin: r.Origin,
		OriginID: r.OriginID, RequestedBy: r.RequestedBy, Reason: r.Reason, State: r.State, DurationS: r.DurationS,
		CreatedAt: utc(r.CreatedAt), StartedAt: utcp(r.StartedAt), EndsAt: utcp(r.EndsAt), EndedAt: utcp(r.EndedAt),
		EndReason: r.EndReason, WaterSourceID: r.WaterSourceID, FlowLPM: r.FlowLPM, Priority: r.Priority,
		WaitReason: r.WaitReason, VolumeL: r.VolumeL, OverrideID: r.OverrideID}
}

type runEventJSON struct {
	At    time.Time `json:"at"`
	State string    `json:"state"`
	Note  string    `json:"note"`
}

type commandJSON struct {
	ID        string     `json:"id"`
	Action    string     `json:"action"`
	Valve     *int       `json:"valve"`
	DurationS *int       `json:"duration_s"`
	ExpiresAt time.Time  `json:"expires_at"`
	State     string     `json:"state"`
	Attempts  int        `json:"attempts"`
	SentAt    *time.Time `json:"sent_at"`
	AckedAt   *time.Time `json:"acked_at"`
	Reason    string     `json:"reason"`
	AfterID   *string    `json:"after_id"` // sent only once this command (a pump's) is acknowledged
	// DownlinkStatus: a LoRaWAN command's network server's last word on its downlink (acked,
	// nacked, failed: …); null for none.
	DownlinkStatus *string `json:"downlink_status"`
}

type runDetailJSON struct {
	runJSON
	Events   []runEventJSON `json:"events"`
	Commands []commandJSON  `json:"commands"`
}

// listRuns: GET /farms/{farm}/runs?live=true&limit=50 — newest first; live keeps the runs that
// still hold their valve (planned, starting, open, closing); limit 1–1000, default 50.
func (s *Server) listRuns(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	live, err := queryBool(c, "live", false)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 50, 1, 1000)
	if err != nil {
		return err
	}
	runs, err := s.irr.Runs(c.Request().Context(), farm.ID, live, limit)
	if err != nil {
		return err
	}
	out := make([]runJSON, 0, len(runs))
	for _, r := range runs {
		out = append(out, runOf(r))
	}
	return c.JSON(http.StatusOK, out)
}

// getRun: GET /runs/{id} — the run with its events (oldest first) and commands (in queue order).
func (s *Server) getRun(c echo.Context) error {
	r, _, err := onFarm(s, c, "id", RoleViewer, s.irr.Run, func(r irrigation.Run) int64 { return r.FarmID })
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	events, err := s.irr.RunEvents(ctx, r.ID)
	if err != nil {
		return err
	}
	cmds, err := s.irr.RunCommands(ctx, r.ID)
	if err != nil {
		return err
	}
	out := runDetailJSON{runJSON: runOf(r), Events: make([]runEventJSON, 0, len(events)), Commands: make([]commandJSON, 0, len(cmds))}
	for _, e := range events {
		out.Events = append(out.Events, runEventJSON{At: utc(e.At), State: e.State, Note: e.Note})
	}
	for _, cmd := range cmds {
		out.Commands = append(out.Commands, commandJSON{ID: cmd.ID, Action: cmd.Action, Valve: cmd.Valve,
			DurationS: cmd.DurationS, ExpiresAt: utc(cmd.ExpiresAt), State: cmd.State, Attempts: cmd.Attempts,
			SentAt: utcp(cmd.SentAt), AckedAt: utcp(cmd.AckedAt), Reason: cmd.Reason, AfterID: cmd.AfterID,
			DownlinkStatus: cmd.DownlinkStatus})
	}
	return c.JSON(http.StatusOK, out)
}
