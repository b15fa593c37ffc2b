package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
)

// sessionCookie carries the session token.
const sessionCookie = "aghali_session"

// access is who the caller is and what they may see and do, resolved once per request by
// authenticate. Every permission decision reads it, through requireOrg and requireFarm.
type access struct {
	User        User
	memberships []Membership
	roles       map[int64]Role // organisation → role
	granted     map[int64]bool // farms granted to the user (what farmers and viewers see)
	session     *session       // set when authenticated by cookie
	token       *Token         // set when authenticated by bearer token
}

// role returns the caller's role in an organisation; false when not a member.
func (a *access) role(orgID int64) (Role, bool) {
	r, ok := a.roles[orgID]
	return r, ok
}

// seesFarm: admins and agronomists see all their organisations' farms, farmers and viewers
// the farms granted to them.
func (a *access) seesFarm(f geo.Farm) bool {
	r, ok := a.roles[f.OrgID]
	return ok && (r.seesWholeOrg() || a.granted[f.ID])
}

// actor is how the caller is named in the audit log.
func (a *access) actor() string {
	if a.token != nil {
		return fmt.Sprintf("%s (token %q)", a.User.Email, a.token.Name)
	}
	return a.User.Email
}

// caller returns the access of an authenticated request. Calling it from a route that is not
// behind authenticate is a programming error.
func caller(c echo.Context) *access {
	a, ok := c.Get(ctxAccess).(*access)
	if !ok {
		panic("api: caller() on a route without authenticate")
	}
	return a
}

// forbidden is a refusal naming the role that would have been enough.
func forbidden(need Role) error {
	return fmt.Errorf("%w: it needs the role %s or higher", errForbidden, need)
}

// requireOrg checks the caller is a member of the organisation (else ErrNotFound) with at least
// min (else 403).
func requireOrg(c echo.Context, orgID int64, min Role) error {
	r, ok := caller(c).role(orgID)
	if !ok {
		return fmt.Errorf("organisation %d: %w", orgID, ErrNotFound)
	}
	if !r.atLeast(min) {
		return forbidden(min)
	}
	return nil
}

// requireFarm returns the farm if the caller sees it (else geo.ErrNotFound: 404, the same as a
// farm that does not exist) and has at least min in its organisation (else 403). Handlers of
// anything that belongs to a farm load the thing, then call requireFarm with its farm id.
func (s *Server) requireFarm(c echo.Context, farmID int64, min Role) (geo.Farm, error) {
	f, err := s.geo.Farm(c.Request().Context(), farmID)
	if err != nil {
		return geo.Farm{}, err
	}
	a := caller(c)
	if !a.seesFarm(f) {
		return geo.Farm{}, fmt.Errorf("farm %d: %w", farmID, geo.ErrNotFound)
	}
	if r, _ := a.role(f.OrgID); !r.atLeast(min) {
		return geo.Farm{}, forbidden(min)
	}
	return f, nil
}

// visibleFarms lists every farm the caller sees, by organisation then name.
func (s *Server) visibleFarms(c echo.Context) ([]geo.Farm, error) {
	a := caller(c)
	var out []geo.Farm
	for _, m := range a.memberships {
		var only []int64 // nil: the whole organisation
		if !m.Role.seesWholeOrg() {
			only = []int64{}
			for id := range a.granted {
				only = append(only, id)
			}
		}
		farms, err := s.geo.Farms(c.Request().Context(), m.OrgID, only)
		if err != nil {
			return nil, err
		}
		out = append(out, farms...)
	}
	return out, nil
}

// authenticate resolves the caller (bearer token or session cookie, the latter with its CSRF
// token and origin checked on unsafe methods), then runs the handler; afterwards it makes sure a
// successful mutating request left an audit entry.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a, err := s.resolveCaller(c)
		if err != nil {
			return err
		}
		c.Set(ctxAccess, a)
		if err := next(c); err != nil {
			return err
		}
		if !isSafe(c.Request().Method) && c.Response().Status < 300 && c.Get(ctxAudited) == nil {
			s.auditForgotten(c)
		}
		return nil
	}
}

func (s *Server) resolveCaller(c echo.Context) (*access, error) {
	req := c.Request()
	ctx := req.Context()
	if h := req.Header.Get("Authorization"); h != "" {
		scheme, secret, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, errUnauthenticated
		}
		u, t, err := s.tokenUser(ctx, strings.TrimSpace(secret))
		if err != nil {
			return nil, err
		}
		return s.loadAccess(ctx, &access{User: u, token: &t})
	}
	ck, err := req.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, errUnauthenticated
	}
	u, sess, err := s.sessionUser(ctx, ck.Value)
	if err != nil {
		return nil, err
	}
	if !isSafe(req.Method) {
		if err := s.checkOrigin(req); err != nil {
			return nil, err
		}
		if !sameSecret(req.Header.Get("X-CSRF-Token"), sess.csrf) {
			return nil, errCSRF
		}
	}
	return s.loadAccess(ctx, &access{User: u, session: &sess})
}

// loadAccess fills in the caller's memberships and farm grants.
func (s *Server) loadAccess(ctx context.Context, a *access) (*access, error) {
	ms, err := memberships(ctx, s.db, a.User.ID)
	if err != nil {
		return nil, err
	}
	granted, err := grantedFarms(ctx, s.db, a.User.ID)
	if err != nil {
		return nil, err
	}
	a.memberships = ms
	a.roles = make(map[int64]Role, len(ms))
	for _, m := range ms {
		a.roles[m.OrgID] = m.Role
	}
	a.granted = make(map[int64]bool, len(granted))
	for _, id := range granted {
		a.granted[id] = true
	}
	return a, nil
}

// setSessionCookie hands the browser its session token; maxAge < 0 deletes the cookie.
func (s *Server) setSessionCookie(c echo.Context, value string, maxAge int) {
	c.SetCookie(&http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.cfg.SecureCookies,
		SameSite: http.SameSiteLaxMode,
	})
}

// onFarm loads the resource named by the path parameter param with load, then checks that the
// caller sees its farm (farmOf gives it) with at least min: the resource and its farm, or 404
// for what does not exist or is not visible, 403 for a role too low. Every route about a single
// thing on a farm starts with it.
func onFarm[T any](s *Server, c echo.Context, param string, min Role,
	load func(ctx context.Context, id int64) (T, error), farmOf func(T) int64) (T, geo.Farm, error) {
	var zero T
	id, err := pathID(c, param)
	if err != nil {
		return zero, geo.Farm{}, err
	}
	v, err := load(c.Request().Context(), id)
	if err != nil {
		return zero, geo.Farm{}, err
	}
	farm, err := s.requireFarm(c, farmOf(v), min)
	if err != nil {
		return zero, geo.Farm{}, err
	}
	return v, farm, nil
}

// farmOfPath reads {farm} and checks the caller sees it with at least min.
func (s *Server) farmOfPath(c echo.Context, min Role) (geo.Farm, error) {
	id, err := pathID(c, "farm")
	if err != nil {
		return geo.Farm{}, err
	}
	return s.requireFarm(c, id, min)
}

// adminOfAny refuses callers who administer no organisation.
func adminOfAny(c echo.Context) error {
	for _, m := range caller(c).memberships {
		if m.Role == RoleAdmin {
			return nil
		}
	}
	return forbidden(RoleAdmin)
}
