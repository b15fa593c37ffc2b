package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/migrations/pgtest"
)

// `aghali serve` gets SIGKILL in the middle of a publish and is started again: every reading
// is stored exactly once, with the embedded broker (which acknowledges a publish only once it
// is committed, so the publishers publish the rest again) and with Mosquitto (whose persistent
// session for the server keeps what the killed server had not acknowledged). `aghali bench
// ingest --kill-at` does it with 200,000 messages; this is the same at a test's size.
func TestKill9DuringIngestLosesNothing(t *testing.T) {
	t.Parallel()
	bin := aghaliBinary(t) // decider_e2e_test.go: built once per test run
	for _, broker := range []string{"embedded", "mosquitto"} {
		t.Run(broker, func(t *testing.T) {
			t.Parallel()
			var out, errs bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			err := benchIngest(ctx, []string{"--aghali", bin, "--broker", broker, "--database-url", pgtest.NewDBURL(t),
				"--messages", "20000", "--rate", "2500", "--kill-at", "9000", "--nodes", "200", "--connections", "4", "--window", "500"},
				Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errs})
			t.Log(out.String())
			if err != nil {
				t.Fatalf("bench: %v\n%s", err, errs.String())
			}
			for _, want := range []string{"lost:            0\n", "duplicated:      0\n", "every reading stored exactly once: true",
				"committed:       80000 readings"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}

func TestLoRaWANSettings(t *testing.T) {
	cfg, err := parseConfig("serve", []string{"--tts-topic", "off", "--chirpstack-mqtt-url", "tcp://cs:1883"}, Env{Getenv: func(string) string { return "" }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := lorawanIntegrations(cfg)
	if err != nil || len(ins) != 1 || ins[0].Network != "chirpstack" || ins[0].Filter != "application/+/device/+/event/#" || ins[0].URL != "tcp://cs:1883" ||
		ins[0].DownTopic != "application/{application_id}/device/{dev_eui}/command/down" || ins[0].Downlinks != "application/+/device/+/command/#" {
		t.Errorf("integrations %+v, %v", ins, err)
	}
	cfg.TTSTopic, cfg.TTSDownTopic = "v3/{application_id}@{tenant_id}/devices/{device_id}/{event}", "lora/{application_id}/{device_id}/push"
	if ins, err = lorawanIntegrations(cfg); err != nil || len(ins) != 2 || ins[1].Downlinks != "lora/+/+/#" {
		t.Errorf("integrations %+v, %v", ins, err)
	}
	cfg.TTSDownTopic = "v3/+/down/push"
	if _, err := lorawanIntegrations(cfg); err == nil {
		t.Error("a downlink template with a wildcard was accepted")
	}
	cfg.ChirpStackTopic = "application/{app}/{event}/x"
	if _, err := lorawanIntegrations(cfg); err == nil {
		t.Error("a template whose last level is not {event} was accepted")
	}
	logins, err := parseLogins(" chirpstack:s3cret, bench:pw:with:colons ")
	if err != nil || logins["chirpstack"] != "s3cret" || logins["bench"] != "pw:with:colons" || len(logins) != 2 {
		t.Errorf("logins %v, %v", logins, err)
	}
	if _, err := parseLogins("nopassword"); err == nil {
		t.Error("a login without a password was accepted")
	}
	if _, err := parseConfig("serve", []string{"--node-missed-reports", "0"}, Env{Getenv: func(string) string { return "" }}, nil); err == nil {
		t.Error("--node-missed-reports 0 accepted")
	}
}

// The health monitor's alerts land in irrigation's alerts (the adapter serve wires), raised
// once and resolved when the node recovers.
func TestNodeAlertsReachIrrigation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := geo.OpenPool(ctx, pgtest.NewDBURL(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var org, farm int64
	if err := pool.QueryRow(ctx, `INSERT INTO organisations (name) VALUES ('o') RETURNING id`).Scan(&org); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO farms (org_id, name) VALUES ($1, 'f') RETURNING id`, org).Scan(&farm); err != nil {
		t.Fatal(err)
	}
	nodes, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	irr, err := irrigation.NewStore(pool, nodes, irrigation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := nodes.CreateNode(ctx, fieldnodes.Node{UID: "probe", FarmID: farm, ExpectedIntervalS: 600})
	if err != nil {
		t.Fatal(err)
	}
	// Registered an hour ago, never heard since, at a 10-minute interval.
	if _, err := pool.Exec(ctx, `UPDATE nodes SET created_at = now() - interval '1 hour' WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	h, err := fieldnodes.NewHealthMonitor(fieldnodes.HealthConfig{Store: nodes, Alerter: nodeAlerts{irr}})
	if err != nil {
		t.Fatal(err)
	}
	open := func() []irrigation.Alert {
		t.Helper()
		list, err := irr.Alerts(ctx, []int64{farm}, true, 10)
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	for range 2 {
		if err := h.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a := open(); len(a) != 1 || a[0].Kind != fieldnodes.AlertNodeSilent || a[0].Subject != fmt.Sprintf("node:%d", n.ID) || a[0].Severity != "warning" {
		t.Fatalf("open alerts %+v", a)
	}
	if _, err := nodes.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: n.ID, Metric: "soil_vwc", TS: time.Now(), Value: 0.2}}); err != nil {
		t.Fatal(err)
	}
	if err := h.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if a := open(); len(a) != 0 {
		t.Errorf("still open after the node reported: %+v", a)
	}
}
