package fieldnodes

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aghali/aghali/fieldnodes/lorawan"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// Subscriber is the part of an MQTT link the ingest uses; *mqttlink.Link satisfies it.
type Subscriber interface {
	Subscribe(filter string, handler func(mqttlink.Message)) error
}

// Network servers the ingest integrates with (Integration.Network, pending devices' source).
const (
	NetworkChirpStack = "chirpstack"
	NetworkTTS        = "tts"
)

// Default topic templates of the network servers (docs/lorawan.md).
const (
	DefaultChirpStackTopic = "application/{application_id}/device/{dev_eui}/event/{event}"
	DefaultTTSTopic        = "v3/{application_id}@{tenant_id}/devices/{device_id}/{event}"
)

// Integration is a LoRaWAN network server whose MQTT messages the ingest takes.
type Integration struct {
	// Network: NetworkChirpStack or NetworkTTS.
	Network string
	// Topic is the template of the topics it publishes on (DefaultChirpStackTopic,
	// DefaultTTSTopic); its last level must be {event}.
	Topic string
	// Link receives them; nil: IngestConfig.Link (the network server publishes to the same
	// broker as the native devices).
	Link Subscriber
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
	// Integrations are the LoRaWAN network servers to take messages from; none by default.
	Integrations []Integration
	// BatchSize is how many readings make a batch that is committed at once; default 4000.
	BatchSize int
	// FlushInterval is the longest a message waits for its batch to fill; default 20 ms.
	FlushInterval time.Duration
	// MaxBuffered is how many messages may wait for a batch; when full the ingest stops taking
	// messages (the broker queues them, or the embedded broker stops reading from the
	// devices). Default 5 × BatchSize.
	MaxBuffered int
	// Committers is how many batches may be committed at once; default 2.
	Committers int
	// MaxUpkeep bounds the node upkeep (latest values, last seen, link figures) waiting to be
	// written behind the commits, in (node, metric) and node entries; when full, commits wait.
	// Default 500,000.
	MaxUpkeep int
	// DedupWindow: a LoRaWAN uplink with the frame counter and payload of one taken from the
	// same node within this window is a copy (another gateway's, another network server's, a
	// redelivery) and adds nothing. Default 10 minutes.
	DedupWindow time.Duration
	// Listener is told which nodes in irrigation zones got readings, as soon as they commit;
	// may be nil.
	Listener ReadingsListener
	// Controllers takes controller acks and states; nil: controller topics are not subscribed.
	Controllers ControllerHandler
	// LoRaWANControllers takes the network-server events of LoRaWAN controllers (their acks
	// and states, the fate of their downlinks) instead of the nodes; nil: every network-server
	// event is a node's.
	LoRaWANControllers LoRaWANControllerHandler
	// ControllerRefresh is how often the DevEUIs of LoRaWAN controllers are read again (they
	// are read only with Integrations and LoRaWANControllers); default 5 s. Until then, a
	// controller registered meanwhile is taken for an unknown device.
	ControllerRefresh time.Duration
	// Logger; default: discard.
	Logger *slog.Logger
	// Registerer gets the ingest's Prometheus metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Now is the clock used when a message carries no receive time, and for the caches;
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
	// NodeCacheTTL is how long a uid's or DevEUI's node is remembered; default 1 minute.
	NodeCacheTTL time.Duration
	// RepairEvery is how often node upkeep left by a crashed ingest (of any instance) is
	// repaired; default 1 minute. Start repairs once first.
	RepairEvery time.Duration
}

