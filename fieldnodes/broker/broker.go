package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// Authenticator checks a device's login. kind is "node" or "controller"; any error refuses the
// login (fieldnodes.Store satisfies it).
type Authenticator interface {
	Authenticate(ctx context.Context, uid, secret string) (kind string, err error)
}

// Device kinds an Authenticator returns.
const (
	KindNode       = "node"
	KindController = "controller"
)

// InternalUser is the user name of the server's own clients. It cannot be a device uid ('$' is
// not allowed in uids).
const InternalUser = "$aghali-server"

// Handoff takes messages straight from the broker instead of through a subscription: the ingest
// of the same process (*fieldnodes.Ingest satisfies it). Deliver may block (back-pressure: the
// publishing client is not read from meanwhile) and calls the message's Ack once what it
// carried is committed; only then does the publisher get its PUBACK.
type Handoff interface {
	Wants(topic string) bool
	Deliver(m mqttlink.Message)
}

// Config configures a Broker. Zero values take the documented defaults.
type Config struct {
	// Listen is the TCP address; default ":1883". ":0" picks a free port (see Addr).
	Listen string
	// Prefix is the topic prefix; default "aghali".
	Prefix string
	// Auth checks device logins (required).
	Auth Authenticator
	// Logger; default: discard.
	Logger *slog.Logger
	// Registerer gets the broker's Prometheus metrics; nil: not registered.
	Registerer prometheus.Registerer
	// AuthTimeout bounds one login check; default 5 s.
	AuthTimeout time.Duration
	// MaxInflight is how many QoS 1/2 messages may wait for a client's acknowledgement,
	// including those queued for a disconnected persistent session; default 65535 (the most
	// MQTT packet ids allow).
	MaxInflight int
	// MaxPendingWrites is the per-client queue of packets waiting to be written to its socket;
	// default 16384.
	MaxPendingWrites int
	// Handoff, when set, takes the QoS 0 and 1 publishes it Wants (node uplinks, network-server
	// events) directly; they are acknowledged to the publisher only once the Handoff acks them,
	// so the broker never holds a message it has acknowledged and could lose. QoS 2 publishes
	// and everything else are routed to subscribers as usual.
	Handoff Handoff
	// AwaitHandoff: the Handoff is set with SetHandoff after Start (a process starts its broker
	// before the ingest that is the Handoff exists). Until it is, publishes of devices and
	// gateways wait for it, at most HandoffWait (default 10 s); then they are left
	// unacknowledged and the client is disconnected, so that it sends them again when it
	// reconnects. Routed to no subscriber yet, they would be acknowledged and lost.
	AwaitHandoff bool
	HandoffWait  time.Duration
	// Gateways are logins (user name → password) of gateways and LoRaWAN network servers: they
	// may publish the uplinks of any node ({prefix}/nodes/+/up) and to GatewayPublish, and
	// subscribe to GatewaySubscribe. Their client id must be the user name or start with it and
	// "-" (several connections: "chirpstack-1", "chirpstack-2").
	Gateways map[string]string
	// GatewayPublish and GatewaySubscribe are topic filters (with + and #) for Gateways, e.g. a
	// network server's event topics and its downlink topics.
	GatewayPublish   []string
	GatewaySubscribe []string
	// InternalPassword is the password of InternalUser; default: random, new at each New (a
	// process restarting its broker without its links passes the one they use).
	InternalPassword string
	// SessionExpiry is how long a disconnected persistent session (and its queue) is kept;
	// default 7 days.
	SessionExpiry time.Duration
}

// Broker is the embedded MQTT broker.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	internal string // password of InternalUser
	metrics  metrics

	mu        sync.RWMutex
	grants    map[string]*grant // by user name, set at login
	internIDs map[string]bool   // client ids the server's own clients used
	srv       *mqtt.Server
	tcp       *listeners.TCP
	acks      *acker
	acksDone  chan struct{}
	handoff   atomic.Pointer[Handoff]
	handedTo  chan struct{} // closed once a Handoff is set
	handOnce  sync.Once
	stopping  chan struct{} // closed when Stop begins
	stopOnce  sync.Once

	ctx    context.Context // ends at Stop; bounds login checks
	cancel context.CancelFunc
}

