package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/irrigation/rule"
)

// Handlers of rules: conditions written as expressions over facts (docs/rules.md), e.g.
// `mean("soil_vwc", "1h") < 0.18 && rain_24h < 2`, that irrigate, skip or alert.

type ruleWindowJSON struct {
	From string   `json:"from"`
	To   string   `json:"to"`
	Days []string `json:"days"`
}

type ruleJSON struct {
	ID             int64            `json:"id"`
	FarmID         int64            `json:"farm_id"`
	ZoneID         *int64           `json:"zone_id"` // null: every zone of the farm
	Name           string           `json:"name"`
	Condition      string           `json:"condition"`
	ResetCondition string           `json:"reset_condition"`
	HoldS          int              `json:"hold_s"`
	Action         string           `json:"action"`
	DurationS      *int             `json:"duration_s"`
	DepthMM        *float64         `json:"depth_mm"`
	Severity       string           `json:"severity"`
	Message        string           `json:"message"`
	Priority       int              `json:"priority"`
	Windows        []ruleWindowJSON `json:"windows"`
	CooldownS      int              `json:"cooldown_s"`
	Enabled        bool             `json:"enabled"`
	LastFiredAt    *time.Time       `json:"last_fired_at"`
	CreatedAt      time.Time        `json:"created_at"`
	UpdatedAt      time.Time        `json:"updated_at"`
}

