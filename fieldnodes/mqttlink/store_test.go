package mqttlink

import (
	"io"
	"sync"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestResendStoreHandsOutCopies: the publish a lost connection's writer is still encoding is not
// the one marked as a duplicate for its resend, over two reconnects (under -race, sharing it is
// reported as a data race).
func TestResendStoreHandsOutCopies(t *testing.T) {
	s := newResendStore()
	s.Open()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 7, "aghali/controllers/c1/ack", []byte(`{"id":"x"}`)
	s.Put("o.7", pub) // as paho's Publish does, before handing pub to the writer

	writing := pub
	for range 2 {
		var w sync.WaitGroup
		w.Go(func() { _ = writing.Write(io.Discard) }) // the lost connection's writer
		resent := s.Get("o.7").(*packets.PublishPacket)
		resent.Dup = true // what paho's resume does
		w.Wait()
		if resent.MessageID != 7 || resent.TopicName != pub.TopicName || string(resent.Payload) != `{"id":"x"}` {
			t.Fatalf("resent %v", resent)
		}
		writing = resent // the next connection writes the resend, and is lost too
	}
	if pub.Dup || s.Get("o.7").(*packets.PublishPacket).Dup {
		t.Fatal("marking a resend a duplicate changed the publish or the store's copy")
	}
	if s.Get("o.8") != nil {
		t.Fatal("a key never put is found")
	}
}
