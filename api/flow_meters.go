package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of flow meters: nodes whose flow_lpm readings meter a zone or a water source (a
// controller's own meter needs no registration: it meters the controller's valves).

type flowMeterJSON struct {
	ID            int64     `json:"id"`
	FarmID        int64     `json:"farm_id"`
	NodeID        int64     `json:"node_id"`
	WaterSourceID *int64    `json:"water_source_id"`
	ZoneID        *int64    `json:"zone_id"`
	Name          string    `json:"name"`
	CreatedAt     time.Time `json:"created_at"`
}

func flowMeterOf(m irrigation.FlowMeter) flowMeterJSON {
	return flowMeterJSON{ID: m.ID, FarmID: m.FarmID, NodeID: m.NodeID, WaterSourceID: m.WaterSourceID, ZoneID: m.ZoneID,
		Name: m.Name, CreatedAt: utc(m.CreatedAt)}
}

type flowMeterInput struct {
	NodeID        *int64 `json:"node_id"`
	WaterSourceID *int64 `json:"water_source_id"`
	ZoneID        *int64 `json:"zone_id"`
	Name          string `json:"name"`
}

// listFlowMeters: GET /farms/{farm}/flow-meters.
func (s *Server) listFlowMeters(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	list, err := s.irr.FlowMeters(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	out := make([]flowMeterJSON, 0, len(list))
	for _, m := range list {
		out = append(out, flowMeterOf(m))
	}
	return c.JSON(http.StatusOK, out)
}

// createFlowMeter: POST /farms/{farm}/flow-meters {"node_id", "zone_id" or "water_source_id",
// "name"} (agronomist) → 201.
func (s *Server) createFlowMeter(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in flowMeterInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.NodeID == nil {
		return &ValidationError{Field: "node_id", Problem: "required"}
	}
	m, err := s.irr.CreateFlowMeter(c.Request().Context(), irrigation.FlowMeter{FarmID: farm.ID, NodeID: *in.NodeID,
		WaterSourceID: in.WaterSourceID, ZoneID: in.ZoneID, Name: in.Name})
	if err != nil {
		return err
	}
	out := flowMeterOf(m)
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "create", Entity: "flow_meter", EntityID: m.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}

// deleteFlowMeter: DELETE /flow-meters/{id} (agronomist); the node stays.
func (s *Server) deleteFlowMeter(c echo.Context) error {
	m, farm, err := onFarm(s, c, "id", RoleAgronomist, s.irr.FlowMeter, func(m irrigation.FlowMeter) int64 { return m.FarmID })
	if err != nil {
		return err
	}
	if err := s.irr.DeleteFlowMeter(c.Request().Context(), m.ID); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "delete", Entity: "flow_meter", EntityID: m.ID, Detail: flowMeterOf(m)})
	return c.NoContent(http.StatusNoContent)
}
