package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/geo"
)

func TestStatusOfDomainErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("farm 3: %w", geo.ErrNotFound), 404},
		{fmt.Errorf("user: %w", ErrNotFound), 404},
		{fmt.Errorf("farm: %w: duplicate", geo.ErrConflict), 409},
		{fmt.Errorf("creating: %w", ErrConflict), 409},
		{fmt.Errorf("create field: %w", &geo.ValidationError{Field: "geometry", Problem: "bad"}), 422},
		{&ValidationError{Field: "role", Problem: "bad"}, 422},
		{&badRequestError{detail: "x"}, 400},
		{&unsupportedMediaError{got: "text/plain"}, 415},
		{&rateLimitedError{retry: 3}, 429},
		{&http.MaxBytesError{Limit: 5}, 413},
		{errUnauthenticated, 401},
		{forbidden(RoleAdmin), 403},
		{errCSRF, 403},
		{echo.ErrNotFound, 404},
		{echo.ErrMethodNotAllowed, 405},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), 503},
		{errors.New("something broke"), 500},
		{&pgconn.PgError{Code: "42P01", Message: `relation "x" does not exist`}, 500},
	}
	for _, tc := range cases {
		if got := statusOf(tc.err); got != tc.want {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestProblemsOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.BodyLimit = 2048 })
	// Routes that fail the way a broken store would.
	e.srv.echo.GET("/api/v1/test-internal", func(echo.Context) error {
		return fmt.Errorf("list farms: %w", &pgconn.PgError{Code: "42P01", Message: `relation "farms" does not exist`, InternalQuery: "SELECT secret FROM farms"})
	})
	e.srv.echo.GET("/api/v1/test-panic", func(echo.Context) error { panic("nil map in handler") })

	agro := e.login("agro@aghali.test")
	for _, path := range []string{"/api/v1/test-internal", "/api/v1/test-panic"} {
		r := agro.do("GET", path, nil)
		p := r.problem(http.StatusInternalServerError)
		if p.RequestID == "" || p.RequestID != r.header.Get("X-Request-Id") || !strings.Contains(p.Detail, p.RequestID) {
			t.Errorf("%s: problem %+v lacks the request id %q", path, p, r.header.Get("X-Request-Id"))
		}
		for _, leak := range []string{"relation", "SELECT", "farms", "nil map", "goroutine"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("%s: body leaks %q: %s", path, leak, r.body)
			}
		}
		if !strings.Contains(e.logs.String(), "request_id="+p.RequestID) {
			t.Errorf("%s: request id %s not in the log", path, p.RequestID)
		}
	}
	if !strings.Contains(e.logs.String(), `relation \"farms\" does not exist`) {
		t.Errorf("the internal error is not logged:\n%s", e.logs.String())
	}

	agro.do("GET", "/api/v1/no-such-thing", nil).problem(http.StatusNotFound)
	e.anon().do("GET", "/api/v1/no-such-thing", nil).problem(http.StatusNotFound)
	agro.do("DELETE", "/api/v1/orgs", nil).problem(http.StatusMethodNotAllowed)
	agro.do("GET", "/api/v1/farms/abc", nil).problem(http.StatusNotFound)
	e.anon().do("GET", "/api/v1/farms", nil).problem(http.StatusUnauthorized)

	fields := fmt.Sprintf("/api/v1/farms/%d/fields", e.farmA.ID)
	agro.doWith("POST", fields, fieldBody("X", squareCW), http.Header{"Content-Type": {"text/plain"}}).problem(http.StatusUnsupportedMediaType)
	big := fieldBody(strings.Repeat("x", 3000), squareCW)
	p := agro.do("POST", fields, big).problem(http.StatusRequestEntityTooLarge)
	if p.Detail == "" {
		t.Errorf("413 without detail: %+v", p)
	}
	// Without Content-Length the limit holds while reading.
	chunked := agro.doWith("POST", fields, io.MultiReader(strings.NewReader(big)), nil)
	chunked.problem(http.StatusRequestEntityTooLarge)
}
