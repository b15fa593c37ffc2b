package mqttlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Config configures a Link. Zero values take the documented defaults.
type Config struct {
	// URL of the broker (required): tcp://[user:pass@]host:port; mqtt:// is the same as tcp://,
	// ssl:// (or mqtts://) uses TLS with the system roots, ws:// and wss:// use WebSockets.
	URL string
	// ClientID (required) names the persistent session: give each process its own, stable
	// across restarts, so it gets back the messages queued for it.
	ClientID string
	// Username and Password override the ones in URL when set.
	Username string
	Password string
	// Logger; default: discard.
	Logger *slog.Logger
	// Shared, when set, turns every subscription into the shared subscription
	// $share/<Shared>/<filter>, so that several processes split the messages between them.
	Shared string
	// Now is the clock stamped on received messages; default time.Now.
	Now func() time.Time
	// KeepAlive between client and broker; default 30 s.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt; default 10 s.
	ConnectTimeout time.Duration
	// RetryInterval is the pause between attempts before the first connection succeeded;
	// default 1 s.
	RetryInterval time.Duration
	// MaxReconnectInterval caps the back-off between reconnection attempts; default 10 s.
	MaxReconnectInterval time.Duration
	// SubscribeTimeout bounds waiting for a SUBACK; default 10 s.
	SubscribeTimeout time.Duration
}

// Message is a received message. Ack must be called once what it carried is safely stored (for
// QoS 0 it does nothing); a message never acknowledged is redelivered when the session resumes.
type Message struct {
	Topic     string
	Payload   []byte
	Received  time.Time
	QoS       byte
	Duplicate bool // the broker says it may have delivered this message before
	Retained  bool
	ack       func()
}

// NewMessage builds a Message whose Ack calls ack (which may be nil); for adapters and tests.
func NewMessage(topic string, payload []byte, received time.Time, ack func()) Message {
	return Message{Topic: topic, Payload: payload, Received: received, QoS: 1, ack: ack}
}

// Ack acknowledges the message to the broker. Calling it more than once is harmless.
func (m Message) Ack() {
	if m.ack != nil {
		m.ack()
	}
}

// Link is one MQTT client connection with its subscriptions.
type Link struct {
	cfg    Config
	log    *slog.Logger
	broker string // URL without user info
	user   string
	pass   string

	mu     sync.Mutex
	client paho.Client
	// connecting is the first connection still being retried in the background. paho reports
	// the connection open before it has resent the session's stored messages; a publish in
	// that moment is sent twice and races paho's own resend, so publishes wait for it.
	connecting paho.Token
	subs       map[string]func(Message) // full filter (with any $share prefix) → handler
	order      []string                 // filters in the order they were added
	ready      bool
	readyCh    chan struct{} // closed when ready becomes true
	lastErr    error
	started    bool
	stopped    bool
	wg         sync.WaitGroup // on-connect handlers in flight
	// reconnects counts reconnection attempts, each made after a lost connection. paho calls
	// that handler in the goroutine that then resumes the session (and completes the tokens of
	// publishes in flight), so a publish whose token completes that way sees it moved; the
	// connection-lost handler runs on a goroutine of its own and may come later.
	reconnects atomic.Uint64
}

