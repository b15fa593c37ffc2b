package rule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a window such as "45s", "15m", "1h", "1h30m", "2d" or "1d6h": whole
// numbers of days (d), hours (h), minutes (m) and seconds (s), largest unit first.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, errors.New("empty duration; write e.g. \"30m\", \"1h\" or \"2d\"")
	}
	units := []struct {
		suffix byte
		size   time.Duration
	}{{'d', 24 * time.Hour}, {'h', time.Hour}, {'m', time.Minute}, {'s', time.Second}}
	var total time.Duration
	next := 0 // index into units: each unit at most once, in order
	rest := in
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("%q is not a duration; write e.g. \"30m\", \"1h\" or \"2d\"", in)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 1_000_000 {
			return 0, fmt.Errorf("%q: number too large", in)
		}
		u := -1
		for j := next; j < len(units); j++ {
			if units[j].suffix == rest[i] {
				u = j
				break
			}
		}
		if u < 0 {
			return 0, fmt.Errorf("%q is not a duration: units are d, h, m, s, largest first", in)
		}
		total += time.Duration(n) * units[u].size
		next = u + 1
		rest = rest[i+1:]
	}
	return total, nil
}