// Ingest is the pipeline from MQTT messages to committed readings: it decodes node uplinks and
// network-server events, batches their readings across messages, commits each batch, and only
// then acknowledges the batch's messages (in the order they came). The node upkeep (latest
// values, last seen, health and link figures) is written just behind the commits, coalesced.
// The ReadingsListener hears of the nodes in irrigation zones at their readings' commit.
// Controller acks and states go to the
// ControllerHandler, and network-server events of a LoRaWAN controller's DevEUI to the
// LoRaWANControllerHandler; they are acknowledged once handled.
//
// Besides the MQTT subscriptions, an embedded broker may hand messages to Deliver directly
// (see Wants), so that a device's publish is acknowledged only once it is committed.
type Ingest struct {
	cfg     IngestConfig
	store   *Store
	log     *slog.Logger
	metrics ingestMetrics
	routes  []route

	in      chan *item   // uplinks waiting for a batch
	ctrl    chan ctrlMsg // controller messages waiting for the handler
	batches chan *batch  // batches waiting for a committer

	gate     sync.RWMutex  // handlers hold it shared while handing over a message; Stop exclusively
	stopped  bool          // under gate
	ready    chan struct{} // closed by Start: messages delivered earlier wait for it
	stopOnce sync.Once
	stopping chan struct{} // closed by Stop: handlers stop waiting for room
	drain    chan struct{} // closed by Stop once no handler hands over any more

	ctx    context.Context // commits and handlers; ends DrainTimeout after Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	acks   ackTurns
	upkeep *upkeepWriter
	upWG   sync.WaitGroup
	upStop context.CancelFunc

	nodes  nodeCache
	frames frameTracker
	ctlEUI atomic.Pointer[map[string]struct{}] // DevEUIs of LoRaWAN controllers
}

// route is a topic template the ingest takes, with how to handle what matches it.
type route struct {
	network  string
	template *lorawan.Template
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
		cfg.BatchSize = 4000
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 20 * time.Millisecond
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = 5 * cfg.BatchSize
	}
	if cfg.Committers <= 0 {
		cfg.Committers = 2
	}
	if cfg.MaxUpkeep <= 0 {
		cfg.MaxUpkeep = 500_000
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = 10 * time.Minute
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
	if cfg.RepairEvery <= 0 {
		cfg.RepairEvery = time.Minute
	}
	if cfg.ControllerRefresh <= 0 {
		cfg.ControllerRefresh = 5 * time.Second
	}
	g := &Ingest{
		cfg:      cfg,
		store:    cfg.Store,
		log:      cfg.Logger.With("component", "ingest"),
		metrics:  newIngestMetrics(),
		in:       make(chan *item, cfg.MaxBuffered),
		ctrl:     make(chan ctrlMsg, 1024),
		batches:  make(chan *batch),
		stopping: make(chan struct{}),
		drain:    make(chan struct{}),
		ready:    make(chan struct{}),
		nodes:    nodeCache{ttl: cfg.NodeCacheTTL, entries: map[nodeKey]nodeEntry{}},
		frames:   frameTracker{window: cfg.DedupWindow, seed: maphash.MakeSeed(), nodes: map[int64]*frames{}},
	}
	g.acks.cond = sync.NewCond(&g.acks.mu)
	seen := map[string]bool{}
	for _, in := range cfg.Integrations {
		if in.Network != NetworkChirpStack && in.Network != NetworkTTS {
			return nil, fmt.Errorf("fieldnodes: integration %q: want %s or %s", in.Network, NetworkChirpStack, NetworkTTS)
		}
		t, err := lorawan.ParseTemplate(in.Topic)
		if err != nil {
			return nil, fmt.Errorf("fieldnodes: %s integration: %w", in.Network, err)
		}
		if seen[t.Filter()] {
			return nil, fmt.Errorf("fieldnodes: %s integration: topic %s is taken by another integration", in.Network, t)
		}
		seen[t.Filter()] = true
		g.routes = append(g.routes, route{network: in.Network, template: t})
	}
	g.upkeep = newUpkeepWriter(cfg.Store, g.log, cfg.MaxUpkeep, cfg.RetryMin, cfg.RetryMax,
		func() { g.metrics.commitErrors.Inc() })
	if cfg.Registerer != nil {
		if err := g.metrics.register(cfg.Registerer, func() float64 { return float64(len(g.in)) }); err != nil {
			return nil, fmt.Errorf("fieldnodes: register ingest metrics: %w", err)
		}
	}
	return g, nil
}

