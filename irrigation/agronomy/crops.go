package agronomy

import "math"

// Stages are the lengths in days of the four crop development stages of FAO-56 Table 11:
// initial (planting to ~10 % ground cover), development (to effective full cover), mid-season
// (to the start of maturity) and late season (to harvest or full senescence).
type Stages struct {
	Ini, Dev, Mid, Late int
}

// Total is the length of the growing season in days.
func (s Stages) Total() int { return s.Ini + s.Dev + s.Mid + s.Late }

// Stage names a development stage.
type Stage int

const (
	StageInitial Stage = iota
	StageDevelopment
	StageMid
	StageLate
	StageAfterHarvest
)

func (s Stage) String() string {
	switch s {
	case StageInitial:
		return "initial"
	case StageDevelopment:
		return "development"
	case StageMid:
		return "mid-season"
	case StageLate:
		return "late season"
	case StageAfterHarvest:
		return "after harvest"
	}
	return "unknown"
}

// Range is an interval printed in an FAO-56 table.
type Range struct{ Min, Max float64 }

// Mid is the midpoint, used as the representative value when no local figure is known.
func (r Range) Mid() float64 { return (r.Min + r.Max) / 2 }

// Crop describes a crop for the FAO-56 single crop coefficient approach.
type Crop struct {
	Name  string // catalogue key, lower case with hyphens: "winter-wheat"
	Title string // for people
	// KcIni, KcMid, KcEnd are Table 12 values for a subhumid climate (RHmin ≈ 45 %, u2 ≈ 2 m/s);
	// AdjustForClimate corrects KcMid and KcEnd for the local wind and humidity.
	KcIni, KcMid, KcEnd float64
	MaxHeight           float64 // m, Table 12
	Stages              Stages  // Table 11
	RootDepth           Range   // maximum effective root depth Zr, m, Table 22
	P                   float64 // soil water depletion fraction for no stress at ETc ≈ 5 mm/day, Table 22
	Source              string  // which table rows were chosen, and why
}

