package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/devicesim"
	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

// A 100 m × 100 m zone next to Aghali.
const zoneGeoJSON = `{"type":"Polygon","coordinates":[[[46.63,39.09],[46.6312,39.09],[46.6312,39.0909],[46.63,39.0909],[46.63,39.09]]]}`

// farmSetup is a farm with one zone, one soil probe, one controller with one valve.
type farmSetup struct {
	farm, zone, node, controller, valve    int64
	nodeUID, nodeSecret, ctlUID, ctlSecret string
}

func setUpFarm(t *testing.T, c *client, tag string) farmSetup {
	t.Helper()
	var s farmSetup
	var obj struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	c.do("POST", "/api/v1/farms", map[string]any{"org_id": 1, "name": "Farm " + tag, "timezone": "Asia/Baku"}, &obj, http.StatusCreated)
	s.farm = obj.ID
	c.do("POST", fmt.Sprintf("/api/v1/farms/%d/zones", s.farm), map[string]any{"name": "Zone " + tag,
		"geometry": json.RawMessage(zoneGeoJSON), "max_runtime_s": 3600}, &obj, http.StatusCreated)
	s.zone = obj.ID
	s.nodeUID = "probe-" + tag
	c.do("POST", fmt.Sprintf("/api/v1/farms/%d/nodes", s.farm), map[string]any{"uid": s.nodeUID, "name": "Probe", "zone_id": s.zone,
		"location": json.RawMessage(`{"type":"Point","coordinates":[46.6306,39.09045]}`)}, &obj, http.StatusCreated)
	s.node, s.nodeSecret = obj.ID, obj.Secret
	s.ctlUID = "ctl-" + tag
	c.do("POST", fmt.Sprintf("/api/v1/farms/%d/controllers", s.farm), map[string]any{"uid": s.ctlUID, "name": "Controller"}, &obj, http.StatusCreated)
	s.controller, s.ctlSecret = obj.ID, obj.Secret
	c.do("POST", fmt.Sprintf("/api/v1/controllers/%d/valves", s.controller), map[string]any{"channel": 1, "zone_id": s.zone,
		"name": "Valve " + tag, "nominal_flow_lpm": 20}, &obj, http.StatusCreated)
	s.valve = obj.ID
	if s.nodeSecret == "" || s.ctlSecret == "" {
		t.Fatal("node or controller created without an MQTT secret")
	}
	return s
}

