package fieldnodes

import (
	"context"
	"fmt"
	"time"
)

// PendingDevice is a device that published but is not registered, with its last payloads.
type PendingDevice struct {
	ID           int64
	Source       string // where it was heard: SourceMQTT, NetworkChirpStack or NetworkTTS
	UID          string // the uid in its topic, or its DevEUI for LoRaWAN
	Label        string // the network server's name for it ("" for native devices)
	FirstSeenAt  time.Time
	LastSeenAt   time.Time
	MessageCount int64
	Messages     []PendingMessage // newest first, at most PendingMessagesKept
}

// PendingMessage is one payload of a pending device.
type PendingMessage struct {
	ReceivedAt time.Time
	Topic      string
	Event      string // "up", or the network-server event ("status", ...)
	Payload    []byte
}

// RejectedMessage is a message that was refused, with why.
type RejectedMessage struct {
	ID         int64
	ReceivedAt time.Time
	Topic      string
	Payload    []byte
	Reason     string // short stable code, e.g. "malformed"
	Detail     string // for a person: what exactly is wrong
}

// SourceMQTT is the pending-device source of native MQTT devices.
const SourceMQTT = "mqtt"

// PendingMessagesKept is how many payloads are kept per pending device.
const PendingMessagesKept = 20

// RecordPending notes that an unregistered device (source, uid) sent payload on topic, keeping
// its last PendingMessagesKept payloads.
func (s *Store) RecordPending(ctx context.Context, source, uid, topic string, payload []byte, receivedAt time.Time) error {
	return s.recordPending(ctx, source, uid, "", "up", topic, payload, receivedAt, 0)
}

