package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
)

// auditEntry is one change a person made.
type auditEntry struct {
	OrgID    int64  // the organisation whose admins may read it; 0: none (e.g. one's own tokens)
	Action   string // create, update, delete, login, ...
	Entity   string // farm, field, user, token, session, ...
	EntityID any    // id of the entity (formatted with %v); nil: none
	Detail   any    // marshalled to JSON; nil: {}
}

// audit records a change by the caller of c. Handlers call it after the change succeeded and
// before answering. A failure to record is logged with the whole entry (the log is then the
// record of last resort) but does not fail the request: the change itself has been made, and
// reporting an error would invite the client to make it twice.
func (s *Server) audit(c echo.Context, e auditEntry) {
	a := caller(c)
	s.writeAudit(c, a.User.ID, a.actor(), e)
}

func (s *Server) writeAudit(c echo.Context, userID int64, actor string, e auditEntry) {
	c.Set(ctxAudited, true)
	var detail []byte
	if e.Detail != nil {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			detail = nil
		}
	}
	if detail == nil {
		detail = []byte("{}")
	}
	entityID := ""
	if e.EntityID != nil {
		entityID = fmt.Sprint(e.EntityID)
	}
	// The request's own context may be near its deadline or cancelled by the client; the record
	// of a change already made must still be written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 5*time.Second)
	defer cancel()
	_, err := s.db.Exec(ctx, `INSERT INTO audit_log (at, org_id, user_id, actor, action, entity, entity_id, detail)
		VALUES ($1, NULLIF($2, 0), NULLIF($3, 0), $4, $5, $6, $7, $8)`,
		s.now(), e.OrgID, userID, actor, e.Action, e.Entity, entityID, detail)
	if err != nil {
		s.log.Error("audit entry not recorded", "request_id", requestID(c), "err", err,
			"org_id", e.OrgID, "user_id", userID, "actor", actor, "action", e.Action,
			"entity", e.Entity, "entity_id", entityID, "detail", string(detail))
	}
}

// auditForgotten records a mutating request whose handler recorded nothing, so the log stays
// complete, and says so in the service log so the handler gets fixed.
func (s *Server) auditForgotten(c echo.Context) {
	s.log.Warn("handler did not audit a change", "route", c.Path(), "method", c.Request().Method)
	s.audit(c, auditEntry{
		Action:   c.Request().Method,
		Entity:   c.Path(),
		EntityID: c.Request().URL.Path,
	})
}

type auditJSON struct {
	ID       int64           `json:"id"`
	At       time.Time       `json:"at"`
	OrgID    *int64          `json:"org_id"`
	UserID   *int64          `json:"user_id"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Entity   string          `json:"entity"`
	EntityID string          `json:"entity_id"`
	Detail   json.RawMessage `json:"detail"`
}

// listAudit: GET /audit?limit=&before= — the audit log of the organisations the caller
// administers, newest first; before (an id) pages further back.
func (s *Server) listAudit(c echo.Context) error {
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	before, err := queryInt(c, "before", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	var orgs []int64
	for _, m := range caller(c).memberships {
		if m.Role == RoleAdmin {
			orgs = append(orgs, m.OrgID)
		}
	}
	if len(orgs) == 0 {
		return forbidden(RoleAdmin)
	}
	rows, err := s.db.Query(c.Request().Context(), `SELECT id, at, org_id, user_id, actor, action, entity, entity_id, detail
		FROM audit_log WHERE org_id = ANY($1) AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3`, orgs, before, limit)
	if err != nil {
		return dbError(err, "audit")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auditJSON, error) {
		var a auditJSON
		err := r.Scan(&a.ID, &a.At, &a.OrgID, &a.UserID, &a.Actor, &a.Action, &a.Entity, &a.EntityID, &a.Detail)
		a.At = a.At.UTC()
		return a, err
	})
	if err != nil {
		return dbError(err, "audit")
	}
	return c.JSON(http.StatusOK, out)
}
