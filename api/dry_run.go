package api

import (
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/irrigation/rule"
)

// Handlers of rule dry runs: evaluate a rule (stored, or as it would be saved) now, on its zone
// or each zone of its farm, and show the facts it saw and what it would do. Nothing changes.

type factJSON struct {
	Name    string `json:"name"`
	Value   any    `json:"value"` // null: no data
	Missing bool   `json:"missing"`
	N       int    `json:"n,omitempty"` // readings behind a reading function
	Note    string `json:"note,omitempty"`
}

func factsOf(used []rule.Used) []factJSON {
	out := make([]factJSON, 0, len(used))
	for _, u := range used {
		v := u.Value.V
		if f, ok := v.(float64); u.Value.Missing || (ok && (math.IsNaN(f) || math.IsInf(f, 0))) {
			v = nil
		}
		out = append(out, factJSON{Name: u.Name, Value: v, Missing: u.Value.Missing, N: u.Value.N, Note: u.Value.Note})
	}
	return out
}

type ruleStateJSON struct {
	HoldingSince *time.Time `json:"holding_since"`
	Armed        bool       `json:"armed"`
	Active       bool       `json:"active"`
	LastFiredAt  *time.Time `json:"last_fired_at"`
}

type dryRunJSON struct {
	ZoneID     int64         `json:"zone_id"`
	ZoneName   string        `json:"zone_name"`
	At         time.Time     `json:"at"`
	Known      bool          `json:"known"`
	Holds      bool          `json:"holds"`
	Missing    []string      `json:"missing"`
	ResetHolds *bool         `json:"reset_holds"`
	InWindow   bool          `json:"in_window"`
	Act        bool          `json:"act"`
	Release    bool          `json:"release"`
	Reason     string        `json:"reason"`
	Explain    string        `json:"explain"`
	Facts      []factJSON    `json:"facts"`
	State      ruleStateJSON `json:"state"`
	DurationS  *int          `json:"duration_s"`
	DepthMM    *float64      `json:"depth_mm"`
	VolumeL    *float64      `json:"volume_l"`
	Problem    string        `json:"problem"`
}

type dryRunResponse struct {
	Rule    ruleJSON     `json:"rule"`
	Results []dryRunJSON `json:"results"`
}

func (s *Server) dryRun(c echo.Context, r irrigation.Rule) error {
	dec, err := s.decider()
	if err != nil {
		return err
	}
	// Checked as it would be saved, so the answer shows the normalised rule.
	checked, err := s.irr.ValidateRule(c.Request().Context(), r)
	if err != nil {
		return err
	}
	checked.ID, checked.LastFiredAt, checked.CreatedAt, checked.UpdatedAt = r.ID, r.LastFiredAt, r.CreatedAt, r.UpdatedAt
	results, err := dec.Engine.DryRun(c.Request().Context(), checked)
	if err != nil {
		return err
	}
	out := dryRunResponse{Rule: ruleOf(checked), Results: make([]dryRunJSON, 0, len(results))}
	for _, res := range results {
		missing := res.Missing
		if missing == nil {
			missing = []string{}
		}
		j := dryRunJSON{ZoneID: res.ZoneID, ZoneName: res.ZoneName, At: res.At.UTC(), Known: res.Known, Holds: res.Holds,
			Missing: missing, ResetHolds: res.ResetHolds, InWindow: res.InWindow, Act: res.Act, Release: res.Release,
			Reason: res.Reason, Explain: res.Explain, Facts: factsOf(res.Facts), DepthMM: res.DepthMM, VolumeL: res.VolumeL,
			Problem: res.Problem,
			State: ruleStateJSON{HoldingSince: utcp(res.State.HoldingSince), Armed: res.State.Armed, Active: res.State.Active,
				LastFiredAt: utcp(res.State.LastFired)}}
		if res.DurationS > 0 {
			d := res.DurationS
			j.DurationS = &d
		}
		out.Results = append(out.Results, j)
	}
	return c.JSON(http.StatusOK, out)
}

// dryRunRule: POST /rules/{id}/dry-run (agronomist) — the stored rule, now.
func (s *Server) dryRunRule(c echo.Context) error {
	r, _, err := s.ruleOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	return s.dryRun(c, r)
}

// dryRunZoneRule: POST /zones/{zone}/rules/dry-run (agronomist) — a rule of the zone as it
// would be created from the body.
func (s *Server) dryRunZoneRule(c echo.Context) error {
	z, _, err := s.zoneOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in ruleInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.ZoneID.Set {
		return &ValidationError{Field: "zone_id", Problem: "the zone is the one in the path"}
	}
	r, err := newRule(in, z.FarmID, &z.ID)
	if err != nil {
		return err
	}
	if r.Name == "" {
		r.Name = "dry run"
	}
	return s.dryRun(c, r)
}

// dryRunFarmRule: POST /farms/{farm}/rules/dry-run (agronomist) — a farm rule as it would be
// created from the body (zone_id null: every zone of the farm).
func (s *Server) dryRunFarmRule(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in ruleInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	r, err := newRule(in, farm.ID, in.ZoneID.Value)
	if err != nil {
		return err
	}
	if r.Name == "" {
		r.Name = "dry run"
	}
	return s.dryRun(c, r)
}
