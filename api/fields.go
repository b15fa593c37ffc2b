package api

import (
	"encoding/json"
	"math"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
)

// Handlers of fields: a farm's parcels, MultiPolygons validated by PostGIS.

type fieldJSON struct {
	ID       int64           `json:"id"`
	FarmID   int64           `json:"farm_id"`
	Name     string          `json:"name"`
	Crop     string          `json:"crop"`
	Geometry json.RawMessage `json:"geometry"` // always a MultiPolygon
	AreaHa   float64         `json:"area_ha"`
}

func fieldOf(f geo.Field) (fieldJSON, error) {
	g, err := geo.Marshal(f.Geom)
	if err != nil {
		return fieldJSON{}, err
	}
	return fieldJSON{ID: f.ID, FarmID: f.FarmID, Name: f.Name, Crop: f.Crop, Geometry: g, AreaHa: roundHa(f.AreaHa)}, nil
}

// roundHa keeps four decimals: a square metre.
func roundHa(ha float64) float64 { return math.Round(ha*1e4) / 1e4 }

// fieldInput is the body of POST (name and geometry required) and PATCH (all optional).
type fieldInput struct {
	Name     *string         `json:"name"`
	Crop     *string         `json:"crop"`
	Geometry json.RawMessage `json:"geometry"` // Polygon or MultiPolygon
}

func (in fieldInput) apply(f *geo.Field) error {
	if in.Name != nil {
		f.Name = *in.Name
	}
	if in.Crop != nil {
		f.Crop = *in.Crop
	}
	if in.Geometry != nil {
		mp, err := geo.ParseMultiPolygon(in.Geometry)
		if err != nil {
			return err
		}
		f.Geom = mp
	}
	return nil
}

// listFields: GET /farms/{farm}/fields.
func (s *Server) listFields(c echo.Context) error {
	farmID, err := pathID(c, "farm")
	if err != nil {
		return err
	}
	if _, err := s.requireFarm(c, farmID, RoleViewer); err != nil {
		return err
	}
	fields, err := s.geo.Fields(c.Request().Context(), farmID)
	if err != nil {
		return err
	}
	out := make([]fieldJSON, 0, len(fields))
	for _, f := range fields {
		j, err := fieldOf(f)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

// createField: POST /farms/{farm}/fields (agronomist) → 201 field; an invalid polygon is 422
// with PostGIS's reason.
func (s *Server) createField(c echo.Context) error {
	farmID, err := pathID(c, "farm")
	if err != nil {
		return err
	}
	farm, err := s.requireFarm(c, farmID, RoleAgronomist)
	if err != nil {
		return err
	}
	var in fieldInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Geometry == nil {
		return &ValidationError{Field: "geometry", Problem: "required"}
	}
	f := geo.Field{FarmID: farm.ID}
	if err := in.apply(&f); err != nil {
		return err
	}
	f, err = s.geo.CreateField(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out, err := fieldOf(f)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "create", Entity: "field", EntityID: f.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}

// fieldOfPath loads {field} and checks the caller may see its farm with at least min.
func (s *Server) fieldOfPath(c echo.Context, min Role) (geo.Field, geo.Farm, error) {
	id, err := pathID(c, "field")
	if err != nil {
		return geo.Field{}, geo.Farm{}, err
	}
	f, err := s.geo.Field(c.Request().Context(), id)
	if err != nil {
		return geo.Field{}, geo.Farm{}, err
	}
	farm, err := s.requireFarm(c, f.FarmID, min)
	if err != nil {
		return geo.Field{}, geo.Farm{}, err
	}
	return f, farm, nil
}

// getField: GET /fields/{field}.
func (s *Server) getField(c echo.Context) error {
	f, _, err := s.fieldOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	out, err := fieldOf(f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// updateField: PATCH /fields/{field} (agronomist).
func (s *Server) updateField(c echo.Context) error {
	f, farm, err := s.fieldOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in fieldInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if err := in.apply(&f); err != nil {
		return err
	}
	f, err = s.geo.UpdateField(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out, err := fieldOf(f)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "field", EntityID: f.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// deleteField: DELETE /fields/{field} (agronomist); its zones stay, unlinked.
func (s *Server) deleteField(c echo.Context) error {
	f, farm, err := s.fieldOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	if err := s.geo.DeleteField(c.Request().Context(), f.ID); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "delete", Entity: "field", EntityID: f.ID, Detail: map[string]string{"name": f.Name}})
	return c.NoContent(http.StatusNoContent)
}
