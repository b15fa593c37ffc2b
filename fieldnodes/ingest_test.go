package fieldnodes_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// rig is a farm's database, an embedded broker authenticating against it, the server's link
// and an ingest on it, with recording listener and controller handler.
type rig struct {
	*farm
	b           *broker.Broker
	reg         *prometheus.Registry
	link        *mqttlink.Link
	ingest      *fieldnodes.Ingest
	listener    *recListener
	ctrl        *recControllers
	cancelStart context.CancelFunc // cancels the context the current ingest was started with
}

func newRig(t *testing.T, mod ...func(*fieldnodes.IngestConfig)) *rig {
	t.Helper()
	r := &rig{farm: newFarm(t), listener: &recListener{}, ctrl: &recControllers{}}
	var err error
	r.b, err = broker.New(broker.Config{Listen: "127.0.0.1:0", Auth: r.store, Logger: testLogger(t)})
	must(t, err)
	must(t, r.b.Start(context.Background()))
	t.Cleanup(r.b.Stop)
	r.startIngest(t, "aghali-serve-1", nil, mod...)
	return r
}

// startIngest starts a server link with client id clientID and an ingest on it (through wrap,
// when given, which may alter what the ingest sees).
func (r *rig) startIngest(t *testing.T, clientID string, wrap func(fieldnodes.Subscriber) fieldnodes.Subscriber, mod ...func(*fieldnodes.IngestConfig)) {
	t.Helper()
	user, pass := r.b.InternalCredentials()
	link, err := mqttlink.New(mqttlink.Config{URL: r.b.URL(), ClientID: clientID, Username: user, Password: pass,
		Shared: "aghali", Logger: testLogger(t), RetryInterval: 50 * time.Millisecond})
	must(t, err)
	var sub fieldnodes.Subscriber = link
	if wrap != nil {
		sub = wrap(link)
	}
	r.reg = prometheus.NewRegistry()
	cfg := fieldnodes.IngestConfig{Store: r.store, Link: sub, Listener: r.listener, Controllers: r.ctrl,
		Logger: testLogger(t), Registerer: r.reg, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}
	for _, m := range mod {
		m(&cfg)
	}
	r.ingest, err = fieldnodes.NewIngest(cfg)
	must(t, err)
	ctx := context.Background()
	// Started with a context that may be cancelled before Stop, as a process does on SIGTERM.
	startCtx, cancelStart := context.WithCancel(ctx)
	t.Cleanup(cancelStart)
	r.cancelStart = cancelStart
	must(t, r.ingest.Start(startCtx))
	must(t, link.Start(ctx))
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	must(t, link.WaitReady(wait))
	r.link = link
	ingest := r.ingest
	t.Cleanup(func() {
		ingest.Stop()
		link.Stop()
	})
}

// stopIngest stops the current ingest and its link, gracefully.
func (r *rig) stopIngest() {
	r.ingest.Stop()
	r.link.Stop()
}

// device gives uid a secret of kind and returns a started link logged in as it.
func (r *rig) device(t *testing.T, uid, kind string) *mqttlink.Link {
	t.Helper()
	secret, err := r.store.NewSecret(context.Background(), uid, kind)
	must(t, err)
	l, err := mqttlink.New(mqttlink.Config{URL: r.b.URL(), ClientID: uid, Username: uid, Password: secret, Logger: testLogger(t)})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, l.Start(ctx))
	t.Cleanup(l.Stop)
	must(t, l.WaitReady(ctx))
	return l
}

func send(t *testing.T, l *mqttlink.Link, topic, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, l.Publish(ctx, topic, 1, false, []byte(payload)))
}

