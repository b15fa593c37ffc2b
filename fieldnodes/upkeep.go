package fieldnodes

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// upkeepSet is node upkeep waiting to be written: the newest value of each (node, metric) and,
// per node, the newest of what it sent (last seen, link figures, status, joins, downlinks),
// plus the node_upkeep_pending rows it covers. Merging two sets keeps the newest of each.
type upkeepSet struct {
	latest  map[latestKey]latestVal
	nodes   map[int64]*nodeState
	markers []int64
}

type latestKey struct {
	node   int64
	metric int16
}

type latestVal struct {
	ts    time.Time
	value float64
}

// nodeState is what a node's messages say beyond its readings. Zero values mean "nothing new".
type nodeState struct {
	seen time.Time // newest time the node was heard

	linkAt   time.Time // the uplink the link figures below are from
	gateways *int16
	sf       *int16
	freq     *int64
	fcnt     *int64
	resets   int32 // frame counter resets seen

	marginAt time.Time
	margin   *float64

	joined time.Time

	downlinkAt     time.Time
	downlinkStatus string
}

func newUpkeepSet() *upkeepSet {
	return &upkeepSet{latest: map[latestKey]latestVal{}, nodes: map[int64]*nodeState{}}
}

func (u *upkeepSet) empty() bool {
	return len(u.latest) == 0 && len(u.nodes) == 0 && len(u.markers) == 0
}

// size is what bounds a set's memory: its (node, metric) and node entries.
func (u *upkeepSet) size() int { return len(u.latest) + len(u.nodes) }

func (u *upkeepSet) node(id int64) *nodeState {
	n := u.nodes[id]
	if n == nil {
		n = &nodeState{}
		u.nodes[id] = n
	}
	return n
}

func (u *upkeepSet) addLatest(node int64, metric int16, v latestVal) {
	k := latestKey{node, metric}
	if old, ok := u.latest[k]; !ok || old.ts.Before(v.ts) {
		u.latest[k] = v
	}
}

// addReadings adds committed readings (sorted by node, metric, time: the last of each key is
// its newest).
func (u *upkeepSet) addReadings(rows []Reading, ids map[string]int16) {
	var cur *nodeState
	var curID int64
	for i, r := range rows {
		if i+1 < len(rows) && rows[i+1].NodeID == r.NodeID && rows[i+1].Metric == r.Metric {
			continue // an older reading of the same key
		}
		u.addLatest(r.NodeID, ids[r.Metric], latestVal{ts: r.TS, value: r.Value})
		if cur == nil || curID != r.NodeID {
			cur, curID = u.node(r.NodeID), r.NodeID
		}
		cur.seenAt(r.TS)
	}
}

func (n *nodeState) seenAt(t time.Time) {
	if t.After(n.seen) {
		n.seen = t
	}
}

func (n *nodeState) merge(o *nodeState) {
	n.seenAt(o.seen)
	if !o.linkAt.IsZero() && !o.linkAt.Before(n.linkAt) {
		n.linkAt, n.gateways, n.sf, n.freq, n.fcnt = o.linkAt, o.gateways, o.sf, o.freq, o.fcnt
	}
	n.resets += o.resets
	if o.margin != nil && !o.marginAt.Before(n.marginAt) {
		n.marginAt, n.margin = o.marginAt, o.margin
	}
	if o.joined.After(n.joined) {
		n.joined = o.joined
	}
	if o.downlinkStatus != "" && !o.downlinkAt.Before(n.downlinkAt) {
		n.downlinkAt, n.downlinkStatus = o.downlinkAt, o.downlinkStatus
	}
}

func (u *upkeepSet) merge(o *upkeepSet) {
	for k, v := range o.latest {
		u.addLatest(k.node, k.metric, v)
	}
	for id, n := range o.nodes {
		u.node(id).merge(n)
	}
	u.markers = append(u.markers, o.markers...)
}

// upkeepArrays are a set as the column arrays upkeepSQL takes, sorted by node (and metric), so
// that concurrent writers lock rows in the same order.
type upkeepArrays struct {
	lNode   []int64
	lMetric []int16
	lTS     []time.Time
	lValue  []float64

	nNode       []int64
	nSeen       []*time.Time
	nGateways   []*int16
	nSF         []*int16
	nFreq       []*int64
	nFCnt       []*int64
	nResets     []int32
	nMargin     []*float64
	nJoined     []*time.Time
	nDownAt     []*time.Time
	nDownStatus []*string
	nLinkAt     []*time.Time
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (u *upkeepSet) arrays() upkeepArrays {
	keys := make([]latestKey, 0, len(u.latest))
	for k := range u.latest {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b latestKey) int {
		if c := cmp.Compare(a.node, b.node); c != 0 {
			return c
		}
		return cmp.Compare(a.metric, b.metric)
	})
	a := upkeepArrays{
		lNode: make([]int64, len(keys)), lMetric: make([]int16, len(keys)), lTS: make([]time.Time, len(keys)), lValue: make([]float64, len(keys)),
	}
	for i, k := range keys {
		v := u.latest[k]
		a.lNode[i], a.lMetric[i], a.lTS[i], a.lValue[i] = k.node, k.metric, v.ts, v.value
	}
	ids := make([]int64, 0, len(u.nodes))
	for id := range u.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		n := u.nodes[id]
		var status *string
		if n.downlinkStatus != "" {
			s := n.downlinkStatus
			status = &s
		}
		a.nNode = append(a.nNode, id)
		a.nSeen = append(a.nSeen, timePtr(n.seen))
		a.nGateways = append(a.nGateways, n.gateways)
		a.nSF = append(a.nSF, n.sf)
		a.nFreq = append(a.nFreq, n.freq)
		a.nFCnt = append(a.nFCnt, n.fcnt)
		a.nResets = append(a.nResets, n.resets)
		a.nMargin = append(a.nMargin, n.margin)
		a.nJoined = append(a.nJoined, timePtr(n.joined))
		a.nDownAt = append(a.nDownAt, timePtr(n.downlinkAt))
		a.nDownStatus = append(a.nDownStatus, status)
		a.nLinkAt = append(a.nLinkAt, timePtr(n.linkAt))
	}
	return a
}

