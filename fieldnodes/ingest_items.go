package fieldnodes

import (
	"errors"
	"fmt"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/codec/cayenne"
	"github.com/aghali/aghali/fieldnodes/codec/object"
	"github.com/aghali/aghali/fieldnodes/lorawan"
	"github.com/aghali/aghali/fieldnodes/lorawan/chirpstack"
	"github.com/aghali/aghali/fieldnodes/lorawan/tts"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/fieldnodes/profile"
)

// item is one message on its way to a commit.
type item struct {
	msg     mqttlink.Message
	source  string  // SourceMQTT or a network (pending devices' source)
	key     nodeKey // how its node is found
	label   string  // the network server's name for the device
	event   string  // "up" for native uplinks; the network-server event otherwise
	meas    []codec.Measurement
	lw      *lorawan.Event
	rej     *rejection
	ignored bool // well-formed, but nothing Aghali keeps (a network server's log event, say)

	// Filled at commit.
	node     int64
	at       time.Time // a LoRaWAN event's time (the receive time when it has none)
	readings []Reading
	copyOf   bool   // a LoRaWAN frame already taken: stored as nothing
	hash     uint64 // LoRaWAN payload hash, for the frame tracker
}

// weight is about how many readings the item brings, for sizing batches.
func (it *item) weight() int {
	switch {
	case it.meas != nil:
		return len(it.meas)
	case it.lw != nil && it.lw.Kind == lorawan.KindUp:
		return 4
	}
	return 1
}

// onNetworkServer is the handler of an integration's topics: it reads the network server's
// message (ChirpStack, TTS) and hands it to the batcher; the payload is decoded at commit, with
// the profile of the node it turns out to be.
func (g *Ingest) onNetworkServer(r route, m mqttlink.Message) {
	if m.Received.IsZero() {
		m.Received = g.cfg.Now()
	}
	it := &item{msg: m, source: r.network}
	vars, ok := r.template.Match(m.Topic)
	if !ok {
		it.rej = &rejection{RejectTopic, "not " + r.template.String()}
		g.hand(it)
		return
	}
	it.event = vars["event"]
	var ev lorawan.Event
	var err error
	switch r.network {
	case NetworkChirpStack:
		ev, err = chirpstack.Parse(it.event, m.Payload)
	case NetworkTTS:
		ev, err = tts.Parse(it.event, m.Payload)
	}
	switch {
	case errors.Is(err, chirpstack.ErrIgnored) || errors.Is(err, tts.ErrIgnored):
		it.ignored = true
	case err != nil:
		it.rej = codecRejection(err)
	case ev.DevEUI == "":
		it.rej = &rejection{RejectInvalid, fmt.Sprintf("device %q has no DevEUI; Aghali matches LoRaWAN devices by DevEUI", ev.DeviceID)}
	case vars["dev_eui"] != "" && !sameEUI(vars["dev_eui"], ev.DevEUI):
		it.rej = &rejection{RejectForeignDevice, fmt.Sprintf("payload names DevEUI %s, topic %s", ev.DevEUI, vars["dev_eui"])}
	case g.isController(ev.DevEUI):
		delete(vars, "event")
		g.toController(ctrlMsg{msg: m, lw: &ControllerEvent{Network: r.network, Route: vars, Event: ev, Received: m.Received}})
		return
	default:
		it.lw = &ev
		it.key = nodeKey{eui: ev.DevEUI}
		it.label = ev.DeviceID
	}
	g.hand(it)
}

func sameEUI(topic, eui string) bool {
	t, ok := lorawan.NormalizeDevEUI(topic)
	return ok && t == eui
}

func codecRejection(err error) *rejection {
	var ce *codec.Error
	if errors.As(err, &ce) && ce.Reason == codec.ReasonSyntax {
		return &rejection{RejectMalformed, err.Error()}
	}
	return &rejection{RejectInvalid, err.Error()}
}

// readingsOf turns a message of a known node into readings through the node's profile, and
// notes in up what the message says of the node. A LoRaWAN frame the node sent already (within
// DedupWindow, or earlier in this batch) gives nothing (it.copyOf).
func (g *Ingest) readingsOf(dst []Reading, it *item, node nodeInfo, p *profile.Compiled, up *upkeepSet, inBatch map[frameKey]bool) ([]Reading, *rejection) {
	if ev := it.lw; ev != nil && ev.Kind == lorawan.KindUp {
		at := ev.Time
		if at.IsZero() {
			at = it.msg.Received
		}
		it.hash = g.frames.hash(ev.Payload, ev.Object)
		fk := frameKey{node.id, ev.FCnt, it.hash}
		if inBatch[fk] || g.frames.isCopy(node.id, ev.FCnt, it.hash, at) {
			it.copyOf = true
			return dst, nil
		}
		inBatch[fk] = true
	}
	return messageReadings(dst, it, node, p, up, g.cfg.MaxFuture)
}

