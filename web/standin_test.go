package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/web"
)

// The stand-in speaks just enough of docs/api.md for the pages the app shows: sign-in, session,
// farms, one farm map, alerts with acknowledgement, and valve open/stop. It enforces what the
// real API enforces that the app must get right: the session cookie, the CSRF header on every
// request that changes something, and problem+json errors.
const (
	testEmail    = "aynur@aghali.test"
	testPassword = "bostan-2026"
	testCSRF     = "csrf-7f3a9c"
	testCookie   = "aghali_session"
	testFarmID   = 7
	otherFarmID  = 8
	alertID      = 61
)

// command is one valve command as the stand-in received it.
type command struct {
	Valve       int
	Body        string
	CSRF        string
	ContentType string
}

type standIn struct {
	mu         sync.Mutex
	sessions   map[string]bool
	valves     map[int]string    // valve id -> state
	endsAt     map[int]time.Time // valve id -> end of its run
	opens      []command
	stops      []command
	acks       []command
	acked      time.Time
	failMap    bool
	mapFetches int
}

func newStandIn() *standIn {
	return &standIn{
		sessions: map[string]bool{},
		valves:   map[int]string{31: "closed", 32: "unknown"},
		endsAt:   map[int]time.Time{},
	}
}

// serve starts the app and the stand-in API on one origin, as the real server does.
func (s *standIn) serve(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/login", s.login)
	mux.HandleFunc("GET /api/v1/auth/session", s.authed(s.session))
	mux.HandleFunc("POST /api/v1/auth/logout", s.authed(s.logout))
	mux.HandleFunc("GET /api/v1/farms", s.authed(s.farms))
	mux.HandleFunc("GET /api/v1/farms/{farm}/map", s.authed(s.farmMap))
	mux.HandleFunc("GET /api/v1/alerts", s.authed(s.alerts))
	mux.HandleFunc("POST /api/v1/alerts/{id}/ack", s.authed(s.ack))
	mux.HandleFunc("POST /api/v1/valves/{id}/open", s.authed(s.valveCommand(true)))
	mux.HandleFunc("POST /api/v1/valves/{id}/stop", s.authed(s.valveCommand(false)))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("stand-in: unexpected %s %s", r.Method, r.URL)
		problem(w, http.StatusNotFound, "no such endpoint")
	})
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "https://aghali.dev/problems/test", "title": http.StatusText(status), "status": status, "detail": detail,
	})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// authed checks the session cookie, and the CSRF header on anything but GET.
func (s *standIn) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(testCookie)
		s.mu.Lock()
		ok := err == nil && s.sessions[c.Value]
		s.mu.Unlock()
		if !ok {
			problem(w, http.StatusUnauthorized, "not signed in")
			return
		}
		if r.Method != http.MethodGet && r.Header.Get("X-CSRF-Token") != testCSRF {
			problem(w, http.StatusForbidden, "CSRF token missing or wrong")
			return
		}
		next(w, r)
	}
}

func (s *standIn) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		problem(w, http.StatusBadRequest, "malformed JSON")
		return
	}
	if in.Email != testEmail || in.Password != testPassword {
		problem(w, http.StatusUnauthorized, "wrong e-mail or password")
		return
	}
	s.mu.Lock()
	id := fmt.Sprintf("sess-%d", len(s.sessions)+1)
	s.sessions[id] = true
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: testCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	reply(w, http.StatusOK, sessionBody())
}

func sessionBody() map[string]any {
	return map[string]any{
		"user":        map[string]any{"id": 1, "email": testEmail, "name": "Aynur Həsənova", "locale": "az"},
		"csrf_token":  testCSRF,
		"memberships": []any{map[string]any{"org_id": 1, "org_name": "Ağalı", "role": "farmer"}},
	}
}

func (s *standIn) session(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, sessionBody())
}

