package agronomy

// Soil holds the water characteristics of a soil texture class (FAO-56 Table 19).
type Soil struct {
	Name           string // catalogue key: "silty-clay-loam"
	Title          string
	FieldCapacity  Range // θFC, m³/m³
	WiltingPoint   Range // θWP, m³/m³
	AvailableWater Range // θFC − θWP as printed in the table, m³/m³
	REW            Range // readily evaporable water of the surface layer, mm
	TEW            Range // total evaporable water for an evaporation layer Ze = 0.10 m, mm
}

// ThetaFC is the representative field capacity: the midpoint of the table's range.
func (s Soil) ThetaFC() float64 { return s.FieldCapacity.Mid() }

// ThetaWP is the representative wilting point: the midpoint of the table's range.
func (s Soil) ThetaWP() float64 { return s.WiltingPoint.Mid() }

// soils is Table 19, read only.
var soils = []Soil{
	{"sand", "Sand", Range{0.07, 0.17}, Range{0.02, 0.07}, Range{0.05, 0.11}, Range{2, 7}, Range{6, 12}},
	{"loamy-sand", "Loamy sand", Range{0.11, 0.19}, Range{0.03, 0.10}, Range{0.06, 0.12}, Range{4, 8}, Range{9, 14}},
	{"sandy-loam", "Sandy loam", Range{0.18, 0.28}, Range{0.06, 0.16}, Range{0.11, 0.15}, Range{6, 10}, Range{15, 20}},
	{"loam", "Loam", Range{0.20, 0.30}, Range{0.07, 0.17}, Range{0.13, 0.18}, Range{8, 10}, Range{16, 22}},
	{"silt-loam", "Silt loam", Range{0.22, 0.36}, Range{0.09, 0.21}, Range{0.13, 0.19}, Range{9, 11}, Range{18, 25}},
	{"silt", "Silt", Range{0.28, 0.36}, Range{0.12, 0.22}, Range{0.16, 0.20}, Range{8, 11}, Range{22, 26}},
	{"silty-clay-loam", "Silty clay loam", Range{0.30, 0.37}, Range{0.17, 0.24}, Range{0.13, 0.18}, Range{8, 11}, Range{22, 27}},
	{"silty-clay", "Silty clay", Range{0.30, 0.42}, Range{0.17, 0.29}, Range{0.13, 0.19}, Range{8, 12}, Range{22, 28}},
	{"clay", "Clay", Range{0.32, 0.40}, Range{0.20, 0.24}, Range{0.12, 0.20}, Range{8, 12}, Range{22, 29}},
}

// Soils returns the soil catalogue, coarse to fine. The slice is a fresh copy.
func Soils() []Soil {
	out := make([]Soil, len(soils))
	copy(out, soils)
	return out
}

// SoilByName returns the catalogue soil with the given Name.
func SoilByName(name string) (Soil, bool) {
	for _, s := range soils {
		if s.Name == name {
			return s, true
		}
	}
	return Soil{}, false
}

// TAW is the total available water of the root zone in mm (eq. 82): 1000 (θFC − θWP) Zr, with
// water contents in m³/m³ and the root depth zr in m.
func TAW(thetaFC, thetaWP, zr float64) float64 { return 1000 * (thetaFC - thetaWP) * zr }

// RAW is the readily available water in mm (eq. 83): the part of TAW a crop can extract
// without stress.
func RAW(p, taw float64) float64 { return p * taw }

// AdjustP corrects a Table 22 depletion fraction, valid for ETc ≈ 5 mm/day, to the day's crop
// evapotranspiration etc in mm/day: p = pTable + 0.04 (5 − ETc), kept within 0.1–0.8 (Table 22
// footnote). Crops hold on to water less well on hot days, so p falls as ETc rises.
func AdjustP(pTable, etc float64) float64 {
	p := pTable + 0.04*(5-etc)
	switch {
	case p < 0.1:
		return 0.1
	case p > 0.8:
		return 0.8
	}
	return p
}

// Ks is the water stress coefficient (eq. 84) for root-zone depletion dr in mm: 1 while dr ≤
// RAW, then falling linearly to 0 at dr = TAW.
func Ks(dr, taw, raw float64) float64 {
	if dr <= raw {
		return 1
	}
	if taw <= raw || dr >= taw {
		return 0
	}
	return (taw - dr) / (taw - raw)
}
