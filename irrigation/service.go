package irrigation

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// service is the Start/Stop lifecycle the long-running parts share: Start launches one
// goroutine that runs until Stop is called or Start's context ends; Stop waits for it (and for
// whatever it started) to finish. A stopped service may be started again.
type service struct {
	name   string
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *service) start(ctx context.Context, run func(ctx context.Context)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return fmt.Errorf("irrigation: %s already started", s.name)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.cancel, s.done = cancel, done
	go func() {
		defer close(done)
		run(ctx)
	}()
	return nil
}

func (s *service) stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// sleep waits for d or the end of ctx; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// poke wakes a loop waiting on ch (capacity 1) without ever blocking.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// backoff is base·2^n, at most max.
func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
