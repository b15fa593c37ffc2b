package mqttlink

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// bufferedConn is the link's network connection: reads go through a buffer (paho reads a packet
// a few bytes at a time), and writes are gathered by a goroutine of their own, so that the
// acknowledgements of a committed batch (a PUBACK each) leave in a few system calls rather than
// one each. A Write returns once its bytes are queued; a failed write fails the Writes after it
// and closes the connection, which paho notices as a lost connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	err     error
	closed  bool
	done    chan struct{}
}

// maxQueued bounds the bytes waiting to be written; a Write beyond it waits.
const maxQueued = 1 << 20

func newBufferedConn(c net.Conn) *bufferedConn {
	b := &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.flusher()
	return b
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *bufferedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) >= maxQueued && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return 0, net.ErrClosed
	}
	b.pending = append(b.pending, p...)
	b.cond.Broadcast()
	return len(p), nil
}

func (b *bufferedConn) flusher() {
	defer close(b.done)
	b.mu.Lock()
	for {
		for len(b.pending) == 0 && !b.closed {
			b.cond.Wait()
		}
		if len(b.pending) == 0 || b.err != nil { // closed, and everything written
			b.mu.Unlock()
			return
		}
		out := b.pending
		b.pending = b.spare[:0]
		b.cond.Broadcast() // room for waiting writers
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.spare = out[:0]
		if err != nil {
			b.err = err
			b.pending = nil
			b.cond.Broadcast()
			_ = b.Conn.Close()
		}
	}
}

// Close writes what is queued (for up to a second) and closes the connection.
func (b *bufferedConn) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.done
		return nil
	}
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	_ = b.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	<-b.done
	return b.Conn.Close()
}

// dial opens a buffered connection for tcp:// and ssl:// brokers.
func dial(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var c net.Conn
	var err error
	if uri.Scheme == "ssl" {
		c, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
	} else {
		c, err = d.Dial("tcp", uri.Host)
	}
	if err != nil {
		return nil, err
	}
	return newBufferedConn(c), nil
}
