package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/devicesim"
)

// aghali simulate: a controller told to leak by --fault raises a leak alert; told to behave on
// standard input, the alert resolves.
func TestSimulateFaults(t *testing.T) {
	t.Parallel()
	db, email, pw := newDatabase(t)
	srv := startServer(t, "serve", map[string]string{"AGHALI_DATABASE_URL": db})
	s := newIrrSite(t, login(t, srv.http, email, pw), "simulate")
	ctl := s.controller("ctl-sim")
	s.valve(ctl, 1, map[string]any{"zone_id": s.zone(1, 600, 0), "nominal_flow_lpm": 20})
	fleet := filepath.Join(t.TempDir(), "fleet.json")
	b, _ := json.Marshal(demoState{Fleet: devicesim.Fleet{Controllers: []devicesim.Controller{irrSimCtl(ctl, map[int]float64{1: 20})}}})
	if err := os.WriteFile(fleet, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"simulate", "--fleet", fleet, "--fault", "ctl-sim=bogus"}, Env{
		Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard,
	}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("an unknown fault: %v", err)
	}
	in, feed := io.Pipe()
	defer feed.Close()
	out := &syncBuffer{}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- run(ctx, []string{"simulate", "--fleet", fleet, "--state-every", "300ms", "--fault", "ctl-sim=leak",
			"--mqtt-url", fmt.Sprintf("tcp://127.0.0.1:%d", srv.mqtt)},
			Env{Getenv: func(string) string { return "" }, Stdin: in, Stdout: out, Stderr: io.Discard})
	}()
	subject := fmt.Sprintf("controller:%d", ctl.id)
	eventually(t, 15*time.Second, "a leak alert from the leaking simulated controller", func() bool {
		_, ok := s.alert("leak", subject)
		return ok
	})
	if _, err := io.WriteString(feed, "fault ctl-sim none\n"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the leak alert resolved once the controller behaves", func() bool {
		_, ok := s.alert("leak", subject)
		return !ok
	})
	if !strings.Contains(out.String(), "controller ctl-sim: none") {
		t.Errorf("simulate did not confirm the change: %s", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("simulate: %v", err)
	}
}