// forgetPendingLoRaWAN drops the pending devices of network servers with one of these DevEUIs
// (they turned out to be LoRaWAN controllers, which irrigation takes care of).
func (s *Store) forgetPendingLoRaWAN(ctx context.Context, euis []string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM pending_devices WHERE source IN ($1, $2) AND uid = ANY($3)`,
		NetworkChirpStack, NetworkTTS, euis)
	if err != nil {
		return fmt.Errorf("forget pending devices that are controllers: %w", err)
	}
	return nil
}

// recordPending is RecordPending with the network server's name for the device, the event, and
// how many more messages than this one it sent (not kept: an ingest batch keeps only the last
// PendingMessagesKept of a device's messages).
func (s *Store) recordPending(ctx context.Context, source, uid, label, event, topic string, payload []byte, receivedAt time.Time, more int) error {
	if payload == nil {
		payload = []byte{}
	}
	// The DELETE sees the messages as they were before this statement: keeping the newest
	// PendingMessagesKept-1 of those plus the one inserted leaves PendingMessagesKept.
	_, err := s.db.Exec(ctx, `
		WITH d AS (
			INSERT INTO pending_devices AS p (source, uid, label, first_seen_at, last_seen_at, message_count)
			VALUES ($1, $2, $7, $3, $3, 1 + $9)
			ON CONFLICT (source, uid) DO UPDATE
			SET last_seen_at = GREATEST(p.last_seen_at, EXCLUDED.last_seen_at), message_count = p.message_count + 1 + $9,
			    label = CASE WHEN EXCLUDED.label <> '' THEN EXCLUDED.label ELSE p.label END
			RETURNING id
		), m AS (
			INSERT INTO pending_messages (pending_id, received_at, topic, payload, event)
			SELECT id, $3, $4, $5, $8 FROM d
		)
		DELETE FROM pending_messages
		WHERE pending_id = (SELECT id FROM d)
		  AND id NOT IN (SELECT id FROM pending_messages WHERE pending_id = (SELECT id FROM d) ORDER BY id DESC LIMIT $6)`,
		source, uid, receivedAt, topic, payload, PendingMessagesKept-1, label, event, more)
	if err != nil {
		return fmt.Errorf("record pending device %s/%s: %w", source, uid, err)
	}
	return nil
}

// PendingDevices returns the unregistered devices heard from, most recently heard first.
func (s *Store) PendingDevices(ctx context.Context) ([]PendingDevice, error) {
	rows, err := s.db.Query(ctx, `
		SELECT d.id, d.source, d.uid, d.label, d.first_seen_at, d.last_seen_at, d.message_count,
		       m.received_at, m.topic, m.event, m.payload
		FROM pending_devices d LEFT JOIN pending_messages m ON m.pending_id = d.id
		ORDER BY d.last_seen_at DESC, d.id, m.id DESC`)
	if err != nil {
		return nil, fmt.Errorf("pending devices: %w", err)
	}
	defer rows.Close()
	out := []PendingDevice{}
	for rows.Next() {
		var d PendingDevice
		var at *time.Time
		var topic, event *string
		var payload []byte
		if err := rows.Scan(&d.ID, &d.Source, &d.UID, &d.Label, &d.FirstSeenAt, &d.LastSeenAt, &d.MessageCount, &at, &topic, &event, &payload); err != nil {
			return nil, fmt.Errorf("pending devices: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].ID != d.ID {
			d.Messages = []PendingMessage{}
			out = append(out, d)
		}
		if at != nil {
			last := &out[len(out)-1]
			last.Messages = append(last.Messages, PendingMessage{ReceivedAt: *at, Topic: *topic, Event: *event, Payload: payload})
		}
	}
	return out, rows.Err()
}

// Reject records a message that was refused: its topic, raw bytes, a short reason code and a
// detail for a person.
func (s *Store) Reject(ctx context.Context, topic string, payload []byte, reason, detail string) error {
	return s.reject(ctx, s.now(), topic, payload, reason, detail)
}

func (s *Store) reject(ctx context.Context, at time.Time, topic string, payload []byte, reason, detail string) error {
	if payload == nil {
		payload = []byte{}
	}
	if _, err := s.db.Exec(ctx, `
		INSERT INTO rejected_messages (received_at, topic, payload, reason, detail) VALUES ($1, $2, $3, $4, $5)`,
		at, topic, payload, reason, detail); err != nil {
		return fmt.Errorf("record rejected message: %w", err)
	}
	return nil
}

// rejectMany records several refused messages in one statement.
func (s *Store) rejectMany(ctx context.Context, ms []RejectedMessage) error {
	at := make([]time.Time, len(ms))
	topics := make([]string, len(ms))
	payloads := make([][]byte, len(ms))
	reasons := make([]string, len(ms))
	details := make([]string, len(ms))
	for i, m := range ms {
		at[i], topics[i], payloads[i], reasons[i], details[i] = m.ReceivedAt, m.Topic, m.Payload, m.Reason, m.Detail
		if payloads[i] == nil {
			payloads[i] = []byte{}
		}
	}
	if _, err := s.db.Exec(ctx, `
		INSERT INTO rejected_messages (received_at, topic, payload, reason, detail)
		SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bytea[], $4::text[], $5::text[])`,
		at, topics, payloads, reasons, details); err != nil {
		return fmt.Errorf("record rejected messages: %w", err)
	}
	return nil
}

// RejectedFilter selects rejected messages.
type RejectedFilter struct {
	Reason   string // only this reason; "" for all
	BeforeID int64  // only older than this one (paging: the last id of the previous page); 0 for the newest
	Limit    int    // at most this many; 100 when ≤ 0
}

// Rejected returns the newest rejected messages, at most limit (100 when limit ≤ 0).
func (s *Store) Rejected(ctx context.Context, limit int) ([]RejectedMessage, error) {
	return s.RejectedMessages(ctx, RejectedFilter{Limit: limit})
}

// RejectedMessages returns rejected messages matching f, newest first.
func (s *Store) RejectedMessages(ctx context.Context, f RejectedFilter) ([]RejectedMessage, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.db.Query(ctx, `
		SELECT id, received_at, topic, payload, reason, detail FROM rejected_messages
		WHERE ($2 = '' OR reason = $2) AND ($3 = 0 OR id < $3)
		ORDER BY received_at DESC, id DESC LIMIT $1`, f.Limit, f.Reason, f.BeforeID)
	if err != nil {
		return nil, fmt.Errorf("rejected messages: %w", err)
	}
	defer rows.Close()
	out := []RejectedMessage{}
	for rows.Next() {
		var m RejectedMessage
		if err := rows.Scan(&m.ID, &m.ReceivedAt, &m.Topic, &m.Payload, &m.Reason, &m.Detail); err != nil {
			return nil, fmt.Errorf("rejected messages: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// RejectionCount is how many messages were refused for one reason.
type RejectionCount struct {
	Reason string
	Count  int64
	Last   time.Time
}

// RejectionCounts counts the kept rejected messages by reason, most frequent first.
func (s *Store) RejectionCounts(ctx context.Context) ([]RejectionCount, error) {
	rows, err := s.db.Query(ctx, `SELECT reason, count(*), max(received_at) FROM rejected_messages GROUP BY reason ORDER BY 2 DESC, 1`)
	if err != nil {
		return nil, fmt.Errorf("rejection counts: %w", err)
	}
	defer rows.Close()
	out := []RejectionCount{}
	for rows.Next() {
		var c RejectionCount
		if err := rows.Scan(&c.Reason, &c.Count, &c.Last); err != nil {
			return nil, fmt.Errorf("rejection counts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