// crops is the catalogue, read only. Where Table 11 offers several regions, the row closest to
// the continental, semi-arid climate of the Kura–Araz lowland and the Hakari valley (hot dry
// summers, cool winters, spring planting) is chosen; where Table 12 gives a range, its midpoint.
var crops = []Crop{
	{
		Name: "cotton", Title: "Cotton",
		KcIni: 0.35, KcMid: 1.18, KcEnd: 0.60, MaxHeight: 1.35,
		Stages:    Stages{30, 50, 55, 45},
		RootDepth: Range{1.0, 1.7}, P: 0.65,
		Source: "Table 12 cotton (Kc mid 1.15–1.20, Kc end 0.70–0.50, h 1.2–1.5 m: midpoints); " +
			"Table 11 cotton, April, Texas (semi-arid continental); Table 22 cotton",
	},
	{
		Name: "winter-wheat", Title: "Winter wheat",
		KcIni: 0.7, KcMid: 1.15, KcEnd: 0.33, MaxHeight: 1.0,
		Stages:    Stages{30, 140, 40, 30},
		RootDepth: Range{1.5, 1.8}, P: 0.55,
		Source: "Table 12 winter wheat with non-frozen soils (lowland winters rarely freeze the soil; " +
			"use Kc ini 0.4 where they do), Kc end 0.25–0.4 midpoint; Table 11 winter wheat, November, " +
			"Mediterranean (sown Oct–Nov, harvested late June); Table 22 winter wheat",
	},
	{
		Name: "maize", Title: "Maize (grain)",
		KcIni: 0.3, KcMid: 1.20, KcEnd: 0.35, MaxHeight: 2.0,
		Stages:    Stages{30, 40, 50, 30},
		RootDepth: Range{1.0, 1.7}, P: 0.55,
		Source: "Table 12 maize, field (grain), Kc end 0.35 for harvest after field drying (0.60 if harvested " +
			"wet); Table 11 maize (grain), April, Spain/California; Table 22 maize, field",
	},
	{
		Name: "grapes-table", Title: "Grapes (table or raisin)",
		KcIni: 0.30, KcMid: 0.85, KcEnd: 0.45, MaxHeight: 2.0,
		Stages:    Stages{20, 50, 75, 60},
		RootDepth: Range{1.0, 2.0}, P: 0.35,
		Source: "Table 12 grapes, table or raisin; Table 11 grapes, March, California (mid latitudes); " +
			"Table 22 grapes, table or raisin",
	},
	{
		Name: "grapes-wine", Title: "Grapes (wine)",
		KcIni: 0.30, KcMid: 0.70, KcEnd: 0.45, MaxHeight: 1.75,
		Stages:    Stages{30, 60, 40, 80},
		RootDepth: Range{1.0, 2.0}, P: 0.45,
		Source: "Table 12 grapes, wine (h 1.5–2 m: midpoint); Table 11 grapes, April, mid latitudes (wine); " +
			"Table 22 grapes, wine",
	},
	{
		Name: "tomato", Title: "Tomato",
		KcIni: 0.6, KcMid: 1.15, KcEnd: 0.80, MaxHeight: 0.6,
		Stages:    Stages{30, 40, 45, 30},
		RootDepth: Range{0.7, 1.5}, P: 0.40,
		Source: "Table 12 tomato (Kc end 0.70–0.90: midpoint); Table 11 tomato, April/May, Mediterranean; " +
			"Table 22 tomato",
	},
	{
		Name: "potato", Title: "Potato",
		KcIni: 0.5, KcMid: 1.15, KcEnd: 0.75, MaxHeight: 0.6,
		Stages:    Stages{25, 30, 45, 30},
		RootDepth: Range{0.4, 0.6}, P: 0.35,
		Source: "Table 12 potato; Table 11 potato, May, continental climate; Table 22 potato",
	},
	{
		Name: "alfalfa", Title: "Alfalfa (hay), one cutting cycle",
		KcIni: 0.40, KcMid: 1.20, KcEnd: 1.15, MaxHeight: 0.7,
		Stages:    Stages{5, 20, 10, 10},
		RootDepth: Range{1.0, 2.0}, P: 0.55,
		Source: "Table 12 alfalfa hay, individual cutting periods; Table 11 alfalfa, other cutting cycles, " +
			"June, Idaho (continental; the first cycle of the year is 10/30/25/10 days); " +
			"Table 22 alfalfa for hay. Restart the season (day 0) after each cutting",
	},
	{
		Name: "pomegranate", Title: "Pomegranate",
		KcIni: 0.45, KcMid: 0.90, KcEnd: 0.65, MaxHeight: 3.0,
		Stages:    Stages{30, 50, 130, 30},
		RootDepth: Range{1.0, 2.0}, P: 0.50,
		Source: "not in FAO-56: the closest entry, a deciduous fruit tree without ground cover in a climate " +
			"with killing frost, is used — Table 12 apricots, peaches, stone fruit, no ground cover, killing frost; " +
			"Table 11 deciduous orchard, March, California; Table 22 apricots, peaches, stone fruit",
	},
	{
		Name: "olive", Title: "Olive",
		KcIni: 0.65, KcMid: 0.70, KcEnd: 0.70, MaxHeight: 4.0,
		Stages:    Stages{30, 90, 60, 90},
		RootDepth: Range{1.2, 1.7}, P: 0.65,
		Source: "Table 12 olives, 40–60 % ground cover by canopy (h 3–5 m: midpoint); Table 11 olives, March, " +
			"Mediterranean; Table 22 olives",
	},
	{
		Name: "melon", Title: "Melon (sweet)",
		KcIni: 0.5, KcMid: 1.05, KcEnd: 0.75, MaxHeight: 0.4,
		Stages:    Stages{25, 35, 40, 20},
		RootDepth: Range{0.8, 1.5}, P: 0.40,
		Source: "Table 12 sweet melons; Table 11 sweet melons, May, Mediterranean; Table 22 sweet melons",
	},
	{
		Name: "watermelon", Title: "Watermelon",
		KcIni: 0.4, KcMid: 1.00, KcEnd: 0.75, MaxHeight: 0.4,
		Stages:    Stages{20, 30, 30, 30},
		RootDepth: Range{0.8, 1.5}, P: 0.40,
		Source: "Table 12 watermelon; Table 11 water melons, April, Italy; Table 22 watermelon",
	},
	{
		Name: "vegetables", Title: "Vegetables (small)",
		KcIni: 0.7, KcMid: 1.05, KcEnd: 0.95, MaxHeight: 0.3,
		Stages:    Stages{20, 30, 15, 10},
		RootDepth: Range{0.3, 0.5}, P: 0.30,
		Source: "Table 12 small vegetables (group values; h of broccoli, carrots, lettuce: 0.3 m); " +
			"Table 11 lettuce, April, Mediterranean; Table 22 lettuce",
	},
}

