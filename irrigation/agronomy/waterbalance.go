package agronomy

import (
	"fmt"
	"math"
)

// RootZone is the soil a zone's crop draws water from.
type RootZone struct {
	ThetaFC float64 // volumetric water content at field capacity, m³/m³
	ThetaWP float64 // volumetric water content at the wilting point, m³/m³
	Depth   float64 // effective root depth Zr, m
	P       float64 // Table 22 depletion fraction for no stress; adjusted daily for ETc (AdjustP)
}

// TAW is the root zone's total available water in mm (eq. 82).
func (z RootZone) TAW() float64 { return TAW(z.ThetaFC, z.ThetaWP, z.Depth) }

// ZoneFor is the root zone of a catalogue crop on a catalogue soil at the crop's representative
// maximum root depth (the midpoint of the Table 22 range).
func ZoneFor(c Crop, s Soil) RootZone {
	return RootZone{ThetaFC: s.ThetaFC(), ThetaWP: s.ThetaWP(), Depth: c.RootDepth.Mid(), P: c.P}
}

func (z RootZone) validate() error {
	if err := firstErr(
		check("ThetaWP", z.ThetaWP, 0, 1, "water content in m³/m³"),
		check("ThetaFC", z.ThetaFC, 0, 1, "water content in m³/m³"),
		check("Depth", z.Depth, 0.05, 5, "root depth in m"),
		check("P", z.P, 0.05, 0.95, "depletion fraction"),
	); err != nil {
		return err
	}
	if z.ThetaFC <= z.ThetaWP {
		return &InputError{Field: "ThetaFC", Value: z.ThetaFC, Reason: fmt.Sprintf("must exceed ThetaWP (%g)", z.ThetaWP)}
	}
	return nil
}

// Balance is the state of a zone's daily root-zone water balance (FAO-56 eq. 85): the depletion
// Dr below field capacity at the end of the last day stepped. It is a value: Step returns the
// next state and leaves the receiver alone.
type Balance struct {
	Zone       RootZone
	Efficiency float64 // fraction of the gross irrigation depth that reaches the root zone, (0, 1]
	Depletion  float64 // Dr, mm; 0 at field capacity, TAW at the wilting point
}

// NewBalance starts a water balance with the given initial depletion in mm (0: the root zone is
// at field capacity, as after heavy rain or a pre-plant irrigation).
func NewBalance(zone RootZone, efficiency, depletion float64) (Balance, error) {
	if err := zone.validate(); err != nil {
		return Balance{}, err
	}
	if err := check("Efficiency", efficiency, 0.01, 1, "application efficiency"); err != nil {
		return Balance{}, err
	}
	if err := check("Depletion", depletion, 0, zone.TAW(), "initial depletion in mm (0 to TAW)"); err != nil {
		return Balance{}, err
	}
	return Balance{Zone: zone, Efficiency: efficiency, Depletion: depletion}, nil
}

// Day is one day's water inputs and demand, all depths in mm.
type Day struct {
	ET0           float64 // reference evapotranspiration, mm/day
	Kc            float64 // crop coefficient (Crop.Kc)
	Rain          float64 // measured precipitation P
	Runoff        float64 // surface runoff RO, part of Rain
	Irrigation    float64 // gross depth applied; Balance.Efficiency of it reaches the root zone
	CapillaryRise float64 // CR from a shallow water table; 0 when it lies deeper than about 1 m below the roots
}

// DayResult is the outcome of one day of the water balance, depths in mm.
type DayResult struct {
	DepletionStart  float64 // Dr,i−1
	TAW             float64
	P               float64 // depletion fraction adjusted for the day's ETc
	RAW             float64
	ETc             float64 // Kc ET0
	Ks              float64 // water stress coefficient from Dr,i−1 (eq. 84)
	ETcAdj          float64 // Ks Kc ET0, less any water the root zone did not hold
	EffectiveRain   float64 // P − RO, or 0 when P < 0.2 ET0
	NetIrrigation   float64 // Irrigation × Efficiency
	DeepPercolation float64 // DP: water beyond field capacity, drained below the roots
	Depletion       float64 // Dr,i
	NeedsWater      bool    // Dr,i ≥ RAW: irrigate before the crop is stressed
	NetRefill       float64 // depth that brings the root zone back to field capacity (= Dr,i)
	GrossRefill     float64 // NetRefill / Efficiency, the depth to apply
}

