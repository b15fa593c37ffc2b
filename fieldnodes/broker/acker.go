package broker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// acker writes the PUBACKs of handed-off publishes once the Handoff acknowledges them. Acks are
// gathered per client and written by one goroutine, each client's in one write: a committed
// batch of a thousand messages costs a handful of system calls, not a thousand. The order of a
// client's acks is the order the Handoff acknowledged them in.
type acker struct {
	log          *slog.Logger
	writeTimeout time.Duration // bounds one client's write of its acks
	mu           sync.Mutex
	pending      map[*mqtt.Client][]uint16
	wake         chan struct{}
	written      func(n int)
	lost         func(n int)
}

func newAcker(log *slog.Logger) *acker {
	return &acker{log: log, writeTimeout: 10 * time.Second, pending: map[*mqtt.Client][]uint16{}, wake: make(chan struct{}, 1),
		written: func(int) {}, lost: func(int) {}}
}

func (a *acker) add(cl *mqtt.Client, id uint16) {
	a.mu.Lock()
	a.pending[cl] = append(a.pending[cl], id)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *acker) run(ctx context.Context) {
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		a.mu.Lock()
		batch := a.pending
		a.pending = make(map[*mqtt.Client][]uint16, len(batch))
		a.mu.Unlock()
		for cl, ids := range batch {
			buf = buf[:0]
			for _, id := range ids {
				buf = append(buf, 0x40, 0x02, byte(id>>8), byte(id)) // PUBACK, remaining length 2
			}
			if a.write(cl, buf) {
				a.written(len(ids))
			} else {
				a.lost(len(ids))
			}
		}
	}
}

// write sends raw packets to cl under its lock (so they never interleave with mochi's own
// writes). A client that went away is no error: unacknowledged, it publishes again.
func (a *acker) write(cl *mqtt.Client, b []byte) bool {
	if cl.Closed() || cl.Net.Conn == nil {
		return false
	}
	cl.Lock()
	defer cl.Unlock()
	// The connection's deadline is mochi's keep-alive, set before each read; a client whose
	// messages waited long for their commit must still get its acks.
	_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(a.writeTimeout))
	_, err := cl.Net.Conn.Write(b)
	// Then the keep-alive deadline again, as mochi sets it: left at ours, it would fail mochi's
	// next write (the PINGRESP of a client that went quiet after its last acks) once it passed.
	_ = cl.Net.Conn.SetWriteDeadline(keepAliveDeadline(cl.State.Keepalive))
	if err != nil {
		a.log.Debug("PUBACKs not written; the client will publish again", "client_id", cl.ID, "err", err)
		return false
	}
	return true
}

// keepAliveDeadline is mochi's deadline for a client's connection: a keep-alive and a half (in
// whole seconds, as mochi counts) from now [MQTT-3.1.2-22], none without a keep-alive.
func keepAliveDeadline(keepAlive uint16) time.Time {
	if keepAlive == 0 {
		return time.Time{}
	}
	ka := int64(keepAlive)
	return time.Now().Add(time.Duration(ka+ka/2) * time.Second)
}