// count reads a counter (or gauge) from the ingest's registry; label may be "".
func (r *rig) count(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	must(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || lp.GetName() == label && lp.GetValue() == value
			}
			if match {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func (r *rig) readings(t *testing.T) int {
	t.Helper()
	var n int
	must(t, r.db.QueryRow(context.Background(), `SELECT count(*) FROM readings`).Scan(&n))
	return n
}

type recListener struct {
	mu  sync.Mutex
	ids []int64
}

func (l *recListener) ReadingsCommitted(_ context.Context, ids []int64, _ time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids = append(l.ids, ids...)
}

func (l *recListener) has(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.ids, id)
}

// recControllers records what controllers send; failStates makes that many HandleState calls
// fail first.
type recControllers struct {
	mu         sync.Mutex
	acks       []fieldnodes.ControllerAck
	states     []fieldnodes.ControllerState
	failStates int
	calls      int
}

func (c *recControllers) HandleAck(_ context.Context, a fieldnodes.ControllerAck) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acks = append(c.acks, a)
	return nil
}

func (c *recControllers) HandleState(_ context.Context, s fieldnodes.ControllerState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.failStates > 0 {
		c.failStates--
		return errors.New("irrigation store unavailable")
	}
	c.states = append(c.states, s)
	return nil
}

func (c *recControllers) snapshot() ([]fieldnodes.ControllerAck, []fieldnodes.ControllerState, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]fieldnodes.ControllerAck(nil), c.acks...), append([]fieldnodes.ControllerState(nil), c.states...), c.calls
}

func TestIngestStoresNativeReading(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	id := r.node(t, "soil-01", r.zoneA)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)

	ts := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	start := time.Now()
	send(t, dev, "aghali/nodes/soil-01/up",
		fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":0.234,"soil_temp_c":18.2},"battery_v":3.61,"rssi":-71}`, ts.Format(time.RFC3339)))
	var series fieldnodes.Series
	eventually(t, 10*time.Second, "the reading to be readable", func() bool {
		var err error
		series, err = r.store.Readings(ctx, id, "soil_vwc", ts.Add(-time.Hour), ts.Add(time.Hour), 100)
		must(t, err)
		return len(series.Points) == 1
	})
	t.Logf("published → readable in %v", time.Since(start))
	if p := series.Points[0]; p.Mean != 0.234 || p.N != 1 {
		t.Errorf("point %+v", p)
	}
	// The listener hears of the node, which is in a zone, at the commit; its latest values and
	// health are written just behind.
	eventually(t, 10*time.Second, "the listener to hear of the node", func() bool { return r.listener.has(id) })
	var node fieldnodes.Node
	eventually(t, 10*time.Second, "the node's upkeep", func() bool {
		var err error
		node, err = r.store.Node(ctx, id)
		must(t, err)
		return node.LastSeenAt != nil
	})
	if node.BatteryV == nil || *node.BatteryV != 3.61 || node.RSSIDBm == nil || *node.RSSIDBm != -71 ||
		node.Latest["battery_v"].Value != 3.61 || node.Latest["rssi_dbm"].Value != -71 || node.Latest["soil_temp_c"].Value != 18.2 ||
		node.LastSeenAt == nil || !node.LastSeenAt.Equal(ts) {
		t.Errorf("node after ingest: battery %v rssi %v last seen %v latest %+v", node.BatteryV, node.RSSIDBm, node.LastSeenAt, node.Latest)
	}
	if n := r.count(t, "aghali_ingest_readings_stored_total", "", ""); n != 4 {
		t.Errorf("readings stored = %v, want 4", n)
	}

	// SenML, with the node id in the base name; a pack naming another device is refused.
	send(t, dev, "aghali/nodes/soil-01/up", fmt.Sprintf(`[{"bn":"urn:dev:aghali:soil-01:","bt":%d,"n":"soil_vwc","v":0.25}]`, ts.Add(time.Minute).Unix()))
	send(t, dev, "aghali/nodes/soil-01/up", `[{"bn":"soil-02:","n":"soil_vwc","v":0.99}]`)
	eventually(t, 10*time.Second, "the SenML reading and the rejection", func() bool {
		rej, err := r.store.Rejected(ctx, 10)
		must(t, err)
		return r.readings(t) == 5 && len(rej) == 1 && rej[0].Reason == fieldnodes.RejectForeignDevice
	})
}

