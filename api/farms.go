package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
)

// Handlers of farms.

type farmJSON struct {
	ID       int64           `json:"id"`
	OrgID    int64           `json:"org_id"`
	Name     string          `json:"name"`
	Timezone string          `json:"timezone"`
	Location json.RawMessage `json:"location"` // GeoJSON Point or null
}

func farmOf(f geo.Farm) (farmJSON, error) {
	loc, err := geo.Marshal(f.Location)
	if err != nil {
		return farmJSON{}, err
	}
	return farmJSON{ID: f.ID, OrgID: f.OrgID, Name: f.Name, Timezone: f.Timezone, Location: loc}, nil
}

// farmInput is the body of POST (name and org_id required) and PATCH (all optional).
type farmInput struct {
	OrgID    *int64          `json:"org_id"`
	Name     *string         `json:"name"`
	Timezone *string         `json:"timezone"`
	Location json.RawMessage `json:"location"` // absent: unchanged; null: none
}

// apply merges in into f.
func (in farmInput) apply(f *geo.Farm) error {
	if in.Name != nil {
		f.Name = *in.Name
	}
	if in.Timezone != nil {
		f.Timezone = *in.Timezone
	}
	if in.Location != nil {
		p, err := geo.ParsePoint(in.Location)
		if err != nil {
			return renameField(err, "location")
		}
		f.Location = p
	}
	return nil
}

// renameField names the request member a geo validation error is about (geo calls every
// geometry "geometry").
func renameField(err error, field string) error {
	if v, ok := errors.AsType[*geo.ValidationError](err); ok {
		return &geo.ValidationError{Field: field, Problem: v.Problem}
	}
	return err
}

// listFarms: GET /farms — the farms the caller sees.
func (s *Server) listFarms(c echo.Context) error {
	farms, err := s.visibleFarms(c)
	if err != nil {
		return err
	}
	out := make([]farmJSON, 0, len(farms))
	for _, f := range farms {
		j, err := farmOf(f)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

// createFarm: POST /farms (admin of org_id) → 201 farm.
func (s *Server) createFarm(c echo.Context) error {
	var in farmInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.OrgID == nil {
		return &ValidationError{Field: "org_id", Problem: "required"}
	}
	if err := requireOrg(c, *in.OrgID, RoleAdmin); err != nil {
		return err
	}
	f := geo.Farm{OrgID: *in.OrgID}
	if err := in.apply(&f); err != nil {
		return err
	}
	f, err := s.geo.CreateFarm(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out, err := farmOf(f)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: f.OrgID, Action: "create", Entity: "farm", EntityID: f.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}

// getFarm: GET /farms/{farm}.
func (s *Server) getFarm(c echo.Context) error {
	id, err := pathID(c, "farm")
	if err != nil {
		return err
	}
	f, err := s.requireFarm(c, id, RoleViewer)
	if err != nil {
		return err
	}
	out, err := farmOf(f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// updateFarm: PATCH /farms/{farm} (admin). A farm stays in its organisation.
func (s *Server) updateFarm(c echo.Context) error {
	id, err := pathID(c, "farm")
	if err != nil {
		return err
	}
	f, err := s.requireFarm(c, id, RoleAdmin)
	if err != nil {
		return err
	}
	var in farmInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.OrgID != nil && *in.OrgID != f.OrgID {
		return &ValidationError{Field: "org_id", Problem: "a farm cannot move to another organisation"}
	}
	if err := in.apply(&f); err != nil {
		return err
	}
	f, err = s.geo.UpdateFarm(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out, err := farmOf(f)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: f.OrgID, Action: "update", Entity: "farm", EntityID: f.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// deleteFarm: DELETE /farms/{farm} (admin) deletes the farm and everything on it.
func (s *Server) deleteFarm(c echo.Context) error {
	id, err := pathID(c, "farm")
	if err != nil {
		return err
	}
	f, err := s.requireFarm(c, id, RoleAdmin)
	if err != nil {
		return err
	}
	if err := s.geo.DeleteFarm(c.Request().Context(), f.ID); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: f.OrgID, Action: "delete", Entity: "farm", EntityID: f.ID, Detail: map[string]string{"name": f.Name}})
	return c.NoContent(http.StatusNoContent)
}
