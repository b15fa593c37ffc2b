package irrigation

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/lorawan"
)

var _ fieldnodes.LoRaWANControllerHandler = (*ControllerHandler)(nil)

// ControllerDevEUIs lists the DevEUIs of the LoRaWAN controllers: the ingest gives their
// network-server events to HandleLoRaWANEvent rather than to the nodes.
func (h *ControllerHandler) ControllerDevEUIs(ctx context.Context) ([]string, error) {
	rows, err := h.store.db.Query(ctx, `SELECT dev_eui FROM controllers WHERE transport = 'lorawan' AND dev_eui IS NOT NULL`)
	if err != nil {
		return nil, interpretError(err, "DevEUIs of LoRaWAN controllers")
	}
	euis, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return euis, interpretError(err, "DevEUIs of LoRaWAN controllers")
}

// HandleLoRaWANEvent applies a network server's event about a LoRaWAN controller. First it
// keeps where the controller was heard (the network server and its topic's placeholders: its
// downlinks go there, after a restart too). Then an uplink on the controller's port is an ack or
// a state (HandleLoRaWANUplink), and the network server's word on a downlink of one of its
// commands is applied (networkWord). Anything else (another port, an empty uplink, a join, a
// downlink Aghali did not name) is fieldnodes.ErrNothingForController.
func (h *ControllerHandler) HandleLoRaWANEvent(ctx context.Context, ev fieldnodes.ControllerEvent) error {
	e := ev.Event
	if err := h.learnRoute(ctx, e.DevEUI, ev.Network, ev.Route); err != nil {
		return err
	}
	switch e.Kind {
	case lorawan.KindUp:
		if len(e.Payload) == 0 {
			return fieldnodes.ErrNothingForController // a heartbeat, or MAC commands only
		}
		err := h.HandleLoRaWANUplink(ctx, e.DevEUI, e.FPort, e.Payload, ev.Received)
		if errors.Is(err, ErrNotControllerUplink) {
			return fieldnodes.ErrNothingForController
		}
		return err
	case lorawan.KindAck, lorawan.KindDownAck, lorawan.KindDownNack, lorawan.KindDownFailed:
		return h.networkWord(ctx, e, ev.Received)
	}
	return fieldnodes.ErrNothingForController
}

// learnRoute records where a LoRaWAN controller was heard, writing only when that changed.
func (h *ControllerHandler) learnRoute(ctx context.Context, devEUI, network string, route map[string]string) error {
	if network == "" || route == nil {
		return nil
	}
	_, err := h.store.db.Exec(ctx, `UPDATE controllers SET lorawan_network = $2, lorawan_route = $3
		WHERE dev_eui = $1 AND transport = 'lorawan'
			AND (lorawan_network IS DISTINCT FROM $2 OR lorawan_route IS DISTINCT FROM $3::jsonb)`, devEUI, network, route)
	return interpretError(err, "record the controller's downlink route")
}

// networkWord applies what the network server says of the downlink of one of a controller's
// commands (its id is the command's). Downlinks go confirmed, so an acknowledgement means the
// controller received the command in time to carry it out: it counts as the command's ack (the
// controller's own ack uplink, if it follows, changes nothing; its rejection, if it refused,
// still fails the run). A nack or a failure is noted on the command, which the dispatcher sends
// again, as for any unacknowledged command, until it expires. An acknowledgement is never
// undone by a later word.
func (h *ControllerHandler) networkWord(ctx context.Context, e lorawan.Event, received time.Time) error {
	if _, err := uuid.Parse(e.DownlinkID); err != nil {
		return fieldnodes.ErrNothingForController // a downlink someone else queued
	}
	status := DownlinkNacked
	switch {
	case e.Kind == lorawan.KindDownFailed:
		status = "failed: " + e.Detail
	case e.Acknowledged:
		status = DownlinkAcked
	}
	var uid string
	err := h.store.db.QueryRow(ctx, `UPDATE commands c
		SET downlink_status = CASE WHEN c.downlink_status = 'acked' THEN c.downlink_status ELSE $3 END
		FROM controllers ctl WHERE c.id = $1 AND ctl.id = c.controller_id AND ctl.dev_eui = $2
		RETURNING ctl.uid`, e.DownlinkID, e.DevEUI, status).Scan(&uid)
	if errors.Is(err, pgx.ErrNoRows) {
		h.log.Warn("network server's word on a downlink of no command of this controller dropped", "dev_eui", e.DevEUI,
			"downlink", e.DownlinkID, "status", status)
		return fieldnodes.ErrNothingForController
	}
	if err != nil {
		return interpretError(err, "record the network server's word on a downlink")
	}
	if status != DownlinkAcked {
		h.log.Warn("downlink not delivered; sent again until it expires", "controller", uid, "command", e.DownlinkID, "status", status)
		return nil
	}
	return h.HandleAck(ctx, fieldnodes.ControllerAck{ControllerUID: uid, CommandID: e.DownlinkID, Status: "ok", ReceivedAt: received})
}