// Crops returns the crop catalogue in a fixed order. The slice is a fresh copy.
func Crops() []Crop {
	out := make([]Crop, len(crops))
	copy(out, crops)
	return out
}

// CropByName returns the catalogue crop with the given Name.
func CropByName(name string) (Crop, bool) {
	for _, c := range crops {
		if c.Name == name {
			return c, true
		}
	}
	return Crop{}, false
}

// StageOn returns the development stage on day i after planting.
func (c Crop) StageOn(i int) Stage {
	s := c.Stages
	switch {
	case i <= s.Ini:
		return StageInitial
	case i <= s.Ini+s.Dev:
		return StageDevelopment
	case i <= s.Ini+s.Dev+s.Mid:
		return StageMid
	case i <= s.Total():
		return StageLate
	}
	return StageAfterHarvest
}

// Kc is the crop coefficient on day i after planting (FAO-56 Fig. 25, eq. 66): KcIni through
// the initial stage, rising linearly to KcMid over the development stage, KcMid through the
// mid-season and falling linearly to KcEnd over the late season. Before planting it is KcIni,
// after the season KcEnd.
func (c Crop) Kc(i int) float64 {
	s := c.Stages
	lerp := func(from, to float64, into, length int) float64 {
		if length <= 0 {
			return to
		}
		return from + float64(into)/float64(length)*(to-from)
	}
	switch c.StageOn(i) {
	case StageInitial:
		return c.KcIni
	case StageDevelopment:
		return lerp(c.KcIni, c.KcMid, i-s.Ini, s.Dev)
	case StageMid:
		return c.KcMid
	case StageLate:
		return lerp(c.KcMid, c.KcEnd, i-(s.Ini+s.Dev+s.Mid), s.Late)
	}
	return c.KcEnd
}

// AdjustForClimate returns the crop with KcMid and KcEnd corrected from Table 12's subhumid
// reference climate to one with mean daily wind u2 (m/s) and mean daily minimum relative
// humidity rhMin (%) over the stage (eqs. 62 and 65):
//
//	Kc = Kc(Tab) + [0.04 (u2 − 2) − 0.004 (RHmin − 45)] (h/3)^0.3
//
// with u2 limited to 1–6 m/s, RHmin to 20–80 % and h to 0.1–10 m as FAO-56 prescribes. KcEnd is
// corrected only when it is at least 0.45 (a crop that dries in the field is not). In the dry,
// windy summer of the Kura–Araz lowland this raises KcMid by 0.05–0.15.
func (c Crop) AdjustForClimate(u2, rhMin float64) Crop {
	clamp := func(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }
	u2 = clamp(u2, 1, 6)
	rhMin = clamp(rhMin, 20, 80)
	h := clamp(c.MaxHeight, 0.1, 10)
	d := (0.04*(u2-2) - 0.004*(rhMin-45)) * math.Pow(h/3, 0.3)
	c.KcMid += d
	if c.KcEnd >= 0.45 {
		c.KcEnd += d
	}
	return c
}
