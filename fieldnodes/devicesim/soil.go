package devicesim

import (
	"math"
	"sync"
	"time"
)

// soil is the water in one zone's root zone, advanced lazily whenever someone looks at it.
type soil struct {
	mu     sync.Mutex
	z      Zone
	vwc    float64
	open   int // valves of this zone currently open (and delivering water)
	last   time.Time
	speed  float64
	loc    *time.Location
	hourOf func(time.Time) float64
}

func newSoil(z Zone, now time.Time, speed float64, loc *time.Location) *soil {
	if z.DailyETmm <= 0 {
		z.DailyETmm = 6
	}
	return &soil{z: z, vwc: z.VWC, last: now, speed: speed, loc: loc}
}

// sunShare is the fraction of a day's evapotranspiration that happens per hour at local hour h:
// nothing at night, a sine between 06:00 and 20:00 whose integral over the day is 1.
func sunShare(h float64) float64 {
	if h < 6 || h > 20 {
		return 0
	}
	return math.Sin(math.Pi*(h-6)/14) / (28 / math.Pi)
}

// at advances the soil to now and returns its water content.
func (s *soil) at(now time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(now)
	return s.vwc
}

// valve records a valve of this zone opening (+1) or closing (−1), as of now.
func (s *soil) valve(now time.Time, delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(now)
	s.open = max(0, s.open+delta)
}

func (s *soil) advance(now time.Time) {
	if !now.After(s.last) {
		return
	}
	// Step in at most 5 simulated minutes so the sun's curve and drainage stay smooth.
	for t := s.last; t.Before(now); {
		next := t.Add(time.Duration(float64(5*time.Minute) / s.speed))
		if next.After(now) {
			next = now
		}
		hours := next.Sub(t).Hours() * s.speed
		local := t.In(s.loc)
		h := float64(local.Hour()) + float64(local.Minute())/60
		mm := -s.z.DailyETmm * sunShare(h) * hours
		if s.open > 0 {
			mm += s.z.RateMMH * hours
		}
		s.vwc += mm / (s.z.RootDepthM * 1000)
		if s.vwc > s.z.FieldCapacity { // drains to field capacity within a few hours
			s.vwc -= (s.vwc - s.z.FieldCapacity) * math.Min(1, hours*0.5)
		}
		s.vwc = math.Max(s.vwc, s.z.WiltingPoint)
		t = next
	}
	s.last = now
}
