package loadgen_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aghali/aghali/fieldnodes/loadgen"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

// cutter forwards TCP connections to a target and can cut them, as a network drop would.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, up)
			c.mu.Unlock()
			c.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer c.wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(in, up)
			go pipe(up, in)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		c.cut()
		c.wg.Wait()
	})
	return c
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.conns {
		x.Close()
	}
	c.conns = nil
}

// Every message published reaches the subscriber although the publisher's connection is cut
// twice mid-way: the publisher republishes what was not acknowledged.
func TestPublishesEverythingAcrossDrops(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	m := mqtttest.Start(t, mqtttest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var mu sync.Mutex
	got := map[string]int{}
	sub, err := mqttlink.New(mqttlink.Config{URL: m.URL, ClientID: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Subscribe("load/#", func(msg mqttlink.Message) {
		mu.Lock()
		got[string(msg.Payload)]++
		mu.Unlock()
		msg.Ack()
	}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	cut := newCutter(t, fmt.Sprintf("127.0.0.1:%d", m.Port))
	p, err := loadgen.Dial(ctx, loadgen.Config{URL: "tcp://" + cut.ln.Addr().String(), ClientID: "pub-1", Window: 200, RetryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 6000
	for i := range n {
		if i == n/3 || i == 2*n/3 {
			cut.cut()
		}
		if err := p.Publish(ctx, fmt.Sprintf("load/%d", i%7), []byte(fmt.Sprintf("m%05d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	published, acked, reconnects := p.Stats()
	if published != n || acked != n || reconnects < 2 {
		t.Errorf("published %d, acked %d, reconnected %d times", published, acked, reconnects)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		distinct := len(got)
		mu.Unlock()
		if distinct == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber got %d of %d messages", distinct, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Close()
	sub.Stop()
	m.Stop()
	cut.ln.Close()
	cut.cut()
	cut.wg.Wait()
	goleak.VerifyNone(t, ignore)
}

func TestRefusedLogin(t *testing.T) {
	m := mqtttest.Start(t, mqtttest.Config{Users: map[string]string{"u": "right"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := loadgen.Dial(ctx, loadgen.Config{URL: m.URL, ClientID: "x", Username: "u", Password: "wrong"})
	if _, ok := err.(*loadgen.RefusedError); !ok {
		t.Fatalf("Dial with a wrong password = %v, want a *RefusedError", err)
	}
}
