package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// grant is what a logged-in user may do, worked out once at login so that the per-message ACL
// check is a few string comparisons.
type grant struct {
	b          *Broker
	internal   bool
	gateway    bool
	kind       string
	nodePrefix string // {prefix}/nodes/{uid}/
	cmd        string // {prefix}/controllers/{uid}/cmd
	ack        string
	state      string
}

func (b *Broker) newGrant(uid, kind string) *grant {
	g := &grant{b: b, kind: kind}
	switch kind {
	case KindNode:
		g.nodePrefix = b.cfg.Prefix + "/nodes/" + uid + "/"
	case KindController:
		base := b.cfg.Prefix + "/controllers/" + uid + "/"
		g.cmd, g.ack, g.state = base+"cmd", base+"ack", base+"state"
	}
	return g
}

// mayPublish: a node under its own subtree, a controller its ack and state, a gateway any
// node's uplink and its own filters.
func (g *grant) mayPublish(topic string) bool {
	switch {
	case g.internal:
		return true
	case g.gateway:
		return g.b.isUplink(topic) || matchAny(g.b.cfg.GatewayPublish, topic)
	case g.nodePrefix != "":
		return len(topic) > len(g.nodePrefix) && strings.HasPrefix(topic, g.nodePrefix)
	case g.cmd != "":
		return topic == g.ack || topic == g.state
	}
	return false
}

// mayRead: filter is a subscription filter or the topic of a message about to be delivered.
func (g *grant) mayRead(filter string) bool {
	switch {
	case g.internal:
		return true
	case g.gateway:
		return filterWithin(g.b.cfg.GatewaySubscribe, filter)
	case g.nodePrefix != "":
		return len(filter) > len(g.nodePrefix) && strings.HasPrefix(filter, g.nodePrefix)
	case g.cmd != "":
		return filter == g.cmd
	}
	return false
}

// hook plugs Aghali's authentication and topic rules into mochi.
type hook struct {
	mqtt.HookBase
	b *Broker
}

func (h *hook) ID() string { return "aghali-devices" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublishDropped, mqtt.OnPublish,
	}, []byte{b})
}

func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	user := string(pk.Connect.Username)
	clientID := pk.Connect.ClientIdentifier
	remote := cl.Net.Remote

	if user == InternalUser {
		if subtle.ConstantTimeCompare(pk.Connect.Password, []byte(b.internal)) != 1 {
			b.refuse("internal", user, clientID, remote, "wrong internal password")
			return false
		}
		b.mu.Lock()
		b.grants[user] = &grant{b: b, internal: true}
		if clientID != "" {
			b.internIDs[clientID] = true
		}
		b.mu.Unlock()
		b.metrics.logins.WithLabelValues("ok").Inc()
		return true
	}

	if user == "" {
		b.refuse("anonymous", user, clientID, remote, "no user name")
		return false
	}
	if want, ok := b.cfg.Gateways[user]; ok {
		if subtle.ConstantTimeCompare(pk.Connect.Password, []byte(want)) != 1 {
			b.refuse("credentials", user, clientID, remote, "wrong gateway password")
			return false
		}
		if clientID != user && !strings.HasPrefix(clientID, user+"-") {
			b.refuse("client_id", user, clientID, remote, "a gateway's client id must be its user name, or start with it and '-'")
			return false
		}
		g := &grant{b: b, gateway: true}
		if pk.Connect.WillFlag && !g.mayPublish(pk.Connect.WillTopic) {
			b.refuse("will", user, clientID, remote, "will topic "+pk.Connect.WillTopic+" is not the gateway's")
			return false
		}
		b.mu.Lock()
		b.grants[user] = g
		b.mu.Unlock()
		b.metrics.logins.WithLabelValues("ok").Inc()
		return true
	}
	b.mu.RLock()
	serverID := b.internIDs[clientID]
	b.mu.RUnlock()
	if clientID != "" && (clientID != user || serverID) {
		b.refuse("client_id", user, clientID, remote, "a device's client id must be its uid")
		return false
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.AuthTimeout)
	kind, err := b.cfg.Auth.Authenticate(ctx, user, string(pk.Connect.Password))
	cancel()
	if err != nil {
		b.refuse("credentials", user, clientID, remote, err.Error())
		return false
	}
	if kind != KindNode && kind != KindController {
		b.refuse("kind", user, clientID, remote, "unknown device kind "+kind)
		return false
	}
	g := b.newGrant(user, kind)
	if pk.Connect.WillFlag && !g.mayPublish(pk.Connect.WillTopic) {
		b.refuse("will", user, clientID, remote, "will topic "+pk.Connect.WillTopic+" is not the device's own")
		return false
	}
	b.mu.Lock()
	b.grants[user] = g
	b.mu.Unlock()
	b.metrics.logins.WithLabelValues("ok").Inc()
	return true
}

func (b *Broker) refuse(reason, user, clientID, remote, detail string) {
	b.metrics.logins.WithLabelValues("refused").Inc()
	b.metrics.refusals.WithLabelValues(reason).Inc()
	b.log.Warn("MQTT login refused", "user", user, "client_id", clientID, "remote", remote, "reason", reason, "detail", detail)
}

func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	b := h.b
	b.mu.RLock()
	g := b.grants[string(cl.Properties.Username)]
	b.mu.RUnlock()
	if g == nil {
		return false
	}
	var ok bool
	if write {
		ok = g.mayPublish(topic)
	} else {
		ok = g.mayRead(topic)
	}
	if !ok {
		action := "read"
		if write {
			action = "write"
		}
		b.metrics.denied.WithLabelValues(action).Inc()
		b.log.Warn("MQTT topic refused", "user", string(cl.Properties.Username), "client_id", cl.ID, "action", action, "topic", topic)
	}
	return ok
}

func (h *hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.b.metrics.dropped.WithLabelValues("client_queue_full").Inc()
	h.b.log.Error("MQTT message dropped: client's write queue full", "client_id", cl.ID, "topic", pk.TopicName)
}

var errNoHandoff = errors.New("broker: no Handoff to take the client's publishes")

// OnPublish hands the publishes the Handoff wants to it, and keeps them from the subscribers:
// the publisher's PUBACK waits for the Handoff's Ack (acker). QoS 2 is left to mochi.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	b := h.b
	ho := b.currentHandoff()
	if ho == nil && b.cfg.AwaitHandoff && pk.FixedHeader.Qos <= 1 && !cl.Net.Inline && string(cl.Properties.Username) != InternalUser {
		var ok bool
		if ho, ok = b.awaitHandoff(); !ok {
			// Unacknowledged, and disconnected: a client sends its unacknowledged messages
			// again when it reconnects, not on a connection that stays up.
			b.log.Warn("publish not taken: no ingest yet; client disconnected to send it again", "client_id", cl.ID, "topic", pk.TopicName)
			cl.Stop(errNoHandoff)
			return pk, packets.ErrRejectPacket
		}
	}
	if ho == nil || pk.FixedHeader.Qos > 1 || !ho.Wants(pk.TopicName) {
		return pk, nil
	}
	var ack func()
	if pk.FixedHeader.Qos == 1 && !cl.Net.Inline {
		id := pk.PacketID
		ack = func() { b.acks.add(cl, id) }
	}
	m := mqttlink.NewMessage(pk.TopicName, pk.Payload, time.Now(), ack)
	m.QoS = pk.FixedHeader.Qos
	m.Duplicate = pk.FixedHeader.Dup
	ho.Deliver(m)
	b.metrics.handedOff.Inc()
	return pk, packets.ErrRejectPacket
}
