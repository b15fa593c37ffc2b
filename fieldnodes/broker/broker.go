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
	if cfg.SessionExpiry <= 0 {
		cfg.SessionExpiry = 7 * 24 * time.Hour
	}
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("broker: internal credential: %w", err)
	}
	b := &Broker{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "mqtt-broker"),
		internal:  hex.EncodeToString(pw),
		grants:    map[string]*grant{},
		internIDs: map[string]bool{},
	}
	b.metrics = newMetrics()
	if cfg.Registerer != nil {
		if err := b.metrics.register(cfg.Registerer, b.clientsConnected); err != nil {
			return nil, fmt.Errorf("broker: register metrics: %w", err)
		}
	}
	return b, nil
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
	if err := srv.Serve(); err != nil {
		b.cancel()
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.mu.Lock()
	b.srv, b.tcp = srv, tcp
	b.mu.Unlock()
	b.log.Info("MQTT broker listening", "addr", tcp.Address(), "prefix", b.cfg.Prefix)
	return nil
}

// Stop disconnects every client and closes the listener.
func (b *Broker) Stop() {
	if b.srv == nil {
		return
	}
	_ = b.srv.Close()
	b.cancel()
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
