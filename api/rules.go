package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// Handlers of threshold rules: "when the mean soil_vwc of the last hour is below 0.18, water
// for 20 minutes".

type ruleJSON struct {
	ID          int64      `json:"id"`
	ZoneID      int64      `json:"zone_id"`
	Name        string     `json:"name"`
	Metric      string     `json:"metric"`
	Aggregate   string     `json:"aggregate"`
	Op          string     `json:"op"`
	Threshold   float64    `json:"threshold"`
	WindowS     int        `json:"window_s"`
	DurationS   int        `json:"duration_s"`
	CooldownS   int        `json:"cooldown_s"`
	Enabled     bool       `json:"enabled"`
	LastFiredAt *time.Time `json:"last_fired_at"`
}

func ruleOf(r irrigation.Rule) ruleJSON {
	return ruleJSON{ID: r.ID, ZoneID: r.ZoneID, Name: r.Name, Metric: r.Metric, Aggregate: r.Aggregate, Op: r.Op,
		Threshold: r.Threshold, WindowS: r.WindowS, DurationS: r.DurationS, CooldownS: r.CooldownS, Enabled: r.Enabled,
		LastFiredAt: utcp(r.LastFiredAt)}
}

// ruleInput is the body of POST (name, metric, op, threshold and duration_s required; enabled
// defaults to true) and PATCH (all optional).
type ruleInput struct {
	Name      *string  `json:"name"`
	Metric    *string  `json:"metric"`
	Aggregate *string  `json:"aggregate"`
	Op        *string  `json:"op"`
	Threshold *float64 `json:"threshold"`
	WindowS   *int     `json:"window_s"`
	DurationS *int     `json:"duration_s"`
	CooldownS *int     `json:"cooldown_s"`
	Enabled   *bool    `json:"enabled"`
}

func (in ruleInput) apply(r *irrigation.Rule) error {
	set(&r.Name, in.Name)
	set(&r.Metric, in.Metric)
	set(&r.Aggregate, in.Aggregate)
	set(&r.Op, in.Op)
	set(&r.Threshold, in.Threshold)
	if in.WindowS != nil {
		if *in.WindowS <= 0 {
			// The store reads 0 as "the default"; a person who sends 0 means something else.
			return &ValidationError{Field: "window_s", Problem: "must be a positive number of seconds"}
		}
		r.WindowS = *in.WindowS
	}
	set(&r.DurationS, in.DurationS)
	set(&r.CooldownS, in.CooldownS)
	set(&r.Enabled, in.Enabled)
	return nil
}

// listRules: GET /zones/{zone}/rules.
func (s *Server) listRules(c echo.Context) error {
	z, _, err := s.zoneOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	rules, err := s.irr.Rules(c.Request().Context(), z.ID)
	if err != nil {
		return err
	}
	out := make([]ruleJSON, 0, len(rules))
	for _, r := range rules {
		out = append(out, ruleOf(r))
	}
	return c.JSON(http.StatusOK, out)
}

// createRule: POST /zones/{zone}/rules (agronomist) → 201 rule.
func (s *Server) createRule(c echo.Context) error {
	z, farm, err := s.zoneOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in ruleInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Threshold == nil {
		// 0 is a threshold like any other, so absence cannot be left to the store.
		return &ValidationError{Field: "threshold", Problem: "required"}
	}
	r := irrigation.Rule{ZoneID: z.ID, Enabled: true}
	if err := in.apply(&r); err != nil {
		return err
	}
	r, err = s.irr.CreateRule(c.Request().Context(), r)
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

// updateRule: PATCH /rules/{id} (agronomist).
func (s *Server) updateRule(c echo.Context) error {
	r, farm, err := s.ruleOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in ruleInput
	if err := bindJSON(c, &in); err != nil {
		return err
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

// deleteRule: DELETE /rules/{id} (agronomist); the runs it started stay.
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
