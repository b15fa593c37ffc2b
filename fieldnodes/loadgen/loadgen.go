// Package loadgen publishes MQTT QoS 1 messages fast, for benchmarks and crash tests
// (`aghali bench ingest`). A Publisher is a minimal MQTT 3.1.1 client that keeps up to Window
// publishes in flight on one connection and, when the connection drops, reconnects and
// publishes every message not yet acknowledged again (with DUP set), as a device with a
// persistent session must: so a broker or server killed mid-run loses nothing that a correct
// server has not acknowledged.
//
// It is a load generator, not a device library: no QoS 2, no subscriptions, no TLS; it exists
// so that the machine's CPU goes to the server under test rather than to the client (paho costs
// several times more per message).
package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Publisher.
type Config struct {
	// URL of the broker, tcp://host:port (required); user and password may be in it.
	URL string
	// ClientID (required); the session is persistent (clean session off).
	ClientID string
	// Username and Password override the URL's.
	Username, Password string
	// Window is how many publishes may wait for their PUBACK; default 1000, at most 65535.
	Window int
	// KeepAlive; default 60 s.
	KeepAlive time.Duration
	// RetryInterval between connection attempts; default 100 ms.
	RetryInterval time.Duration
	// Logger; default: discard.
	Logger *slog.Logger
}

// Publisher is one MQTT connection publishing at QoS 1.
type Publisher struct {
	cfg  Config
	addr string
	user string
	pass string
	log  *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond // window room, all acked, connection state
	inflight map[uint16]*pending
	order    []uint16 // packet ids in publish order (may hold acked ones; skipped)
	nextID   uint16
	conn     net.Conn
	gen      int // connection generation
	out      []byte
	closed   bool

	published  atomic.Uint64
	acked      atomic.Uint64
	reconnects atomic.Uint64
	wake       chan struct{}
	wg         sync.WaitGroup
}

type pending struct {
	topic   string
	payload []byte
}

// Dial connects (retrying until ctx ends) and starts the publisher.
func Dial(ctx context.Context, cfg Config) (*Publisher, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "tcp" && u.Scheme != "mqtt") {
		return nil, fmt.Errorf("loadgen: URL %q is not tcp://host:port", cfg.URL)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("loadgen: ClientID is required")
	}
	if cfg.Window <= 0 {
		cfg.Window = 1000
	}
	cfg.Window = min(cfg.Window, 65535)
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 60 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{cfg: cfg, addr: u.Host, log: cfg.Logger, inflight: map[uint16]*pending{}, wake: make(chan struct{}, 1)}
	p.user, p.pass = cfg.Username, cfg.Password
	if u.User != nil {
		if p.user == "" {
			p.user = u.User.Username()
		}
		if pw, ok := u.User.Password(); ok && p.pass == "" {
			p.pass = pw
		}
	}
	p.cond = sync.NewCond(&p.mu)
	if err := p.connect(ctx); err != nil {
		return nil, err
	}
	p.wg.Add(1)
	go p.writer()
	return p, nil
}

// connect dials until a CONNACK accepts, then republishes what is in flight.
func (p *Publisher) connect(ctx context.Context) error {
	for {
		c, err := p.handshake(ctx)
		if err == nil {
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				return errors.New("loadgen: closed")
			}
			p.conn = c
			p.gen++
			gen := p.gen
			// Everything unacknowledged goes again, in its order, marked DUP.
			p.out = p.out[:0]
			live := p.order[:0]
			for _, id := range p.order {
				if m, ok := p.inflight[id]; ok {
					p.out = appendPublish(p.out, id, m.topic, m.payload, true)
					live = append(live, id)
				}
			}
			p.order = live
			p.cond.Broadcast()
			p.mu.Unlock()
			p.signal()
			p.wg.Add(1)
			go p.reader(c, gen)
			return nil
		}
		var refused *RefusedError
		if errors.As(err, &refused) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadgen %s: %w (last error: %v)", p.cfg.ClientID, ctx.Err(), err)
		case <-time.After(p.cfg.RetryInterval):
		}
	}
}

// RefusedError is a CONNACK refusing the connection.
type RefusedError struct{ Code byte }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("loadgen: connection refused, code %d", e.Code)
}

func (p *Publisher) handshake(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(connectPacket(p.cfg.ClientID, p.user, p.pass, uint16(p.cfg.KeepAlive/time.Second))); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Time{})
	if ack[0] != 0x20 || ack[1] != 2 {
		c.Close()
		return nil, fmt.Errorf("loadgen: not a CONNACK: % x", ack)
	}
	if ack[3] != 0 {
		c.Close()
		return nil, &RefusedError{Code: ack[3]}
	}
	return c, nil
}

