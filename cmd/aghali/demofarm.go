package main

import (
	"math"

	"github.com/twpayne/go-geom"

	"github.com/aghali/aghali/geo"
)

// The demo village: three farms on the Hakari river around Aghali (39.09 N, 46.63 E), each with
// fields of 0.5–5 ha, drip or sprinkler zones inside them, soil probes, a weather station, a
// valve controller and a water source.
type demoFarm struct {
	name   string
	lon    float64 // centre
	lat    float64
	source demoSource
	fields []demoField
}

type demoSource struct {
	name        string
	kind        string // pump, well, canal, reservoir
	energy      string // grid, solar, hydro
	capacityM3H float64
}

type demoField struct {
	name    string
	crop    string
	dx, dy  float64 // offset of the field's south-west corner from the farm centre, metres
	w, h    float64 // metres
	skew    float64 // metres the north edge is shifted east, so plots are not perfect boxes
	zones   int     // zones side by side, west to east
	method  string  // drip, sprinkler
	soil    string
	rootM   float64
	rateMMH float64 // application rate
}

func demoFarms() []demoFarm {
	return []demoFarm{
		{
			name: "Hakari Riverside", lon: 46.6290, lat: 39.0905,
			// Each source feeds all its zones at once (their nominal flows add up to a little
			// less), so the demo's valves open when asked; lower a capacity to see runs queue.
			source: demoSource{"River pump (hydro)", "pump", "hydro", 260},
			fields: []demoField{
				{"Pomegranate orchard", "pomegranate", -180, 20, 160, 125, 12, 2, "drip", "loam", 1.0, 4},
				{"Cotton plot", "cotton", 10, -150, 230, 150, -15, 2, "drip", "silt-loam", 1.2, 5},
			},
		},
		{
			name: "Village Gardens", lon: 46.6355, lat: 39.0935,
			source: demoSource{"Solar pump", "pump", "solar", 100},
			fields: []demoField{
				{"Tomato beds", "tomato", -110, -40, 100, 80, 6, 2, "drip", "sandy-loam", 0.7, 6},
				{"Vineyard", "grapes-wine", 20, -60, 130, 125, -8, 1, "drip", "loam", 1.2, 3},
			},
		},
		{
			name: "Upper Terraces", lon: 46.6385, lat: 39.0865,
			source: demoSource{"Canal offtake", "canal", "none", 560},
			fields: []demoField{
				{"Winter wheat", "winter-wheat", -260, -60, 250, 180, 20, 2, "sprinkler", "silt-loam", 1.2, 8},
				{"Alfalfa", "alfalfa", 20, -90, 190, 130, 0, 1, "sprinkler", "loam", 1.2, 8},
			},
		},
	}
}

// metres → degrees at the farm's latitude.
func (f demoFarm) at(x, y float64) (lon, lat float64) {
	const mPerDegLat = 111_132.0
	mPerDegLon := 111_320.0 * math.Cos(f.lat*math.Pi/180)
	return f.lon + x/mPerDegLon, f.lat + y/mPerDegLat
}

// quad returns the polygon of a skewed rectangle, counter-clockwise, closed.
func (f demoFarm) quad(x, y, w, h, skew float64) *geom.Polygon {
	pts := [][2]float64{{x, y}, {x + w, y}, {x + w + skew, y + h}, {x + skew, y + h}, {x, y}}
	flat := make([]float64, 0, 10)
	for _, p := range pts {
		lon, lat := f.at(p[0], p[1])
		flat = append(flat, round7(lon), round7(lat))
	}
	return geom.NewPolygonFlat(geom.XY, flat, []int{len(flat)}).SetSRID(geo.SRID)
}

// fieldPolygon is the field's outline.
func (f demoFarm) fieldPolygon(fd demoField) *geom.MultiPolygon {
	mp := geom.NewMultiPolygon(geom.XY).SetSRID(geo.SRID)
	_ = mp.Push(f.quad(fd.dx, fd.dy, fd.w, fd.h, fd.skew))
	return mp
}

// zonePolygon is zone i of n, a strip of the field inset by 3 m from its edges and following
// its skew, so it lies inside the field.
func (f demoFarm) zonePolygon(fd demoField, i int) *geom.Polygon {
	const inset = 3.0
	w := (fd.w - inset*float64(fd.zones+1)) / float64(fd.zones)
	x := fd.dx + inset + float64(i)*(w+inset)
	s0 := fd.skew * inset / fd.h          // shift of the west edge at the strip's bottom
	s1 := fd.skew * (fd.h - inset) / fd.h // and at its top
	return f.quad(x+s0, fd.dy+inset, w, fd.h-2*inset, s1-s0)
}

// zoneCentre is a point inside zone i (for its probe and valve).
func (f demoFarm) zoneCentre(fd demoField, i int, along float64) *geom.Point {
	const inset = 3.0
	w := (fd.w - inset*float64(fd.zones+1)) / float64(fd.zones)
	x := fd.dx + inset + float64(i)*(w+inset) + w/2
	y := fd.dy + fd.h*along
	lon, lat := f.at(x+fd.skew*along, y)
	return geo.NewPoint(round7(lon), round7(lat))
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }
