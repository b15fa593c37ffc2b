package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Handlers of the session: login, the current session, logout.

type userJSON struct {
	ID     int64  `json:"id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
	Locale string `json:"locale"`
}

type membershipJSON struct {
	OrgID   int64  `json:"org_id"`
	OrgName string `json:"org_name"`
	Role    Role   `json:"role"`
}

type sessionJSON struct {
	User        userJSON         `json:"user"`
	CSRFToken   string           `json:"csrf_token"` // empty for bearer tokens, which need none
	Memberships []membershipJSON `json:"memberships"`
}

func sessionOf(a *access) sessionJSON {
	out := sessionJSON{
		User:        userJSON{ID: a.User.ID, Email: a.User.Email, Name: a.User.Name, Locale: a.User.Locale},
		Memberships: []membershipJSON{},
	}
	if a.session != nil {
		out.CSRFToken = a.session.csrf
	}
	for _, m := range a.memberships {
		out.Memberships = append(out.Memberships, membershipJSON{OrgID: m.OrgID, OrgName: m.OrgName, Role: m.Role})
	}
	return out
}

type loginInput struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login: POST /auth/login. Rate-limited per client address and per e-mail; an unknown e-mail,
// a wrong password and a disabled account get the same answer after the same work.
func (s *Server) login(c echo.Context) error {
	var in loginInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if len(email) > 254 {
		email = email[:254]
	}
	ip := c.RealIP()
	now := s.now()
	if ok, wait := s.ipRate.allow(ip, now); !ok {
		s.log.Warn("login rate-limited", "by", "address", "ip", ip, "email", email)
		return &rateLimitedError{retry: wait}
	}
	if ok, wait := s.mlRate.allow(email, now); !ok {
		s.log.Warn("login rate-limited", "by", "email", "ip", ip, "email", email)
		return &rateLimitedError{retry: wait}
	}

	u, hash, err := s.loginUser(ctx, email)
	if errors.Is(err, ErrNotFound) {
		_, _ = verifyPassword(s.dummyHash, in.Password)
		s.loginFailed(c, 0, email, "unknown e-mail")
		return errBadCredentials
	}
	if err != nil {
		return err
	}
	ok, err := verifyPassword(hash, in.Password)
	if err != nil {
		return err
	}
	if !ok {
		s.loginFailed(c, u.ID, email, "wrong password")
		return errBadCredentials
	}
	if u.Disabled {
		s.loginFailed(c, u.ID, email, "account disabled")
		return errBadCredentials
	}

	token, sess, err := s.createSession(ctx, u.ID, ip, c.Request().UserAgent())
	if err != nil {
		return err
	}
	a, err := s.loadAccess(ctx, &access{User: u, session: &sess})
	if err != nil {
		return err
	}
	s.setSessionCookie(c, token, int(s.cfg.SessionMaxAge.Seconds()))
	s.writeAudit(c, u.ID, u.Email, auditEntry{Action: "login", Entity: "session", Detail: map[string]string{"ip": ip}})
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, sessionOf(a))
}

// loginUser returns the user with that e-mail and their password hash.
func (s *Server) loginUser(ctx context.Context, email string) (User, string, error) {
	var u User
	var hash string
	err := s.db.QueryRow(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE email = $1`, email).
		Scan(&u.ID, &u.Email, &u.Name, &u.Locale, &u.Disabled, &u.CreatedAt, &hash)
	return u, hash, dbError(err, "user")
}

func (s *Server) loginFailed(c echo.Context, userID int64, email, reason string) {
	ip := c.RealIP()
	s.log.Warn("login failed", "email", email, "ip", ip, "reason", reason)
	s.writeAudit(c, userID, email, auditEntry{
		Action: "login_failed", Entity: "session",
		Detail: map[string]string{"ip": ip, "reason": reason},
	})
}

// getSession: GET /auth/session.
func (s *Server) getSession(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, sessionOf(caller(c)))
}

// logout: POST /auth/logout ends the cookie's session (a bearer token stays valid: revoke it).
func (s *Server) logout(c echo.Context) error {
	a := caller(c)
	if a.session != nil {
		if err := s.deleteSession(c.Request().Context(), a.session.hash); err != nil {
			return err
		}
		s.setSessionCookie(c, "", -1)
	}
	s.audit(c, auditEntry{Action: "logout", Entity: "session"})
	return c.NoContent(http.StatusNoContent)
}
