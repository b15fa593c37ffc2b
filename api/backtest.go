package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of backtests: replay a rule or a schedule (stored, or as it would be saved) over
// stored history and return every decision it would have taken, with time, reason and water.
// Nothing is sent and no run is started.

type decisionJSON struct {
	ID        *int64         `json:"id"` // null in a backtest
	FarmID    int64          `json:"farm_id"`
	ZoneID    *int64         `json:"zone_id"`
	At        time.Time      `json:"at"`
	Origin    string         `json:"origin"`
	OriginID  *int64         `json:"origin_id"`
	Action    string         `json:"action"`
	Reason    string         `json:"reason"`
	RunID     *int64         `json:"run_id"`
	StartsAt  *time.Time     `json:"starts_at"`
	DurationS int            `json:"duration_s"`
	DepthMM   *float64       `json:"depth_mm"`
	VolumeL   *float64       `json:"volume_l"`
	Facts     map[string]any `json:"facts"`
}

func decisionOf(d irrigation.Decision) decisionJSON {
	out := decisionJSON{FarmID: d.FarmID, ZoneID: d.ZoneID, At: d.At.UTC(), Origin: d.Origin, OriginID: d.OriginID,
		Action: d.Action, Reason: d.Reason, RunID: d.RunID, StartsAt: utcp(d.StartsAt), DurationS: d.DurationS,
		DepthMM: d.DepthMM, VolumeL: d.VolumeL, Facts: d.Facts}
	if d.ID != 0 {
		id := d.ID
		out.ID = &id
	}
	if out.Facts == nil {
		out.Facts = map[string]any{}
	}
	return out
}

type backtestJSON struct {
	From        time.Time      `json:"from"`
	To          time.Time      `json:"to"`
	StepS       *int           `json:"step_s"` // rules only
	Evaluations int            `json:"evaluations"`
	Runs        int            `json:"runs"`
	WaterS      int            `json:"water_s"`
	DepthMM     float64        `json:"depth_mm"`
	VolumeL     float64        `json:"volume_l"`
	Assumptions []string       `json:"assumptions"`
	Decisions   []decisionJSON `json:"decisions"`
}

func backtestOf(r irrigation.BacktestResult, rules bool) backtestJSON {
	out := backtestJSON{From: r.From.UTC(), To: r.To.UTC(), Evaluations: r.Evaluations, Runs: r.Runs, WaterS: r.WaterS,
		DepthMM: round2(r.DepthMM), VolumeL: round2(r.VolumeL), Assumptions: r.Assumptions,
		Decisions: make([]decisionJSON, 0, len(r.Decisions))}
	if rules {
		step := int(r.Step / time.Second)
		out.StepS = &step
	}
	if out.Assumptions == nil {
		out.Assumptions = []string{}
	}
	for _, d := range r.Decisions {
		out.Decisions = append(out.Decisions, decisionOf(d))
	}
	return out
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// backtestPeriod is the period and step of a backtest: to defaults to now, from to 30 days
// before to.
type backtestPeriod struct {
	From   *time.Time `json:"from"`
	To     *time.Time `json:"to"`
	StepS  *int       `json:"step_s"`
	ZoneID *int64     `json:"zone_id"` // a farm-wide rule: one zone only
}

func (p backtestPeriod) resolve(now time.Time) (from, to time.Time, step time.Duration) {
	to = now.Truncate(time.Minute)
	if p.To != nil {
		to = *p.To
	}
	from = to.Add(-30 * 24 * time.Hour)
	if p.From != nil {
		from = *p.From
	}
	if p.StepS != nil {
		step = time.Duration(*p.StepS) * time.Second
		if step <= 0 {
			step = -1 // refused by the backtest
		}
	}
	return from, to, step
}

func (s *Server) backtestRule(c echo.Context, r irrigation.Rule, p backtestPeriod) error {
	dec, err := s.decider()
	if err != nil {
		return err
	}
	from, to, step := p.resolve(s.now())
	res, err := dec.BacktestRule(c.Request().Context(), r, p.ZoneID, from, to, step)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, backtestOf(res, true))
}

// backtestStoredRule: POST /rules/{id}/backtest (agronomist) {"from","to","step_s","zone_id"}.
func (s *Server) backtestStoredRule(c echo.Context) error {
	r, _, err := s.ruleOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var p backtestPeriod
	if err := bindJSON(c, &p); err != nil {
		return err
	}
	return s.backtestRule(c, r, p)
}

// backtestZoneRule: POST /zones/{zone}/rules/backtest (agronomist)
// {"rule":{...as for POST /zones/{zone}/rules},"from","to","step_s"}.
func (s *Server) backtestZoneRule(c echo.Context) error {
	z, _, err := s.zoneOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in struct {
		backtestPeriod
		Rule json.RawMessage `json:"rule"`
	}
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Rule == nil {
		return &ValidationError{Field: "rule", Problem: "required"}
	}
	var ri ruleInput
	if err := strictJSON(in.Rule, &ri); err != nil {
		return err
	}
	r, err := newRule(ri, z.FarmID, &z.ID)
	if err != nil {
		return err
	}
	if r.Name == "" {
		r.Name = "backtest"
	}
	return s.backtestRule(c, r, in.backtestPeriod)
}

// backtestStoredSchedule: POST /schedules/{id}/backtest (agronomist) {"from","to"}.
func (s *Server) backtestStoredSchedule(c echo.Context) error {
	sc, _, err := s.scheduleOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var p backtestPeriod
	if err := bindJSON(c, &p); err != nil {
		return err
	}
	return s.backtestSchedule(c, sc, p)
}

// backtestZoneSchedule: POST /zones/{zone}/schedules/backtest (agronomist)
// {"schedule":{...as for POST /zones/{zone}/schedules},"from","to"}.
func (s *Server) backtestZoneSchedule(c echo.Context) error {
	z, _, err := s.zoneOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in struct {
		backtestPeriod
		Schedule json.RawMessage `json:"schedule"`
	}
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Schedule == nil {
		return &ValidationError{Field: "schedule", Problem: "required"}
	}
	var si scheduleInput
	if err := strictJSON(in.Schedule, &si); err != nil {
		return err
	}
	sc := irrigation.Schedule{ZoneID: z.ID, Name: "backtest", Enabled: true}
	if err := si.apply(&sc); err != nil {
		return err
	}
	return s.backtestSchedule(c, sc, in.backtestPeriod)
}

func (s *Server) backtestSchedule(c echo.Context, sc irrigation.Schedule, p backtestPeriod) error {
	if p.StepS != nil || p.ZoneID != nil {
		return &ValidationError{Field: "step_s", Problem: "a schedule is replayed at its occurrences, on its zone"}
	}
	dec, err := s.decider()
	if err != nil {
		return err
	}
	from, to, _ := p.resolve(s.now())
	res, err := dec.BacktestSchedule(c.Request().Context(), sc, from, to)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, backtestOf(res, false))
}

// strictJSON decodes a member holding a resource's body as bindJSON decodes a body.
func strictJSON(raw json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	return nil
}
