package broker

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// The acks' write deadline must not outlive their write: a client that goes quiet after its
// last PUBACKs and then pings would otherwise find mochi's PINGRESP failing with an i/o timeout
// and be disconnected, once per keep-alive.
func TestAckWriteLeavesTheKeepAliveDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	cl := mqtt.New(nil).NewClient(server, "tcp", "n1", false)
	cl.State.Keepalive = 60
	a := newAcker(slog.New(slog.DiscardHandler))
	a.writeTimeout = 50 * time.Millisecond
	if !a.write(cl, []byte{0x40, 0x02, 0x00, 0x07}) { // PUBACK 7
		t.Fatal("PUBACK not written")
	}
	time.Sleep(3 * a.writeTimeout)
	cl.Lock()
	_, err = cl.Net.Conn.Write([]byte{0xD0, 0x00}) // mochi's PINGRESP, later
	cl.Unlock()
	if err != nil {
		t.Fatalf("a write after the acks' deadline: %v", err)
	}
	got := make([]byte, 6)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x40, 0x02, 0x00, 0x07, 0xD0, 0x00}; !bytes.Equal(got, want) {
		t.Errorf("client read % x, want % x", got, want)
	}
}