// commitListener records, for each node it is told of, how many times, and whether the node's
// readings could be read at that moment (they must be committed) and its upkeep could (for a
// node in a zone it need not be written yet).
type commitListener struct {
	store *fieldnodes.Store
	mu    sync.Mutex
	told  map[int64]int
	ready map[int64]bool // readings readable when told
	at    map[int64]time.Time
}

func (l *commitListener) ReadingsCommitted(ctx context.Context, ids []int64, committedAt time.Time) {
	for _, id := range ids {
		s, err := l.store.Readings(ctx, id, "soil_vwc", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), 1)
		l.mu.Lock()
		l.told[id]++
		l.ready[id] = err == nil && len(s.Points) == 1
		l.at[id] = committedAt
		l.mu.Unlock()
	}
}

func (l *commitListener) times(id int64) (int, bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.told[id], l.ready[id], l.at[id]
}

// A node in an irrigation zone is told of at its readings' commit, before its upkeep is written
// (held back here by a lock on its row), once, with when they were committed; a node in no
// zone is not told of.
func TestListenerHearsOfZonedNodesAtCommit(t *testing.T) {
	t.Parallel()
	l := &commitListener{told: map[int64]int{}, ready: map[int64]bool{}, at: map[int64]time.Time{}}
	r := newRig(t, func(c *fieldnodes.IngestConfig) { l.store = c.Store; c.Listener = l; c.NodeCacheTTL = time.Hour })
	zoned := r.node(t, "soil-01", r.zoneA)
	loose := r.node(t, "soil-02", 0)
	devZoned := r.device(t, "soil-01", fieldnodes.KindNode)
	devLoose := r.device(t, "soil-02", fieldnodes.KindNode)

	ctx := context.Background()
	lock, err := r.db.Begin(ctx)
	must(t, err)
	defer lock.Rollback(ctx)
	_, err = lock.Exec(ctx, `SELECT 1 FROM nodes WHERE id = $1 FOR UPDATE`, zoned)
	must(t, err)

	start := time.Now()
	ts := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	send(t, devZoned, "aghali/nodes/soil-01/up", fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":0.2}}`, ts.Format(time.RFC3339)))
	eventually(t, 10*time.Second, "the zoned node to be told of", func() bool { n, _, _ := l.times(zoned); return n > 0 })
	node, err := r.store.Node(ctx, zoned)
	must(t, err)
	if node.LastSeenAt != nil {
		t.Errorf("the zoned node's upkeep was written though its row is locked: last seen %v", node.LastSeenAt)
	}
	must(t, lock.Rollback(ctx))
	// The loose node's upkeep is written after the zoned one's (one writer, in turn).
	send(t, devLoose, "aghali/nodes/soil-02/up", fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":0.3}}`, ts.Format(time.RFC3339)))
	eventually(t, 10*time.Second, "the loose node's upkeep", func() bool {
		node, err = r.store.Node(ctx, loose)
		must(t, err)
		return node.LastSeenAt != nil
	})
	n, ready, at := l.times(zoned)
	if n != 1 || !ready {
		t.Errorf("zoned node told of %d times (want 1), readings readable then: %v (want true)", n, ready)
	}
	if at.Before(start) || at.After(time.Now()) {
		t.Errorf("zoned node's readings committed at %v; want between %v and now", at, start)
	}
	if n, _, _ := l.times(loose); n != 0 {
		t.Errorf("loose node told of %d times, want 0", n)
	}

	// Put in a zone, the loose node's next readings are told of at once: the ingest's cache
	// does not keep it as it was.
	node.ZoneID = &r.zoneA
	_, err = r.store.UpdateNode(ctx, node)
	must(t, err)
	send(t, devLoose, "aghali/nodes/soil-02/up", fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":0.25}}`, ts.Add(time.Minute).Format(time.RFC3339)))
	eventually(t, 10*time.Second, "the node put in a zone to be told of", func() bool { n, _, _ := l.times(loose); return n == 1 })
}

func TestIngestUnknownMalformedAndFuture(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	r.node(t, "soil-01", 0)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)
	stranger := r.device(t, "stranger", fieldnodes.KindNode) // has a secret, but no node

	send(t, stranger, "aghali/nodes/stranger/up", `{"readings":{"soil_vwc":0.3}}`)
	send(t, dev, "aghali/nodes/soil-01/up", `{"readings":{"soil_vwc":0.2`)
	future := time.Now().Add(49 * time.Hour).UTC().Format(time.RFC3339)
	send(t, dev, "aghali/nodes/soil-01/up", fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":0.2}}`, future))
	send(t, dev, "aghali/nodes/soil-01/up", `{"readings":{"Soil VWC":0.2}}`)

	eventually(t, 10*time.Second, "four outcomes", func() bool {
		return r.count(t, "aghali_ingest_messages_total", "outcome", "pending") == 1 &&
			r.count(t, "aghali_ingest_messages_total", "outcome", "rejected") == 3
	})
	pend, err := r.store.PendingDevices(ctx)
	must(t, err)
	if len(pend) != 1 || pend[0].UID != "stranger" || pend[0].Source != fieldnodes.SourceMQTT ||
		len(pend[0].Messages) != 1 || string(pend[0].Messages[0].Payload) != `{"readings":{"soil_vwc":0.3}}` {
		t.Errorf("pending = %+v", pend)
	}
	rej, err := r.store.Rejected(ctx, 10)
	must(t, err)
	reasons := map[string]fieldnodes.RejectedMessage{}
	for _, m := range rej {
		reasons[m.Reason] = m
	}
	if m := reasons[fieldnodes.RejectMalformed]; string(m.Payload) != `{"readings":{"soil_vwc":0.2` || m.Topic != "aghali/nodes/soil-01/up" || !strings.Contains(m.Detail, "not JSON") {
		t.Errorf("malformed: %+v", m)
	}
	if m := reasons[fieldnodes.RejectFuture]; !strings.Contains(m.Detail, "soil_vwc") {
		t.Errorf("future: %+v", m)
	}
	if _, ok := reasons[fieldnodes.RejectMetricName]; !ok {
		t.Errorf("bad metric name not rejected: %+v", rej)
	}
	if n := r.readings(t); n != 0 {
		t.Errorf("%d readings stored", n)
	}
}

func TestIngestDeduplicates(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.node(t, "soil-01", 0)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)
	msg := `{"ts":"2026-07-06T05:00:00Z","readings":{"soil_vwc":0.234,"soil_temp_c":18.2}}`
	send(t, dev, "aghali/nodes/soil-01/up", msg)
	send(t, dev, "aghali/nodes/soil-01/up", msg)
	eventually(t, 10*time.Second, "both messages committed", func() bool {
		return r.count(t, "aghali_ingest_messages_total", "outcome", "stored") == 2
	})
	if n := r.readings(t); n != 2 {
		t.Errorf("%d readings stored, want 2", n)
	}
	if d := r.count(t, "aghali_ingest_readings_duplicate_total", "", ""); d != 2 {
		t.Errorf("duplicates = %v, want 2", d)
	}
}

// dropAcks hands the ingest messages whose Ack does nothing, as if every acknowledgement were
// lost on the way to the broker.
type dropAcks struct{ fieldnodes.Subscriber }

func (d dropAcks) Subscribe(filter string, h func(mqttlink.Message)) error {
	return d.Subscriber.Subscribe(filter, func(m mqttlink.Message) {
		h(mqttlink.NewMessage(m.Topic, m.Payload, m.Received, nil))
	})
}

func TestIngestQoS1RedeliveryStoredOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	// The same session (client id) throughout: with a shared subscription, a message routed to
	// another member's session waits for that member.
	r.stopIngest()
	r.startIngest(t, "aghali-serve-1", func(s fieldnodes.Subscriber) fieldnodes.Subscriber { return dropAcks{s} })
	r.node(t, "soil-01", 0)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)
	send(t, dev, "aghali/nodes/soil-01/up", `{"ts":"2026-07-06T05:00:00Z","readings":{"soil_vwc":0.234,"soil_temp_c":18.2}}`)
	eventually(t, 10*time.Second, "the first delivery committed", func() bool { return r.readings(t) == 2 })
	r.stopIngest() // its acknowledgement never reached the broker

	// The same session again: the broker redelivers the unacknowledged message.
	r.startIngest(t, "aghali-serve-1", nil)
	eventually(t, 10*time.Second, "the redelivery committed", func() bool {
		return r.count(t, "aghali_ingest_readings_duplicate_total", "", "") == 2
	})
	if n := r.readings(t); n != 2 {
		t.Errorf("%d readings after redelivery, want 2", n)
	}
	r.stopIngest()

	// Acknowledged this time: a third session gets nothing.
	r.startIngest(t, "aghali-serve-1", nil)
	time.Sleep(200 * time.Millisecond)
	if n := r.count(t, "aghali_ingest_received_total", "kind", "uplink"); n != 0 {
		t.Errorf("%v messages redelivered after the acknowledgement", n)
	}
}

