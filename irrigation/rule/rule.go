package rule

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Aggregates a rule may apply to a metric over its window.
const (
	Mean = "mean"
	Min  = "min"
	Max  = "max"
	Last = "last"
)

// Comparison operators.
const (
	Less         = "<"
	LessEqual    = "<="
	Greater      = ">"
	GreaterEqual = ">="
)

// InvalidError says which part of a condition is wrong and why.
type InvalidError struct {
	Field   string
	Problem string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Problem }

// Condition is "aggregate of metric over the last window compares op against threshold".
type Condition struct {
	Metric    string
	Aggregate string
	Op        string
	Threshold float64
	Window    time.Duration
}

var metricName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// Validate checks the condition; the error is an *InvalidError.
func (c Condition) Validate() error {
	switch {
	case !metricName.MatchString(c.Metric):
		return &InvalidError{"metric", fmt.Sprintf("%q is not a metric name (lower-case letters, digits and _)", c.Metric)}
	case !validAggregate(c.Aggregate):
		return &InvalidError{"aggregate", fmt.Sprintf("%q is not one of mean, min, max, last", c.Aggregate)}
	case !validOp(c.Op):
		return &InvalidError{"op", fmt.Sprintf("%q is not one of <, <=, >, >=", c.Op)}
	case math.IsNaN(c.Threshold) || math.IsInf(c.Threshold, 0):
		return &InvalidError{"threshold", "must be a finite number"}
	case c.Window < time.Second:
		return &InvalidError{"window_s", "must be at least 1 s"}
	}
	return nil
}

func validAggregate(a string) bool { return a == Mean || a == Min || a == Max || a == Last }

func validOp(op string) bool {
	return op == Less || op == LessEqual || op == Greater || op == GreaterEqual
}

// Compare reports whether value op threshold holds. An unknown op never holds.
func Compare(op string, value, threshold float64) bool {
	switch op {
	case Less:
		return value < threshold
	case LessEqual:
		return value <= threshold
	case Greater:
		return value > threshold
	case GreaterEqual:
		return value >= threshold
	}
	return false
}

// Result is the outcome of evaluating a condition.
type Result struct {
	Fire   bool
	Reason string
}

// Evaluate judges the condition on an aggregate value computed over n readings.
func (c Condition) Evaluate(value float64, n int) Result {
	over := "over " + FormatDuration(c.Window)
	if n <= 0 {
		return Result{Reason: fmt.Sprintf("no %s readings %s", c.Metric, over)}
	}
	if math.IsNaN(value) {
		return Result{Reason: fmt.Sprintf("%s %s is not a number %s", c.Aggregate, c.Metric, over)}
	}
	readings := "readings"
	if n == 1 {
		readings = "reading"
	}
	op := c.Op
	fire := Compare(c.Op, value, c.Threshold)
	if !fire {
		op = "not " + op
	}
	return Result{
		Fire:   fire,
		Reason: fmt.Sprintf("%s %s %s %s %s %s (%d %s)", c.Aggregate, c.Metric, FormatValue(value), op, FormatValue(c.Threshold), over, n, readings),
	}
}

// FormatValue writes a measured value with at most 4 significant digits and no exponent for
// everyday magnitudes: 0.152, 18, 1013, 0.0004.
func FormatValue(v float64) string {
	s := strconv.FormatFloat(v, 'g', 4, 64)
	if strings.ContainsAny(s, "e") && math.Abs(v) >= 1e-4 && math.Abs(v) < 1e6 {
		s = strconv.FormatFloat(v, 'f', -1, 64)
	}
	return s
}

// FormatDuration writes a window compactly: 45s, 15m, 1h, 1h30m, 2d, 1d6h.
func FormatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	units := []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	for _, u := range units {
		if n := d / u.size; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.size
		}
	}
	return b.String()
}

// Ready reports whether a rule last fired at lastFired (nil: never) may fire at now, and if not,
// when it may.
func Ready(lastFired *time.Time, cooldown time.Duration, now time.Time) (bool, time.Time) {
	if lastFired == nil {
		return true, time.Time{}
	}
	next := lastFired.Add(cooldown)
	if now.Before(next) {
		return false, next
	}
	return true, time.Time{}
}
