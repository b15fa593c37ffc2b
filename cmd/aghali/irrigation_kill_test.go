package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/devicesim"
)

// killableServe is `aghali serve` as a real process, to be killed with SIGKILL.
type killableServe struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// buildAghaliBinary builds the binary into a temporary directory.
func buildAghaliBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aghali")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startKillableServe(t *testing.T, bin string, env map[string]string, httpBase string) *killableServe {
	t.Helper()
	p := &killableServe{t: t, cmd: exec.Command(bin, "serve"), logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = os.Environ()
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
		if t.Failed() {
			t.Logf("aghali serve (pid %d) log:\n%s", p.cmd.Process.Pid, p.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("aghali serve exited while starting: %v\n%s", err, p.logs.String())
		default:
		}
		if resp, err := http.Get(httpBase + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("aghali serve not ready after 60 s\n%s", p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown, nothing drained, connections dropped mid-flight.
func (p *killableServe) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	err := <-p.done
	p.done <- err
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		p.t.Fatalf("aghali serve ended with %v, not by SIGKILL", err)
	}
}

// `kill -9` of aghali serve mid-run: the controller closes the valve by itself at the end of
// duration_s; after a restart the run is reconciled (done), a command the dead server had queued
// but the controller never got is sent again and carried out once, and nothing is opened twice.
func TestServeKilledMidRun(t *testing.T) {
	t.Parallel()
	bin := buildAghaliBinary(t)
	db, email, pw := newDatabase(t)
	httpPort, mqttPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	env := map[string]string{
		"AGHALI_DATABASE_URL": db, "AGHALI_DATA_DIR": t.TempDir(), "AGHALI_LOG_LEVEL": "debug",
		"AGHALI_HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", httpPort), "AGHALI_MQTT_LISTEN": fmt.Sprintf("127.0.0.1:%d", mqttPort),
		"AGHALI_COMMAND_RETRY": "500ms",
	}
	first := startKillableServe(t, bin, env, base)
	s := newIrrSite(t, login(t, base, email, pw), "kill")
	running := s.controller("ctl-running")
	valve := s.valve(running, 1, map[string]any{"zone_id": s.zone(1, 6, 0), "nominal_flow_lpm": 20})
	waiting := s.controller("ctl-waiting")
	valve2 := s.valve(waiting, 1, map[string]any{"zone_id": s.zone(2, 3, 0), "nominal_flow_lpm": 20})
	sim := irrSimulate(t, fmt.Sprintf("tcp://127.0.0.1:%d", mqttPort),
		irrSimCtl(running, map[int]float64{1: 20}), irrSimCtl(waiting, map[int]float64{1: 20}))
	if err := sim.SetFault(waiting.uid, devicesim.FaultOffline); err != nil {
		t.Fatal(err)
	}

	run := s.open(valve, 1) // 6 s: the zone's max runtime
	eventually(t, 15*time.Second, "the valve open and the run confirmed", func() bool {
		return sim.ValveOpen(running.uid, 1) && s.run(run.ID).State == "open"
	})
	queued := s.open(valve2, 1) // its controller is away: the open waits at the (embedded) broker
	eventually(t, 10*time.Second, "the second run's open published", func() bool {
		r := s.run(queued.ID)
		return len(r.Commands) == 1 && r.Commands[0].Attempts > 0
	})

	first.kill()
	eventually(t, 15*time.Second, "the controller to close the valve by itself", func() bool { return !sim.ValveOpen(running.uid, 1) })
	if sim.ValveOpen(waiting.uid, 1) {
		t.Fatal("the offline controller's valve opened while it was away")
	}

	startKillableServe(t, bin, env, base)
	s.c = login(t, base, email, pw)
	if err := sim.SetFault(waiting.uid, devicesim.FaultNone); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the first run reconciled as done", func() bool { return s.run(run.ID).State == "done" })
	r := s.run(run.ID)
	if opens := countAction(r, "open"); opens != 1 {
		t.Errorf("run %d has %d opens, want 1: %+v", r.ID, opens, r)
	}
	if !strings.Contains(r.EndReason, "closed") {
		t.Errorf("run %d ended: %q", r.ID, r.EndReason)
	}
	// The second run's open, lost with the dead server's broker, is sent again and carried out.
	eventually(t, 30*time.Second, "the second run to open after the restart", func() bool {
		return s.run(queued.ID).State == "open" || s.run(queued.ID).State == "done"
	})
	eventually(t, 15*time.Second, "the second run done", func() bool { return s.run(queued.ID).State == "done" })
	q := s.run(queued.ID)
	if opens := countAction(q, "open"); opens != 1 {
		t.Errorf("run %d has %d opens, want 1", q.ID, opens)
	}
	for uid, runID := range map[string]int64{running.uid: run.ID, waiting.uid: queued.ID} {
		open := s.run(runID).Commands[0].ID
		executed := sim.Executed(uid)
		n := 0
		for _, id := range executed {
			if id == open {
				n++
			}
		}
		if n != 1 {
			t.Errorf("controller %s carried out open %s %d times (executed %v)", uid, open, n, executed)
		}
		if slices.ContainsFunc(executed, func(id string) bool { return id != open && !isClose(s, runID, id) }) {
			t.Errorf("controller %s carried out something else: %v", uid, executed)
		}
	}
	var runs []irrRun
	s.c.do("GET", fmt.Sprintf("/api/v1/farms/%d/runs", s.farm), nil, &runs, http.StatusOK)
	if len(runs) != 2 {
		t.Errorf("%d runs after the restart, want the 2 asked for", len(runs))
	}
}

func countAction(r irrRun, action string) int {
	n := 0
	for _, c := range r.Commands {
		if c.Action == action {
			n++
		}
	}
	return n
}

func isClose(s *irrSite, runID int64, id string) bool {
	for _, c := range s.run(runID).Commands {
		if c.ID == id {
			return c.Action == "close"
		}
	}
	return false
}