// simulateController connects a simulated controller for s's valve to the broker at url.
func simulateController(t *testing.T, url string, s farmSetup) *devicesim.Sim {
	t.Helper()
	sim, err := devicesim.New(devicesim.Config{BrokerURL: url, Fleet: devicesim.Fleet{
		Zones:       []devicesim.Zone{{Name: "z", VWC: 0.2, FieldCapacity: 0.3, WiltingPoint: 0.1, RootDepthM: 0.5, RateMMH: 5}},
		Controllers: []devicesim.Controller{{UID: s.ctlUID, Secret: s.ctlSecret, Valves: []devicesim.Valve{{Channel: 1, Zone: 0, FlowLPM: 20}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	return sim
}

// mosquittoPub publishes one message with Mosquitto's own client, as a device would.
func mosquittoPub(t *testing.T, port int, user, pass, topic, payload string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatal("mosquitto_pub not found; install with: sudo apt-get install mosquitto-clients (or run make test)")
	}
	out, err := exec.Command(bin, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-i", user, "-u", user, "-P", pass,
		"-q", "1", "-t", topic, "-m", payload).CombinedOutput()
	return string(out), err
}

type series struct {
	Points []struct {
		TS    time.Time `json:"ts"`
		Value float64   `json:"value"`
	} `json:"points"`
}

// readings of a node's soil_vwc since from (buckets start at from).
func readings(c *client, node int64, from time.Time) series {
	var s series
	c.do("GET", fmt.Sprintf("/api/v1/nodes/%d/readings?metric=soil_vwc&from=%s", node, from.UTC().Format(time.RFC3339)), nil, &s, http.StatusOK)
	return s
}

type runView struct {
	ID       int64  `json:"id"`
	Origin   string `json:"origin"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Commands []struct {
		ID        string     `json:"id"`
		Action    string     `json:"action"`
		DurationS int        `json:"duration_s"`
		ExpiresAt time.Time  `json:"expires_at"`
		State     string     `json:"state"`
		AckedAt   *time.Time `json:"acked_at"`
	} `json:"commands"`
}

// waitForAckedRun waits for a run of origin on farm whose open command the controller acked.
func waitForAckedRun(t *testing.T, c *client, farm int64, origin string, within time.Duration) runView {
	t.Helper()
	var found runView
	eventually(t, within, "a "+origin+" run acknowledged by the controller", func() bool {
		var runs []runView
		c.do("GET", fmt.Sprintf("/api/v1/farms/%d/runs", farm), nil, &runs, http.StatusOK)
		for _, r := range runs {
			if r.Origin != origin {
				continue
			}
			c.do("GET", fmt.Sprintf("/api/v1/runs/%d", r.ID), nil, &found, http.StatusOK)
			if len(found.Commands) > 0 && found.Commands[0].State == "acked" && found.State == "open" {
				return true
			}
		}
		return false
	})
	return found
}

// checkCommandCrossed checks the controller received the run's open command with duration_s
// and expires_at, as the MQTT contract requires.
func checkCommandCrossed(t *testing.T, sim *devicesim.Sim, ctlUID string, run runView) {
	t.Helper()
	cmd := run.Commands[0]
	if cmd.Action != "open" || cmd.DurationS <= 0 || cmd.AckedAt == nil {
		t.Fatalf("run %d command = %+v", run.ID, cmd)
	}
	for _, raw := range sim.Received(ctlUID) {
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if got["id"] != cmd.ID {
			continue
		}
		if got["action"] != "open" || got["duration_s"] != float64(cmd.DurationS) || got["valve"] != float64(1) {
			t.Fatalf("controller received %s, want open of valve 1 for %d s", raw, cmd.DurationS)
		}
		exp, err := time.Parse(time.RFC3339Nano, fmt.Sprint(got["expires_at"]))
		if err != nil || !exp.Equal(cmd.ExpiresAt) {
			t.Fatalf("controller received expires_at %v, want %v", got["expires_at"], cmd.ExpiresAt)
		}
		return
	}
	t.Fatalf("controller never received command %s (got %d commands)", cmd.ID, len(sim.Received(ctlUID)))
}

func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			return v
		}
	}
	return 0
}

// The foundation's promise, end to end through the embedded broker: a device's reading shows up
// through the API, wrong credentials and foreign topics are refused, and a threshold rule opens a
// valve with a command that carries duration_s and expires_at and whose ack is recorded.
func TestServeSensorToValve(t *testing.T) {
	t.Parallel()
	db, email, pw := newDatabase(t)
	srv := startServer(t, "serve", map[string]string{"AGHALI_DATABASE_URL": db})
	c := login(t, srv.http, email, pw)
	f := setUpFarm(t, c, "a")
	other := setUpFarm(t, c, "b")
	sim := simulateController(t, fmt.Sprintf("tcp://127.0.0.1:%d", srv.mqtt), f)

	ts := time.Now().UTC().Truncate(time.Second)
	up := fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":0.25,"soil_temp_c":18.2},"battery_v":3.61,"rssi":-71}`, ts.Format(time.RFC3339))
	if out, err := mosquittoPub(t, srv.mqtt, f.nodeUID, f.nodeSecret, "aghali/nodes/"+f.nodeUID+"/up", up); err != nil {
		t.Fatalf("mosquitto_pub with the node's credentials: %v: %s", err, out)
	}
	eventually(t, 5*time.Second, "the reading through the API", func() bool {
		s := readings(c, f.node, ts)
		return len(s.Points) == 1 && s.Points[0].Value == 0.25 && s.Points[0].TS.Equal(ts)
	})

	if out, err := mosquittoPub(t, srv.mqtt, f.nodeUID, "not-the-secret", "aghali/nodes/"+f.nodeUID+"/up", up); err == nil {
		t.Fatalf("a wrong password was accepted: %s", out)
	}
	if v := metric(t, srv.http, `aghali_mqtt_broker_login_refusals_total{reason="credentials"}`); v < 1 {
		t.Errorf("refused login not counted (%v)", v)
	}
	denied := metric(t, srv.http, `aghali_mqtt_broker_acl_denied_total{action="write"}`)
	_, _ = mosquittoPub(t, srv.mqtt, f.nodeUID, f.nodeSecret, "aghali/nodes/"+other.nodeUID+"/up", up)
	eventually(t, 5*time.Second, "the foreign publish counted as denied", func() bool {
		return metric(t, srv.http, `aghali_mqtt_broker_acl_denied_total{action="write"}`) > denied
	})
	if s := readings(c, other.node, ts.Add(-time.Hour)); len(s.Points) != 0 {
		t.Fatalf("a node wrote readings for another node: %+v", s)
	}

	c.do("POST", fmt.Sprintf("/api/v1/zones/%d/rules", f.zone), map[string]any{"name": "Dry", "metric": "soil_vwc", "aggregate": "mean",
		"op": "<", "threshold": 0.18, "window_s": 3600, "duration_s": 1200, "cooldown_s": 3600}, nil, http.StatusCreated)
	dry := `{"readings":{"soil_vwc":0.08}}`
	if out, err := mosquittoPub(t, srv.mqtt, f.nodeUID, f.nodeSecret, "aghali/nodes/"+f.nodeUID+"/up", dry); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	run := waitForAckedRun(t, c, f.farm, "rule", 10*time.Second)
	if !strings.Contains(run.Reason, "soil_vwc") {
		t.Errorf("rule run's reason %q does not say why", run.Reason)
	}
	checkCommandCrossed(t, sim, f.ctlUID, run)
	if run.Commands[0].DurationS != 1200 {
		t.Errorf("duration_s = %d, want the rule's 1200", run.Commands[0].DurationS)
	}
	if !sim.ValveOpen(f.ctlUID, 1) {
		t.Error("the simulated valve is not open")
	}
}

// A cron schedule (farm time zone) opens the valve through the same path.
func TestServeScheduleOpensValve(t *testing.T) {
	t.Parallel()
	db, email, pw := newDatabase(t)
	srv := startServer(t, "serve", map[string]string{"AGHALI_DATABASE_URL": db})
	c := login(t, srv.http, email, pw)
	f := setUpFarm(t, c, "s")
	sim := simulateController(t, fmt.Sprintf("tcp://127.0.0.1:%d", srv.mqtt), f)
	var sched struct {
		NextAt time.Time `json:"next_at"`
	}
	c.do("POST", fmt.Sprintf("/api/v1/zones/%d/schedules", f.zone), map[string]any{"name": "Every minute", "cron": "* * * * *", "duration_s": 300}, &sched, http.StatusCreated)
	if sched.NextAt.IsZero() || time.Until(sched.NextAt) > 61*time.Second {
		t.Fatalf("next_at = %v", sched.NextAt)
	}
	// Fires at the next minute; the scheduler looks every 10 s.
	run := waitForAckedRun(t, c, f.farm, "schedule", 90*time.Second)
	checkCommandCrossed(t, sim, f.ctlUID, run)
	if run.Commands[0].DurationS != 300 {
		t.Errorf("duration_s = %d, want 300", run.Commands[0].DurationS)
	}
}

// Interop: aghali serve against a real Mosquitto: a reading and a valve command cross it.
func TestServeWithMosquitto(t *testing.T) {
	t.Parallel()
	m := mqtttest.Start(t, mqtttest.Config{})
	db, email, pw := newDatabase(t)
	srv := startServer(t, "serve", map[string]string{"AGHALI_DATABASE_URL": db, "AGHALI_MQTT_URL": m.URL})
	c := login(t, srv.http, email, pw)
	f := setUpFarm(t, c, "m")
	sim := simulateController(t, m.URL, f)
	if out, err := mosquittoPub(t, m.Port, f.nodeUID, "x", "aghali/nodes/"+f.nodeUID+"/up", `{"readings":{"soil_vwc":0.3}}`); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	eventually(t, 5*time.Second, "the reading through Mosquitto and the API", func() bool {
		s := readings(c, f.node, time.Now().Add(-time.Hour))
		return len(s.Points) == 1 && s.Points[0].Value == 0.3
	})
	c.do("POST", fmt.Sprintf("/api/v1/valves/%d/open", f.valve), map[string]any{"minutes": 7}, nil, http.StatusAccepted)
	run := waitForAckedRun(t, c, f.farm, "user", 10*time.Second)
	checkCommandCrossed(t, sim, f.ctlUID, run)
	if run.Commands[0].DurationS != 7*60 {
		t.Errorf("duration_s = %d, want 420", run.Commands[0].DurationS)
	}
}
