package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// bindJSON decodes the request's JSON body into dst. A body that is not JSON, has members of the
// wrong type or members dst does not know is 400; a body of another media type is 415 (which also
// keeps HTML forms from other sites out).
func bindJSON(c echo.Context, dst any) error {
	req := c.Request()
	if ct := req.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &unsupportedMediaError{got: ct}
		}
	}
	dec := json.NewDecoder(req.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return mbe
		}
		return &badRequestError{detail: "body: more than one JSON value"}
	}
	return nil
}

// jsonError says what is wrong with a body, in terms of its JSON, never of Go types.
func jsonError(err error) error {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return mbe
	}
	if errors.Is(err, io.EOF) {
		return &badRequestError{detail: "body: a JSON object is required"}
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return &badRequestError{detail: fmt.Sprintf("body: malformed JSON at byte %d", se.Offset)}
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return &badRequestError{detail: fmt.Sprintf("body: want a JSON object, got %s", te.Value)}
		}
		return &badRequestError{detail: fmt.Sprintf("%s: wrong type (got %s)", te.Field, te.Value)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &badRequestError{detail: "body: truncated JSON"}
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return &badRequestError{detail: "body: unknown member " + strings.TrimPrefix(msg, "json: unknown field ")}
	}
	return &badRequestError{detail: "body: malformed JSON"}
}

// pathID reads an integer id from the path; anything else names no resource (404).
func pathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s %q: %w", name, c.Param(name), ErrNotFound)
	}
	return id, nil
}

// queryInt reads an optional integer query parameter within [min, max]; def when absent.
func queryInt(c echo.Context, name string, def, min, max int) (int, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, &ValidationError{Field: name, Problem: fmt.Sprintf("want an integer from %d to %d", min, max)}
	}
	return n, nil
}

// nullable is a body member that may be absent (unchanged), null (cleared) or a value; PATCH
// bodies use it for members that can be cleared, such as zone_id.
type nullable[T any] struct {
	Set   bool // the member was present, as null or a value
	Value *T   // nil: null (or absent)
}

// UnmarshalJSON implements json.Unmarshaler; encoding/json calls it for null too.
func (n *nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	n.Value = &v
	return nil
}

// apply sets *dst when the member was present.
func (n nullable[T]) apply(dst **T) {
	if n.Set {
		*dst = n.Value
	}
}

// set assigns v to *dst when v is not nil (a PATCH member that was present).
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// queryBool reads an optional boolean query parameter (true/false, 1/0); def when absent.
func queryBool(c echo.Context, name string, def bool) (bool, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, &ValidationError{Field: name, Problem: "want true or false"}
	}
	return b, nil
}

// queryTime reads an optional RFC 3339 time query parameter; the zero time when absent.
func queryTime(c echo.Context, name string) (time.Time, error) {
	s := c.QueryParam(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &ValidationError{Field: name, Problem: fmt.Sprintf("%q is not an RFC 3339 time such as 2026-07-06T05:00:00Z", s)}
	}
	return t.UTC(), nil
}

// utc is a time as the API shows it: UTC, microseconds (what the database keeps).
func utc(t time.Time) time.Time { return t.UTC() }

// utcp is utc for optional times.
func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