func ruleOf(r irrigation.Rule) ruleJSON {
	out := ruleJSON{ID: r.ID, FarmID: r.FarmID, ZoneID: r.ZoneID, Name: r.Name, Condition: r.Condition,
		ResetCondition: r.ResetCondition, HoldS: r.HoldS, Action: r.Action, Severity: r.Severity, Message: r.Message,
		Priority: r.Priority, Windows: []ruleWindowJSON{}, CooldownS: r.CooldownS, Enabled: r.Enabled,
		LastFiredAt: utcp(r.LastFiredAt), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if r.DurationS > 0 {
		out.DurationS = &r.DurationS
	}
	if r.DepthMM > 0 {
		out.DepthMM = &r.DepthMM
	}
	for _, w := range r.Windows {
		days := w.Days
		if days == nil {
			days = []string{}
		}
		out.Windows = append(out.Windows, ruleWindowJSON{From: w.From, To: w.To, Days: days})
	}
	return out
}

// ruleInput is the body of POST and PATCH. A rule's condition is given as `condition`, or, as
// before rules were expressions, as a threshold (metric, aggregate, op, threshold, window_s),
// which is translated into one.
type ruleInput struct {
	ZoneID         nullable[int64]   `json:"zone_id"` // POST /farms/{farm}/rules only
	Name           *string           `json:"name"`
	Condition      *string           `json:"condition"`
	ResetCondition *string           `json:"reset_condition"`
	HoldS          *int              `json:"hold_s"`
	Action         *string           `json:"action"`
	DurationS      nullable[int]     `json:"duration_s"`
	DepthMM        nullable[float64] `json:"depth_mm"`
	Severity       *string           `json:"severity"`
	Message        *string           `json:"message"`
	Priority       *int              `json:"priority"`
	Windows        *[]ruleWindowJSON `json:"windows"`
	CooldownS      *int              `json:"cooldown_s"`
	Enabled        *bool             `json:"enabled"`

	// The threshold form.
	Metric    *string  `json:"metric"`
	Aggregate *string  `json:"aggregate"`
	Op        *string  `json:"op"`
	Threshold *float64 `json:"threshold"`
	WindowS   *int     `json:"window_s"`
}

func (in ruleInput) threshold() bool {
	return in.Metric != nil || in.Aggregate != nil || in.Op != nil || in.Threshold != nil || in.WindowS != nil
}

func (in ruleInput) apply(r *irrigation.Rule) error {
	set(&r.Name, in.Name)
	if in.threshold() {
		if in.Condition != nil {
			return &ValidationError{Field: "condition", Problem: "give a condition or a threshold (metric, op, threshold), not both"}
		}
		switch {
		case in.Metric == nil:
			return &ValidationError{Field: "metric", Problem: "required with a threshold"}
		case in.Op == nil:
			return &ValidationError{Field: "op", Problem: "required with a threshold"}
		case in.Threshold == nil:
			return &ValidationError{Field: "threshold", Problem: "required"}
		}
		agg, window := "mean", 3600
		set(&agg, in.Aggregate)
		set(&window, in.WindowS)
		cond, err := rule.Threshold(*in.Metric, agg, *in.Op, *in.Threshold, time.Duration(window)*time.Second)
		if err != nil {
			if ie, ok := err.(*rule.InvalidError); ok {
				return &ValidationError{Field: ie.Field, Problem: ie.Problem}
			}
			return err
		}
		r.Condition = cond
	}
	set(&r.Condition, in.Condition)
	set(&r.ResetCondition, in.ResetCondition)
	set(&r.HoldS, in.HoldS)
	set(&r.Action, in.Action)
	if in.DurationS.Set {
		r.DurationS = 0
		if in.DurationS.Value != nil {
			if *in.DurationS.Value <= 0 {
				return &ValidationError{Field: "duration_s", Problem: "must be a positive number of seconds"}
			}
			r.DurationS = *in.DurationS.Value
			if !in.DepthMM.Set {
				r.DepthMM = 0 // one replaces the other
			}
		}
	}
	if in.DepthMM.Set {
		r.DepthMM = 0
		if in.DepthMM.Value != nil {
			if !(*in.DepthMM.Value > 0) {
				return &ValidationError{Field: "depth_mm", Problem: "must be a positive depth"}
			}
			r.DepthMM = *in.DepthMM.Value
			if !in.DurationS.Set {
				r.DurationS = 0
			}
		}
	}
	set(&r.Severity, in.Severity)
	set(&r.Message, in.Message)
	set(&r.Priority, in.Priority)
	if in.Windows != nil {
		r.Windows = make([]irrigation.RuleWindow, 0, len(*in.Windows))
		for _, w := range *in.Windows {
			r.Windows = append(r.Windows, irrigation.RuleWindow{From: w.From, To: w.To, Days: w.Days})
		}
	}
	set(&r.CooldownS, in.CooldownS)
	set(&r.Enabled, in.Enabled)
	return nil
}

// newRule builds the rule a POST asks for.
func newRule(in ruleInput, farmID int64, zoneID *int64) (irrigation.Rule, error) {
	if in.Condition == nil && !in.threshold() {
		return irrigation.Rule{}, &ValidationError{Field: "condition", Problem: "required"}
	}
	r := irrigation.Rule{FarmID: farmID, ZoneID: zoneID, Enabled: true}
	return r, in.apply(&r)
}

func rulesJSON(rules []irrigation.Rule) []ruleJSON {
	out := make([]ruleJSON, 0, len(rules))
	for _, r := range rules {
		out = append(out, ruleOf(r))
	}
	return out
}

// listRules: GET /zones/{zone}/rules — the zone's own rules.
func (s *Server) listRules(c echo.Context) error {
	z, _, err := s.zoneOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	rules, err := s.irr.Rules(c.Request().Context(), z.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rulesJSON(rules))
}

// listFarmRules: GET /farms/{farm}/rules — every rule of the farm, farm-wide ones first.
func (s *Server) listFarmRules(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	rules, err := s.irr.FarmRules(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rulesJSON(rules))
}

// createRule: POST /zones/{zone}/rules (agronomist) → 201 rule of the zone.
func (s *Server) createRule(c echo.Context) error {
	z, farm, err := s.zoneOfPath(c, RoleAgronomist)
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
	return s.storeNewRule(c, farm, r)
}

// createFarmRule: POST /farms/{farm}/rules (agronomist) → 201 rule; zone_id null or absent: a
// rule of every zone of the farm.
func (s *Server) createFarmRule(c echo.Context) error {
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
	return s.storeNewRule(c, farm, r)
}

func (s *Server) storeNewRule(c echo.Context, farm geo.Farm, r irrigation.Rule) error {
	r, err := s.irr.CreateRule(c.Request().Context(), r)
	if err != nil {
		return err
	}
	out := ruleOf(r)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "create", Entity: "rule", EntityID: r.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) ruleOfPath(c echo.Context, min Role) (irrigation.Rule, geo.Farm, error) {
	return onFarm(s, c, "id", min, s.irr.Rule, func(r irrigation.Rule) int64 { return r.FarmID })
}

// getRule: GET /rules/{id}.
func (s *Server) getRule(c echo.Context) error {
	r, _, err := s.ruleOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ruleOf(r))
}

// updateRule: PATCH /rules/{id} (agronomist); its farm and zone stay.
func (s *Server) updateRule(c echo.Context) error {
	r, farm, err := s.ruleOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in ruleInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.ZoneID.Set && !sameID(in.ZoneID.Value, r.ZoneID) {
		return &ValidationError{Field: "zone_id", Problem: "a rule cannot move to another zone; create a new one"}
	}
	if err := in.apply(&r); err != nil {
		return err
	}
	r, err = s.irr.UpdateRule(c.Request().Context(), r)
	if err != nil {
		return err
	}
	out := ruleOf(r)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "rule", EntityID: r.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

func sameID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// deleteRule: DELETE /rules/{id} (agronomist); the runs it started and its decisions stay.
func (s *Server) deleteRule(c echo.Context) error {
	r, farm, err := s.ruleOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	if err := s.irr.DeleteRule(c.Request().Context(), r.ID); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "delete", Entity: "rule", EntityID: r.ID, Detail: map[string]any{"name": r.Name, "zone_id": r.ZoneID}})
	return c.NoContent(http.StatusNoContent)
}