// Start repairs node upkeep a crashed ingest left behind, subscribes to {prefix}/nodes/+/up,
// the integrations' topics and (with a ControllerHandler) {prefix}/controllers/+/ack and
// .../state, and runs until Stop. Its lifetime is Stop's to end, not ctx's: a process that
// cancels its root context on SIGTERM and then calls Stop still gets the graceful drain.
func (g *Ingest) Start(ctx context.Context) error {
	if g.ctx != nil {
		return errors.New("fieldnodes: Ingest already started")
	}
	if _, err := g.store.RepairUpkeep(ctx, 0); err != nil {
		g.log.Error("node upkeep repair failed; retried later", "err", err)
	}
	g.ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	upCtx, upStop := context.WithCancel(context.WithoutCancel(ctx))
	g.upStop = upStop
	g.upWG.Add(2)
	go func() { defer g.upWG.Done(); g.upkeep.run(upCtx, g.ctx) }()
	go func() { defer g.upWG.Done(); g.repairLoop(upCtx) }()
	if len(g.routes) > 0 && g.cfg.LoRaWANControllers != nil {
		g.refreshControllerEUIs(ctx)
		g.upWG.Add(1)
		go func() { defer g.upWG.Done(); g.controllerEUILoop(upCtx) }()
	}
	g.wg.Add(1 + g.cfg.Committers)
	go g.batcher()
	for range g.cfg.Committers {
		go g.committer()
	}
	if g.cfg.Controllers != nil || g.cfg.LoRaWANControllers != nil {
		g.wg.Add(1)
		go g.controllerLoop()
	}
	close(g.ready)

	type sub struct {
		link    Subscriber
		filter  string
		handler func(mqttlink.Message)
	}
	subs := []sub{{g.cfg.Link, g.cfg.Prefix + "/nodes/+/up", g.onUplink}}
	if g.cfg.Controllers != nil {
		subs = append(subs, sub{g.cfg.Link, g.cfg.Prefix + "/controllers/+/ack", g.onController},
			sub{g.cfg.Link, g.cfg.Prefix + "/controllers/+/state", g.onController})
	}
	for i, in := range g.cfg.Integrations {
		link := in.Link
		if link == nil {
			link = g.cfg.Link
		}
		r := g.routes[i]
		subs = append(subs, sub{link, r.template.Filter(), func(m mqttlink.Message) { g.onNetworkServer(r, m) }})
	}
	for _, s := range subs {
		if err := s.link.Subscribe(s.filter, s.handler); err != nil {
			g.Stop()
			return fmt.Errorf("ingest: subscribe %s: %w", s.filter, err)
		}
	}
	return nil
}

func (g *Ingest) repairLoop(ctx context.Context) {
	every(ctx, g.cfg.RepairEvery, func() {
		// Another instance's rows are its own for a while: it deletes them within moments.
		if _, err := g.store.RepairUpkeep(ctx, 30*time.Second); err != nil && ctx.Err() == nil {
			g.log.Error("node upkeep repair failed", "err", err)
		}
	})
}

// Stop stops taking messages, commits and acknowledges what is buffered (trying for up to
// DrainTimeout), writes the node upkeep, and returns when everything has stopped. Messages that
// arrive meanwhile are left unacknowledged for the broker (or device) to deliver again. Start
// and Stop are not to be called concurrently.
func (g *Ingest) Stop() {
	g.stopOnce.Do(func() {
		close(g.stopping) // handlers waiting for room in the buffer give up (without acking)
		if g.ctx == nil {
			return // never started
		}
		g.gate.Lock() // wait for handlers still handing over a message
		g.stopped = true
		g.gate.Unlock()
		close(g.drain)
		timer := time.AfterFunc(g.cfg.DrainTimeout, g.cancel)
		g.wg.Wait() // batcher and committers: every batch committed (or given up)
		g.upStop()  // the upkeep writer writes what is left (until DrainTimeout)
		g.upWG.Wait()
		timer.Stop()
		g.cancel()
	})
}

// Wants reports whether the ingest takes messages on topic: an embedded broker hands those to
// Deliver instead of routing them through a subscription.
func (g *Ingest) Wants(topic string) bool {
	if kind, _ := parseTopic(g.cfg.Prefix, topic); kind == topicUplink {
		return true
	}
	for _, r := range g.routes {
		if vars, ok := r.template.Match(topic); ok {
			return !downlinkRequest(r.network, vars["event"])
		}
	}
	return false
}

