package fieldnodes

import (
	"hash/maphash"
	"sync"
	"time"
)

// frameTracker remembers the LoRaWAN frames each node sent lately, to tell a copy of an uplink
// (another gateway's or network server's, a redelivery with another time) from a new one, and
// to notice frame counter resets (a device that rebooted or rejoined counts from 0 again).
//
// A frame is (frame counter, payload hash): after a reset the same counter comes with another
// payload, so it is not taken for a copy; and a reset forgets the node's older frames, so
// nothing after it can be mistaken for one of them. Memory: at most framesKept per node, for
// nodes heard within the window.
type frameTracker struct {
	mu     sync.Mutex
	window time.Duration
	seed   maphash.Seed
	nodes  map[int64]*frames
}

const framesKept = 8

type frames struct {
	recent  [framesKept]frame
	n       int // frames in recent (a ring once full)
	next    int
	last    uint32 // highest frame counter since the last reset
	hasLast bool
	at      time.Time // when the node last sent a frame
}

type frame struct {
	fcnt uint32
	hash uint64
	at   time.Time
}

// hash is a frame's payload hash: its FRMPayload and decoded object.
func (t *frameTracker) hash(payload, object []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	_, _ = h.Write(payload)
	_ = h.WriteByte(0)
	_, _ = h.Write(object)
	return h.Sum64()
}

// isCopy reports whether (fcnt, hash) is a frame node sent within the window before at.
func (t *frameTracker) isCopy(node int64, fcnt uint32, hash uint64, at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.nodes[node]
	if f == nil {
		return false
	}
	for i := range f.n {
		r := f.recent[i]
		if r.fcnt == fcnt && r.hash == hash && at.Sub(r.at) < t.window && r.at.Sub(at) < t.window {
			return true
		}
	}
	return false
}

// record notes a frame taken (committed) from node and reports whether its counter went back:
// a reset, after which the node's older frames are forgotten. Frames are recorded in the order
// their batches were made (Ingest's ack turns), so a counter going back is the device's doing;
// a frame older (by the network server's time) than the newest seen is a straggler, remembered
// as a copy candidate but neither a reset nor the new highest counter.
func (t *frameTracker) record(node int64, fcnt uint32, hash uint64, at time.Time) (reset bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.nodes) > 1_000_000 {
		t.prune(at)
	}
	f := t.nodes[node]
	if f == nil {
		f = &frames{}
		t.nodes[node] = f
	}
	straggler := f.hasLast && at.Before(f.at) // an older frame arriving late (a redelivery)
	if !straggler {
		if f.hasLast && fcnt < f.last {
			reset = true
			*f = frames{}
		}
		if !f.hasLast || fcnt > f.last {
			f.last, f.hasLast = fcnt, true
		}
		f.at = at
	}
	f.recent[f.next] = frame{fcnt: fcnt, hash: hash, at: at}
	f.next = (f.next + 1) % framesKept
	f.n = min(f.n+1, framesKept)
	return reset
}

// joined forgets node's frames: after a join the counters start again.
func (t *frameTracker) joined(node int64) {
	t.mu.Lock()
	delete(t.nodes, node)
	t.mu.Unlock()
}

// prune forgets nodes not heard within the window (under mu).
func (t *frameTracker) prune(now time.Time) {
	for id, f := range t.nodes {
		if now.Sub(f.at) > t.window {
			delete(t.nodes, id)
		}
	}
	if len(t.nodes) > 1_000_000 {
		clear(t.nodes)
	}
}