func TestIngestControllerMessages(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.ctrl.failStates = 1
	c1 := r.device(t, "valves-1", fieldnodes.KindController)
	send(t, c1, "aghali/controllers/valves-1/ack", `{"id":"6f1c","status":"rejected","reason":"valve 9 unknown"}`)
	send(t, c1, "aghali/controllers/valves-1/state", `{"ts":"2026-07-06T05:00:00Z","valves":{"1":"closed","3":"open"},"flow_lpm":12.5,"volume_l":10342.0}`)
	send(t, c1, "aghali/controllers/valves-1/ack", `{"status":"ok"}`)
	eventually(t, 10*time.Second, "ack handled, state attempted, bad ack rejected", func() bool {
		acks, _, calls := r.ctrl.snapshot()
		return len(acks) == 1 && calls == 1 && r.count(t, "aghali_ingest_rejections_total", "reason", fieldnodes.RejectInvalid) == 1
	})
	acks, states, _ := r.ctrl.snapshot()
	if a := acks[0]; a.ControllerUID != "valves-1" || a.CommandID != "6f1c" || a.Status != "rejected" || a.Reason != "valve 9 unknown" || a.ReceivedAt.IsZero() {
		t.Errorf("ack %+v", a)
	}
	if len(states) != 0 {
		t.Errorf("a failed state was recorded: %+v", states)
	}

	// The state whose handler failed was not acknowledged: the next session gets it again.
	r.stopIngest()
	r.startIngest(t, "aghali-serve-1", nil)
	eventually(t, 10*time.Second, "the state redelivered and handled", func() bool {
		_, states, _ = r.ctrl.snapshot()
		return len(states) == 1
	})
	st := states[0]
	if st.ControllerUID != "valves-1" || !st.TS.Equal(time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)) || st.Valves[1] != "closed" ||
		st.Valves[3] != "open" || len(st.Valves) != 2 || *st.FlowLPM != 12.5 || *st.VolumeL != 10342 {
		t.Errorf("state %+v", st)
	}
}