// downlinkRequest reports whether a network server's topic carries an application's request to
// it (a downlink queued by Aghali or another application) rather than one of its events: those
// are left to the network server's own subscription. They may fit an integration's template
// (TTS's v3/.../{event} takes down/push).
func downlinkRequest(network, event string) bool {
	switch network {
	case NetworkTTS:
		return event == "down/push" || event == "down/replace"
	case NetworkChirpStack:
		return strings.HasPrefix(event, "command/")
	}
	return false
}

// Deliver takes a message the way a subscription would, waiting while the buffer is full. A
// message delivered before Start or after Stop is left unacknowledged.
func (g *Ingest) Deliver(m mqttlink.Message) {
	if kind, _ := parseTopic(g.cfg.Prefix, m.Topic); kind == topicUplink {
		g.onUplink(m)
		return
	}
	for _, r := range g.routes {
		if _, ok := r.template.Match(m.Topic); ok {
			g.onNetworkServer(r, m)
			return
		}
	}
	g.hand(&item{msg: m, rej: &rejection{RejectTopic, "not a topic the ingest takes"}})
}

// onUplink is the link's handler for native node uplinks: it decodes, then hands the message
// to the batcher.
func (g *Ingest) onUplink(m mqttlink.Message) {
	if m.Received.IsZero() {
		m.Received = g.cfg.Now()
	}
	it := &item{msg: m, source: SourceMQTT, event: "up"}
	kind, uid := parseTopic(g.cfg.Prefix, m.Topic)
	if kind != topicUplink {
		it.rej = &rejection{RejectTopic, "not " + g.cfg.Prefix + "/nodes/{uid}/up with a valid uid"}
	} else {
		it.key = nodeKey{uid: uid}
		it.meas, it.rej = decodeUplink(uid, m.Payload, m.Received, g.cfg.MaxFuture)
	}
	g.hand(it)
}

// hand gives it to the batcher, waiting while the buffer is full (back-pressure on whoever
// delivers), and, for a message delivered before Start, until Start.
func (g *Ingest) hand(it *item) {
	select {
	case <-g.ready:
	case <-g.stopping:
		return
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
	g.toController(ctrlMsg{msg: m})
}

// toController gives a controller message to the controller loop, waiting while its queue is
// full, and, for a message delivered before Start, until Start.
func (g *Ingest) toController(cm ctrlMsg) {
	select {
	case <-g.ready:
	case <-g.stopping:
		return
	}
	g.gate.RLock()
	defer g.gate.RUnlock()
	if g.stopped {
		return
	}
	select {
	case g.ctrl <- cm:
		g.metrics.received.WithLabelValues("controller").Inc()
	case <-g.stopping:
	}
}

// batch is what the batcher hands a committer: messages and their place in the ack order.
type batch struct {
	seq   uint64
	items []*item
}

// batcher groups uplinks into batches of about BatchSize readings, or whatever arrived within
// FlushInterval of a batch's first message.
func (g *Ingest) batcher() {
	defer g.wg.Done()
	defer close(g.batches)
	var (
		items    []*item
		readings int
		seq      uint64
		timer    = time.NewTimer(time.Hour)
		timerOn  bool
	)
	timer.Stop()
	flush := func() {
		if len(items) > 0 {
			g.batches <- &batch{seq: seq, items: items}
			seq++
		}
		items, readings = nil, 0
		if timerOn {
			timer.Stop()
			timerOn = false
		}
	}
	add := func(it *item) {
		items = append(items, it)
		readings += it.weight()
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
	for b := range g.batches {
		g.commit(b)
	}
}

// ackTurns makes batches acknowledge their messages in the order the batches were made, so that
// a device sees its PUBACKs in the order it published (MQTT 3.1.1 section 4.6), although
// batches commit concurrently.
type ackTurns struct {
	mu   sync.Mutex
	cond *sync.Cond
	next uint64
}

// wait blocks until it is batch seq's turn.
func (a *ackTurns) wait(seq uint64) {
	a.mu.Lock()
	for a.next != seq {
		a.cond.Wait()
	}
	a.mu.Unlock()
}

// done passes the turn on.
func (a *ackTurns) done() {
	a.mu.Lock()
	a.next++
	a.cond.Broadcast()
	a.mu.Unlock()
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