// Publish queues a QoS 1 publish, waiting while Window publishes wait for their PUBACK.
func (p *Publisher) Publish(ctx context.Context, topic string, payload []byte) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	for len(p.inflight) >= p.cfg.Window && !p.closed {
		if ctx.Err() != nil {
			p.mu.Unlock()
			return ctx.Err()
		}
		p.cond.Wait()
	}
	if p.closed {
		p.mu.Unlock()
		return errors.New("loadgen: closed")
	}
	for {
		p.nextID++
		if p.nextID == 0 {
			p.nextID = 1
		}
		if _, used := p.inflight[p.nextID]; !used {
			break
		}
	}
	id := p.nextID
	p.inflight[id] = &pending{topic: topic, payload: payload}
	p.order = append(p.order, id)
	if len(p.order) > 4*p.cfg.Window { // drop acked ids from the front now and then
		live := p.order[:0]
		for _, x := range p.order {
			if _, ok := p.inflight[x]; ok {
				live = append(live, x)
			}
		}
		p.order = live
	}
	if p.conn != nil {
		p.out = appendPublish(p.out, id, topic, payload, false)
	}
	p.mu.Unlock()
	p.published.Add(1)
	p.signal()
	return nil
}

// Wait returns once every published message has been acknowledged, or ctx ends.
func (p *Publisher) Wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.inflight) > 0 && !p.closed {
		if ctx.Err() != nil {
			return fmt.Errorf("loadgen %s: %d unacknowledged: %w", p.cfg.ClientID, len(p.inflight), ctx.Err())
		}
		p.cond.Wait()
	}
	return nil
}

// Stats: messages published, acknowledged, and reconnections so far.
func (p *Publisher) Stats() (published, acked, reconnects uint64) {
	return p.published.Load(), p.acked.Load(), p.reconnects.Load()
}

// Close disconnects (unacknowledged messages are abandoned) and waits for the goroutines.
func (p *Publisher) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	c := p.conn
	p.cond.Broadcast()
	p.mu.Unlock()
	if c != nil {
		_, _ = c.Write([]byte{0xE0, 0}) // DISCONNECT
		c.Close()
	}
	p.signal()
	p.wg.Wait()
}

func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// writer sends what Publish queued, many publishes per system call, and pings when idle.
func (p *Publisher) writer() {
	defer p.wg.Done()
	ping := time.NewTicker(p.cfg.KeepAlive / 2)
	defer ping.Stop()
	var buf []byte
	for {
		pingNow := false
		select {
		case <-p.wake:
		case <-ping.C:
			pingNow = true
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		c := p.conn
		buf, p.out = p.out, buf[:0]
		if pingNow {
			buf = append(buf, 0xC0, 0) // PINGREQ
		}
		p.mu.Unlock()
		if c == nil || len(buf) == 0 {
			continue
		}
		if _, err := c.Write(buf); err != nil {
			c.Close() // the reader sees it and reconnects
		}
	}
}

// reader takes PUBACKs off the connection; when it fails, it reconnects.
func (p *Publisher) reader(c net.Conn, gen int) {
	defer p.wg.Done()
	r := bufio.NewReaderSize(c, 64<<10)
	err := func() error {
		for {
			h, err := r.ReadByte()
			if err != nil {
				return err
			}
			n, err := readLength(r)
			if err != nil {
				return err
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil {
				return err
			}
			if h>>4 == 4 && n >= 2 { // PUBACK
				id := binary.BigEndian.Uint16(body)
				p.mu.Lock()
				if _, ok := p.inflight[id]; ok {
					delete(p.inflight, id)
					p.acked.Add(1)
					p.cond.Broadcast()
				}
				p.mu.Unlock()
			}
		}
	}()
	c.Close()
	p.mu.Lock()
	if p.closed || p.gen != gen {
		p.mu.Unlock()
		return
	}
	p.conn = nil
	p.mu.Unlock()
	p.log.Info("loadgen connection lost; reconnecting", "client_id", p.cfg.ClientID, "err", err)
	p.reconnects.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // Close ends the reconnection attempts
		p.mu.Lock()
		for !p.closed && p.conn == nil {
			p.cond.Wait()
		}
		p.mu.Unlock()
		cancel()
	}()
	if err := p.connect(ctx); err != nil {
		p.log.Info("loadgen gave up reconnecting", "client_id", p.cfg.ClientID, "err", err)
	}
	cancel()
}

func readLength(r *bufio.Reader) (int, error) {
	n, mult := 0, 1
	for i := 0; i < 4; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n += int(b&0x7f) * mult
		if b&0x80 == 0 {
			return n, nil
		}
		mult *= 128
	}
	return 0, errors.New("loadgen: malformed remaining length")
}

func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendPublish(b []byte, id uint16, topic string, payload []byte, dup bool) []byte {
	h := byte(0x32) // PUBLISH, QoS 1
	if dup {
		h |= 0x08
	}
	b = append(b, h)
	b = appendLength(b, 2+len(topic)+2+len(payload))
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint16(b, id)
	return append(b, payload...)
}

func connectPacket(clientID, user, pass string, keepAlive uint16) []byte {
	flags := byte(0) // clean session off: a persistent session
	var body []byte
	body = appendString(body, "MQTT")
	body = append(body, 4) // 3.1.1
	if user != "" {
		flags |= 0x80
		if pass != "" {
			flags |= 0x40
		}
	}
	body = append(body, flags)
	body = binary.BigEndian.AppendUint16(body, keepAlive)
	body = appendString(body, clientID)
	if user != "" {
		body = appendString(body, user)
		if pass != "" {
			body = appendString(body, pass)
		}
	}
	out := []byte{0x10}
	out = appendLength(out, len(body))
	return append(out, body...)
}
