package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
)

// The farm map: one GeoJSON FeatureCollection with a layer per kind of thing on the farm.

// mapLayer is one layer of the farm map. Features must set properties.layer to name.
type mapLayer struct {
	name     string
	features func(ctx context.Context, farm geo.Farm) ([]geo.Feature, error)
}

// mapLayers lists the layers in drawing order (bottom first). The stores of zones, nodes, valves
// and water sources add theirs here, one line each.
func (s *Server) mapLayers() []mapLayer {
	return []mapLayer{
		{"field", s.fieldFeatures},
	}
}

// farmMap: GET /farms/{farm}/map?layers=field,zone — every layer by default.
func (s *Server) farmMap(c echo.Context) error {
	farmID, err := pathID(c, "farm")
	if err != nil {
		return err
	}
	farm, err := s.requireFarm(c, farmID, RoleViewer)
	if err != nil {
		return err
	}
	layers := s.mapLayers()
	if q := c.QueryParam("layers"); q != "" {
		want := strings.Split(q, ",")
		var names []string
		for _, l := range layers {
			names = append(names, l.name)
		}
		for _, w := range want {
			if !slices.Contains(names, w) {
				return &ValidationError{Field: "layers", Problem: fmt.Sprintf("%q is not one of %s", w, strings.Join(names, ", "))}
			}
		}
		layers = slices.DeleteFunc(layers, func(l mapLayer) bool { return !slices.Contains(want, l.name) })
	}
	fc := geo.FeatureCollection{Features: []geo.Feature{}}
	for _, l := range layers {
		fs, err := l.features(c.Request().Context(), farm)
		if err != nil {
			return fmt.Errorf("map layer %s: %w", l.name, err)
		}
		fc.Features = append(fc.Features, fs...)
	}
	return c.JSON(http.StatusOK, fc)
}

// fieldFeatures is the field layer: id, name, crop, area_ha.
func (s *Server) fieldFeatures(ctx context.Context, farm geo.Farm) ([]geo.Feature, error) {
	fields, err := s.geo.Fields(ctx, farm.ID)
	if err != nil {
		return nil, err
	}
	out := make([]geo.Feature, 0, len(fields))
	for _, f := range fields {
		out = append(out, geo.Feature{
			ID:       fmt.Sprintf("field/%d", f.ID),
			Geometry: f.Geom,
			Properties: map[string]any{
				"layer": "field", "id": f.ID, "name": f.Name, "crop": f.Crop, "area_ha": roundHa(f.AreaHa),
			},
		})
	}
	return out, nil
}