// Step advances the balance by one day:
//
//	Dr,i = Dr,i−1 − (P − RO)i − Ii − CRi + ETc,adj,i + DPi      (eq. 85)
//
// Ks is computed from the depletion at the start of the day. Water beyond field capacity
// percolates (DP, eq. 88), so Dr never falls below 0; Dr never exceeds TAW, and when ETc,adj
// would push it past, ETc,adj is cut to the water that was there. Rain below 0.2 ET0 is taken as
// evaporated from the wet surface before it reaches the roots, as FAO-56 advises.
func (b Balance) Step(d Day) (Balance, DayResult, error) {
	if err := firstErr(
		check("ET0", d.ET0, 0, 30, "reference evapotranspiration in mm/day"),
		check("Kc", d.Kc, 0, 2, "crop coefficient"),
		check("Rain", d.Rain, 0, 1000, "rain in mm"),
		check("Runoff", d.Runoff, 0, math.Max(0, d.Rain), "runoff in mm (at most the rain)"),
		check("Irrigation", d.Irrigation, 0, 1000, "irrigation in mm"),
		check("CapillaryRise", d.CapillaryRise, 0, 100, "capillary rise in mm"),
	); err != nil {
		return b, DayResult{}, err
	}
	if err := b.Zone.validate(); err != nil {
		return b, DayResult{}, err
	}
	r := DayResult{DepletionStart: b.Depletion, TAW: b.Zone.TAW()}
	r.ETc = d.Kc * d.ET0
	r.P = AdjustP(b.Zone.P, r.ETc)
	r.RAW = RAW(r.P, r.TAW)
	r.Ks = Ks(r.DepletionStart, r.TAW, r.RAW)
	r.ETcAdj = r.Ks * r.ETc
	if d.Rain >= 0.2*d.ET0 {
		r.EffectiveRain = d.Rain - d.Runoff
	}
	r.NetIrrigation = d.Irrigation * b.Efficiency

	dr := r.DepletionStart - r.EffectiveRain - r.NetIrrigation - d.CapillaryRise + r.ETcAdj
	if dr < 0 {
		r.DeepPercolation = -dr
		dr = 0
	}
	if dr > r.TAW {
		r.ETcAdj -= dr - r.TAW
		dr = r.TAW
	}
	r.Depletion = dr
	r.NeedsWater = dr >= r.RAW
	r.NetRefill = dr
	r.GrossRefill = dr / b.Efficiency
	b.Depletion = dr
	return b, r, nil
}

// CorrectFromSoilMoisture replaces the modelled depletion with one measured by a soil moisture
// probe reading theta (m³/m³): Dr = 1000 (θFC − θ) Zr, kept within [0, TAW]. It applies only
// when the reading stands for the whole root zone — see docs/agronomy.md.
func (b Balance) CorrectFromSoilMoisture(theta float64) (Balance, error) {
	if err := check("Theta", theta, 0, 1, "volumetric water content in m³/m³"); err != nil {
		return b, err
	}
	dr := 1000 * (b.Zone.ThetaFC - theta) * b.Zone.Depth
	b.Depletion = math.Max(0, math.Min(b.Zone.TAW(), dr))
	return b, nil
}

// RuntimeMinutes is how long an irrigation system applying rate mm/h (its precipitation or
// application rate over the zone) must run to apply gross mm.
func RuntimeMinutes(gross, rate float64) (float64, error) {
	if err := firstErr(
		check("Gross", gross, 0, 1000, "irrigation depth in mm"),
		check("Rate", rate, 0.01, 1000, "application rate in mm/h"),
	); err != nil {
		return 0, err
	}
	return gross / rate * 60, nil
}
