package rule

import (
	"fmt"
	"time"
)

// Actions a rule takes when its condition has held long enough.
const (
	ActionIrrigate = "irrigate" // water the zone for a duration or a depth
	ActionSkip     = "skip"     // veto: lower-priority rules, schedules and the water balance do not water the zone
	ActionAlert    = "alert"    // raise an alert with the rule's severity
)

// Behaviour is how a rule turns its condition into acts.
type Behaviour struct {
	Action   string
	Hold     time.Duration // the condition must hold continuously this long
	Cooldown time.Duration // after acting, wait this long before acting again
	// HasReset: the rule has a reset condition (hysteresis). After acting it is disarmed until
	// the reset condition holds; a skip or alert stays in effect until then.
	HasReset bool
}

// State is what a rule remembers about one zone between evaluations.
type State struct {
	HoldingSince *time.Time // the condition has held continuously since; nil: it does not hold
	Armed        bool       // false from an act until the reset condition holds
	Active       bool       // a skip or alert in effect
	LastFired    *time.Time
}

// NewState is the state of a rule that has never been evaluated for a zone.
func NewState() State { return State{Armed: true} }

// Input is one evaluation.
type Input struct {
	Now      time.Time
	Cond     Outcome
	Reset    *Outcome // the reset condition's outcome; nil when the rule has none
	InWindow bool     // now lies in the rule's enabled windows
}

// Step is what an evaluation decides.
type Step struct {
	Next State
	// Act: irrigate now, raise the alert, or start vetoing (skip).
	Act bool
	// Release: a skip stops vetoing, an alert is resolved.
	Release bool
	// Reason says why, in words, including the facts the condition saw.
	Reason string
}

// Changed reports whether the state must be written back.
func (s Step) Changed(old State) bool {
	n := s.Next
	return n.Armed != old.Armed || n.Active != old.Active || !sameTime(n.HoldingSince, old.HoldingSince) ||
		!sameTime(n.LastFired, old.LastFired)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// Decide applies one evaluation to a rule's state. It is the whole of a rule's behaviour:
//
//   - no data for a fact the condition needs: nothing changes but the hold timer, which
//     restarts (the condition is not known to have held);
//   - the condition must hold for Hold before the rule acts;
//   - irrigate acts when the condition has held long enough, the rule is armed, now lies in
//     its windows and its cooldown has passed; it acts again after the cooldown while the
//     condition keeps holding, unless a reset condition disarmed it;
//   - skip and alert act once when they start to hold and release when the condition stops
//     holding (or, with a reset condition, when that holds); a skip also releases outside its
//     windows; an alert is not raised again within its cooldown.
func Decide(b Behaviour, st State, in Input) Step {
	next := st
	step := Step{}
	if !b.HasReset {
		next.Armed = true
	}
	c := in.Cond
	if !c.Known {
		next.HoldingSince = nil
		step.Next = next
		step.Reason = "no data"
		if len(c.Missing) > 0 {
			step.Reason = "no data for " + joinNames(c.Missing)
		}
		return step
	}
	held := false
	if c.Holds {
		if next.HoldingSince == nil {
			t := in.Now
			next.HoldingSince = &t
		}
		held = in.Now.Sub(*next.HoldingSince) >= b.Hold
	} else {
		next.HoldingSince = nil
	}
	rearmed := false
	if b.HasReset && !next.Armed && in.Reset != nil && in.Reset.Known && in.Reset.Holds {
		next.Armed = true
		rearmed = true
	}
	cooled, until := Ready(st.LastFired, b.Cooldown, in.Now)

	switch b.Action {
	case ActionSkip, ActionAlert:
		if next.Active {
			release := ""
			switch {
			case b.HasReset && rearmed:
				release = "reset condition holds"
			case !b.HasReset && !c.Holds:
				release = "condition no longer holds"
			case b.Action == ActionSkip && !in.InWindow:
				release = "outside its windows"
			}
			if release != "" {
				next.Active = false
				step.Release = true
				step.Reason = release
			} else {
				step.Reason = "in effect"
			}
			break
		}
		switch {
		case !c.Holds:
			step.Reason = "condition does not hold"
		case !held:
			step.Reason = holdingReason(*next.HoldingSince, b.Hold, in.Now)
		case !next.Armed:
			step.Reason = "disarmed until the reset condition holds"
		case !in.InWindow:
			step.Reason = "outside its windows"
		case b.Action == ActionAlert && !cooled:
			step.Reason = "cooling down until " + until.UTC().Format(time.RFC3339)
		default:
			step.Act = true
			next.Active = true
			now := in.Now
			next.LastFired = &now
			next.Armed = !b.HasReset
			step.Reason = "condition holds"
		}
	default: // irrigate
		switch {
		case !c.Holds:
			step.Reason = "condition does not hold"
		case !held:
			step.Reason = holdingReason(*next.HoldingSince, b.Hold, in.Now)
		case !next.Armed:
			step.Reason = "disarmed until the reset condition holds"
		case !in.InWindow:
			step.Reason = "outside its windows"
		case !cooled:
			step.Reason = "cooling down until " + until.UTC().Format(time.RFC3339)
		default:
			step.Act = true
			now := in.Now
			next.LastFired = &now
			next.Armed = !b.HasReset
			step.Reason = "condition holds"
			if b.Hold > 0 {
				step.Reason = fmt.Sprintf("condition has held for %s", FormatDuration(in.Now.Sub(*next.HoldingSince)))
			}
		}
	}
	step.Next = next
	return step
}

func holdingReason(since time.Time, hold time.Duration, now time.Time) string {
	return fmt.Sprintf("condition holding for %s of the %s it must hold", FormatDuration(now.Sub(since)), FormatDuration(hold))
}

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}