// messageReadings is what a message of a known node gives: readings through the node's
// profile, appended to dst (on a rejection dst may hold some of them: the caller cuts it back),
// and what the message says of the node, noted in up.
func messageReadings(dst []Reading, it *item, node nodeInfo, p *profile.Compiled, up *upkeepSet, maxFuture time.Duration) ([]Reading, *rejection) {
	var vals []profile.Value
	var err error
	if it.lw == nil {
		if vals, err = p.Apply(make([]profile.Value, 0, len(it.meas)), it.meas); err != nil {
			return dst, &rejection{RejectInvalid, "profile " + p.Name + ": " + err.Error()}
		}
		return toReadings(dst, node.id, vals, nil, it.msg.Received, maxFuture)
	}

	ev := it.lw
	at := ev.Time
	if at.IsZero() {
		at = it.msg.Received
	}
	it.at = at
	ns := &nodeState{} // merged into up only if the message is not refused
	var extra []Reading
	switch ev.Kind {
	case lorawan.KindUp:
		ms, rej := decodeFrame(p, ev, at)
		if rej != nil {
			return dst, rej
		}
		if vals, err = p.Apply(nil, ms); err != nil {
			return dst, &rejection{RejectInvalid, "profile " + p.Name + ": " + err.Error()}
		}
		for _, m := range []struct {
			metric string
			v      *float64
		}{{"rssi_dbm", ev.Link.RSSI}, {"snr_db", ev.Link.SNR}, {"battery_pct", ev.BatteryPct}} {
			if m.v != nil {
				extra = append(extra, Reading{NodeID: node.id, Metric: m.metric, TS: at, Value: *m.v})
			}
		}
		ns.seenAt(at)
		ns.linkAt = at
		gw := int16(min(ev.Link.Gateways, 32767))
		ns.gateways = &gw
		if ev.Link.SF > 0 {
			sf := int16(ev.Link.SF)
			ns.sf = &sf
		}
		if ev.Link.FrequencyHz > 0 {
			f := ev.Link.FrequencyHz
			ns.freq = &f
		}
		fc := int64(ev.FCnt)
		ns.fcnt = &fc
	case lorawan.KindStatus:
		if ev.BatteryPct != nil {
			extra = append(extra, Reading{NodeID: node.id, Metric: "battery_pct", TS: at, Value: *ev.BatteryPct})
		}
		if ev.MarginDB != nil {
			m := *ev.MarginDB
			ns.margin, ns.marginAt = &m, at
		}
		ns.seenAt(at)
	case lorawan.KindJoin:
		ns.joined = at
		ns.seenAt(at)
	case lorawan.KindAck, lorawan.KindDownAck, lorawan.KindDownNack:
		status := "nacked"
		if ev.Acknowledged {
			status = "acked"
			ns.seenAt(at) // the device answered
		}
		ns.downlinkAt, ns.downlinkStatus = at, status
	case lorawan.KindTxAck:
		ns.downlinkAt, ns.downlinkStatus = at, "sent"
	case lorawan.KindDownFailed:
		ns.downlinkAt, ns.downlinkStatus = at, "failed: "+ev.Detail
	}
	dst, rej := toReadings(dst, node.id, vals, extra, it.msg.Received, maxFuture)
	if rej == nil {
		up.node(node.id).merge(ns)
	}
	return dst, rej
}

// frameKey is a LoRaWAN frame within one batch.
type frameKey struct {
	node int64
	fcnt uint32
	hash uint64
}

// decodeFrame decodes a LoRaWAN uplink's payload with the profile's decoder. An uplink without
// payload (a heartbeat, a MAC-only frame) has no measurements; that is not an error.
func decodeFrame(p *profile.Compiled, ev *lorawan.Event, at time.Time) ([]codec.Measurement, *rejection) {
	var ms []codec.Measurement
	var err error
	switch p.Decoder {
	case profile.DecoderCayenne:
		if len(ev.Payload) == 0 {
			return nil, nil
		}
		ms, err = cayenne.Decode(ev.Payload, at)
	case profile.DecoderObject:
		if ev.Object == nil {
			if len(ev.Payload) == 0 {
				return nil, nil
			}
			return nil, &rejection{RejectInvalid, fmt.Sprintf(
				"profile %s takes the network server's decoded object, and this uplink has none (no payload codec on the network server for this device?)", p.Name)}
		}
		ms, err = object.Decode(ev.Object, at)
	default:
		if len(ev.Payload) == 0 {
			return nil, nil
		}
		var rej *rejection
		if ms, rej = decodeNative(ev.Payload, at); rej != nil {
			return nil, rej
		}
		for _, m := range ms {
			if !ValidMetricName(m.Metric) {
				return nil, &rejection{RejectMetricName, fmt.Sprintf("%q is not a metric name (1 to 64 of a-z, 0-9, _)", m.Metric)}
			}
		}
	}
	if err != nil {
		return nil, codecRejection(err)
	}
	if len(ms) > maxReadingsPerMessage {
		return nil, &rejection{RejectTooLarge, fmt.Sprintf("%d readings in one message; at most %d", len(ms), maxReadingsPerMessage)}
	}
	return ms, nil
}

// toReadings makes readings of a profile's values (and extra ones), refusing a message with a
// reading too far ahead of its receive time.
func toReadings(out []Reading, node int64, vals []profile.Value, extra []Reading, received time.Time, maxFuture time.Duration) ([]Reading, *rejection) {
	start := len(out)
	for _, v := range vals {
		out = append(out, Reading{NodeID: node, Metric: v.Metric, TS: v.Time, Value: v.Value, Flags: v.Flags})
	}
	for _, r := range extra {
		r.Flags = flagsOf(r.Metric, r.Value)
		out = append(out, r)
	}
	limit := received.Add(maxFuture)
	for _, r := range out[start:] {
		if r.TS.After(limit) {
			return out, &rejection{RejectFuture, fmt.Sprintf("%s at %s is more than %v after the receive time %s",
				r.Metric, r.TS.UTC().Format(time.RFC3339), maxFuture, received.UTC().Format(time.RFC3339))}
		}
	}
	return out, nil
}

// flagsOf is the flags of a reading outside any profile (link figures): its metric's default
// plausible range.
func flagsOf(metric string, v float64) int16 {
	if lo, hi, ok := profile.DefaultRange(metric); ok && (v < lo || v > hi) {
		return FlagOutOfRange
	}
	return 0
}
