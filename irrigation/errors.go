package irrigation

import (
	"errors"
	"fmt"
)

// ErrNotFound: the zone, valve, run, ... does not exist.
var ErrNotFound = errors.New("irrigation: not found")

// ErrConflict: the change collides with what exists (a duplicate uid or channel, a run that
// already ended, a valve with nothing to stop).
var ErrConflict = errors.New("irrigation: conflict")

// ErrBusy: the valve already has a live run, or the zone must rest before it is watered again.
// For rules and schedules this is not a failure: the zone is being (or was just) watered.
var ErrBusy = errors.New("irrigation: busy")

// ErrEmergencyStop: an emergency stop is in force on the farm; nothing is watered until a
// person releases it. It is also ErrBusy, so rules and schedules treat it as "not now".
var ErrEmergencyStop = fmt.Errorf("irrigation: emergency stop in force: %w", ErrBusy)

// ErrHeld: a manual override holds the zone closed. It is also ErrBusy.
var ErrHeld = fmt.Errorf("irrigation: zone held closed by an override: %w", ErrBusy)

// ValidationError is input that cannot be accepted; Problem says why in words a person can act on.
type ValidationError struct {
	Field   string
	Problem string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Problem) }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}
