package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// Errors of the api domain (people, credentials), returned by the exported store functions too.
var (
	// ErrNotFound: the user, organisation or token does not exist (or is not visible to the caller).
	ErrNotFound = errors.New("api: not found")
	// ErrConflict: the change collides with what exists (a taken e-mail, the last admin).
	ErrConflict = errors.New("api: conflict")
)

// ValidationError is input that cannot be accepted; Problem says why in words a person can act on.
type ValidationError struct {
	Field   string
	Problem string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

// Request-level refusals; their text is shown to the client.
var (
	errUnauthenticated = errors.New("not logged in, or the session or token has expired")
	errBadCredentials  = errors.New("wrong e-mail or password")
	errForbidden       = errors.New("your role does not allow this")
	errCSRF            = errors.New("missing or wrong X-CSRF-Token header")
	errForeignOrigin   = errors.New("request from a foreign origin")
)

// badRequestError is a request that cannot be read (malformed JSON, wrong types, unknown members).
type badRequestError struct{ detail string }

func (e *badRequestError) Error() string { return e.detail }

// unsupportedMediaError is a body that is not JSON.
type unsupportedMediaError struct{ got string }

func (e *unsupportedMediaError) Error() string {
	return fmt.Sprintf("content type %q: want application/json", e.got)
}

// rateLimitedError is a refused login attempt; retry says when one may be accepted again.
type rateLimitedError struct{ retry time.Duration }

func (e *rateLimitedError) Error() string {
	return fmt.Sprintf("too many login attempts; retry in %d s", retryAfterSeconds(e.retry))
}

// statusOf chooses the HTTP status of an error: first the domains' sentinels and typed errors
// (one line per error: other domains add theirs to the matching case), then echo's own.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, geo.ErrNotFound),
		errors.Is(err, irrigation.ErrNotFound), errors.Is(err, fieldnodes.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict), errors.Is(err, geo.ErrConflict),
		errors.Is(err, irrigation.ErrConflict), errors.Is(err, fieldnodes.ErrConflict),
		errors.Is(err, irrigation.ErrBusy):
		return http.StatusConflict
	case fieldProblems(err) != nil:
		return http.StatusUnprocessableEntity
	case errors.Is(err, errUnauthenticated), errors.Is(err, errBadCredentials):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden), errors.Is(err, errCSRF), errors.Is(err, errForeignOrigin):
		return http.StatusForbidden
	case isType[*badRequestError](err):
		return http.StatusBadRequest
	case isType[*unsupportedMediaError](err):
		return http.StatusUnsupportedMediaType
	case isType[*rateLimitedError](err):
		return http.StatusTooManyRequests
	case isType[*http.MaxBytesError](err):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	if he, ok := errors.AsType[*echo.HTTPError](err); ok && he.Code >= 400 && he.Code < 600 {
		return he.Code
	}
	return http.StatusInternalServerError
}

// fieldProblems returns the per-member problems of a validation error of any domain, nil when
// err is not one. Other domains' validation error types are added here, one block each.
func fieldProblems(err error) []FieldProblem {
	if v, ok := errors.AsType[*ValidationError](err); ok {
		return []FieldProblem{{Field: v.Field, Problem: v.Problem}}
	}
	if v, ok := errors.AsType[*geo.ValidationError](err); ok {
		return []FieldProblem{{Field: v.Field, Problem: v.Problem}}
	}
	if v, ok := errors.AsType[*irrigation.ValidationError](err); ok {
		return []FieldProblem{{Field: v.Field, Problem: v.Problem}}
	}
	if v, ok := errors.AsType[*irrigation.ExpressionError](err); ok {
		return []FieldProblem{{Field: v.Field, Problem: v.Error()[len(v.Field)+2:], Line: v.Line, Column: v.Column}}
	}
	if v, ok := errors.AsType[*fieldnodes.ValidationError](err); ok {
		return []FieldProblem{{Field: v.Field, Problem: v.Problem}}
	}
	return nil
}

