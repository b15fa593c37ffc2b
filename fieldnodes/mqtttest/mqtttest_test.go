package mqtttest_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

func TestStartAndStop(t *testing.T) {
	m := mqtttest.Start(t, mqtttest.Config{Users: map[string]string{"svc": "pw"}})
	if !strings.HasPrefix(m.URL, "tcp://127.0.0.1:") {
		t.Errorf("URL = %s", m.URL)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(m.URL, "tcp://"))
	if err != nil {
		t.Fatalf("not listening: %v", err)
	}
	c.Close()
	m.Stop()
	if c, err := net.Dial("tcp", strings.TrimPrefix(m.URL, "tcp://")); err == nil {
		c.Close()
		t.Error("still listening after Stop")
	}
}

// With persistence, a restarted broker keeps a persistent session's queued message.
func TestRestartKeepsQueuedMessages(t *testing.T) {
	m := mqtttest.Start(t, mqtttest.Config{Persistence: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan string, 4)
	newSub := func() *mqttlink.Link {
		l, err := mqttlink.New(mqttlink.Config{URL: m.URL, ClientID: "sub", RetryInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Subscribe("q/#", func(msg mqttlink.Message) { got <- string(msg.Payload); msg.Ack() }); err != nil {
			t.Fatal(err)
		}
		if err := l.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		return l
	}
	newSub().Stop() // the session exists, its subscriber is away

	pub, err := mqttlink.New(mqttlink.Config{URL: m.URL, ClientID: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "q/1", 1, false, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	pub.Stop()
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	sub := newSub()
	defer sub.Stop()
	select {
	case p := <-got:
		if p != "kept" {
			t.Errorf("got %q", p)
		}
	case <-ctx.Done():
		t.Fatal("the queued message did not survive the restart")
	}
}
