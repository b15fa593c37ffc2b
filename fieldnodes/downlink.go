package fieldnodes

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aghali/aghali/fieldnodes/lorawan"
)

// Default downlink topic templates of the network servers (docs/lorawan-controller.md).
const (
	DefaultChirpStackDownTopic = "application/{application_id}/device/{dev_eui}/command/down"
	DefaultTTSDownTopic        = "v3/{application_id}@{tenant_id}/devices/{device_id}/down/push"
)

// Downlink is a command for a LoRaWAN controller, encoded in the compact layout of package
// valvecmd (docs/lorawan-controller.md), for its network server to queue. Package irrigation
// makes them (its Downlink is this type).
type Downlink struct {
	// CommandID is the command's UUID. It names the downlink at the network server, which names
	// it back in its ack events (ChirpStack: the queue item's id; The Things Stack: the
	// correlation id lorawan.CorrelationPrefix+CommandID): lorawan.Event.DownlinkID.
	CommandID     string
	ControllerUID string
	DevEUI        string // 16 lower-case hex digits
	FPort         int
	Payload       []byte
	// ExpiresAt: the network server drops the downlink if it has not gone out by then (where it
	// can: ChirpStack's expiresAt), and the controller ignores it after then anyway.
	ExpiresAt time.Time
	// Network and Route are where the controller was last heard: its network server
	// (NetworkChirpStack, NetworkTTS) and the placeholders its uplink topic matched (ChirpStack's
	// application_id, TTS's application_id, tenant_id and device_id). Empty until the controller
	// has sent an uplink: its downlink topic is not known before.
	Network string
	Route   map[string]string
}

// ErrNoRoute: the controller has not been heard through a network server yet, so the topic of
// its downlinks is unknown.
var ErrNoRoute = errors.New("fieldnodes: no downlink route: the controller has sent no uplink through a network server yet")

// DownlinkNetwork is a network server Downlinks queues downlinks at.
type DownlinkNetwork struct {
	// Network: NetworkChirpStack or NetworkTTS.
	Network string
	// Topic is the downlink topic template; default DefaultChirpStackDownTopic or
	// DefaultTTSDownTopic. Its placeholders must be the uplink template's (or {dev_eui}).
	Topic string
	// UplinkTopic is the template the ingest takes the network server's events on, whose
	// placeholders make a controller's route; default DefaultChirpStackTopic or DefaultTTSTopic.
	UplinkTopic string
	// Link publishes the downlinks: the broker the network server subscribes to (required).
	Link Publisher
}

// DownlinksConfig configures Downlinks.
type DownlinksConfig struct {
	// Networks are the network servers downlinks can go through (at least one; one per network).
	Networks []DownlinkNetwork
	// Now is the clock for the expiry check; default time.Now.
	Now func() time.Time
}

// Downlinks queues LoRaWAN controllers' commands at their network server: ChirpStack v4's
// command/down, The Things Stack v3's down/push, as confirmed downlinks. It satisfies
// irrigation.DownlinkSender.
type Downlinks struct {
	nets map[string]downNetwork
	now  func() time.Time
}

type downNetwork struct {
	template *lorawan.DownTemplate
	link     Publisher
}

// NewDownlinks checks cfg and returns a Downlinks.
func NewDownlinks(cfg DownlinksConfig) (*Downlinks, error) {
	if len(cfg.Networks) == 0 {
		return nil, errors.New("fieldnodes: DownlinksConfig needs a network server")
	}
	d := &Downlinks{nets: map[string]downNetwork{}, now: cfg.Now}
	if d.now == nil {
		d.now = time.Now
	}
	for _, n := range cfg.Networks {
		down, up := n.Topic, n.UplinkTopic
		switch n.Network {
		case NetworkChirpStack:
			down, up = cmp.Or(down, DefaultChirpStackDownTopic), cmp.Or(up, DefaultChirpStackTopic)
		case NetworkTTS:
			down, up = cmp.Or(down, DefaultTTSDownTopic), cmp.Or(up, DefaultTTSTopic)
		default:
			return nil, fmt.Errorf("fieldnodes: downlinks: network %q: want %s or %s", n.Network, NetworkChirpStack, NetworkTTS)
		}
		if _, dup := d.nets[n.Network]; dup {
			return nil, fmt.Errorf("fieldnodes: downlinks: %s given twice", n.Network)
		}
		if n.Link == nil {
			return nil, fmt.Errorf("fieldnodes: downlinks: %s needs a Link", n.Network)
		}
		dt, err := lorawan.ParseDownTemplate(down)
		if err != nil {
			return nil, fmt.Errorf("fieldnodes: %s downlinks: %w", n.Network, err)
		}
		ut, err := lorawan.ParseTemplate(up)
		if err != nil {
			return nil, fmt.Errorf("fieldnodes: %s downlinks: %w", n.Network, err)
		}
		for _, name := range dt.Names() {
			if name != "dev_eui" && !slices.Contains(ut.Names(), name) {
				return nil, fmt.Errorf("fieldnodes: %s downlink topic %s: {%s} is not a placeholder of the uplink topic %s, so no uplink can tell it",
					n.Network, dt, name, ut)
			}
		}
		d.nets[n.Network] = downNetwork{template: dt, link: n.Link}
	}
	return d, nil
}