func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	Errors    []FieldProblem `json:"errors,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
}

// FieldProblem names one member of the input and what is wrong with it.
type FieldProblem struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
	// Line and Column (1-based) point into the member's text, for expressions (rule
	// conditions); absent otherwise.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

const problemBase = "https://aghali.dev/problems/"

// problemKind gives each status its problem type and title.
func problemKind(status int) (slug, title string) {
	switch status {
	case http.StatusBadRequest:
		return "malformed", "Malformed request"
	case http.StatusUnauthorized:
		return "unauthenticated", "Not logged in"
	case http.StatusForbidden:
		return "forbidden", "Forbidden"
	case http.StatusNotFound:
		return "not-found", "Not found"
	case http.StatusMethodNotAllowed:
		return "method-not-allowed", "Method not allowed"
	case http.StatusConflict:
		return "conflict", "Conflict"
	case http.StatusRequestEntityTooLarge:
		return "too-large", "Request body too large"
	case http.StatusUnsupportedMediaType:
		return "unsupported-media-type", "Unsupported media type"
	case http.StatusUnprocessableEntity:
		return "validation", "Invalid input"
	case http.StatusTooManyRequests:
		return "rate-limited", "Too many requests"
	case http.StatusServiceUnavailable:
		return "unavailable", "Service unavailable"
	}
	if status >= 500 {
		return "internal", "Internal error"
	}
	return "http-" + strconv.Itoa(status), http.StatusText(status)
}

// problemFor turns err into the problem the client gets. Only text this program wrote reaches the
// client: messages of 5xx errors, which may carry driver or system text, are replaced.
func problemFor(err error) Problem {
	status := statusOf(err)
	slug, title := problemKind(status)
	p := Problem{Type: problemBase + slug, Title: title, Status: status}
	if errors.Is(err, irrigation.ErrBusy) {
		// A conflict of a particular kind: the valve, zone or controller is being watered.
		p.Title = "Irrigation in progress"
	}
	switch {
	case status == http.StatusNotFound:
		p.Detail = "not found, or not visible to you"
	case errors.Is(err, errCSRF):
		p.Type = problemBase + "csrf"
		p.Detail = err.Error()
	case status == http.StatusUnprocessableEntity:
		p.Errors = fieldProblems(err)
		p.Detail = err.Error()
	case status >= 500: // handleError writes a detail naming the request, nothing of err
	default:
		if he, ok := errors.AsType[*echo.HTTPError](err); ok {
			if msg, isString := he.Message.(string); isString {
				p.Detail = msg
			}
		} else if status == http.StatusRequestEntityTooLarge {
			p.Detail = "request body too large"
		} else {
			p.Detail = err.Error()
		}
	}
	return p
}

// handleError is echo's HTTPErrorHandler: the one place an error becomes a response.
func (s *Server) handleError(err error, c echo.Context) {
	req := c.Request()
	if c.Response().Committed {
		s.log.Warn("error after the response was sent", "method", req.Method, "path", req.URL.Path, "err", err)
		return
	}
	p := problemFor(err)
	if p.Status >= 500 {
		id := requestID(c)
		p.RequestID = id
		if p.Status == http.StatusServiceUnavailable {
			p.Detail = "the service cannot answer now; try again (request " + id + ")"
		} else {
			p.Detail = "an unexpected error happened; it was logged as request " + id
		}
		s.log.Error("request failed", "request_id", id, "method", req.Method,
			"route", c.Path(), "status", p.Status, "err", err)
	}
	if rl, ok := errors.AsType[*rateLimitedError](err); ok {
		c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(rl.retry)))
	}
	if req.Method == http.MethodHead {
		_ = c.NoContent(p.Status)
		return
	}
	body, mErr := json.Marshal(p)
	if mErr != nil { // cannot happen with this struct; still answer
		body = []byte(`{"type":"` + problemBase + `internal","title":"Internal error","status":500}`)
	}
	if wErr := c.Blob(p.Status, "application/problem+json", body); wErr != nil {
		s.log.Debug("write problem", "err", wErr)
	}
}

func retryAfterSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// refusal is a domain error retold for the person who asked (the web app shows detail as it
// is); it still is the domain's error underneath, which chooses the status.
type refusal struct {
	detail string
	cause  error
}

func (r *refusal) Error() string { return r.detail }
func (r *refusal) Unwrap() error { return r.cause }
