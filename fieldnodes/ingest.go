package fieldnodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// Subscriber is the part of an MQTT link the ingest uses; *mqttlink.Link satisfies it.
type Subscriber interface {
	Subscribe(filter string, handler func(mqttlink.Message)) error
}

// IngestConfig configures an Ingest. Zero values take the documented defaults.
type IngestConfig struct {
	// Store commits what arrives (required).
	Store *Store
	// Link delivers the messages (required). Give it Config.Shared to split the load between
	// several instances.
	Link Subscriber
	// Prefix is the topic prefix; default "aghali".
	Prefix string
	// BatchSize is how many readings make a batch that is committed at once; default 1000.
	BatchSize int
	// FlushInterval is the longest a message waits for its batch to fill; default 20 ms.
	FlushInterval time.Duration
	// MaxBuffered is how many messages may wait for a batch; when full the ingest stops taking
	// messages from the link (and the broker queues them). Default 20 × BatchSize.
	MaxBuffered int
	// Committers is how many batches may be committed at once; default 2.
	Committers int
	// Listener is told which nodes got readings after each commit; may be nil.
	Listener ReadingsListener
	// Controllers takes controller acks and states; nil: controller topics are not subscribed.
	Controllers ControllerHandler
	// Logger; default: discard.
	Logger *slog.Logger
	// Registerer gets the ingest's Prometheus metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Now is the clock used when a message carries no receive time, and for the node cache;
	// default time.Now.
	Now func() time.Time
	// MaxFuture: a reading further ahead of its receive time is rejected; default 24 hours.
	MaxFuture time.Duration
	// RetryMin and RetryMax bound the back-off between attempts of a failing commit; defaults
	// 100 ms and 5 s. A failing commit is retried, never dropped, and its messages are not
	// acknowledged until it succeeds.
	RetryMin, RetryMax time.Duration
	// DrainTimeout is how long Stop keeps trying to commit what is buffered; default 30 s.
	// What it cannot commit in that time stays unacknowledged, so the broker redelivers it.
	DrainTimeout time.Duration
	// NodeCacheTTL is how long a uid's node id is remembered; default 1 minute.
	NodeCacheTTL time.Duration
}

// Ingest is the pipeline from MQTT messages to committed readings: it decodes node uplinks,
// batches their readings across messages, commits each batch with Store.InsertReadings, and
// only then acknowledges the batch's messages; it hands controller acks and states to the
// ControllerHandler and acknowledges them once handled.
type Ingest struct {
	cfg     IngestConfig
	store   *Store
	log     *slog.Logger
	metrics ingestMetrics

	in      chan *item            // uplinks waiting for a batch
	ctrl    chan mqttlink.Message // controller messages waiting for the handler
	batches chan []*item          // batches waiting for a committer

	gate     sync.RWMutex // handlers hold it shared while handing over a message; Stop exclusively
	stopped  bool         // under gate
	stopOnce sync.Once
	stopping chan struct{} // closed by Stop: handlers stop waiting for room
	drain    chan struct{} // closed by Stop once no handler hands over any more

	ctx    context.Context // commits and handlers; ends DrainTimeout after Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	nodesMu sync.Mutex
	nodes   map[string]nodeEntry // uid → node id cache
}

type nodeEntry struct {
	id      int64
	expires time.Time
}

// item is one uplink message on its way to a commit.
type item struct {
	msg  mqttlink.Message
	uid  string
	meas []codec.Measurement
	rej  *rejection
}