// New checks cfg and returns a Broker; Start opens its listener.
func New(cfg Config) (*Broker, error) {
	if cfg.Auth == nil {
		return nil, errors.New("broker: Config.Auth is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = ":1883"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "aghali"
	}
	if strings.ContainsAny(cfg.Prefix, "+#") || strings.HasPrefix(cfg.Prefix, "$") || strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("broker: Config.Prefix %q is not a topic prefix", cfg.Prefix)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = 5 * time.Second
	}
	if cfg.MaxInflight <= 0 || cfg.MaxInflight > 65535 {
		cfg.MaxInflight = 65535
	}
	if cfg.MaxPendingWrites <= 0 {
		cfg.MaxPendingWrites = 16384
	}
	for user := range cfg.Gateways {
		if user == "" || user == InternalUser || strings.ContainsAny(user, "+#/") {
			return nil, fmt.Errorf("broker: gateway login %q: not a user name", user)
		}
	}
	for _, f := range append(append([]string(nil), cfg.GatewayPublish...), cfg.GatewaySubscribe...) {
		if !validFilter(f) {
			return nil, fmt.Errorf("broker: gateway topic filter %q is not an MQTT filter", f)
		}
	}
	if cfg.HandoffWait <= 0 {
		cfg.HandoffWait = 10 * time.Second
	}
	if cfg.SessionExpiry <= 0 {
		cfg.SessionExpiry = 7 * 24 * time.Hour
	}
	internal := cfg.InternalPassword
	if internal == "" {
		pw := make([]byte, 32)
		if _, err := rand.Read(pw); err != nil {
			return nil, fmt.Errorf("broker: internal credential: %w", err)
		}
		internal = hex.EncodeToString(pw)
	}
	b := &Broker{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "mqtt-broker"),
		internal:  internal,
		grants:    map[string]*grant{},
		internIDs: map[string]bool{},
		handedTo:  make(chan struct{}),
		stopping:  make(chan struct{}),
	}
	b.metrics = newMetrics()
	b.SetHandoff(cfg.Handoff)
	if cfg.Registerer != nil {
		if err := b.metrics.register(cfg.Registerer, b.clientsConnected); err != nil {
			return nil, fmt.Errorf("broker: register metrics: %w", err)
		}
	}
	return b, nil
}

// SetHandoff sets (or, with nil, removes) the Handoff, also while the broker runs: a process
// starts its broker before the ingest that is the Handoff exists. It replaces Config.Handoff.
func (b *Broker) SetHandoff(h Handoff) {
	if h == nil {
		b.handoff.Store(nil)
		return
	}
	b.handoff.Store(&h)
	b.handOnce.Do(func() { close(b.handedTo) })
}

// awaitHandoff waits until a Handoff has been set (once: one removed later is not waited for)
// and returns the one in use; ok is false after Config.HandoffWait or at Stop.
func (b *Broker) awaitHandoff() (h Handoff, ok bool) {
	t := time.NewTimer(b.cfg.HandoffWait)
	defer t.Stop()
	select {
	case <-b.handedTo:
		return b.currentHandoff(), true
	case <-t.C:
	case <-b.stopping:
	}
	return nil, false
}

// currentHandoff is the Handoff in use, nil when none.
func (b *Broker) currentHandoff() Handoff {
	if p := b.handoff.Load(); p != nil {
		return *p
	}
	return nil
}

// InternalCredentials is the user name and password with which the server's own MQTT clients
// (ingest, command delivery) log in with full access. The password is random per process.
func (b *Broker) InternalCredentials() (user, pass string) { return InternalUser, b.internal }

// Start opens the listener and serves until Stop.
func (b *Broker) Start(ctx context.Context) error {
	if b.srv != nil {
		return errors.New("broker: already started")
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumInflight = uint16(b.cfg.MaxInflight)
	caps.ReceiveMaximum = uint16(b.cfg.MaxInflight)
	caps.MaximumClientWritesPending = int32(b.cfg.MaxPendingWrites)
	caps.MaximumSessionExpiryInterval = uint32(b.cfg.SessionExpiry / time.Second)
	caps.MaximumMessageExpiryInterval = int64(b.cfg.SessionExpiry / time.Second)
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 b.log,
		SysTopicResendInterval: 30,
	})
	if err := srv.AddHook(&hook{b: b}, nil); err != nil {
		return fmt.Errorf("broker: add hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: b.cfg.Listen})
	if err := srv.AddListener(tcp); err != nil {
		return fmt.Errorf("broker: listen on %s: %w", b.cfg.Listen, err)
	}
	b.ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.acks = newAcker(b.log)
	b.acks.written = func(n int) { b.metrics.acksWritten.Add(float64(n)) }
	b.acks.lost = func(n int) { b.metrics.acksLost.Add(float64(n)) }
	b.acksDone = make(chan struct{})
	go func() { defer close(b.acksDone); b.acks.run(b.ctx) }()
	if err := srv.Serve(); err != nil {
		b.cancel()
		<-b.acksDone
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.mu.Lock()
	b.srv, b.tcp = srv, tcp
	b.mu.Unlock()
	b.log.Info("MQTT broker listening", "addr", tcp.Address(), "prefix", b.cfg.Prefix)
	return nil
}

// Stop disconnects every client and closes the listener; later calls do nothing.
func (b *Broker) Stop() {
	b.stopOnce.Do(func() {
		close(b.stopping) // publishes awaiting the Handoff give up
		if b.srv == nil {
			return
		}
		_ = b.srv.Close()
		b.cancel()
		<-b.acksDone
	})
}

// Addr is the address the broker listens on (with the real port when Listen was ":0").
func (b *Broker) Addr() string {
	if b.tcp == nil {
		return b.cfg.Listen
	}
	return b.tcp.Address()
}

// URL is the broker's address as an MQTT URL for a client on this machine
// (tcp://127.0.0.1:port when listening on all interfaces).
func (b *Broker) URL() string {
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil {
		return "tcp://" + b.Addr()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "tcp://" + net.JoinHostPort(host, port)
}

func (b *Broker) clientsConnected() float64 {
	b.mu.RLock()
	srv := b.srv
	b.mu.RUnlock()
	if srv == nil {
		return 0
	}
	return float64(atomic.LoadInt64(&srv.Info.ClientsConnected))
}