// SendDownlink publishes dl (QoS 1) on its controller's downlink topic and returns once the
// broker acknowledged it: the network server then has it queued, not yet sent. A downlink past
// its ExpiresAt is not published (ErrCommandExpired), nor one for a controller with no route
// yet (ErrNoRoute).
func (d *Downlinks) SendDownlink(ctx context.Context, dl Downlink) error {
	if err := dl.validate(); err != nil {
		return err
	}
	if !d.now().Before(dl.ExpiresAt) {
		return fmt.Errorf("downlink %s to %s: %w at %s", dl.CommandID, dl.ControllerUID, ErrCommandExpired, dl.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if dl.Network == "" || dl.Route == nil {
		return fmt.Errorf("downlink %s to controller %s (DevEUI %s): %w", dl.CommandID, dl.ControllerUID, dl.DevEUI, ErrNoRoute)
	}
	n, ok := d.nets[dl.Network]
	if !ok {
		return fmt.Errorf("downlink %s to controller %s: it was last heard through %s, which is not configured for downlinks", dl.CommandID, dl.ControllerUID, dl.Network)
	}
	vars := dl.Route
	if _, ok := vars["dev_eui"]; !ok {
		vars = make(map[string]string, len(dl.Route)+1)
		for k, v := range dl.Route {
			vars[k] = v
		}
		vars["dev_eui"] = dl.DevEUI
	}
	topic, err := n.template.Topic(vars)
	if err != nil {
		return fmt.Errorf("downlink %s to controller %s: %w", dl.CommandID, dl.ControllerUID, err)
	}
	var payload []byte
	switch dl.Network {
	case NetworkChirpStack:
		payload, err = json.Marshal(chirpStackDownlink{ID: dl.CommandID, DevEUI: dl.DevEUI, Confirmed: true, FPort: dl.FPort,
			Data: dl.Payload, ExpiresAt: dl.ExpiresAt.UTC().Format(time.RFC3339Nano)})
	case NetworkTTS:
		payload, err = json.Marshal(ttsPush{Downlinks: []ttsDownlink{{FPort: dl.FPort, FRMPayload: dl.Payload, Confirmed: true,
			Priority: "HIGH", CorrelationIDs: []string{lorawan.CorrelationPrefix + dl.CommandID}}}})
	}
	if err != nil {
		return fmt.Errorf("downlink %s: %w", dl.CommandID, err)
	}
	if err := n.link.Publish(ctx, topic, 1, false, payload); err != nil {
		return fmt.Errorf("queue downlink %s for controller %s at %s: %w", dl.CommandID, dl.ControllerUID, dl.Network, err)
	}
	return nil
}

func (dl Downlink) validate() error {
	switch {
	case dl.CommandID == "":
		return invalid("command_id", "required: it names the downlink in the network server's acks")
	case dl.FPort < 1 || dl.FPort > 223:
		return invalid("fport", "%d is not an application port (1–223)", dl.FPort)
	case len(dl.Payload) == 0:
		return invalid("payload", "empty")
	case dl.ExpiresAt.IsZero():
		return invalid("expires_at", "required: a controller must be able to tell a late command")
	}
	if eui, ok := lorawan.NormalizeDevEUI(dl.DevEUI); !ok || eui != dl.DevEUI {
		return invalid("dev_eui", "%q is not 16 lower-case hex digits", dl.DevEUI)
	}
	return nil
}

// chirpStackDownlink is ChirpStack v4's DownlinkCommand in its JSON form (the MQTT integration
// with json = true). ChirpStack versions without the queue item's expiry ignore expiresAt.
type chirpStackDownlink struct {
	ID        string `json:"id"`
	DevEUI    string `json:"devEui"`
	Confirmed bool   `json:"confirmed"`
	FPort     int    `json:"fPort"`
	Data      []byte `json:"data"` // base64
	ExpiresAt string `json:"expiresAt"`
}

// ttsPush is The Things Stack v3's down/push message (ApplicationDownlinks). TTS has no expiry
// per downlink: the controller's own check of the command's expires_at is what keeps a late one
// from being carried out.
type ttsPush struct {
	Downlinks []ttsDownlink `json:"downlinks"`
}

type ttsDownlink struct {
	FPort          int      `json:"f_port"`
	FRMPayload     []byte   `json:"frm_payload"` // base64
	Confirmed      bool     `json:"confirmed"`
	Priority       string   `json:"priority"`
	CorrelationIDs []string `json:"correlation_ids"`
}