func TestSendCommandReachesController(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	secret, err := r.store.NewSecret(context.Background(), "valves-1", fieldnodes.KindController)
	must(t, err)
	ctrl, err := mqttlink.New(mqttlink.Config{URL: r.b.URL(), ClientID: "valves-1", Username: "valves-1", Password: secret})
	must(t, err)
	got := make(chan mqttlink.Message, 4)
	must(t, ctrl.Subscribe("aghali/controllers/valves-1/cmd", func(m mqttlink.Message) { got <- m; m.Ack() }))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, ctrl.Start(ctx))
	defer ctrl.Stop()
	must(t, ctrl.WaitReady(ctx))

	now := time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)
	cmdr, err := fieldnodes.NewCommander(fieldnodes.CommanderConfig{Link: r.link, Now: func() time.Time { return now }})
	must(t, err)
	baku := time.FixedZone("Asia/Baku", 4*3600)
	cmd := fieldnodes.Command{ID: "2b7e1516-28ae-4d2a-a6d2-abf7158809cf", Action: fieldnodes.ActionOpen, Valve: 3, DurationS: 1200,
		ExpiresAt: now.Add(time.Minute).In(baku)}
	must(t, cmdr.SendCommand(ctx, "valves-1", cmd))
	select {
	case m := <-got:
		want := `{"id":"2b7e1516-28ae-4d2a-a6d2-abf7158809cf","action":"open","valve":3,"duration_s":1200,"expires_at":"2026-07-06T05:01:00Z"}`
		if string(m.Payload) != want || m.QoS != 1 {
			t.Errorf("controller got %s (QoS %d), want %s", m.Payload, m.QoS, want)
		}
	case <-ctx.Done():
		t.Fatal("the command did not arrive")
	}

	if err := cmdr.SendCommand(ctx, "valves-1", fieldnodes.Command{ID: "x", Action: fieldnodes.ActionCloseAll, ExpiresAt: now.Add(-time.Second)}); !errors.Is(err, fieldnodes.ErrCommandExpired) {
		t.Errorf("expired command: %v", err)
	}
	var ve *fieldnodes.ValidationError
	for _, bad := range []fieldnodes.Command{
		{ID: "x", Action: fieldnodes.ActionOpen, Valve: 3, ExpiresAt: now.Add(time.Minute)},
		{ID: "x", Action: "flood", ExpiresAt: now.Add(time.Minute)},
		{Action: fieldnodes.ActionCloseAll, ExpiresAt: now.Add(time.Minute)},
		{ID: "x", Action: fieldnodes.ActionClose, ExpiresAt: now.Add(time.Minute)},
	} {
		if err := cmdr.SendCommand(ctx, "valves-1", bad); !errors.As(err, &ve) {
			t.Errorf("SendCommand(%+v) = %v, want a ValidationError", bad, err)
		}
	}
	if err := cmdr.SendCommand(ctx, "valves/1", cmd); !errors.As(err, &ve) {
		t.Errorf("bad uid: %v", err)
	}
	select {
	case m := <-got:
		t.Errorf("a refused command was sent: %s", m.Payload)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestIngestGracefulStopCommitsBuffered(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *fieldnodes.IngestConfig) {
		c.BatchSize = 1_000_000
		c.FlushInterval = time.Hour // nothing is committed until Stop
	})
	r.node(t, "soil-01", 0)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)
	for i := range 10 {
		send(t, dev, "aghali/nodes/soil-01/up", fmt.Sprintf(`{"ts":"2026-07-06T05:%02d:00Z","readings":{"soil_vwc":0.2,"soil_temp_c":18}}`, i))
	}
	eventually(t, 10*time.Second, "ten messages taken", func() bool { return r.count(t, "aghali_ingest_received_total", "kind", "uplink") == 10 })
	if n := r.readings(t); n != 0 {
		t.Fatalf("%d readings committed before Stop", n)
	}
	r.cancelStart() // the process's context ends first, as on SIGTERM; Stop still drains
	r.stopIngest()
	if n := r.readings(t); n != 20 {
		t.Errorf("%d readings after a graceful Stop, want 20", n)
	}
	if n := r.count(t, "aghali_ingest_messages_total", "outcome", "stored"); n != 10 {
		t.Errorf("%v messages stored (and acknowledged), want 10", n)
	}
	// Acknowledged: a new session gets nothing back.
	r.startIngest(t, "aghali-serve-1", nil)
	time.Sleep(200 * time.Millisecond)
	if n := r.count(t, "aghali_ingest_received_total", "kind", "uplink"); n != 0 {
		t.Errorf("%v messages redelivered after a graceful Stop", n)
	}
}

func TestIngestRetriesWhileDatabaseFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	r.node(t, "soil-01", 0)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)
	// Break the readings table, for real.
	_, err := r.db.Exec(ctx, `ALTER TABLE readings RENAME TO readings_away`)
	must(t, err)
	send(t, dev, "aghali/nodes/soil-01/up", `{"ts":"2026-07-06T05:00:00Z","readings":{"soil_vwc":0.2}}`)
	eventually(t, 10*time.Second, "failed commit attempts", func() bool {
		return r.count(t, "aghali_ingest_commit_errors_total", "", "") >= 2
	})
	if n := r.count(t, "aghali_ingest_messages_total", "outcome", "stored"); n != 0 {
		t.Errorf("%v messages counted stored while the table is gone", n)
	}
	_, err = r.db.Exec(ctx, `ALTER TABLE readings_away RENAME TO readings`)
	must(t, err)
	eventually(t, 10*time.Second, "the retried commit", func() bool { return r.readings(t) == 1 })
	// Counted just after the commit.
	eventually(t, 10*time.Second, "the message counted stored once", func() bool {
		return r.count(t, "aghali_ingest_messages_total", "outcome", "stored") == 1
	})
}

// TestIngestLeavesNoGoroutines runs a full lifecycle (not in parallel, so that the check sees
// only this test's goroutines).
func TestIngestLeavesNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last: after every other cleanup
	lora := &loraControllers{euis: []string{"70b3d57ed0061c2d"}}
	r := newRig(t, func(c *fieldnodes.IngestConfig) { // with the LoRaWAN controllers' DevEUI refresh
		c.Integrations = []fieldnodes.Integration{{Network: fieldnodes.NetworkChirpStack, Topic: fieldnodes.DefaultChirpStackTopic}}
		c.LoRaWANControllers, c.ControllerRefresh = lora, 10*time.Millisecond
	})
	must(t, r.store.Start(context.Background()))
	r.node(t, "soil-01", 0)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)
	c1 := r.device(t, "valves-1", fieldnodes.KindController)
	send(t, dev, "aghali/nodes/soil-01/up", `{"readings":{"soil_vwc":0.2}}`)
	send(t, c1, "aghali/controllers/valves-1/state", `{"valves":{"1":"closed"}}`)
	eventually(t, 10*time.Second, "both handled", func() bool {
		_, states, _ := r.ctrl.snapshot()
		return r.readings(t) == 1 && len(states) == 1
	})
	eventually(t, 10*time.Second, "the DevEUIs read again", func() bool { lora.mu.Lock(); defer lora.mu.Unlock(); return lora.lists > 1 })
	r.stopIngest()
	r.store.Stop()
}

