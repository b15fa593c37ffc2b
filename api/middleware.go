package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Keys of per-request values kept in echo.Context; they never leave this package.
const (
	ctxRequestID = "aghali.request_id"
	ctxAccess    = "aghali.access"
	ctxAudited   = "aghali.audited"
)

func requestID(c echo.Context) string {
	if id, ok := c.Get(ctxRequestID).(string); ok {
		return id
	}
	return ""
}

// observe is the outermost middleware: it names the request, turns panics into errors, renders
// errors through handleError (so the log line has the final status) and logs one line.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		id := randomToken(9)
		c.Set(ctxRequestID, id)
		c.Response().Header().Set("X-Request-Id", id)
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		func() {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					s.log.Error("panic", "request_id", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			err = next(c)
		}()
		if err != nil {
			c.Error(err)
		}
		req, res := c.Request(), c.Response()
		level := slog.LevelInfo
		if res.Status >= 500 {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("request_id", id),
			slog.String("method", req.Method),
			slog.String("path", req.URL.Path),
			slog.String("route", c.Path()),
			slog.Int("status", res.Status),
			slog.Int64("bytes", res.Size),
			slog.Duration("duration", time.Since(start)),
			slog.String("ip", c.RealIP()),
		}
		if a, ok := c.Get(ctxAccess).(*access); ok {
			attrs = append(attrs, slog.Int64("user_id", a.User.ID))
		}
		s.log.LogAttrs(req.Context(), level, "http request", attrs...)
		return nil
	}
}

// limits bounds the request body (413 beyond Config.BodyLimit) and the request's context
// (Config.RequestTimeout; event streams are exempt since they are meant to stay open).
func (s *Server) limits(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > s.cfg.BodyLimit {
			return &http.MaxBytesError{Limit: s.cfg.BodyLimit}
		}
		if req.Body != nil {
			req.Body = http.MaxBytesReader(c.Response(), req.Body, s.cfg.BodyLimit)
		}
		if s.cfg.RequestTimeout > 0 && !strings.Contains(req.Header.Get("Accept"), "text/event-stream") {
			ctx, cancel := context.WithTimeout(req.Context(), s.cfg.RequestTimeout)
			defer cancel()
			c.SetRequest(req.WithContext(ctx))
		}
		return next(c)
	}
}

// isSafe reports whether a method only reads (no CSRF token needed).
func isSafe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// sameOrigin refuses unsafe requests whose Origin (or, lacking it, Referer) is neither the
// request's own host nor a trusted origin: pages elsewhere must not drive a browser's session,
// nor log it in (login CSRF). Requests without either header (scripts, old browsers) pass; the
// CSRF token stays the main defence.
func (s *Server) sameOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.checkOrigin(c.Request()); err != nil {
			return err
		}
		return next(c)
	}
}

func (s *Server) checkOrigin(req *http.Request) error {
	if isSafe(req.Method) {
		return nil
	}
	origin := req.Header.Get("Origin")
	if origin == "" {
		if ref := req.Header.Get("Referer"); ref != "" {
			u, err := url.Parse(ref)
			if err != nil {
				return errForeignOrigin
			}
			origin = u.Scheme + "://" + u.Host
		}
	}
	if origin == "" {
		return nil
	}
	if origin == "null" {
		return errForeignOrigin
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return errForeignOrigin
	}
	if strings.EqualFold(u.Host, req.Host) || s.origins[strings.ToLower(u.Scheme+"://"+u.Host)] {
		return nil
	}
	return errForeignOrigin
}
