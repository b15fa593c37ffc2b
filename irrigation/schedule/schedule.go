package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Spec is a parsed cron expression bound to a time zone. It is immutable and safe for
// concurrent use.
type Spec struct {
	expr string
	spec *cron.SpecSchedule
	loc  *time.Location
	// Restrictions on the local calendar day of an occurrence (see Restrict).
	weekdays uint8 // bit 0 = Sunday; 0 or 0x7f: every day
	parity   string
}

// Day parities a schedule may be restricted to.
const (
	AnyDay  = "any"
	OddDay  = "odd"  // 1st, 3rd, … of the month (the 31st and the 1st are both odd)
	EvenDay = "even" // 2nd, 4th, …
)

// Restrict returns the schedule with occurrences only on the given weekdays (bit 0 = Sunday;
// 0 or 0x7f: every day) and, with OddDay or EvenDay, only on odd or even days of the month, in
// the schedule's time zone. Occurrences on other days are not occurrences at all: Next and
// Decide skip them.
func (s *Spec) Restrict(weekdays uint8, parity string) (*Spec, error) {
	switch parity {
	case "", AnyDay, OddDay, EvenDay:
	default:
		return nil, fmt.Errorf("day parity %q is not one of any, odd, even", parity)
	}
	if weekdays&0x7f == 0 {
		weekdays = 0x7f
	}
	out := *s
	out.weekdays, out.parity = weekdays&0x7f, parity
	if out.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() && out.Next(time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("%q never happens on the allowed days", s.expr)
	}
	return &out, nil
}

// restricted reports whether the schedule has day restrictions.
func (s *Spec) restricted() bool {
	return (s.weekdays != 0 && s.weekdays != 0x7f) || s.parity == OddDay || s.parity == EvenDay
}

// allowed reports whether an occurrence's local day is allowed.
func (s *Spec) allowed(t time.Time) bool {
	l := t.In(s.loc)
	if s.weekdays != 0 && s.weekdays&(1<<l.Weekday()) == 0 {
		return false
	}
	switch s.parity {
	case OddDay:
		return l.Day()%2 == 1
	case EvenDay:
		return l.Day()%2 == 0
	}
	return true
}

// maxDayJumps bounds how many disallowed days Next steps over (a yearly schedule restricted to
// even days may need a few years).
const maxDayJumps = 4000

// Parse reads a 5-field cron expression (minute hour day-of-month month day-of-week, as in
// crontab(5), with names such as "mon" and "jan") or one of the descriptors @yearly, @monthly,
// @weekly, @daily and @hourly, to be evaluated in loc. @every and TZ= prefixes are refused: a
// schedule's time zone is its farm's.
func Parse(expr string, loc *time.Location) (*Spec, error) {
	expr = strings.Join(strings.Fields(expr), " ")
	switch {
	case expr == "":
		return nil, errors.New("empty cron expression")
	case loc == nil:
		return nil, errors.New("no time zone")
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, errors.New("a time zone prefix is not allowed: schedules use the farm's time zone")
	case strings.HasPrefix(expr, "@every"):
		return nil, errors.New("@every is not supported: use a 5-field expression such as */30 * * * *")
	}
	if !strings.HasPrefix(expr, "@") {
		if n := len(strings.Fields(expr)); n != 5 {
			return nil, fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week), got %d", n)
		}
	}
	p := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	sched, err := p.Parse(expr)
	if err != nil {
		return nil, err
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("%q is not a calendar schedule", expr)
	}
	// Our own copy, in the farm's zone; robfig's Next converts into it.
	s := *spec
	s.Location = loc
	out := &Spec{expr: expr, spec: &s, loc: loc}
	if out.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() && out.Next(time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("%q never happens", expr)
	}
	return out, nil
}

// String returns the normalised expression.
func (s *Spec) String() string { return s.expr }

// Location is the time zone the expression is evaluated in.
func (s *Spec) Location() *time.Location { return s.loc }

// maxSteps bounds the work of one Next call: enough to step over a repeated hour of a
// once-a-minute schedule.
const maxSteps = 2 * 24 * 60

// Next returns the first occurrence strictly after t (in UTC), or the zero time when there is
// none within five years. See the package invariants for how daylight-saving changes are
// treated.
func (s *Spec) Next(t time.Time) time.Time {
	n := s.next(t)
	if !s.restricted() {
		return n
	}
	for range maxDayJumps {
		if n.IsZero() || s.allowed(n) {
			return n
		}
		// Jump to the end of the disallowed local day rather than through its occurrences.
		l := n.In(s.loc)
		endOfDay := time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, s.loc).Add(-time.Second)
		if !endOfDay.After(n) {
			endOfDay = n
		}
		n = s.next(endOfDay)
	}
	return time.Time{}
}

// next is Next without the day restrictions.
func (s *Spec) next(t time.Time) time.Time {
	from := t
	for range maxSteps {
		n := s.spec.Next(from)
		if n.IsZero() {
			return n
		}
		if g, ok := s.gapOccurrence(from, n); ok {
			return g.UTC()
		}
		if !s.repeatedWallTime(n) {
			return n.UTC()
		}
		from = n
	}
	return time.Time{}
}

