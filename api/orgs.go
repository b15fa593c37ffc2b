package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Handlers of organisations.

type orgJSON struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"` // the caller's
}

// listOrgs: GET /orgs — the caller's organisations and their role in each.
func (s *Server) listOrgs(c echo.Context) error {
	ms := caller(c).memberships
	out := make([]orgJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, orgJSON{ID: m.OrgID, Name: m.OrgName, Role: m.Role})
	}
	return c.JSON(http.StatusOK, out)
}