// New checks cfg and returns a Link; Start connects it.
func New(cfg Config) (*Link, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("mqttlink: Config.ClientID is required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqttlink: Config.URL %q is not a broker URL such as tcp://host:1883", cfg.URL)
	}
	switch u.Scheme {
	case "tcp", "ssl", "ws", "wss":
	case "mqtt":
		u.Scheme = "tcp"
	case "mqtts", "tls":
		u.Scheme = "ssl"
	default:
		return nil, fmt.Errorf("mqttlink: Config.URL scheme %q: want tcp, mqtt, ssl, mqtts, ws or wss", u.Scheme)
	}
	user, pass := cfg.Username, cfg.Password
	if u.User != nil {
		if user == "" {
			user = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && pass == "" {
			pass = p
		}
		u.User = nil
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 10 * time.Second
	}
	if cfg.SubscribeTimeout <= 0 {
		cfg.SubscribeTimeout = 10 * time.Second
	}
	if strings.ContainsAny(cfg.Shared, "/+#") {
		return nil, fmt.Errorf("mqttlink: Config.Shared %q may not contain / + #", cfg.Shared)
	}
	return &Link{
		cfg:     cfg,
		log:     cfg.Logger.With("mqtt_client", cfg.ClientID),
		broker:  u.String(),
		user:    user,
		pass:    pass,
		subs:    map[string]func(Message){},
		readyCh: make(chan struct{}),
	}, nil
}

// Start connects. It waits for the first attempt: when the broker refuses it (bad credentials,
// client id rejected) Start fails; when the broker cannot be reached, Start returns nil and the
// Link keeps trying in the background. Once connected it reconnects for ever, until Stop.
// Subscriptions are made just after the connection: WaitReady waits for them. A resumed
// session's queued messages may reach the handlers before Start returns.
func (l *Link) Start(ctx context.Context) error {
	l.mu.Lock()
	if l.started {
		l.mu.Unlock()
		return errors.New("mqttlink: already started")
	}
	l.started = true
	l.mu.Unlock()

	first := paho.NewClient(l.options(false))
	l.install(first)
	tok := first.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		first.Disconnect(0)
		return fmt.Errorf("mqtt connect to %s: %w", l.broker, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		rc := tok.(*paho.ConnectToken).ReturnCode()
		switch rc {
		case packets.ErrRefusedBadProtocolVersion, packets.ErrRefusedIDRejected,
			packets.ErrRefusedBadUsernameOrPassword, packets.ErrRefusedNotAuthorised:
			l.setErr(err)
			l.install(nil)
			return fmt.Errorf("mqtt broker %s refused %s: %w", l.broker, l.cfg.ClientID, err)
		}
		l.log.Warn("mqtt broker unreachable; retrying in the background", "broker", l.broker, "err", err)
		l.setErr(err)
		retrying := paho.NewClient(l.options(true))
		if l.install(retrying) {
			tok := retrying.Connect() // completes when connected; OnConnect does the rest
			l.mu.Lock()
			l.connecting = tok
			l.mu.Unlock()
		}
		return nil
	}
	return nil
}

