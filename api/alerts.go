package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of alerts: what a person should look at, across the farms they see.

type alertJSON struct {
	ID             int64      `json:"id"`
	FarmID         int64      `json:"farm_id"`
	Kind           string     `json:"kind"`
	Severity       string     `json:"severity"`
	Subject        string     `json:"subject"`
	Message        string     `json:"message"`
	OpenedAt       time.Time  `json:"opened_at"`
	ResolvedAt     *time.Time `json:"resolved_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	AcknowledgedBy *int64     `json:"acknowledged_by"`
}

func alertOf(a irrigation.Alert) alertJSON {
	return alertJSON{ID: a.ID, FarmID: a.FarmID, Kind: a.Kind, Severity: a.Severity, Subject: a.Subject,
		Message: a.Message, OpenedAt: utc(a.OpenedAt), ResolvedAt: utcp(a.ResolvedAt),
		AcknowledgedAt: utcp(a.AcknowledgedAt), AcknowledgedBy: a.AcknowledgedBy}
}

// listAlerts: GET /alerts?open=true&farm=&limit=100 — alerts of every farm the caller sees (or of
// one of them), newest first; open=true leaves out resolved ones; limit 1–1000, default 100.
func (s *Server) listAlerts(c echo.Context) error {
	open, err := queryBool(c, "open", false)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	var farmIDs []int64
	if c.QueryParam("farm") != "" {
		id, err := queryInt(c, "farm", 0, 1, 1<<62)
		if err != nil {
			return err
		}
		if _, err := s.requireFarm(c, int64(id), RoleViewer); err != nil {
			return err
		}
		farmIDs = []int64{int64(id)}
	} else {
		farms, err := s.visibleFarms(c)
		if err != nil {
			return err
		}
		farmIDs = make([]int64, 0, len(farms))
		for _, f := range farms {
			farmIDs = append(farmIDs, f.ID)
		}
	}
	alerts, err := s.irr.Alerts(c.Request().Context(), farmIDs, open, limit)
	if err != nil {
		return err
	}
	out := make([]alertJSON, 0, len(alerts))
	for _, a := range alerts {
		out = append(out, alertOf(a))
	}
	return c.JSON(http.StatusOK, out)
}

// ackAlert: POST /alerts/{id}/ack (farmer) → the alert, acknowledged by the caller. It stays
// open until what it is about is resolved; acknowledging again keeps the first acknowledgement.
func (s *Server) ackAlert(c echo.Context) error {
	a, farm, err := onFarm(s, c, "id", RoleFarmer, s.irr.Alert, func(a irrigation.Alert) int64 { return a.FarmID })
	if err != nil {
		return err
	}
	a, err = s.irr.AckAlert(c.Request().Context(), a.ID, caller(c).User.ID)
	if err != nil {
		return err
	}
	out := alertOf(a)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "ack", Entity: "alert", EntityID: a.ID,
		Detail: map[string]any{"kind": a.Kind, "subject": a.Subject, "acknowledged_by": a.AcknowledgedBy}})
	return c.JSON(http.StatusOK, out)
}
