package geo

import (
	"errors"
	"fmt"
)

// ErrNotFound: the farm or field does not exist (or is not visible to the caller).
var ErrNotFound = errors.New("geo: not found")

// ValidationError is input that cannot be accepted; Problem says why in words a person can act on.
type ValidationError struct {
	Field   string
	Problem string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Problem) }

// ErrConflict: the change collides with something that exists (a duplicate name, say).
var ErrConflict = errors.New("geo: conflict")
