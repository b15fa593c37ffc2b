package fieldnodes

import (
	"context"
	"errors"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec/valvecmd"
	"github.com/aghali/aghali/fieldnodes/lorawan"
)

// LoRaWANControllerHandler takes the network-server events of LoRaWAN valve controllers: their
// uplinks (acks and states in the layout of package valvecmd) and the fate of their downlinks.
// Package irrigation satisfies it.
type LoRaWANControllerHandler interface {
	// ControllerDevEUIs lists the DevEUIs (16 lower-case hex digits) of the LoRaWAN
	// controllers. The ingest reads it every IngestConfig.ControllerRefresh, never per message.
	ControllerDevEUIs(ctx context.Context) ([]string, error)
	// HandleLoRaWANEvent applies one event of a controller's DevEUI. It returns
	// ErrNothingForController when the event asks nothing of it (an uplink on another port), a
	// *valvecmd.Error for a payload it cannot read (the message is recorded as rejected); the
	// MQTT message is acknowledged once it returns nil or either of those, and left for
	// redelivery after any other error.
	HandleLoRaWANEvent(ctx context.Context, ev ControllerEvent) error
}

// ControllerEvent is a network server's event about a LoRaWAN controller.
type ControllerEvent struct {
	Network string // NetworkChirpStack or NetworkTTS
	// Route is what the event's topic put in its template's placeholders ({event} left out):
	// with Network, where the controller's downlinks go (Downlink.Route).
	Route    map[string]string
	Event    lorawan.Event
	Received time.Time
}

// ErrNothingForController: the event is a controller's but asks nothing of it.
var ErrNothingForController = errors.New("fieldnodes: nothing for the controller in this event")

// isController reports whether eui is a LoRaWAN controller's, from the cache (no query).
func (g *Ingest) isController(eui string) bool {
	set := g.ctlEUI.Load()
	if set == nil {
		return false
	}
	_, ok := (*set)[eui]
	return ok
}

func (g *Ingest) controllerEUILoop(ctx context.Context) {
	every(ctx, g.cfg.ControllerRefresh, func() { g.refreshControllerEUIs(ctx) })
}

// refreshControllerEUIs reads the controllers' DevEUIs again; on failure the cache keeps what it
// had. The controllers lose their pending devices, if they have any: what a controller sent
// before it was registered (or before the refresh after that) is not a node's to claim. (Each
// refresh clears them, since a message taken for a stray device just before one may be
// committed just after it.)
func (g *Ingest) refreshControllerEUIs(ctx context.Context) {
	euis, err := g.cfg.LoRaWANControllers.ControllerDevEUIs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			g.log.Error("read the DevEUIs of LoRaWAN controllers; retried later", "err", err)
		}
		return
	}
	set := make(map[string]struct{}, len(euis))
	for _, e := range euis {
		set[e] = struct{}{}
	}
	g.ctlEUI.Store(&set)
	if len(euis) > 0 {
		if err := g.store.forgetPendingLoRaWAN(ctx, euis); err != nil && ctx.Err() == nil {
			g.log.Warn("pending devices of LoRaWAN controllers left for now", "err", err)
		}
	}
}

// handleLoRaWANController gives a controller's network-server event to the handler. The PUBACK
// of such a message may overtake those of node uplinks published before it by the same network
// server (they wait for their batch's commit); clients match PUBACKs by packet id.
func (g *Ingest) handleLoRaWANController(cm ctrlMsg) {
	err := g.cfg.LoRaWANControllers.HandleLoRaWANEvent(g.ctx, *cm.lw)
	var ve *valvecmd.Error
	switch {
	case err == nil:
		cm.msg.Ack()
		g.metrics.messages.WithLabelValues("controller_lorawan").Inc()
	case errors.Is(err, ErrNothingForController):
		cm.msg.Ack()
		g.metrics.messages.WithLabelValues("ignored").Inc()
	case errors.As(err, &ve):
		g.rejectController(cm.msg, RejectInvalid, err)
	default:
		g.controllerDone(cm.msg, "lorawan", err)
	}
}
