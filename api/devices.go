package api

import (
	"encoding/base64"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/fieldnodes"
)

// Handlers of what is known about devices beyond the registered ones: the metrics catalogue,
// devices that publish without being registered, and messages that were refused.

type metricJSON struct {
	Name  string `json:"name"`
	Unit  string `json:"unit"`
	Known bool   `json:"known"` // false: a name a device sent that is not in the contract
}

// metricsCatalog: GET /metrics-catalog — contract metrics first, then unknown ones, by name.
func (s *Server) metricsCatalog(c echo.Context) error {
	list, err := s.nodes.Metrics(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]metricJSON, 0, len(list))
	for _, m := range list {
		out = append(out, metricJSON{Name: m.Name, Unit: m.Unit, Known: m.Known})
	}
	return c.JSON(http.StatusOK, out)
}

type pendingMessageJSON struct {
	ReceivedAt    time.Time `json:"received_at"`
	Topic         string    `json:"topic"`
	Event         string    `json:"event"` // up, or the network server's event
	PayloadBase64 string    `json:"payload_base64"`
}

type pendingDeviceJSON struct {
	ID           int64                `json:"id"`
	Source       string               `json:"source"`
	UID          string               `json:"uid"`
	Label        string               `json:"label"` // the network server's name for it
	FirstSeenAt  time.Time            `json:"first_seen_at"`
	LastSeenAt   time.Time            `json:"last_seen_at"`
	MessageCount int64                `json:"message_count"`
	Messages     []pendingMessageJSON `json:"messages"` // newest first
}

// pendingDevices: GET /pending-devices (admin of any organisation) — devices that published but
// are not registered, most recently heard first, each with its last payloads. They belong to no
// organisation yet, so every admin sees all of them.
func (s *Server) pendingDevices(c echo.Context) error {
	if err := adminOfAny(c); err != nil {
		return err
	}
	list, err := s.nodes.PendingDevices(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]pendingDeviceJSON, 0, len(list))
	for _, d := range list {
		j := pendingDeviceJSON{ID: d.ID, Source: d.Source, UID: d.UID, Label: d.Label, FirstSeenAt: utc(d.FirstSeenAt),
			LastSeenAt: utc(d.LastSeenAt), MessageCount: d.MessageCount, Messages: make([]pendingMessageJSON, 0, len(d.Messages))}
		for _, m := range d.Messages {
			j.Messages = append(j.Messages, pendingMessageJSON{ReceivedAt: utc(m.ReceivedAt), Topic: m.Topic, Event: m.Event,
				PayloadBase64: base64.StdEncoding.EncodeToString(m.Payload)})
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

type rejectedMessageJSON struct {
	ID            int64     `json:"id"`
	ReceivedAt    time.Time `json:"received_at"`
	Topic         string    `json:"topic"`
	Reason        string    `json:"reason"`
	Detail        string    `json:"detail"`
	PayloadBase64 string    `json:"payload_base64"`
}

// rejectedMessages: GET /rejected-messages?limit=100&reason=&before= (admin of any
// organisation) — the newest messages that were refused (of one reason, older than the id
// before: paging), with the raw payload in standard base64; limit 1–1000. A refused message may
// not be attributable to a device, let alone a farm, so every admin sees all.
func (s *Server) rejectedMessages(c echo.Context) error {
	if err := adminOfAny(c); err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	before, err := queryInt(c, "before", 0, 1, math.MaxInt)
	if err != nil {
		return err
	}
	list, err := s.nodes.RejectedMessages(c.Request().Context(), fieldnodes.RejectedFilter{
		Reason: c.QueryParam("reason"), BeforeID: int64(before), Limit: limit})
	if err != nil {
		return err
	}
	out := make([]rejectedMessageJSON, 0, len(list))
	for _, m := range list {
		out = append(out, rejectedMessageJSON{ID: m.ID, ReceivedAt: utc(m.ReceivedAt), Topic: m.Topic, Reason: m.Reason,
			Detail: m.Detail, PayloadBase64: base64.StdEncoding.EncodeToString(m.Payload)})
	}
	return c.JSON(http.StatusOK, out)
}
