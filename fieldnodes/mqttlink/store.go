package mqttlink

import (
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// resendStore is paho's memory store, except that it keeps and hands out copies of publishes.
// After a reconnect paho resends each unacknowledged publish from its store with the DUP flag
// set, while the writer of the lost connection may still be encoding the packet it was given
// (which writes its length): with the store holding that very packet, a data race inside paho
// (eclipse-paho/paho.mqtt.golang#703, seen by the race detector in TestServeKilledMidRun). The
// store's own copy is never given to a writer; every resend gets a copy of it. Payloads are
// shared: nobody writes them.
type resendStore struct{ paho.Store }

func newResendStore() resendStore { return resendStore{paho.NewMemoryStore()} }

func (s resendStore) Put(key string, p packets.ControlPacket) { s.Store.Put(key, copyPublish(p)) }

func (s resendStore) Get(key string) packets.ControlPacket { return copyPublish(s.Store.Get(key)) }

func copyPublish(p packets.ControlPacket) packets.ControlPacket {
	if pub, ok := p.(*packets.PublishPacket); ok {
		c := *pub
		return &c
	}
	return p
}
