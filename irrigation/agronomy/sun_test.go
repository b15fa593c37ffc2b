package agronomy

import (
	"testing"
	"time"
)

func TestSunTimes(t *testing.T) {
	baku, err := time.LoadLocation("Asia/Baku")
	if err != nil {
		t.Fatal(err) // the tzdata package is linked by the binary; tests need the system's or Go's
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	clock := func(loc *time.Location, y int, m time.Month, d, hh, mm, ss int) time.Time {
		return time.Date(y, m, d, hh, mm, ss, 0, loc)
	}
	// References: for Baku and Aghali, DateTime::Event::Sunrise (Schlyter's sunriset algorithm,
	// an implementation independent of NOAA's, same −0.833° altitude); for New York, the
	// published solstice times 05:25 and 20:31 EDT.
	cases := []struct {
		name          string
		date          time.Time
		lat, lon      float64
		loc           *time.Location
		rise, set     time.Time
		tolerance     time.Duration
		wantDayLength time.Duration
	}{
		{"Baku solstice", day(2024, time.June, 21), 40.4093, 49.8671, baku,
			clock(baku, 2024, time.June, 21, 5, 10, 34), clock(baku, 2024, time.June, 21, 20, 14, 16), 2 * time.Minute, 0},
		{"Baku winter", day(2024, time.December, 21), 40.4093, 49.8671, baku,
			clock(baku, 2024, time.December, 21, 8, 0, 11), clock(baku, 2024, time.December, 21, 17, 17, 21), 2 * time.Minute, 0},
		{"Aghali equinox", day(2025, time.March, 20), 39.09, 46.63, baku,
			clock(baku, 2025, time.March, 20, 6, 56, 59), clock(baku, 2025, time.March, 20, 19, 5, 27), 2 * time.Minute, 0},
		{"Aghali September", day(2025, time.September, 1), 39.09, 46.63, baku,
			clock(baku, 2025, time.September, 1, 6, 22, 11), clock(baku, 2025, time.September, 1, 19, 24, 2), 2 * time.Minute, 0},
		{"New York solstice", day(2024, time.June, 21), 40.7128, -74.0060, newYork,
			clock(newYork, 2024, time.June, 21, 5, 25, 0), clock(newYork, 2024, time.June, 21, 20, 31, 0), 2 * time.Minute, 0},
	}
	for _, c := range cases {
		rise, set := SunTimes(c.date, c.lat, c.lon, c.loc)
		if d := rise.Sub(c.rise).Abs(); d > c.tolerance {
			t.Errorf("%s: sunrise %s, want %s (off by %s)", c.name, rise.Format(time.TimeOnly), c.rise.Format(time.TimeOnly), d)
		}
		if d := set.Sub(c.set).Abs(); d > c.tolerance {
			t.Errorf("%s: sunset %s, want %s (off by %s)", c.name, set.Format(time.TimeOnly), c.set.Format(time.TimeOnly), d)
		}
		if rise.Location() != c.loc {
			t.Errorf("%s: in %v, want %v", c.name, rise.Location(), c.loc)
		}
	}

	// The calendar day is taken as stored: 23:30 on 20 June in UTC still means 20 June.
	late := time.Date(2024, time.June, 20, 23, 30, 0, 0, time.UTC)
	if r, _ := SunTimes(late, 40.4093, 49.8671, baku); r.Day() != 20 {
		t.Errorf("sunrise on %v for date %v", r, late)
	}
	// At the equator on an equinox the day is 12 h plus the few minutes refraction and the
	// Sun's disc add.
	r, s := SunTimes(day(2025, time.March, 20), 0, 0, nil)
	if l := s.Sub(r); l < 12*time.Hour || l > 12*time.Hour+10*time.Minute || r.Location() != time.UTC {
		t.Errorf("equator day length %v (%v–%v)", l, r, s)
	}
	// Polar night and midnight sun at Tromsø: no sunrise or sunset.
	for _, d := range []time.Time{day(2024, time.December, 21), day(2024, time.June, 21)} {
		if r, s := SunTimes(d, 69.65, 18.96, nil); !r.IsZero() || !s.IsZero() {
			t.Errorf("Tromsø %v: %v %v, want zero times", d, r, s)
		}
	}
	if r, _ := SunTimes(day(2024, time.June, 21), 95, 0, nil); !r.IsZero() {
		t.Error("latitude 95 gave a sunrise")
	}
}