// Stop disconnects (the broker keeps the session and queues for it) and waits for the Link's
// goroutines. Unacknowledged messages are redelivered on the next connection.
func (l *Link) Stop() {
	l.mu.Lock()
	l.stopped = true
	c := l.client
	l.mu.Unlock()
	if c != nil {
		c.Disconnect(250)
		// Disconnect may return before paho's own goroutines are done; wait for them (briefly),
		// so that a stopped Link leaves nothing running.
		for deadline := time.Now().Add(2 * time.Second); c.IsConnected() && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	l.wg.Wait()
	l.setReady(false)
}

// Subscribe adds a subscription at QoS 1 (with the $share prefix when Config.Shared is set) whose
// messages go to handler, one at a time. Made before Start, it is made on connection; made while
// connected, it waits for the SUBACK and fails when the broker refuses it. Every subscription is
// renewed on each reconnection.
func (l *Link) Subscribe(filter string, handler func(Message)) error {
	if filter == "" || handler == nil {
		return errors.New("mqttlink: Subscribe needs a filter and a handler")
	}
	full := filter
	if l.cfg.Shared != "" {
		full = "$share/" + l.cfg.Shared + "/" + filter
	}
	l.mu.Lock()
	if _, ok := l.subs[full]; !ok {
		l.order = append(l.order, full)
	}
	l.subs[full] = handler
	c := l.client
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	c.AddRoute(full, l.route(handler))
	if !c.IsConnectionOpen() {
		return nil // the on-connect handler subscribes
	}
	return l.subscribeRetrying(c, []string{full})
}

// ErrNotConnected: Publish gave up waiting for the Link to be connected (its context ended).
// Nothing was sent; the caller decides whether and when to try again.
var ErrNotConnected = errors.New("mqttlink: not connected")

// ErrConnectionLost: the connection dropped while Publish waited for the broker's
// acknowledgement, so whether the broker has the message is unknown (the session may still
// deliver it). A caller that must be sure sends it again; receivers deduplicate.
var ErrConnectionLost = errors.New("mqttlink: connection lost before the broker acknowledged")

// Publish sends payload to topic. At QoS 1 or 2 it returns after the broker acknowledged it, or
// when ctx ends (the message may then still be delivered later: the session resends it after a
// reconnection). While the Link is (re)connecting it waits for the connection, up to ctx, and
// then fails with ErrNotConnected; it never queues a message in memory for later, since a late
// valve command is worse than a retried one.
func (l *Link) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	l.mu.Lock()
	c := l.client
	l.mu.Unlock()
	if c == nil {
		return fmt.Errorf("publish %s: %w (not started)", topic, ErrNotConnected)
	}
	l.mu.Lock()
	connecting := l.connecting
	l.mu.Unlock()
	if connecting != nil {
		select {
		case <-connecting.Done():
		case <-ctx.Done():
			return fmt.Errorf("publish %s: %w: %w", topic, ErrNotConnected, ctx.Err())
		}
	}
	for !c.IsConnectionOpen() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish %s: %w: %w", topic, ErrNotConnected, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
		l.mu.Lock()
		c = l.client
		l.mu.Unlock()
		if c == nil {
			return fmt.Errorf("publish %s: %w (stopped)", topic, ErrNotConnected)
		}
	}
	reconnects := l.reconnects.Load()
	tok := c.Publish(topic, qos, retained, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
		// paho completes the token without error when it hands the message over to a resumed
		// session after a reconnection, PUBACK or not.
		if qos > 0 && l.reconnects.Load() != reconnects {
			return fmt.Errorf("publish %s: %w", topic, ErrConnectionLost)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", topic, ctx.Err())
	}
}

// WaitReady waits until the Link is connected and every subscription is acknowledged.
func (l *Link) WaitReady(ctx context.Context) error {
	for {
		l.mu.Lock()
		ready, ch, last := l.ready, l.readyCh, l.lastErr
		l.mu.Unlock()
		if ready {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("mqtt %s not ready: %w (last error: %v)", l.cfg.ClientID, ctx.Err(), last)
			}
			return fmt.Errorf("mqtt %s not ready: %w", l.cfg.ClientID, ctx.Err())
		}
	}
}

// Connected reports whether the Link is connected with its subscriptions in place.
func (l *Link) Connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready
}

func (l *Link) options(retry bool) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(l.broker).
		SetClientID(l.cfg.ClientID).
		SetUsername(l.user).
		SetPassword(l.pass).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetStore(newResendStore()).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetResumeSubs(false).
		SetAutoReconnect(true).
		SetConnectRetry(retry).
		SetConnectRetryInterval(l.cfg.RetryInterval).
		SetMaxReconnectInterval(l.cfg.MaxReconnectInterval).
		SetConnectTimeout(l.cfg.ConnectTimeout).
		SetKeepAlive(l.cfg.KeepAlive).
		SetWriteTimeout(l.cfg.ConnectTimeout)
	if u, err := url.Parse(l.broker); err == nil && (u.Scheme == "tcp" || u.Scheme == "ssl") {
		o.SetCustomOpenConnectionFn(dial)
	}
	o.SetOnConnectHandler(l.onConnect)
	o.SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) { l.reconnects.Add(1) })
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		l.setErr(err)
		l.setReady(false)
		l.log.Warn("mqtt connection lost; reconnecting", "broker", l.broker, "err", err)
	})
	o.SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
		if f, ok := n.(paho.ConnectionNotificationFailed); ok {
			l.setErr(f.Reason)
		}
	})
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		// Not acknowledged: it comes back when a handler for it exists.
		l.log.Debug("mqtt message without a handler", "topic", m.Topic())
	})
	return o
}