func (s *standIn) logout(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Cookie(testCookie)
	s.mu.Lock()
	delete(s.sessions, c.Value)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *standIn) farms(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, []any{
		map[string]any{
			"id": testFarmID, "org_id": 1, "name": "Ağalı pilot", "timezone": "Asia/Baku",
			"location": map[string]any{"type": "Point", "coordinates": []float64{46.632, 39.09}},
		},
		map[string]any{
			"id": otherFarmID, "org_id": 1, "name": "Bostan", "timezone": "Asia/Baku",
			"location": map[string]any{"type": "Point", "coordinates": []float64{46.61, 39.1}},
		},
	})
}

func rect(w, s, e, n float64) map[string]any {
	return map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{w, s}, {e, s}, {e, n}, {w, n}, {w, s}}}}
}

func point(lon, lat float64) map[string]any {
	return map[string]any{"type": "Point", "coordinates": []float64{lon, lat}}
}

func feature(geometry map[string]any, props map[string]any) map[string]any {
	return map[string]any{"type": "Feature", "geometry": geometry, "properties": props}
}

// Where the test taps.
var (
	valve31 = [2]float64{46.6300, 39.0890}
	node21  = [2]float64{46.6298, 39.0905}
)

const mapFeatures = 10

func (s *standIn) farmMap(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("farm") {
	case strconv.Itoa(testFarmID):
	case strconv.Itoa(otherFarmID):
		reply(w, http.StatusOK, map[string]any{"type": "FeatureCollection", "features": []any{
			feature(rect(46.6080, 39.0990, 46.6120, 39.1010), map[string]any{"layer": "field", "id": 3, "name": "Bostan", "crop": "melon", "area_ha": 7.6}),
			feature(point(46.6100, 39.1000), map[string]any{"layer": "node", "id": 23, "uid": "bostan-1", "name": "bostan-1", "zone_id": nil, "last_seen_at": nil, "battery_v": nil, "stale": true, "latest": map[string]any{}}),
		}})
		return
	default:
		problem(w, http.StatusNotFound, "farm not found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mapFetches++
	if s.failMap {
		problem(w, http.StatusServiceUnavailable, "database not reachable")
		return
	}
	now := time.Now().UTC()
	ts := func(ago time.Duration) string { return now.Add(-ago).Format(time.RFC3339) }
	valve := func(id int, name string, at [2]float64, channel, zone int) map[string]any {
		p := map[string]any{"layer": "valve", "id": id, "name": name, "controller_id": 41, "channel": channel, "zone_id": zone, "state": s.valves[id], "run_id": nil, "ends_at": nil}
		if end, ok := s.endsAt[id]; ok && s.valves[id] == "open" {
			p["run_id"], p["ends_at"] = 900+id, end.Format(time.RFC3339)
		}
		return feature(point(at[0], at[1]), p)
	}
	reply(w, http.StatusOK, map[string]any{"type": "FeatureCollection", "features": []any{
		feature(rect(46.6280, 39.0880, 46.6340, 39.0930), map[string]any{"layer": "field", "id": 1, "name": "Şimal sahəsi", "crop": "tomato", "area_ha": 27.9}),
		feature(rect(46.6350, 39.0880, 46.6400, 39.0920), map[string]any{"layer": "field", "id": 2, "name": "Çay sahəsi", "crop": "alfalfa", "area_ha": 19.1}),
		feature(rect(46.6285, 39.0885, 46.6310, 39.0925), map[string]any{"layer": "zone", "id": 11, "name": "North A", "field_id": 1, "crop": "tomato", "soil_vwc": 0.12, "moisture": "dry", "irrigating": false}),
		feature(rect(46.6315, 39.0885, 46.6335, 39.0925), map[string]any{"layer": "zone", "id": 12, "name": "North B", "field_id": 1, "crop": "tomato", "soil_vwc": 0.41, "moisture": "wet", "irrigating": true}),
		feature(rect(46.6355, 39.0885, 46.6395, 39.0915), map[string]any{"layer": "zone", "id": 13, "name": "River A", "field_id": 2, "crop": "alfalfa", "soil_vwc": nil, "moisture": "unknown", "irrigating": false}),
		feature(point(node21[0], node21[1]), map[string]any{"layer": "node", "id": 21, "uid": "north-1", "name": "north-1", "zone_id": 11, "last_seen_at": ts(3 * time.Minute), "battery_v": 3.61, "stale": false,
			"latest": map[string]any{
				"soil_vwc":    map[string]any{"value": 0.123, "ts": ts(3 * time.Minute)},
				"soil_temp_c": map[string]any{"value": 18.2, "ts": ts(3 * time.Minute)},
				"leaf_temp_x": map[string]any{"value": 3.5, "ts": ts(3 * time.Minute)},
			}}),
		feature(point(46.6325, 39.0905), map[string]any{"layer": "node", "id": 22, "uid": "north-2", "name": "north-2", "zone_id": 12, "last_seen_at": ts(3 * time.Hour), "battery_v": 3.3, "stale": true, "latest": map[string]any{}}),
		valve(31, "Klapan N-A", valve31, 1, 11),
		valve(32, "Klapan N-B", [2]float64{46.6325, 39.0890}, 2, 12),
		feature(point(46.6345, 39.0875), map[string]any{"layer": "water_source", "id": 51, "name": "Həkəri nasosu", "kind": "pump", "capacity_m3h": 12}),
	}})
}

func (s *standIn) alerts(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("open") != "true" {
		problem(w, http.StatusBadRequest, "the app asks for open alerts")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	reply(w, http.StatusOK, []any{s.alert()})
}

// alert is the one open alert; the caller holds s.mu.
func (s *standIn) alert() map[string]any {
	a := map[string]any{
		"id": alertID, "farm_id": testFarmID, "kind": "node_stale", "severity": "warning",
		"subject": "Sensor north-2 is silent", "message": "No reading for 3 hours.",
		"opened_at": time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339), "resolved_at": nil,
		"acknowledged_at": nil, "acknowledged_by": nil,
	}
	if !s.acked.IsZero() {
		a["acknowledged_at"], a["acknowledged_by"] = s.acked.Format(time.RFC3339), 1
	}
	return a
}

func (s *standIn) ack(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != strconv.Itoa(alertID) {
		problem(w, http.StatusNotFound, "alert not found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks = append(s.acks, command{CSRF: r.Header.Get("X-CSRF-Token")})
	s.acked = time.Now().UTC()
	reply(w, http.StatusOK, s.alert())
}

func (s *standIn) valveCommand(open bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		state, known := s.valves[id]
		if err != nil || !known {
			problem(w, http.StatusNotFound, "valve not found")
			return
		}
		c := command{Valve: id, Body: string(body), CSRF: r.Header.Get("X-CSRF-Token"), ContentType: r.Header.Get("Content-Type")}
		if open {
			s.opens = append(s.opens, c)
			if state == "open" {
				problem(w, http.StatusConflict, "valve busy: it already has a live run")
				return
			}
			var in struct{ Minutes int }
			if json.Unmarshal(body, &in) != nil || in.Minutes < 1 {
				problem(w, http.StatusUnprocessableEntity, "minutes: must be a positive integer")
				return
			}
			s.valves[id] = "open"
			s.endsAt[id] = time.Now().Add(time.Duration(in.Minutes) * time.Minute)
		} else {
			s.stops = append(s.stops, c)
			s.valves[id] = "closed"
			delete(s.endsAt, id)
		}
		reply(w, http.StatusAccepted, map[string]any{"id": 900 + id, "valve_id": id, "origin": "manual", "state": "pending"})
	}
}

func (s *standIn) setFailMap(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failMap = fail
}

// recorded returns copies of what the stand-in received.
func (s *standIn) recorded() (opens, stops, acks []command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]command(nil), s.opens...), append([]command(nil), s.stops...), append([]command(nil), s.acks...)
}
