package irrigation

import (
	"fmt"
	"time"
)

// Energy windows: the local times of day a solar- or hydro-powered source has power. Pure.

// windowMinutes parses a window into minutes after local midnight.
func windowMinutes(w EnergyWindow) (from, to int, err error) {
	f, err1 := time.Parse("15:04", w.From)
	t, err2 := time.Parse("15:04", w.To)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("want \"HH:MM\" times, got %q to %q", w.From, w.To)
	}
	return f.Hour()*60 + f.Minute(), t.Hour()*60 + t.Minute(), nil
}

// inEnergyWindow reports whether local time at falls in one of the windows (none: always).
// A window includes its start and excludes its end; one whose start is after its end spans
// midnight.
func inEnergyWindow(windows []EnergyWindow, at time.Time) bool {
	if len(windows) == 0 {
		return true
	}
	m := at.Hour()*60 + at.Minute()
	for _, w := range windows {
		from, to, err := windowMinutes(w)
		if err != nil {
			continue
		}
		if from < to && m >= from && m < to || from > to && (m >= from || m < to) {
			return true
		}
	}
	return false
}

// nextEnergyWindow returns the first instant at or after at (in at's location) that lies in a
// window; ok is false when the windows never open.
func nextEnergyWindow(windows []EnergyWindow, at time.Time) (time.Time, bool) {
	if inEnergyWindow(windows, at) {
		return at, true
	}
	var best time.Time
	loc := at.Location()
	for day := 0; day <= 2; day++ {
		d := at.AddDate(0, 0, day)
		for _, w := range windows {
			from, _, err := windowMinutes(w)
			if err != nil {
				continue
			}
			start := time.Date(d.Year(), d.Month(), d.Day(), from/60, from%60, 0, 0, loc)
			if start.Before(at) {
				continue
			}
			if best.IsZero() || start.Before(best) {
				best = start
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}