// NewIngest checks cfg and returns an Ingest; Start subscribes and starts it.
func NewIngest(cfg IngestConfig) (*Ingest, error) {
	if cfg.Store == nil || cfg.Link == nil {
		return nil, errors.New("fieldnodes: IngestConfig needs Store and Link")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "aghali"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 20 * time.Millisecond
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = 20 * cfg.BatchSize
	}
	if cfg.Committers <= 0 {
		cfg.Committers = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxFuture <= 0 {
		cfg.MaxFuture = 24 * time.Hour
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(5*time.Second, cfg.RetryMin)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.NodeCacheTTL <= 0 {
		cfg.NodeCacheTTL = time.Minute
	}
	g := &Ingest{
		cfg:      cfg,
		store:    cfg.Store,
		log:      cfg.Logger.With("component", "ingest"),
		metrics:  newIngestMetrics(),
		in:       make(chan *item, cfg.MaxBuffered),
		ctrl:     make(chan mqttlink.Message, 1024),
		batches:  make(chan []*item),
		stopping: make(chan struct{}),
		drain:    make(chan struct{}),
		nodes:    map[string]nodeEntry{},
	}
	if cfg.Registerer != nil {
		if err := g.metrics.register(cfg.Registerer, func() float64 { return float64(len(g.in)) }); err != nil {
			return nil, fmt.Errorf("fieldnodes: register ingest metrics: %w", err)
		}
	}
	return g, nil
}

// Start subscribes to {prefix}/nodes/+/up (and, with a ControllerHandler, to
// {prefix}/controllers/+/ack and .../state) and runs until Stop. Its lifetime is Stop's to end,
// not ctx's: a process that cancels its root context on SIGTERM and then calls Stop still gets
// the graceful drain.
func (g *Ingest) Start(ctx context.Context) error {
	if g.ctx != nil {
		return errors.New("fieldnodes: Ingest already started")
	}
	g.ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	g.wg.Add(1 + g.cfg.Committers)
	go g.batcher()
	for range g.cfg.Committers {
		go g.committer()
	}
	if g.cfg.Controllers != nil {
		g.wg.Add(1)
		go g.controllerLoop()
	}
	subs := map[string]func(mqttlink.Message){g.cfg.Prefix + "/nodes/+/up": g.onUplink}
	if g.cfg.Controllers != nil {
		subs[g.cfg.Prefix+"/controllers/+/ack"] = g.onController
		subs[g.cfg.Prefix+"/controllers/+/state"] = g.onController
	}
	for filter, handler := range subs {
		if err := g.cfg.Link.Subscribe(filter, handler); err != nil {
			g.Stop()
			return fmt.Errorf("ingest: subscribe %s: %w", filter, err)
		}
	}
	return nil
}

// Stop stops taking messages, commits and acknowledges what is buffered (trying for up to
// DrainTimeout), and returns when everything has stopped. Messages that arrive meanwhile are
// left unacknowledged for the broker to redeliver. Start and Stop are not to be called
// concurrently.
func (g *Ingest) Stop() {
	if g.ctx == nil {
		return
	}
	g.stopOnce.Do(func() {
		close(g.stopping) // handlers waiting for room in the buffer give up (without acking)
		g.gate.Lock()     // wait for handlers still handing over a message
		g.stopped = true
		g.gate.Unlock()
		close(g.drain)
		timer := time.AfterFunc(g.cfg.DrainTimeout, g.cancel)
		g.wg.Wait()
		timer.Stop()
		g.cancel()
	})
}

// onUplink is the link's handler for node uplinks: it decodes, then hands the message to the
// batcher, waiting while the buffer is full (back-pressure on the link).
func (g *Ingest) onUplink(m mqttlink.Message) {
	if m.Received.IsZero() {
		m.Received = g.cfg.Now()
	}
	it := &item{msg: m}
	kind, uid := parseTopic(g.cfg.Prefix, m.Topic)
	if kind != topicUplink {
		it.rej = &rejection{RejectTopic, "not " + g.cfg.Prefix + "/nodes/{uid}/up with a valid uid"}
	} else {
		it.uid = uid
		it.meas, it.rej = decodeUplink(uid, m.Payload, m.Received, g.cfg.MaxFuture)
	}
	g.gate.RLock()
	defer g.gate.RUnlock()
	if g.stopped {
		return
	}
	select {
	case g.in <- it:
		g.metrics.received.WithLabelValues("uplink").Inc()
	case <-g.stopping:
	}
}

func (g *Ingest) onController(m mqttlink.Message) {
	if m.Received.IsZero() {
		m.Received = g.cfg.Now()
	}
	g.gate.RLock()
	defer g.gate.RUnlock()
	if g.stopped {
		return
	}
	select {
	case g.ctrl <- m:
		g.metrics.received.WithLabelValues("controller").Inc()
	case <-g.stopping:
	}
}

// batcher groups uplinks into batches of about BatchSize readings, or whatever arrived within
// FlushInterval of a batch's first message.
func (g *Ingest) batcher() {
	defer g.wg.Done()
	defer close(g.batches)
	var (
		batch    []*item
		readings int
		timer    = time.NewTimer(time.Hour)
		timerOn  bool
	)
	timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			g.batches <- batch
		}
		batch, readings = nil, 0
		if timerOn {
			timer.Stop()
			timerOn = false
		}
	}
	add := func(it *item) {
		batch = append(batch, it)
		readings += len(it.meas)
		if readings >= g.cfg.BatchSize {
			flush()
		} else if !timerOn {
			timer.Reset(g.cfg.FlushInterval)
			timerOn = true
		}
	}
	for {
		select {
		case it := <-g.in:
			add(it)
		case <-timer.C:
			timerOn = false
			flush()
		case <-g.drain:
			for {
				select {
				case it := <-g.in:
					add(it)
				default:
					flush()
					return
				}
			}
		}
	}
}

