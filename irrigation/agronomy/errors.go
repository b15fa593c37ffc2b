package agronomy

import (
	"fmt"
	"math"
)

// InputError reports an input that the equations cannot accept. Field is the Go name of the
// input field ("Tmin", "Humidity.RHMax"), so that a caller can map it back to whatever the
// person typed (a CLI flag, a form field).
type InputError struct {
	Field  string
	Value  float64
	Reason string
}

func (e *InputError) Error() string {
	if e.Field == "Date" || e.Field == "Input" {
		return e.Field + ": " + e.Reason // no number to show
	}
	return fmt.Sprintf("%s = %g: %s", e.Field, e.Value, e.Reason)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// check returns an *InputError for field when v is not finite or lies outside [lo, hi].
func check(field string, v, lo, hi float64, what string) error {
	if !finite(v) {
		return &InputError{Field: field, Value: v, Reason: "not a finite number"}
	}
	if v < lo || v > hi {
		return &InputError{Field: field, Value: v, Reason: fmt.Sprintf("%s must be between %g and %g", what, lo, hi)}
	}
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
