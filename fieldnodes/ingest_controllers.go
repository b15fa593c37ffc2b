package fieldnodes

import (
	"errors"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// ctrlMsg is a message for the controller loop: a native controller's ack or state, or (lw set)
// a network server's event about a LoRaWAN controller.
type ctrlMsg struct {
	msg mqttlink.Message
	lw  *ControllerEvent
}

// controllerLoop hands controller messages to the ControllerHandler (or, for LoRaWAN
// controllers, the LoRaWANControllerHandler) one at a time. A message is acknowledged once the
// handler returned nil (or once it is recorded as rejected); after a handler error it stays
// unacknowledged, so the broker redelivers it when the session resumes.
func (g *Ingest) controllerLoop() {
	defer g.wg.Done()
	for {
		select {
		case cm := <-g.ctrl:
			g.handleController(cm)
		case <-g.drain:
			for {
				select {
				case cm := <-g.ctrl:
					g.handleController(cm)
				default:
					return
				}
			}
		}
	}
}

func (g *Ingest) handleController(cm ctrlMsg) {
	if cm.lw != nil {
		g.handleLoRaWANController(cm)
		return
	}
	m := cm.msg
	ctx := g.ctx
	kind, uid := parseTopic(g.cfg.Prefix, m.Topic)
	var err error
	switch kind {
	case topicAck:
		var ack ControllerAck
		if ack, err = decodeAck(uid, m.Payload, m.Received); err == nil {
			err = g.cfg.Controllers.HandleAck(ctx, ack)
			g.controllerDone(m, "ack", err)
			return
		}
	case topicState:
		var st ControllerState
		if st, err = decodeState(uid, m.Payload, m.Received); err == nil {
			err = g.cfg.Controllers.HandleState(ctx, st)
			g.controllerDone(m, "state", err)
			return
		}
	default:
		err = errors.New("not " + g.cfg.Prefix + "/controllers/{uid}/ack or /state with a valid uid")
	}
	reason := RejectInvalid
	var ce *codec.Error
	if errors.As(err, &ce) && ce.Reason == codec.ReasonSyntax {
		reason = RejectMalformed
	} else if kind == topicOther {
		reason = RejectTopic
	}
	g.rejectController(m, reason, err)
}

// rejectController records a controller message that cannot be used, then acknowledges it.
func (g *Ingest) rejectController(m mqttlink.Message, reason string, err error) {
	ctx := g.ctx
	if rerr := g.retry(ctx, "record rejected message", func() error {
		return g.store.reject(ctx, m.Received, m.Topic, m.Payload, reason, err.Error())
	}); rerr != nil {
		g.log.Error("cannot record a rejected controller message; leaving it unacknowledged", "topic", m.Topic, "err", rerr)
		return
	}
	m.Ack()
	g.metrics.messages.WithLabelValues("rejected").Inc()
	g.metrics.rejections.WithLabelValues(reason).Inc()
	g.log.Warn("controller message rejected", "topic", m.Topic, "reason", reason, "detail", err.Error())
}

func (g *Ingest) controllerDone(m mqttlink.Message, what string, err error) {
	if err != nil {
		g.metrics.messages.WithLabelValues("controller_failed").Inc()
		g.log.Error("controller "+what+" handler failed; message left unacknowledged for redelivery", "topic", m.Topic, "err", err)
		return
	}
	m.Ack()
	g.metrics.messages.WithLabelValues("controller_" + what).Inc()
}
