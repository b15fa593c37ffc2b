package main

import (
	"testing"

	"github.com/twpayne/go-geom/xy"
)

func TestDemoFarmGeometry(t *testing.T) {
	for _, f := range demoFarms() {
		for _, fd := range f.fields {
			outline := f.fieldPolygon(fd).Polygon(0)
			// Area in m² from the metre dimensions: a skewed rectangle keeps w×h.
			ha := fd.w * fd.h / 10_000
			if ha < 0.5 || ha > 5 {
				t.Errorf("%s/%s: %.2f ha, want 0.5–5 ha", f.name, fd.name, ha)
			}
			for i := range fd.zones {
				z := f.zonePolygon(fd, i)
				for _, c := range z.LinearRing(0).Coords() {
					if !xy.IsPointInRing(outline.Layout(), c, outline.LinearRing(0).FlatCoords()) {
						t.Errorf("%s/%s zone %d: corner %v outside its field", f.name, fd.name, i, c)
					}
				}
				centre := f.zoneCentre(fd, i, 0.5)
				if !xy.IsPointInRing(z.Layout(), centre.Coords(), z.LinearRing(0).FlatCoords()) {
					t.Errorf("%s/%s zone %d: centre outside the zone", f.name, fd.name, i)
				}
			}
		}
	}
}
