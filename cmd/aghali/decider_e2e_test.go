package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

// builtBinary is the aghali binary built once for the tests that need real processes.
var builtBinary = struct {
	once sync.Once
	path string
	err  error
	dir  string
}{}

// aghaliBinary builds ./cmd/aghali into a temporary directory (once per test binary).
func aghaliBinary(t *testing.T) string {
	t.Helper()
	b := &builtBinary
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "aghali-bin-")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "aghali")
		out, err := exec.Command("go", "build", "-o", b.path, ".").CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// process is `aghali serve` running as a process of its own.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	http string
	logs *syncBuffer
	done chan error
}

func startProcess(t *testing.T, bin string, env map[string]string) *process {
	t.Helper()
	port := freePort(t)
	p := &process{t: t, http: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append(os.Environ(), "AGHALI_HTTP_ADDR="+fmt.Sprintf("127.0.0.1:%d", port), "AGHALI_DATA_DIR="+t.TempDir(),
		"AGHALI_LOG_LEVEL=info")
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", p.http, p.logs.String())
		}
	})
	eventually(t, 90*time.Second, "aghali serve at "+p.http+" to be ready", func() bool {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("aghali serve exited while starting: %v\n%s", err, p.logs.String())
		default:
		}
		resp, err := http.Get(p.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// kill ends the process at once (SIGKILL): no graceful shutdown, as when a machine dies.
func (p *process) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
	p.done <- nil
}

func (p *process) leads() bool { return metric(p.t, p.http, "aghali_irrigation_leader") == 1 }

var occurrenceRE = regexp.MustCompile(`\(\* \* \* \* \*, Asia/Baku\): (\d{4}-\d\d-\d\d \d\d:\d\d)`)

// Two `aghali serve` processes on one database and one broker: exactly one leads, a schedule
// that comes due while both run fires once, and when the leader is killed (SIGKILL) the other
// takes over within seconds and fires the next occurrence, again once.
func TestTwoInstancesOneDecider(t *testing.T) {
	t.Parallel()
	m := mqtttest.Start(t, mqtttest.Config{})
	db, email, pw := newDatabase(t)
	bin := aghaliBinary(t)
	env := map[string]string{"AGHALI_DATABASE_URL": db, "AGHALI_MQTT_URL": m.URL}
	a := startProcess(t, bin, env)
	b := startProcess(t, bin, env)
	c := login(t, a.http, email, pw)
	f := setUpFarm(t, c, "ha")
	simulateController(t, m.URL, f)

	var leader, follower *process
	eventually(t, 30*time.Second, "one leader", func() bool {
		la, lb := a.leads(), b.leads()
		switch {
		case la && !lb:
			leader, follower = a, b
		case lb && !la:
			leader, follower = b, a
		default:
			return false
		}
		return true
	})
	c.do("POST", fmt.Sprintf("/api/v1/zones/%d/schedules", f.zone), map[string]any{"name": "Every minute", "cron": "* * * * *",
		"duration_s": 15}, nil, http.StatusCreated)

	type runRow struct {
		ID        int64     `json:"id"`
		Origin    string    `json:"origin"`
		Reason    string    `json:"reason"`
		CreatedAt time.Time `json:"created_at"`
	}
	scheduleRuns := func() []runRow {
		var runs, out []runRow
		c.do("GET", fmt.Sprintf("/api/v1/farms/%d/runs?limit=100", f.farm), nil, &runs, http.StatusOK)
		for _, r := range runs {
			if r.Origin == "schedule" {
				out = append(out, r)
			}
		}
		return out
	}
	eventually(t, 90*time.Second, "the first occurrence to fire", func() bool { return len(scheduleRuns()) >= 1 })
	if leader.leads() == follower.leads() {
		t.Fatal("not exactly one leader")
	}

	killed := time.Now()
	leader.kill()
	eventually(t, 30*time.Second, "the survivor to lead", follower.leads)
	handover := time.Since(killed)
	t.Logf("leader killed (SIGKILL); the other instance led %s later", handover.Round(10*time.Millisecond))
	if handover > 15*time.Second {
		t.Errorf("handover took %s", handover)
	}

	// The survivor fires the occurrences from now on; c talks to the killed one, so log in again.
	c = login(t, follower.http, email, pw)
	eventually(t, 90*time.Second, "an occurrence fired after the handover", func() bool {
		for _, r := range scheduleRuns() {
			if r.CreatedAt.After(killed) {
				return true
			}
		}
		return false
	})
	seen := map[string]int64{}
	for _, r := range scheduleRuns() {
		occ := occurrenceRE.FindStringSubmatch(r.Reason)
		if occ == nil {
			t.Fatalf("run %d: no occurrence in %q", r.ID, r.Reason)
		}
		if other, dup := seen[occ[1]]; dup {
			t.Errorf("occurrence %s fired twice: runs %d and %d", occ[1], other, r.ID)
		}
		seen[occ[1]] = r.ID
	}
	if len(seen) < 2 {
		t.Errorf("%d occurrences fired, want 2 at least", len(seen))
	}
	var decisions []struct {
		Action string `json:"action"`
		RunID  *int64 `json:"run_id"`
	}
	c.do("GET", fmt.Sprintf("/api/v1/farms/%d/decisions?origin=schedule", f.farm), nil, &decisions, http.StatusOK)
	fired := 0
	for _, d := range decisions {
		if d.Action == "irrigate" && d.RunID != nil {
			fired++
		}
	}
	if fired != len(seen) {
		t.Errorf("%d irrigate decisions for %d fired occurrences", fired, len(seen))
	}
}
