package fieldnodes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"

	"github.com/aghali/aghali/fieldnodes/lorawan"
	"github.com/aghali/aghali/fieldnodes/lorawan/chirpstack"
	"github.com/aghali/aghali/fieldnodes/lorawan/tts"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// Claim is what a person says about a pending device to register it as a node.
type Claim struct {
	// UID of the node. A native (MQTT) device keeps the uid it publishes under, so it may be
	// left empty or must be that; a LoRaWAN device's default is "lora-" + its DevEUI.
	UID     string
	FarmID  int64
	ZoneID  *int64
	Name    string // default: the network server's name for it
	Profile string // device profile; default native (MQTT) or cayenne (LoRaWAN)
	// Location, DepthM, HeightM, ExpectedIntervalS as on Node (profile defaults apply).
	Location          *geom.Point
	DepthM            *float64
	HeightM           *float64
	ExpectedIntervalS int
}

// ClaimResult is a claimed device: the node it became and what its kept payloads gave.
type ClaimResult struct {
	Node     Node
	Readings int // readings stored from the pending payloads
	Skipped  int // pending payloads that gave nothing under the profile (refused by it, or not uplinks)
}

// ClaimPending registers pending device id as a node and brings in the readings of its kept
// payloads, decoded with the node's profile, in one transaction: afterwards the device is no
// longer pending and its data so far is stored as if it had been registered all along.
func (s *Store) ClaimPending(ctx context.Context, id int64, c Claim) (ClaimResult, error) {
	var res ClaimResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var source, uid, label string
		err := tx.QueryRow(ctx, `SELECT source, uid, label FROM pending_devices WHERE id = $1 FOR UPDATE`, id).Scan(&source, &uid, &label)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("pending device %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("pending device %d: %w", id, err)
		}
		// The kept payloads, oldest first (read before the node's creation deletes them).
		rows, err := tx.Query(ctx, `SELECT m.received_at, m.topic, m.event, m.payload FROM pending_messages m
			WHERE m.pending_id = $1 ORDER BY m.id`, id)
		if err != nil {
			return fmt.Errorf("pending messages: %w", err)
		}
		type kept struct {
			at      time.Time
			topic   string
			event   string
			payload []byte
		}
		var msgs []kept
		for rows.Next() {
			var k kept
			if err := rows.Scan(&k.at, &k.topic, &k.event, &k.payload); err != nil {
				rows.Close()
				return fmt.Errorf("pending messages: %w", err)
			}
			msgs = append(msgs, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("pending messages: %w", err)
		}
		n := Node{FarmID: c.FarmID, ZoneID: c.ZoneID, Name: strings.TrimSpace(c.Name), Profile: c.Profile, Location: c.Location,
			DepthM: c.DepthM, HeightM: c.HeightM, ExpectedIntervalS: c.ExpectedIntervalS}
		switch source {
		case SourceMQTT:
			if u := strings.TrimSpace(c.UID); u != "" && u != uid {
				return invalid("uid", "a native device publishes as %q; its node must have that uid", uid)
			}
			n.UID = uid
		default:
			n.DevEUI = uid
			n.UID = strings.TrimSpace(c.UID)
			if n.UID == "" {
				n.UID = "lora-" + uid
			}
			if n.Profile == "" {
				n.Profile = "cayenne"
			}
			if n.Name == "" {
				n.Name = label
			}
		}
		if err := s.profileDefaults(ctx, &n); err != nil {
			return err
		}
		if err := n.normalize(); err != nil {
			return err
		}
		node, err := createNode(ctx, tx, n)
		if err != nil {
			return err
		}
		res.Node = node
		p, err := s.Profile(ctx, node.Profile)
		if err != nil {
			return err
		}

		up := newUpkeepSet()
		info := nodeInfo{id: node.ID, farm: node.FarmID, profile: node.Profile, zoned: node.ZoneID != nil}
		var readings []Reading
		for _, k := range msgs {
			it := &item{msg: mqttlink.NewMessage(k.topic, k.payload, k.at, nil), source: source, event: k.event}
			switch source {
			case SourceMQTT:
				it.meas, it.rej = decodeUplink(node.UID, k.payload, k.at, 24*time.Hour)
			default:
				var ev lorawan.Event
				var err error
				if source == NetworkChirpStack {
					ev, err = chirpstack.Parse(k.event, k.payload)
				} else {
					ev, err = tts.Parse(k.event, k.payload)
				}
				if err != nil {
					res.Skipped++
					continue
				}
				it.lw = &ev
			}
			if it.rej != nil {
				res.Skipped++
				continue
			}
			before := len(readings)
			var rej *rejection
			if readings, rej = messageReadings(readings, it, info, p, up, 24*time.Hour); rej != nil {
				readings = readings[:before]
				res.Skipped++
			}
		}
		if len(readings) > 0 {
			rows, ids, err := s.prepareRows(ctx, readings)
			if err != nil {
				return err
			}
			if res.Readings, err = s.insertRows(ctx, tx, rows, ids); err != nil {
				return fmt.Errorf("claim: readings: %w", err)
			}
			up.addReadings(rows, ids)
		}
		if err := s.writeUpkeep(ctx, tx, up); err != nil {
			return fmt.Errorf("claim: node upkeep: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pending_devices WHERE id = $1`, id); err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		return nil
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			return ClaimResult{}, err
		}
		return ClaimResult{}, interpretError(err, "claim pending device")
	}
	if res.Node, err = s.Node(ctx, res.Node.ID); err != nil {
		return ClaimResult{}, err
	}
	return res, nil
}