// The upkeep writer's rest between writes (see upkeepWriter.run).
const (
	upkeepRestPerRow = 200 * time.Microsecond
	maxUpkeepRest    = time.Second
)

// rest is how long the writer rests after a write of rows rows that took d.
func (w *upkeepWriter) rest(rows int, d time.Duration) time.Duration {
	d = min(d, time.Second) // (d² would overflow past 3 s)
	return min(max(time.Duration(rows)*w.restPerRow, d*d/(5*time.Millisecond)), w.maxRest)
}

// upkeepWriter writes node upkeep behind the ingest: committers add what their batches leave,
// coalescing into one set, and one goroutine writes the set in one statement as soon as the
// previous write is done. Under light load every batch is written moments after its commit;
// under heavy load many batches' upkeep merges into one write, so a node reporting often costs
// one node_latest update per write, not one per message.
type upkeepWriter struct {
	store    *Store
	log      *slog.Logger
	max      int // entries a pending set may hold before add waits
	retryMin time.Duration
	retryMax time.Duration
	onError  func()

	restPerRow, maxRest time.Duration // upkeepRestPerRow, maxUpkeepRest but in tests

	mu      sync.Mutex
	pending *upkeepSet
	wake    chan struct{} // cap 1: something is pending
	full    chan struct{} // cap 1: add waits for room; the writer cuts its rest short
	room    *sync.Cond    // on mu: pending was taken
	stopped bool
}

func newUpkeepWriter(store *Store, log *slog.Logger, max int, retryMin, retryMax time.Duration, onError func()) *upkeepWriter {
	w := &upkeepWriter{store: store, log: log, max: max, retryMin: retryMin, retryMax: retryMax, onError: onError,
		restPerRow: upkeepRestPerRow, maxRest: maxUpkeepRest,
		pending: newUpkeepSet(), wake: make(chan struct{}, 1), full: make(chan struct{}, 1)}
	w.room = sync.NewCond(&w.mu)
	return w
}

// add merges set into what is pending; while the pending set is full (the database is slow or
// away) it waits, which holds back the committers and so the ingest. A writer resting then
// writes at once: the rest is for coalescing, never a reason to hold the ingest back.
func (w *upkeepWriter) add(set *upkeepSet) {
	if set.empty() {
		return
	}
	w.mu.Lock()
	for w.pending.size() >= w.max && !w.stopped {
		select {
		case w.full <- struct{}{}:
		default:
		}
		w.room.Wait()
	}
	w.pending.merge(set)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run writes pending sets until ctx ends (nothing more will be added by then), then writes what
// is left. Every write, including one under way when ctx ends, tries until drain ends. After
// each write it rests, so that more batches coalesce into the next: upkeepRestPerRow for each
// row it wrote (latest values and nodes), or d²/5 ms after a write that took d when the
// database is slow; at most maxUpkeepRest, and only while the pending set has room. Under light load writes are a few rows each and follow one another
// within a millisecond or two, so maps and node lists are current at once. As the load grows
// the rests grow with the writes, and the writer settles at about one write a second that
// covers each reporting node once: at 40,000 readings/s from 1,000 nodes, some 5,000 rows a
// second instead of an update of a node_latest row for every reading. The upkeep so stays a
// small share of the database beside the commits that matter. Rules do not wait for it: the
// ingest tells them of the readings of nodes in irrigation zones at their commit.
func (w *upkeepWriter) run(ctx, drain context.Context) {
	for {
		select {
		case <-w.wake:
		case <-ctx.Done():
		}
		if ctx.Err() != nil { // (also when both were ready: the last write gets drain's time)
			w.mu.Lock()
			w.stopped = true
			w.room.Broadcast()
			w.mu.Unlock()
			w.flush(drain, w.take())
			return
		}
		start := time.Now()
		set := w.take()
		w.flush(drain, set) // a write under way when ctx ends is finished, not cancelled
		select {
		case <-time.After(w.rest(set.size(), time.Since(start))):
		case <-w.full:
		case <-ctx.Done():
		}
	}
}

// take takes what is pending.
func (w *upkeepWriter) take() *upkeepSet {
	w.mu.Lock()
	defer w.mu.Unlock()
	set := w.pending
	w.pending = newUpkeepSet()
	select {
	case <-w.full: // room is made now: a signal from before is spent (a later one is sent anew)
	default:
	}
	w.room.Broadcast()
	return set
}

func (w *upkeepWriter) flush(ctx context.Context, set *upkeepSet) {
	if set.empty() {
		return
	}
	pause := w.retryMin
	for {
		err := w.store.writeUpkeepTx(ctx, set)
		if err == nil {
			break
		}
		if w.onError != nil {
			w.onError()
		}
		if ctx.Err() != nil {
			// Readings are committed; their node_upkeep_pending rows let the next start repair this.
			w.log.Error("node upkeep not written; left for repair", "nodes", len(set.nodes), "err", err)
			return
		}
		w.log.Error("node upkeep write failed; retrying", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, w.retryMax)
	}
}