// repeatedWallTime reports whether n's local wall-clock time already happened earlier, which is
// the case in the hour repeated when clocks go back.
func (s *Spec) repeatedWallTime(n time.Time) bool {
	n = n.In(s.loc)
	_, offNow := n.Zone()
	_, offBefore := n.Add(-3 * time.Hour).Zone()
	if offBefore <= offNow {
		return false
	}
	earlier := n.Add(-time.Duration(offBefore-offNow) * time.Second)
	_, offEarlier := earlier.Zone()
	return offEarlier == offBefore && sameWallClock(earlier, n)
}

func sameWallClock(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd && a.Hour() == b.Hour() && a.Minute() == b.Minute() && a.Second() == b.Second()
}

// maxGapScan bounds how far gapOccurrence looks for clock changes (yearly schedules still fit).
const maxGapScan = 400 * 24 * time.Hour

// gapOccurrence looks for a forward clock change in (from, n) whose skipped wall-clock times
// include one the expression matches; it returns the instant of the change, which is when such
// an occurrence is due.
func (s *Spec) gapOccurrence(from, n time.Time) (time.Time, bool) {
	if n.Sub(from) > maxGapScan {
		return time.Time{}, false
	}
	for a := from; a.Before(n); a = a.Add(24 * time.Hour) {
		b := a.Add(24 * time.Hour)
		if b.After(n) {
			b = n
		}
		_, offA := a.In(s.loc).Zone()
		_, offB := b.In(s.loc).Zone()
		if offB <= offA {
			continue
		}
		g := s.transition(a, b)
		if !g.After(from) || !g.Before(n) {
			continue
		}
		// The skipped wall-clock times, written in the offset that was in force before g.
		_, before := g.Add(-time.Second).In(s.loc).Zone()
		_, after := g.In(s.loc).Zone()
		old := time.FixedZone("", before)
		for k := 0; k < after-before; k += 60 {
			w := g.Add(time.Duration(k) * time.Second).In(old)
			if s.matchesWallClock(w) {
				return g, true
			}
		}
	}
	return time.Time{}, false
}

// transition finds, to the second, the first instant in (a, b] whose offset differs from a's.
func (s *Spec) transition(a, b time.Time) time.Time {
	_, offA := a.In(s.loc).Zone()
	lo, hi := a, b
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
		if !mid.After(lo) {
			mid = lo.Add(time.Second)
		}
		if _, off := mid.In(s.loc).Zone(); off == offA {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// starBit marks a field written as * (cron.SpecSchedule keeps it in bit 63).
const starBit = 1 << 63

func (s *Spec) matchesWallClock(w time.Time) bool {
	sp := s.spec
	if 1<<uint(w.Second())&sp.Second == 0 || 1<<uint(w.Minute())&sp.Minute == 0 ||
		1<<uint(w.Hour())&sp.Hour == 0 || 1<<uint(w.Month())&sp.Month == 0 {
		return false
	}
	dom := 1<<uint(w.Day())&sp.Dom != 0
	dow := 1<<uint(w.Weekday())&sp.Dow != 0
	if sp.Dom&starBit != 0 || sp.Dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

// maxCount bounds how many missed occurrences Decide counts.
const maxCount = 1000

// Decision says what to do about a schedule at one moment.
type Decision struct {
	// Due: at least one occurrence lies in (anchor, now].
	Due bool
	// Fire: Occurrence is to be fired now.
	Fire bool
	// Occurrence is the latest occurrence at or before now (zero when not Due, or when too
	// many were missed to find it cheaply).
	Occurrence time.Time
	// Late is how long after Occurrence now is.
	Late time.Duration
	// Missed counts the occurrences in (anchor, now] that are not fired (at most 1000;
	// MissedCapped says there were more).
	Missed       int
	MissedCapped bool
}

// Decide applies the missed-fire policy: of the occurrences in (anchor, now], only the latest
// may fire, and only if it is at most maxLate old; all others are missed. anchor is the instant
// through which every occurrence has already been dealt with (fired or skipped).
func (s *Spec) Decide(anchor, now time.Time, maxLate time.Duration) Decision {
	first := s.Next(anchor)
	if first.IsZero() || first.After(now) {
		return Decision{}
	}
	d := Decision{Due: true}
	// Look for the latest occurrence only where it could still fire, so an anchor from long
	// ago costs nothing.
	from := anchor
	if lim := now.Add(-maxLate - time.Second); lim.After(from) {
		from = lim
	}
	var latest time.Time
	for o := s.Next(from); !o.IsZero() && !o.After(now); o = s.Next(o) {
		latest = o
	}
	if !latest.IsZero() && now.Sub(latest) <= maxLate {
		d.Fire = true
		d.Occurrence = latest
		d.Late = now.Sub(latest)
	}
	// Count (and, when nothing fires, find) the occurrences that are not fired.
	n := 0
	var last time.Time
	for o := first; !o.IsZero() && !o.After(now); o = s.Next(o) {
		if n == maxCount {
			d.MissedCapped = true
			last = time.Time{}
			break
		}
		n++
		last = o
	}
	if d.Fire {
		d.Missed = n - 1
	} else {
		d.Missed = n
		d.Occurrence = last
		if !last.IsZero() {
			d.Late = now.Sub(last)
		}
	}
	return d
}
