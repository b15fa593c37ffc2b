package lorawan

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kind is what a network-server event is about.
type Kind string

// Event kinds. Up carries readings; Status a device's battery and link margin; Join a (re)join,
// after which frame counters restart; the rest are the fate of a downlink.
const (
	KindUp         Kind = "up"
	KindStatus     Kind = "status"
	KindJoin       Kind = "join"
	KindAck        Kind = "ack"         // ChirpStack: a confirmed downlink was acknowledged (or not)
	KindTxAck      Kind = "txack"       // ChirpStack: a gateway transmitted a downlink
	KindDownAck    Kind = "down_ack"    // TTS: a confirmed downlink was acknowledged
	KindDownNack   Kind = "down_nack"   // TTS: a confirmed downlink was not acknowledged
	KindDownFailed Kind = "down_failed" // TTS: a downlink could not be sent
)

// Event is one network-server message about one device.
type Event struct {
	Kind     Kind
	DevEUI   string    // 16 lower-case hex digits; "" when the message carries none
	DeviceID string    // the network server's name for the device (ChirpStack deviceName, TTS device_id)
	Time     time.Time // when the network server received the uplink; zero when it does not say

	// Up.
	FCnt    uint32 // uplink frame counter (absent in the message: 0)
	FPort   int
	Payload []byte // FRMPayload, decrypted
	Object  []byte // the network server's decoded object as JSON; nil when it decoded nothing
	Link    Link

	// Status (ChirpStack), last_battery_percentage (TTS up).
	BatteryPct    *float64 // 0–100; nil when unknown or externally powered
	MarginDB      *float64 // demodulation margin of the last LinkCheck/DevStatus, dB
	ExternalPower bool

	// Downlinks.
	Acknowledged bool   // ack: the device acknowledged the downlink
	FCntDown     uint32 // the downlink's frame counter, when given
	Detail       string // why a downlink failed, for a person
	// DownlinkID names the downlink the event is about, as Aghali named it when it queued it:
	// ChirpStack's queueItemId (the queue item's id Aghali chose), The Things Stack's correlation
	// id CorrelationPrefix+id. "" when the event names none of Aghali's.
	DownlinkID string
}

// CorrelationPrefix starts the correlation id Aghali gives a downlink it pushes to The Things
// Stack ("aghali:command:<command uuid>"); TTS carries it back in down/ack, down/nack and
// down/failed.
const CorrelationPrefix = "aghali:command:"

// Link is what the network server says about the radio link of an uplink.
type Link struct {
	RSSI        *float64 // best gateway's, dBm
	SNR         *float64 // best gateway's, dB
	Gateways    int      // how many gateways heard it
	BestGateway string
	SF          int   // spreading factor; 0 when not LoRa or not given
	FrequencyHz int64 // 0 when not given
	DR          *int  // data rate, when given
}

// Gateway is one gateway's reception of an uplink, for Best.
type Gateway struct {
	ID   string
	RSSI *float64
	SNR  *float64
}

// Best fills l's gateway count and its best gateway's RSSI and SNR: the highest SNR, then the
// highest RSSI (SNR says more about a LoRa link near its limit than RSSI does).
func (l *Link) Best(gws []Gateway) {
	l.Gateways = len(gws)
	best := -1
	for i, g := range gws {
		if best < 0 || better(g, gws[best]) {
			best = i
		}
	}
	if best >= 0 {
		l.RSSI, l.SNR, l.BestGateway = gws[best].RSSI, gws[best].SNR, gws[best].ID
	}
}

func better(a, b Gateway) bool {
	as, bs := val(a.SNR), val(b.SNR)
	if as != bs {
		return as > bs
	}
	return val(a.RSSI) > val(b.RSSI)
}

func val(p *float64) float64 {
	if p == nil {
		return -1e9
	}
	return *p
}

// NormalizeDevEUI returns s as 16 lower-case hex digits (separators ':' and '-' removed), or ""
// with ok false when it is not a DevEUI.
func NormalizeDevEUI(s string) (eui string, ok bool) {
	s = strings.ToLower(strings.NewReplacer(":", "", "-", "").Replace(strings.TrimSpace(s)))
	if len(s) != 16 {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return s, true
}

// String renders e on one line, as golden files and logs show it (absent values left out).
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s dev_eui=%s", e.Kind, e.DevEUI)
	if e.DeviceID != "" {
		fmt.Fprintf(&b, " device=%s", e.DeviceID)
	}
	if !e.Time.IsZero() {
		fmt.Fprintf(&b, " time=%s", e.Time.UTC().Format(time.RFC3339Nano))
	}
	if e.Kind == KindUp {
		fmt.Fprintf(&b, " fcnt=%d fport=%d payload=%x", e.FCnt, e.FPort, e.Payload)
		if e.Object != nil {
			var c bytes.Buffer
			if json.Compact(&c, e.Object) != nil {
				c.Reset()
				c.Write(e.Object)
			}
			fmt.Fprintf(&b, " object=%s", c.Bytes())
		}
		l := e.Link
		fmt.Fprintf(&b, " gateways=%d", l.Gateways)
		if l.BestGateway != "" {
			fmt.Fprintf(&b, " best=%s", l.BestGateway)
		}
		if l.RSSI != nil {
			fmt.Fprintf(&b, " rssi=%g", *l.RSSI)
		}
		if l.SNR != nil {
			fmt.Fprintf(&b, " snr=%g", *l.SNR)
		}
		if l.SF != 0 {
			fmt.Fprintf(&b, " sf=%d", l.SF)
		}
		if l.FrequencyHz != 0 {
			fmt.Fprintf(&b, " freq=%d", l.FrequencyHz)
		}
		if l.DR != nil {
			fmt.Fprintf(&b, " dr=%d", *l.DR)
		}
	}
	if e.BatteryPct != nil {
		fmt.Fprintf(&b, " battery_pct=%g", *e.BatteryPct)
	}
	if e.MarginDB != nil {
		fmt.Fprintf(&b, " margin_db=%g", *e.MarginDB)
	}
	if e.ExternalPower {
		b.WriteString(" external_power")
	}
	switch e.Kind {
	case KindAck, KindDownAck, KindDownNack:
		fmt.Fprintf(&b, " acknowledged=%t fcnt_down=%d", e.Acknowledged, e.FCntDown)
	case KindTxAck, KindDownFailed:
		fmt.Fprintf(&b, " fcnt_down=%d", e.FCntDown)
	}
	if e.DownlinkID != "" {
		fmt.Fprintf(&b, " downlink_id=%s", e.DownlinkID)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " detail=%q", e.Detail)
	}
	return b.String()
}
