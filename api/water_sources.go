package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// Handlers of water sources: the pumps, wells, canals and reservoirs that feed zones.

type waterSourceJSON struct {
	ID            int64                     `json:"id"`
	FarmID        int64                     `json:"farm_id"`
	Name          string                    `json:"name"`
	Kind          string                    `json:"kind"`
	CapacityM3H   *float64                  `json:"capacity_m3h"`
	Energy        string                    `json:"energy"`
	EnergyWindows []irrigation.EnergyWindow `json:"energy_windows"`
	// PowerBudgetKW and SpecificEnergyKWhM3 cap the flow of solar/hydro sources; FlowLimitM3H
	// (read-only) is the least of capacity and what the power budget pumps.
	PowerBudgetKW       *float64        `json:"power_budget_kw"`
	SpecificEnergyKWhM3 *float64        `json:"specific_energy_kwh_m3"`
	FlowLimitM3H        *float64        `json:"flow_limit_m3h"`
	Location            json.RawMessage `json:"location"` // Point or null
}

func waterSourceOf(w irrigation.WaterSource) (waterSourceJSON, error) {
	loc, err := geo.Marshal(w.Location)
	if err != nil {
		return waterSourceJSON{}, err
	}
	windows := w.EnergyWindows
	if windows == nil {
		windows = []irrigation.EnergyWindow{}
	}
	return waterSourceJSON{ID: w.ID, FarmID: w.FarmID, Name: w.Name, Kind: w.Kind, CapacityM3H: w.CapacityM3H,
		Energy: w.Energy, EnergyWindows: windows, Location: loc, PowerBudgetKW: w.PowerBudgetKW,
		SpecificEnergyKWhM3: w.SpecificEnergyKWhM3, FlowLimitM3H: w.FlowLimitM3H()}, nil
}

// waterSourceInput is the body of POST (name and kind required) and PATCH (all optional).
type waterSourceInput struct {
	Name          *string                    `json:"name"`
	Kind          *string                    `json:"kind"`
	CapacityM3H   nullable[float64]          `json:"capacity_m3h"`
	Energy        *string                    `json:"energy"`
	EnergyWindows *[]irrigation.EnergyWindow `json:"energy_windows"`
	Location      json.RawMessage            `json:"location"` // absent: unchanged; null: none

	PowerBudgetKW       nullable[float64] `json:"power_budget_kw"`
	SpecificEnergyKWhM3 nullable[float64] `json:"specific_energy_kwh_m3"`
}

func (in waterSourceInput) apply(w *irrigation.WaterSource) error {
	set(&w.Name, in.Name)
	set(&w.Kind, in.Kind)
	in.CapacityM3H.apply(&w.CapacityM3H)
	set(&w.Energy, in.Energy)
	set(&w.EnergyWindows, in.EnergyWindows)
	in.PowerBudgetKW.apply(&w.PowerBudgetKW)
	in.SpecificEnergyKWhM3.apply(&w.SpecificEnergyKWhM3)
	if in.Location != nil {
		p, err := geo.ParsePoint(in.Location)
		if err != nil {
			return renameField(err, "location")
		}
		w.Location = p
	}
	return nil
}

// listWaterSources: GET /farms/{farm}/water-sources.
func (s *Server) listWaterSources(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	list, err := s.irr.WaterSources(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	out := make([]waterSourceJSON, 0, len(list))
	for _, w := range list {
		j, err := waterSourceOf(w)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

// createWaterSource: POST /farms/{farm}/water-sources (agronomist) → 201.
func (s *Server) createWaterSource(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in waterSourceInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	w := irrigation.WaterSource{FarmID: farm.ID}
	if err := in.apply(&w); err != nil {
		return err
	}
	w, err = s.irr.CreateWaterSource(c.Request().Context(), w)
	if err != nil {
		return err
	}
	out, err := waterSourceOf(w)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "create", Entity: "water_source", EntityID: w.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) waterSourceOfPath(c echo.Context, min Role) (irrigation.WaterSource, geo.Farm, error) {
	return onFarm(s, c, "id", min, s.irr.WaterSource, func(w irrigation.WaterSource) int64 { return w.FarmID })
}

// getWaterSource: GET /water-sources/{id}.
func (s *Server) getWaterSource(c echo.Context) error {
	w, _, err := s.waterSourceOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	out, err := waterSourceOf(w)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// updateWaterSource: PATCH /water-sources/{id} (agronomist).
func (s *Server) updateWaterSource(c echo.Context) error {
	w, farm, err := s.waterSourceOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in waterSourceInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if err := in.apply(&w); err != nil {
		return err
	}
	w, err = s.irr.UpdateWaterSource(c.Request().Context(), w)
	if err != nil {
		return err
	}
	out, err := waterSourceOf(w)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "water_source", EntityID: w.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// deleteWaterSource: DELETE /water-sources/{id} (agronomist); its zones stay, with no source.
func (s *Server) deleteWaterSource(c echo.Context) error {
	w, farm, err := s.waterSourceOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	if err := s.irr.DeleteWaterSource(c.Request().Context(), w.ID); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "delete", Entity: "water_source", EntityID: w.ID, Detail: map[string]string{"name": w.Name}})
	return c.NoContent(http.StatusNoContent)
}
