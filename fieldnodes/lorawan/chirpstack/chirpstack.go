package chirpstack

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/lorawan"
)

// Name is the adapter's name in errors, rejection records and pending devices.
const Name = "chirpstack"

// ErrIgnored: the event is well-formed but of a kind Aghali does not use (log, location, ...).
var ErrIgnored = errors.New("chirpstack: event not used")

type deviceInfo struct {
	DevEUI     string `json:"devEui"`
	DeviceName string `json:"deviceName"`
}

type rxInfo struct {
	GatewayID string   `json:"gatewayId"`
	RSSI      *float64 `json:"rssi"`
	SNR       *float64 `json:"snr"`
}

type txInfo struct {
	Frequency  int64 `json:"frequency"`
	Modulation struct {
		LoRa *struct {
			SpreadingFactor int `json:"spreadingFactor"`
		} `json:"lora"`
	} `json:"modulation"`
}

type event struct {
	Time       *string         `json:"time"`
	DeviceInfo *deviceInfo     `json:"deviceInfo"`
	DR         *int            `json:"dr"`
	FCnt       uint32          `json:"fCnt"`
	FPort      int             `json:"fPort"`
	Data       []byte          `json:"data"` // base64 in JSON
	Object     json.RawMessage `json:"object"`
	RxInfo     []rxInfo        `json:"rxInfo"`
	TxInfo     *txInfo         `json:"txInfo"`

	// status
	Margin                  *float64 `json:"margin"`
	ExternalPowerSource     bool     `json:"externalPowerSource"`
	BatteryLevelUnavailable bool     `json:"batteryLevelUnavailable"`
	BatteryLevel            *float64 `json:"batteryLevel"`

	// ack, txack
	Acknowledged bool   `json:"acknowledged"`
	FCntDown     uint32 `json:"fCntDown"`
	QueueItemID  string `json:"queueItemId"` // the id given to the queue item in command/down
}

// Parse reads the payload of event kind ev (the topic's last level: "up", "status", ...).
func Parse(ev string, payload []byte) (lorawan.Event, error) {
	var kind lorawan.Kind
	switch ev {
	case "up":
		kind = lorawan.KindUp
	case "status":
		kind = lorawan.KindStatus
	case "join":
		kind = lorawan.KindJoin
	case "ack":
		kind = lorawan.KindAck
	case "txack":
		kind = lorawan.KindTxAck
	default:
		return lorawan.Event{}, ErrIgnored
	}
	var e event
	if err := lorawan.DecodeObject(Name, payload, &e); err != nil {
		return lorawan.Event{}, err
	}
	if e.DeviceInfo == nil || e.DeviceInfo.DevEUI == "" {
		return lorawan.Event{}, codec.Errorf(Name, codec.ReasonSchema, "deviceInfo.devEui missing")
	}
	eui, ok := lorawan.NormalizeDevEUI(e.DeviceInfo.DevEUI)
	if !ok {
		return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "deviceInfo.devEui %q is not 16 hexadecimal digits", e.DeviceInfo.DevEUI)
	}
	out := lorawan.Event{Kind: kind, DevEUI: eui, DeviceID: e.DeviceInfo.DeviceName}
	if e.Time != nil {
		t, err := time.Parse(time.RFC3339Nano, *e.Time)
		if err != nil || !codec.InRange(t) {
			return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "time %q is not an RFC 3339 time within 1970–9999", *e.Time)
		}
		out.Time = t.UTC()
	}

	switch kind {
	case lorawan.KindUp:
		out.FCnt, out.FPort, out.Payload = e.FCnt, e.FPort, e.Data
		if len(e.Object) > 0 && !bytes.Equal(bytes.TrimSpace(e.Object), []byte("null")) {
			out.Object = e.Object
		}
		gws := make([]lorawan.Gateway, 0, len(e.RxInfo))
		for _, rx := range e.RxInfo {
			if !lorawan.Finite(rx.RSSI) || !lorawan.Finite(rx.SNR) {
				return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "rxInfo: rssi or snr out of range")
			}
			gws = append(gws, lorawan.Gateway{ID: rx.GatewayID, RSSI: rx.RSSI, SNR: rx.SNR})
		}
		out.Link.Best(gws)
		out.Link.DR = e.DR
		if e.TxInfo != nil {
			out.Link.FrequencyHz = e.TxInfo.Frequency
			if e.TxInfo.Modulation.LoRa != nil {
				out.Link.SF = e.TxInfo.Modulation.LoRa.SpreadingFactor
			}
		}
	case lorawan.KindStatus:
		if !lorawan.Finite(e.Margin) || !lorawan.Finite(e.BatteryLevel) {
			return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "margin or batteryLevel out of range")
		}
		out.MarginDB = e.Margin
		out.ExternalPower = e.ExternalPowerSource
		if !e.BatteryLevelUnavailable && !e.ExternalPowerSource {
			if e.BatteryLevel == nil {
				zero := 0.0 // the protobuf JSON mapping leaves a 0 % battery out
				e.BatteryLevel = &zero
			}
			if *e.BatteryLevel < 0 || *e.BatteryLevel > 100 {
				return lorawan.Event{}, codec.Errorf(Name, codec.ReasonValue, "batteryLevel %g is not a percentage", *e.BatteryLevel)
			}
			out.BatteryPct = e.BatteryLevel
		}
	case lorawan.KindAck:
		out.Acknowledged, out.FCntDown, out.DownlinkID = e.Acknowledged, e.FCntDown, e.QueueItemID
	case lorawan.KindTxAck:
		out.FCntDown, out.DownlinkID = e.FCntDown, e.QueueItemID
	}
	return out, nil
}
