package tts

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/lorawan"
)

// Name is the adapter's name in errors, rejection records and pending devices.
const Name = "tts"

// ErrIgnored: the message is well-formed but of a kind Aghali does not use.
var ErrIgnored = errors.New("tts: event not used")

type rxMetadata struct {
	GatewayIDs struct {
		GatewayID string `json:"gateway_id"`
	} `json:"gateway_ids"`
	RSSI        *float64 `json:"rssi"`
	ChannelRSSI *float64 `json:"channel_rssi"`
	SNR         *float64 `json:"snr"`
}

type uplink struct {
	FPort          int             `json:"f_port"`
	FCnt           uint32          `json:"f_cnt"`
	FRMPayload     []byte          `json:"frm_payload"`
	DecodedPayload json.RawMessage `json:"decoded_payload"`
	RxMetadata     []rxMetadata    `json:"rx_metadata"`
	Settings       struct {
		DataRate struct {
			LoRa *struct {
				SpreadingFactor int `json:"spreading_factor"`
			} `json:"lora"`
		} `json:"data_rate"`
		Frequency string `json:"frequency"`
	} `json:"settings"`
	LastBatteryPercentage *struct {
		Value *float64 `json:"value"`
	} `json:"last_battery_percentage"`
}

type downlink struct {
	FPort          int      `json:"f_port"`
	FCnt           uint32   `json:"f_cnt"`
	Confirmed      bool     `json:"confirmed"`
	CorrelationIDs []string `json:"correlation_ids"`
}

type message struct {
	EndDeviceIDs *struct {
		DeviceID string `json:"device_id"`
		DevEUI   string `json:"dev_eui"`
	} `json:"end_device_ids"`
	CorrelationIDs []string  `json:"correlation_ids"`
	ReceivedAt     *string   `json:"received_at"`
	UplinkMessage  *uplink   `json:"uplink_message"`
	JoinAccept     *struct{} `json:"join_accept"`
	DownlinkAck    *downlink `json:"downlink_ack"`
	DownlinkNack   *downlink `json:"downlink_nack"`
	DownlinkFailed *struct {
		Downlink downlink `json:"downlink"`
		Error    struct {
			Namespace     string `json:"namespace"`
			Name          string `json:"name"`
			MessageFormat string `json:"message_format"`
		} `json:"error"`
	} `json:"downlink_failed"`
}

// Parse reads the payload of event ev (what follows the device id in the topic: "up", "down/ack", ...).
func Parse(ev string, payload []byte) (lorawan.Event, error) {
	var kind lorawan.Kind
	switch ev {
	case "up":
		kind = lorawan.KindUp
	case "join":
		kind = lorawan.KindJoin
	case "down/ack":
		kind = lorawan.KindDownAck
	case "down/nack":
		kind = lorawan.KindDownNack
	case "down/failed":
		kind = lorawan.KindDownFailed
	default:
		return lorawan.Event{}, ErrIgnored
	}
	var m message
	if err := lorawan.DecodeObject(Name, payload, &m); err != nil {
		return lorawan.Event{}, err
	}
	if m.EndDeviceIDs == nil || m.EndDeviceIDs.DeviceID == "" {
		return lorawan.Event{}, codec.Errorf(Name, codec.ReasonSchema, "end_device_ids.device_id missing")
	}
	out := lorawan.Event{Kind: kind, DeviceID: m.EndDeviceIDs.DeviceID}
	if m.EndDeviceIDs.DevEUI != "" {
		eui, ok := lorawan.NormalizeDevEUI(m.EndDeviceIDs.DevEUI)
		if !ok {
			return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "end_device_ids.dev_eui %q is not 16 hexadecimal digits", m.EndDeviceIDs.DevEUI)
		}
		out.DevEUI = eui
	}
	if m.ReceivedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *m.ReceivedAt)
		if err != nil || !codec.InRange(t) {
			return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "received_at %q is not an RFC 3339 time within 1970–9999", *m.ReceivedAt)
		}
		out.Time = t.UTC()
	}

	switch kind {
	case lorawan.KindUp:
		u := m.UplinkMessage
		if u == nil {
			return lorawan.Event{}, codec.Errorf(Name, codec.ReasonSchema, "uplink_message missing")
		}
		out.FCnt, out.FPort, out.Payload = u.FCnt, u.FPort, u.FRMPayload
		if len(u.DecodedPayload) > 0 && !bytes.Equal(bytes.TrimSpace(u.DecodedPayload), []byte("null")) {
			out.Object = u.DecodedPayload
		}
		gws := make([]lorawan.Gateway, 0, len(u.RxMetadata))
		for _, rx := range u.RxMetadata {
			rssi := rx.RSSI
			if rssi == nil {
				rssi = rx.ChannelRSSI
			}
			if !lorawan.Finite(rssi) || !lorawan.Finite(rx.SNR) {
				return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "rx_metadata: rssi or snr out of range")
			}
			gws = append(gws, lorawan.Gateway{ID: rx.GatewayIDs.GatewayID, RSSI: rssi, SNR: rx.SNR})
		}
		out.Link.Best(gws)
		if l := u.Settings.DataRate.LoRa; l != nil {
			out.Link.SF = l.SpreadingFactor
		}
		if f := u.Settings.Frequency; f != "" {
			hz, err := strconv.ParseInt(f, 10, 64)
			if err != nil || hz < 0 {
				return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "settings.frequency %q is not a frequency in Hz", f)
			}
			out.Link.FrequencyHz = hz
		}
		if b := u.LastBatteryPercentage; b != nil && b.Value != nil {
			if !lorawan.Finite(b.Value) || *b.Value < 0 || *b.Value > 100 {
				return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "last_battery_percentage %g is not a percentage", *b.Value)
			}
			out.BatteryPct = b.Value
		}
	case lorawan.KindDownAck, lorawan.KindDownNack:
		d := m.DownlinkAck
		if kind == lorawan.KindDownNack {
			d = m.DownlinkNack
		}
		if d == nil {
			return lorawan.Event{}, codec.Errorf(Name, codec.ReasonSchema, "%s missing", map[lorawan.Kind]string{
				lorawan.KindDownAck: "downlink_ack", lorawan.KindDownNack: "downlink_nack"}[kind])
		}
		out.Acknowledged = kind == lorawan.KindDownAck
		out.FCntDown = d.FCnt
		out.DownlinkID = downlinkID(d.CorrelationIDs, m.CorrelationIDs)
	case lorawan.KindDownFailed:
		f := m.DownlinkFailed
		if f == nil {
			return lorawan.Event{}, codec.Errorf(Name, codec.ReasonSchema, "downlink_failed missing")
		}
		out.FCntDown = f.Downlink.FCnt
		out.DownlinkID = downlinkID(f.Downlink.CorrelationIDs, m.CorrelationIDs)
		out.Detail = f.Error.Name
		if f.Error.MessageFormat != "" {
			out.Detail = f.Error.MessageFormat
		}
		if f.Error.Namespace != "" {
			out.Detail = f.Error.Namespace + ": " + out.Detail
		}
	}
	return out, nil
}

// downlinkID finds the correlation id Aghali gave the downlink (lorawan.CorrelationPrefix), in
// the downlink's own ids or, failing that, the message's.
func downlinkID(lists ...[]string) string {
	for _, ids := range lists {
		for _, id := range ids {
			if rest, ok := strings.CutPrefix(id, lorawan.CorrelationPrefix); ok && rest != "" {
				return rest
			}
		}
	}
	return ""
}