func (l *Link) onConnect(c paho.Client) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.wg.Add(1)
	filters := append([]string(nil), l.order...)
	l.mu.Unlock()
	defer l.wg.Done()

	l.log.Info("mqtt connected", "broker", l.broker, "subscriptions", len(filters))
	if err := l.subscribeRetrying(c, filters); err != nil {
		l.setErr(err)
		l.log.Error("mqtt subscribe failed", "err", err)
		return
	}
	l.setReady(true)
}

// errIDInUse is a SUBACK refusing a subscription because its packet id is in use.
var errIDInUse = errors.New("packet identifier in use")

// subscribeRetrying subscribes, trying again for up to SubscribeTimeout while the broker says
// the packet id is in use. Some brokers (mochi) share one packet-id space between the messages
// they redeliver on a resumed session and the client's SUBSCRIBE, and refuse the SUBSCRIBE
// while an id collides (reason 0x91); once the redelivered messages are acknowledged it goes
// through. Any other refusal is final.
func (l *Link) subscribeRetrying(c paho.Client, filters []string) error {
	deadline := time.Now().Add(l.cfg.SubscribeTimeout)
	pause := 20 * time.Millisecond
	for {
		err := l.subscribe(c, filters)
		if err == nil || !errors.Is(err, errIDInUse) || time.Now().Add(pause).After(deadline) || !c.IsConnectionOpen() {
			return err
		}
		l.mu.Lock()
		stopped := l.stopped
		l.mu.Unlock()
		if stopped {
			return err
		}
		l.log.Debug("mqtt subscribe refused; retrying", "err", err)
		time.Sleep(pause)
		pause = min(2*pause, time.Second)
	}
}

func (l *Link) subscribe(c paho.Client, filters []string) error {
	if len(filters) == 0 {
		return nil
	}
	want := make(map[string]byte, len(filters))
	for _, f := range filters {
		want[f] = 1
	}
	tok := c.SubscribeMultiple(want, nil)
	if !tok.WaitTimeout(l.cfg.SubscribeTimeout) {
		return fmt.Errorf("subscribe %v: no SUBACK within %v", filters, l.cfg.SubscribeTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe %v: %w", filters, err)
	}
	for f, code := range tok.(*paho.SubscribeToken).Result() {
		if code == 0x91 {
			return fmt.Errorf("subscribe %s: %w", f, errIDInUse)
		}
		if code > 2 {
			return fmt.Errorf("subscribe %s: refused by the broker (code %#x)", f, code)
		}
	}
	return nil
}

// install makes c the Link's client, with a route for every subscription, so that a message
// arriving on a resumed session before the subscriptions are renewed still finds its handler.
// It reports whether the Link is still running.
func (l *Link) install(c paho.Client) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.client = c
	if c != nil {
		for f, h := range l.subs {
			c.AddRoute(f, l.route(h))
		}
	}
	return !l.stopped
}

func (l *Link) route(h func(Message)) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		h(Message{
			Topic:     m.Topic(),
			Payload:   m.Payload(),
			Received:  l.cfg.Now(),
			QoS:       m.Qos(),
			Duplicate: m.Duplicate(),
			Retained:  m.Retained(),
			ack:       m.Ack,
		})
	}
}

func (l *Link) setReady(ready bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ready == l.ready {
		return
	}
	l.ready = ready
	if ready {
		close(l.readyCh)
	} else {
		l.readyCh = make(chan struct{})
	}
}

func (l *Link) setErr(err error) {
	l.mu.Lock()
	l.lastErr = err
	l.mu.Unlock()
}
