package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Handlers of the caller's bearer tokens.

type tokenJSON struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Token      string     `json:"token,omitempty"` // only in the answer to POST
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

func tokenOf(t Token) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC(), ExpiresAt: utcPtr(t.ExpiresAt),
		LastUsedAt: utcPtr(t.LastUsedAt), RevokedAt: utcPtr(t.RevokedAt)}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

type tokenInput struct {
	Name        string `json:"name"`
	ExpiresDays *int   `json:"expires_days"`
}

// Token lifetimes in days: the default when expires_days is absent, and the longest allowed.
const (
	defaultTokenDays = 90
	maxTokenDays     = 3650
)

// createToken: POST /auth/tokens → 201 with the secret, shown this once. Only a person logged
// in creates tokens: a token minting itself a longer-lived successor would outlive its revocation.
func (s *Server) createToken(c echo.Context) error {
	if caller(c).token != nil {
		return fmt.Errorf("%w: bearer tokens are created from a logged-in session, not by another token", errForbidden)
	}
	var in tokenInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	days := defaultTokenDays
	if in.ExpiresDays != nil {
		days = *in.ExpiresDays
	}
	if days < 1 || days > maxTokenDays {
		return &ValidationError{Field: "expires_days", Problem: "want 1 to 3650 days"}
	}
	exp := s.now().Add(time.Duration(days) * 24 * time.Hour)
	a := caller(c)
	t, secret, err := CreateToken(c.Request().Context(), s.db, a.User.ID, in.Name, &exp)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{Action: "create", Entity: "token", EntityID: t.ID, Detail: map[string]any{"name": t.Name, "expires_at": exp.UTC()}})
	out := tokenOf(t)
	out.Token = secret
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, out)
}

// listTokens: GET /auth/tokens — the caller's tokens, without their secrets.
func (s *Server) listTokens(c echo.Context) error {
	ts, err := tokensOf(c.Request().Context(), s.db, caller(c).User.ID)
	if err != nil {
		return err
	}
	out := make([]tokenJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenOf(t))
	}
	return c.JSON(http.StatusOK, out)
}

// revokeToken: DELETE /auth/tokens/{id} — only one's own tokens.
func (s *Server) revokeToken(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	t, err := revokeUserToken(c.Request().Context(), s.db, caller(c).User.ID, id, s.now())
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{Action: "revoke", Entity: "token", EntityID: t.ID, Detail: map[string]string{"name": t.Name}})
	return c.NoContent(http.StatusNoContent)
}
