package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// How many messages were refused, by reason (devices.go lists them one by one).

type rejectionCountJSON struct {
	Reason string    `json:"reason"`
	Count  int64     `json:"count"`
	LastAt time.Time `json:"last_at"`
}

// rejectionReasons: GET /rejected-messages/reasons (admin of any organisation) → the kept
// rejected messages counted by reason, most frequent first.
func (s *Server) rejectionReasons(c echo.Context) error {
	if err := adminOfAny(c); err != nil {
		return err
	}
	list, err := s.nodes.RejectionCounts(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]rejectionCountJSON, 0, len(list))
	for _, r := range list {
		out = append(out, rejectionCountJSON{Reason: r.Reason, Count: r.Count, LastAt: utc(r.Last)})
	}
	return c.JSON(http.StatusOK, out)
}
