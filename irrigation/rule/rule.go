package rule

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Threshold writes the condition of a threshold rule — "agg of metric over window compares op
// against threshold", the form rules had before they became expressions — as an expression:
// Threshold("soil_vwc", "mean", "<", 0.18, time.Hour) is `mean("soil_vwc", "1h") < 0.18`. The
// error names the part that is wrong.
func Threshold(metric, agg, op string, threshold float64, window time.Duration) (string, error) {
	switch {
	case !ValidMetric(metric):
		return "", &InvalidError{"metric", fmt.Sprintf("%q is not a metric name (lower-case letters, digits and _)", metric)}
	case agg != FuncMean && agg != FuncMin && agg != FuncMax && agg != FuncLast:
		return "", &InvalidError{"aggregate", fmt.Sprintf("%q is not one of mean, min, max, last", agg)}
	case op != "<" && op != "<=" && op != ">" && op != ">=":
		return "", &InvalidError{"op", fmt.Sprintf("%q is not one of <, <=, >, >=", op)}
	case math.IsNaN(threshold) || math.IsInf(threshold, 0):
		return "", &InvalidError{"threshold", "must be a finite number"}
	case window < time.Second || window > MaxWindow:
		return "", &InvalidError{"window_s", fmt.Sprintf("must be between 1 and %d s", int(MaxWindow.Seconds()))}
	}
	return fmt.Sprintf("%s(%q, %q) %s %s", agg, metric, FormatDuration(window), op,
		strconv.FormatFloat(threshold, 'g', -1, 64)), nil
}

// InvalidError says which part of a rule is wrong and why.
type InvalidError struct {
	Field   string
	Problem string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Problem }

// FormatValue writes a measured value with at most 4 significant digits and no exponent for
// everyday magnitudes: 0.152, 18, 1013, 0.0004.
func FormatValue(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	s := strconv.FormatFloat(v, 'g', 4, 64)
	if strings.ContainsAny(s, "e") && math.Abs(v) >= 1e-4 && math.Abs(v) < 1e6 {
		s = strconv.FormatFloat(v, 'f', -1, 64)
	}
	return s
}

// FormatDuration writes a window compactly: 45s, 15m, 1h, 1h30m, 2d, 1d6h. ParseDuration reads
// it back.
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