// With the database down and every buffer full, Stop still returns (after DrainTimeout), acks
// nothing it could not commit, and the next session gets all of it.
func TestIngestStopWhileDatabaseDownLosesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tight := func(c *fieldnodes.IngestConfig) {
		c.BatchSize, c.MaxBuffered, c.Committers = 1, 1, 1
		c.FlushInterval = 5 * time.Millisecond
		c.DrainTimeout = 300 * time.Millisecond
	}
	r := newRig(t, tight)
	r.node(t, "soil-01", 0)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)
	_, err := r.db.Exec(ctx, `ALTER TABLE readings RENAME TO readings_away`)
	must(t, err)
	for i := range 5 {
		send(t, dev, "aghali/nodes/soil-01/up", fmt.Sprintf(`{"ts":"2026-07-06T05:%02d:00Z","readings":{"soil_vwc":0.2}}`, i))
	}
	// One batch committing, one waiting for the committer, one in the buffer, one in the handler.
	eventually(t, 10*time.Second, "the pipeline full", func() bool {
		return r.count(t, "aghali_ingest_received_total", "kind", "uplink") >= 3
	})
	time.Sleep(50 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { r.stopIngest(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop hung with the database down and the buffer full")
	}
	if n := r.count(t, "aghali_ingest_messages_total", "outcome", "stored"); n != 0 {
		t.Errorf("%v messages counted stored", n)
	}
	_, err = r.db.Exec(ctx, `ALTER TABLE readings_away RENAME TO readings`)
	must(t, err)
	r.startIngest(t, "aghali-serve-1", nil, tight)
	eventually(t, 10*time.Second, "all five redelivered and stored", func() bool { return r.readings(t) == 5 })
}
