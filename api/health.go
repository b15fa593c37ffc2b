package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Handlers outside /api/v1: liveness, readiness, metrics.

// healthz: GET /healthz — the process is up and serving.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz: GET /readyz — Config.Ready answered within 5 s; otherwise 503 (the reason is logged,
// not shown).
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Ready(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		return echo.NewHTTPError(http.StatusServiceUnavailable)
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// metrics: GET /metrics — Config.Metrics, or 404 when there is none.
func (s *Server) metrics(c echo.Context) error {
	if s.cfg.Metrics == nil {
		return echo.ErrNotFound
	}
	s.cfg.Metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}