func (g *Ingest) committer() {
	defer g.wg.Done()
	for batch := range g.batches {
		g.commit(batch)
	}
}

// commit stores what a batch carried (readings, pending devices, rejections), then
// acknowledges its messages, then tells the listener. Each step is retried until it succeeds
// or the ingest's context ends; nothing is acknowledged that is not committed.
func (g *Ingest) commit(batch []*item) {
	ctx := g.ctx
	start := time.Now()

	// Which nodes are these?
	var uids []string
	for _, it := range batch {
		if it.rej == nil {
			uids = append(uids, it.uid)
		}
	}
	var ids map[string]int64
	if err := g.retry(ctx, "look up nodes", func() (err error) {
		ids, err = g.nodeIDs(ctx, uids)
		return err
	}); err != nil {
		g.abandon(batch, err)
		return
	}

	var readings []Reading
	var pending, rejected, stored []*item
	for _, it := range batch {
		switch {
		case it.rej != nil:
			rejected = append(rejected, it)
		case ids[it.uid] == 0:
			pending = append(pending, it)
		default:
			id := ids[it.uid]
			for _, m := range it.meas {
				readings = append(readings, Reading{NodeID: id, Metric: m.Metric, TS: m.Time, Value: m.Value})
			}
			stored = append(stored, it)
		}
	}

	inserted, err := g.insert(ctx, readings)
	var ve *ValidationError
	if errors.As(err, &ve) {
		// Something in the batch is refused for good: find out which messages, one by one.
		inserted, stored, rejected, err = g.insertEach(ctx, ids, stored, rejected)
	}
	if err != nil {
		g.abandon(batch, err)
		return
	}
	for _, it := range pending {
		if err := g.retry(ctx, "record pending device", func() error {
			return g.store.RecordPending(ctx, SourceMQTT, it.uid, it.msg.Topic, it.msg.Payload, it.msg.Received)
		}); err != nil {
			g.abandon(batch, err)
			return
		}
	}
	for _, it := range rejected {
		if err := g.retry(ctx, "record rejected message", func() error {
			return g.store.reject(ctx, it.msg.Received, it.msg.Topic, it.msg.Payload, it.rej.reason, it.rej.detail)
		}); err != nil {
			g.abandon(batch, err)
			return
		}
	}

	for _, it := range batch {
		it.msg.Ack()
	}

	g.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	g.metrics.readingsStored.Add(float64(inserted))
	g.metrics.readingsDuplicate.Add(float64(len(readings) - inserted))
	g.metrics.messages.WithLabelValues("stored").Add(float64(len(stored)))
	g.metrics.messages.WithLabelValues("pending").Add(float64(len(pending)))
	g.metrics.messages.WithLabelValues("rejected").Add(float64(len(rejected)))
	for _, it := range rejected {
		g.metrics.rejections.WithLabelValues(it.rej.reason).Inc()
		g.log.Warn("message rejected", "topic", it.msg.Topic, "reason", it.rej.reason, "detail", it.rej.detail)
	}
	for _, it := range pending {
		g.log.Info("message from an unregistered device", "uid", it.uid, "topic", it.msg.Topic)
	}

	if g.cfg.Listener != nil && len(stored) > 0 {
		nodeIDs := make([]int64, 0, len(stored))
		for _, it := range stored {
			nodeIDs = append(nodeIDs, ids[it.uid])
		}
		slices.Sort(nodeIDs)
		g.cfg.Listener.ReadingsCommitted(ctx, slices.Compact(nodeIDs))
	}
}

// insert commits readings, retrying on failure; a *ValidationError is returned at once.
func (g *Ingest) insert(ctx context.Context, readings []Reading) (int, error) {
	var inserted int
	err := g.retry(ctx, "commit readings", func() (err error) {
		inserted, err = g.store.InsertReadings(ctx, readings)
		return err
	})
	return inserted, err
}

// insertEach commits message by message after the batch as a whole was refused, moving the
// refused messages to the rejected ones.
func (g *Ingest) insertEach(ctx context.Context, ids map[string]int64, stored, rejected []*item) (int, []*item, []*item, error) {
	var total int
	var ok []*item
	for _, it := range stored {
		rs := make([]Reading, 0, len(it.meas))
		for _, m := range it.meas {
			rs = append(rs, Reading{NodeID: ids[it.uid], Metric: m.Metric, TS: m.Time, Value: m.Value})
		}
		n, err := g.insert(ctx, rs)
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			it.rej = &rejection{RejectRefused, ve.Error()}
			rejected = append(rejected, it)
		case err != nil:
			return 0, nil, nil, err
		default:
			total += n
			ok = append(ok, it)
		}
	}
	return total, ok, rejected, nil
}

