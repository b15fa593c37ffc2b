package fieldnodes

import (
	"context"
	"time"
)

// every calls f every d until ctx ends (the first call after d).
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
