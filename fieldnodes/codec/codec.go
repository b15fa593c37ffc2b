package codec

import (
	"fmt"
	"time"
)

// Measurement is one value a payload carried.
type Measurement struct {
	// Device is the device the payload itself names for this value (a SenML base name, say), ""
	// when it names none. The topic the message came on is authoritative; the caller checks that
	// the two agree.
	Device string
	Metric string
	Time   time.Time
	Value  float64
}

// Why a payload could not be decoded.
const (
	ReasonSyntax = "syntax" // not well-formed (e.g. broken JSON)
	ReasonSchema = "schema" // well-formed, but not the shape the format defines
	ReasonValue  = "value"  // the right shape, but a value is out of range or unsupported
)

// Error is a payload a decoder refused. Detail says what and where, for a person reading the
// rejected-messages list.
type Error struct {
	Codec  string // "native", "senml", ...
	Reason string // ReasonSyntax, ReasonSchema or ReasonValue
	Detail string
}

func (e *Error) Error() string { return fmt.Sprintf("%s payload: %s: %s", e.Codec, e.Reason, e.Detail) }

// Errorf builds an *Error.
func Errorf(codecName, reason, format string, args ...any) *Error {
	return &Error{Codec: codecName, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// MaxUnix is the last second a decoder accepts (the end of year 9999, UTC); the first is the Unix
// epoch. Beyond them a time is certainly a device bug, and PostgreSQL could not store it anyway.
const MaxUnix = 253402300799

// InRange reports whether t lies between the Unix epoch and MaxUnix.
func InRange(t time.Time) bool {
	u := t.Unix()
	return u >= 0 && u <= MaxUnix
}

// String formats m on one line ("[device] metric=value @time"), as golden files and logs show it.
func (m Measurement) String() string {
	dev := ""
	if m.Device != "" {
		dev = m.Device + " "
	}
	return fmt.Sprintf("%s%s=%g @%s", dev, m.Metric, m.Value, m.Time.UTC().Format(time.RFC3339Nano))
}
