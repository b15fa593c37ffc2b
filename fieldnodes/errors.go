package fieldnodes

import (
	"errors"
	"fmt"
)

// ErrNotFound: the node (or other device record) does not exist.
var ErrNotFound = errors.New("fieldnodes: not found")

// ErrConflict: the change collides with something that exists (a uid or DevEUI already taken).
var ErrConflict = errors.New("fieldnodes: conflict")

// ErrBadCredentials: a device's uid and secret do not match a stored credential.
var ErrBadCredentials = errors.New("fieldnodes: bad device credentials")

// ValidationError is input that cannot be accepted; Problem says why in words a person can act on.
type ValidationError struct {
	Field   string
	Problem string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Problem) }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}
