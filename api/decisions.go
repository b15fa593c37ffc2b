package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of decisions: every automatic decision with its reason — a rule that acted or was
// held back, a schedule occurrence fired or skipped, a water-balance check.

// listDecisions: GET /farms/{farm}/decisions?zone=&origin=&origin_id=&limit=100&before= —
// newest first.
func (s *Server) listDecisions(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	f := irrigation.DecisionFilter{FarmID: farm.ID, Origin: c.QueryParam("origin")}
	switch f.Origin {
	case "", irrigation.OriginRule, irrigation.OriginSchedule, irrigation.OriginWaterBalance:
	default:
		return &ValidationError{Field: "origin", Problem: "one of rule, schedule, water_balance"}
	}
	for _, q := range []struct {
		name string
		dst  **int64
	}{{"zone", &f.ZoneID}, {"origin_id", &f.OriginID}, {"before", &f.Before}} {
		if v := c.QueryParam(q.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return &ValidationError{Field: q.name, Problem: "want a positive integer"}
			}
			*q.dst = &n
		}
	}
	if f.Limit, err = queryInt(c, "limit", 100, 1, 1000); err != nil {
		return err
	}
	list, err := s.irr.Decisions(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := make([]decisionJSON, 0, len(list))
	for _, d := range list {
		out = append(out, decisionOf(d))
	}
	return c.JSON(http.StatusOK, out)
}