// retry runs fn until it succeeds, returns a *ValidationError (not worth retrying), or ctx ends.
func (g *Ingest) retry(ctx context.Context, what string, fn func() error) error {
	pause := g.cfg.RetryMin
	for {
		err := fn()
		var ve *ValidationError
		if err == nil || errors.As(err, &ve) {
			return err
		}
		g.metrics.commitErrors.Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		g.log.Error("ingest commit failed; retrying", "what", what, "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (gave up: %v)", what, err, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, g.cfg.RetryMax)
	}
}

// abandon leaves a batch unacknowledged: the broker redelivers it when the session resumes.
func (g *Ingest) abandon(batch []*item, err error) {
	g.metrics.messages.WithLabelValues("abandoned").Add(float64(len(batch)))
	g.log.Error("ingest gave up on a batch; its messages stay unacknowledged for redelivery",
		"messages", len(batch), "err", err)
}

// nodeIDs maps uids to node ids, from the cache or in one query for the rest. Unknown uids
// are absent (and not cached, so a node registered a moment later is recognised at once).
func (g *Ingest) nodeIDs(ctx context.Context, uids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(uids))
	now := g.cfg.Now()
	var missing []string
	g.nodesMu.Lock()
	for _, uid := range uids {
		if e, ok := g.nodes[uid]; ok && now.Before(e.expires) {
			out[uid] = e.id
		} else if _, dup := out[uid]; !dup {
			missing = append(missing, uid)
			out[uid] = 0
		}
	}
	g.nodesMu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	found, err := g.store.nodeIDs(ctx, missing)
	if err != nil {
		return nil, err
	}
	g.nodesMu.Lock()
	defer g.nodesMu.Unlock()
	if len(g.nodes) > 1_000_000 { // a bound, not a policy: a fleet that large restarts with a cold cache
		clear(g.nodes)
	}
	for _, uid := range missing {
		if id, ok := found[uid]; ok {
			out[uid] = id
			g.nodes[uid] = nodeEntry{id: id, expires: now.Add(g.cfg.NodeCacheTTL)}
		} else {
			delete(out, uid)
		}
	}
	return out, nil
}

// controllerLoop hands controller messages to the ControllerHandler one at a time. A message is
// acknowledged once the handler returned nil (or once it is recorded as rejected); after a
// handler error it stays unacknowledged, so the broker redelivers it when the session resumes.
func (g *Ingest) controllerLoop() {
	defer g.wg.Done()
	for {
		select {
		case m := <-g.ctrl:
			g.handleController(m)
		case <-g.drain:
			for {
				select {
				case m := <-g.ctrl:
					g.handleController(m)
				default:
					return
				}
			}
		}
	}
}

func (g *Ingest) handleController(m mqttlink.Message) {
	ctx := g.ctx
	kind, uid := parseTopic(g.cfg.Prefix, m.Topic)
	var err error
	switch kind {
	case topicAck:
		var ack ControllerAck
		if ack, err = decodeAck(uid, m.Payload, m.Received); err == nil {
			err = g.cfg.Controllers.HandleAck(ctx, ack)
			g.controllerDone(m, "ack", err)
			return
		}
	case topicState:
		var st ControllerState
		if st, err = decodeState(uid, m.Payload, m.Received); err == nil {
			err = g.cfg.Controllers.HandleState(ctx, st)
			g.controllerDone(m, "state", err)
			return
		}
	default:
		err = errors.New("not " + g.cfg.Prefix + "/controllers/{uid}/ack or /state with a valid uid")
	}
	reason := RejectInvalid
	var ce *codec.Error
	if errors.As(err, &ce) && ce.Reason == codec.ReasonSyntax {
		reason = RejectMalformed
	} else if kind == topicOther {
		reason = RejectTopic
	}
	if rerr := g.retry(ctx, "record rejected message", func() error {
		return g.store.reject(ctx, m.Received, m.Topic, m.Payload, reason, err.Error())
	}); rerr != nil {
		g.log.Error("cannot record a rejected controller message; leaving it unacknowledged", "topic", m.Topic, "err", rerr)
		return
	}
	m.Ack()
	g.metrics.messages.WithLabelValues("rejected").Inc()
	g.metrics.rejections.WithLabelValues(reason).Inc()
	g.log.Warn("controller message rejected", "topic", m.Topic, "reason", reason, "detail", err.Error())
}

func (g *Ingest) controllerDone(m mqttlink.Message, what string, err error) {
	if err != nil {
		g.metrics.messages.WithLabelValues("controller_failed").Inc()
		g.log.Error("controller "+what+" handler failed; message left unacknowledged for redelivery", "topic", m.Topic, "err", err)
		return
	}
	m.Ack()
	g.metrics.messages.WithLabelValues("controller_" + what).Inc()
}
