package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// Handlers of irrigation zones: the areas of a farm watered as one unit, Polygons validated by
// PostGIS.

type zoneJSON struct {
	ID                 int64           `json:"id"`
	FarmID             int64           `json:"farm_id"`
	FieldID            *int64          `json:"field_id"`
	WaterSourceID      *int64          `json:"water_source_id"`
	Name               string          `json:"name"`
	Geometry           json.RawMessage `json:"geometry"` // Polygon
	Method             string          `json:"method"`
	Crop               string          `json:"crop"`
	Soil               string          `json:"soil"`
	RootDepthM         *float64        `json:"root_depth_m"`
	ApplicationRateMMH *float64        `json:"application_rate_mm_h"`
	Efficiency         *float64        `json:"efficiency"`
	MaxRuntimeS        int             `json:"max_runtime_s"`
	MinOffS            int             `json:"min_off_s"`
	PlantingDate       *string         `json:"planting_date"` // YYYY-MM-DD
	ThetaFC            *float64        `json:"theta_fc"`
	ThetaWP            *float64        `json:"theta_wp"`
}

func zoneOf(z irrigation.Zone) (zoneJSON, error) {
	g, err := geo.Marshal(z.Geom)
	if err != nil {
		return zoneJSON{}, err
	}
	return zoneJSON{
		ID: z.ID, FarmID: z.FarmID, FieldID: z.FieldID, WaterSourceID: z.WaterSourceID, Name: z.Name, Geometry: g,
		Method: z.Method, Crop: z.Crop, Soil: z.Soil, RootDepthM: z.RootDepthM, ApplicationRateMMH: z.ApplicationRateMMH,
		Efficiency: z.Efficiency, MaxRuntimeS: z.MaxRuntimeS, MinOffS: z.MinOffS, PlantingDate: dateOf(z.PlantingDate),
		ThetaFC: z.ThetaFC, ThetaWP: z.ThetaWP,
	}, nil
}

// zoneInput is the body of POST (name and geometry required) and PATCH (all optional; null
// clears the nullable members).
type zoneInput struct {
	FieldID            nullable[int64]   `json:"field_id"`
	WaterSourceID      nullable[int64]   `json:"water_source_id"`
	Name               *string           `json:"name"`
	Geometry           json.RawMessage   `json:"geometry"`
	Method             *string           `json:"method"`
	Crop               *string           `json:"crop"`
	Soil               *string           `json:"soil"`
	RootDepthM         nullable[float64] `json:"root_depth_m"`
	ApplicationRateMMH nullable[float64] `json:"application_rate_mm_h"`
	Efficiency         nullable[float64] `json:"efficiency"`
	MaxRuntimeS        *int              `json:"max_runtime_s"`
	MinOffS            *int              `json:"min_off_s"`
	PlantingDate       nullable[string]  `json:"planting_date"`
	ThetaFC            nullable[float64] `json:"theta_fc"`
	ThetaWP            nullable[float64] `json:"theta_wp"`
}

func (in zoneInput) apply(z *irrigation.Zone) error {
	if in.PlantingDate.Set {
		d, err := parseDate("planting_date", in.PlantingDate.Value)
		if err != nil {
			return err
		}
		z.PlantingDate = d
	}
	in.ThetaFC.apply(&z.ThetaFC)
	in.ThetaWP.apply(&z.ThetaWP)
	in.FieldID.apply(&z.FieldID)
	in.WaterSourceID.apply(&z.WaterSourceID)
	set(&z.Name, in.Name)
	set(&z.Method, in.Method)
	set(&z.Crop, in.Crop)
	set(&z.Soil, in.Soil)
	in.RootDepthM.apply(&z.RootDepthM)
	in.ApplicationRateMMH.apply(&z.ApplicationRateMMH)
	in.Efficiency.apply(&z.Efficiency)
	if in.MaxRuntimeS != nil {
		if *in.MaxRuntimeS <= 0 {
			// The store reads 0 as "the default"; a person who sends 0 means something else.
			return &ValidationError{Field: "max_runtime_s", Problem: "must be a positive number of seconds"}
		}
		z.MaxRuntimeS = *in.MaxRuntimeS
	}
	set(&z.MinOffS, in.MinOffS)
	if in.Geometry != nil {
		p, err := geo.ParsePolygon(in.Geometry)
		if err != nil {
			return err
		}
		z.Geom = p
	}
	return nil
}

// listZones: GET /farms/{farm}/zones.
func (s *Server) listZones(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	zones, err := s.irr.Zones(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	out := make([]zoneJSON, 0, len(zones))
	for _, z := range zones {
		j, err := zoneOf(z)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

// createZone: POST /farms/{farm}/zones (agronomist) → 201 zone; an invalid polygon is 422 with
// PostGIS's reason.
func (s *Server) createZone(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in zoneInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Geometry == nil {
		return &ValidationError{Field: "geometry", Problem: "required"}
	}
	z := irrigation.Zone{FarmID: farm.ID}
	if err := in.apply(&z); err != nil {
		return err
	}
	z, err = s.irr.CreateZone(c.Request().Context(), z)
	if err != nil {
		return err
	}
	out, err := zoneOf(z)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "create", Entity: "zone", EntityID: z.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) zoneOfPath(c echo.Context, min Role) (irrigation.Zone, geo.Farm, error) {
	return onFarm(s, c, "zone", min, s.irr.Zone, func(z irrigation.Zone) int64 { return z.FarmID })
}

// getZone: GET /zones/{zone}.
func (s *Server) getZone(c echo.Context) error {
	z, _, err := s.zoneOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	out, err := zoneOf(z)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// updateZone: PATCH /zones/{zone} (agronomist).
func (s *Server) updateZone(c echo.Context) error {
	z, farm, err := s.zoneOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in zoneInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if err := in.apply(&z); err != nil {
		return err
	}
	z, err = s.irr.UpdateZone(c.Request().Context(), z)
	if err != nil {
		return err
	}
	out, err := zoneOf(z)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "zone", EntityID: z.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// deleteZone: DELETE /zones/{zone} (agronomist) deletes the zone with its rules, schedules and
// past runs; its valves and nodes stay, unassigned. A zone being watered is 409.
func (s *Server) deleteZone(c echo.Context) error {
	z, farm, err := s.zoneOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	if err := s.irr.DeleteZone(c.Request().Context(), z.ID); err != nil {
		if errors.Is(err, irrigation.ErrBusy) {
			return &refusal{detail: "the zone is being watered; stop its run before deleting it", cause: err}
		}
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "delete", Entity: "zone", EntityID: z.ID, Detail: map[string]string{"name": z.Name}})
	return c.NoContent(http.StatusNoContent)
}
