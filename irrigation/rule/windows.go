package rule

import (
	"fmt"
	"strings"
	"time"
)

// WeekdayNames are the weekday names rules and schedules use, Sunday first (time.Weekday order).
var weekdayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// WeekdayName is the three-letter lower-case name of a weekday.
func WeekdayName(d time.Weekday) string { return weekdayNames[d] }

// ParseWeekdays reads weekday names ("mon", "tue", …; case-insensitive, full English names
// accepted) into a bit set, bit 0 = Sunday. An empty list is every day.
func ParseWeekdays(names []string) (uint8, error) {
	if len(names) == 0 {
		return 0x7f, nil
	}
	var set uint8
	for _, n := range names {
		k := strings.ToLower(strings.TrimSpace(n))
		i := -1
		for d := range weekdayNames {
			if k == weekdayNames[d] || k == strings.ToLower(time.Weekday(d).String()) {
				i = d
			}
		}
		if i < 0 {
			return 0, fmt.Errorf("%q is not a weekday (mon, tue, wed, thu, fri, sat, sun)", n)
		}
		set |= 1 << i
	}
	return set, nil
}

// WeekdayList writes a bit set of weekdays as names, Monday first; every day is an empty list.
func WeekdayList(set uint8) []string {
	out := []string{}
	if set&0x7f == 0x7f {
		return out
	}
	for _, d := range []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday} {
		if set&(1<<d) != 0 {
			out = append(out, weekdayNames[d])
		}
	}
	return out
}

// Window is a daily period of local time in which a rule may act: from From up to (not
// including) To, minutes after midnight; To ≤ From spans midnight. Days restricts the day the
// window opens (bit 0 = Sunday; 0x7f every day).
type Window struct {
	From, To int
	Days     uint8
}

// ParseWindow reads "HH:MM" times and weekday names.
func ParseWindow(from, to string, days []string) (Window, error) {
	f, err := parseClock(from)
	if err != nil {
		return Window{}, fmt.Errorf("from: %w", err)
	}
	t, err := parseClock(to)
	if err != nil {
		return Window{}, fmt.Errorf("to: %w", err)
	}
	if f == t {
		return Window{}, fmt.Errorf("from and to are both %s: a window must have a length", from)
	}
	set, err := ParseWeekdays(days)
	if err != nil {
		return Window{}, fmt.Errorf("days: %w", err)
	}
	return Window{From: f, To: t, Days: set}, nil
}

func parseClock(s string) (int, error) {
	var h, m int
	if n, err := fmt.Sscanf(strings.TrimSpace(s), "%d:%d", &h, &m); err != nil || n != 2 || len(strings.TrimSpace(s)) != 5 {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM)", s)
	}
	if h == 24 && m == 0 {
		return 24 * 60, nil
	}
	if h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM)", s)
	}
	return h*60 + m, nil
}

// FromClock and ToClock write the window's ends as HH:MM.
func (w Window) FromClock() string { return clock(w.From) }

// ToClock writes the window's end as HH:MM.
func (w Window) ToClock() string { return clock(w.To) }

func clock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// Contains reports whether the local time t (in the farm's zone) lies in the window.
func (w Window) Contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if w.From < w.To {
		return w.Days&(1<<day) != 0 && m >= w.From && m < w.To
	}
	// Spans midnight: the evening part belongs to today's window, the morning part to
	// yesterday's.
	if m >= w.From {
		return w.Days&(1<<day) != 0
	}
	if m < w.To {
		return w.Days&(1<<((day+6)%7)) != 0
	}
	return false
}

// Windows are the periods a rule may act in; none means always.
type Windows []Window

// Contains reports whether t lies in one of the windows, or there are none.
func (ws Windows) Contains(t time.Time) bool {
	if len(ws) == 0 {
		return true
	}
	for _, w := range ws {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// String writes the windows for a reason: "05:00–09:00 mon,thu; 20:00–23:00".
func (ws Windows) String() string {
	if len(ws) == 0 {
		return "always"
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.FromClock() + "–" + w.ToClock()
		if days := WeekdayList(w.Days); len(days) > 0 {
			parts[i] += " " + strings.Join(days, ",")
		}
	}
	return strings.Join(parts, "; ")
}
