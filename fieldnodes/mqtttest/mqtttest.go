package mqtttest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Config says what broker to run. The zero value is an anonymous broker on a free port.
type Config struct {
	// Port to listen on (127.0.0.1); 0 picks a free one.
	Port int
	// Users maps user names to passwords; empty: anonymous access.
	Users map[string]string
	// Extra configuration lines, appended to the generated ones.
	Extra []string
}

// Mosquitto is a running broker.
type Mosquitto struct {
	Port int
	URL  string // tcp://127.0.0.1:port

	cmd  *exec.Cmd
	logs *syncBuffer
	once sync.Once
	done chan struct{}
}

// Start runs a Mosquitto for t and stops it when t ends. It fails t when Mosquitto is not
// installed or does not come up.
func Start(t testing.TB, cfg Config) *Mosquitto {
	t.Helper()
	bin := binary()
	if bin == "" {
		t.Fatal("mqtttest: mosquitto not found; install with: sudo apt-get install mosquitto (or run make test)")
	}
	dir := t.TempDir()
	port := cfg.Port
	if port == 0 {
		port = freePort(t)
	}
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"persistence false",
		// Mosquitto's defaults (1000 queued, 20 in flight) silently drop bursts; Aghali needs
		// neither limit (docs/mqtt.md, broker settings).
		"max_queued_messages 0",
		"max_queued_bytes 0",
		"max_inflight_messages 0",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"log_type notice",
	}
	if os.Geteuid() == 0 {
		// As root Mosquitto drops to user "mosquitto", which may not exist or read the
		// temporary directory; stay root in tests.
		lines = append(lines, "user root")
	} else if u, err := user.Current(); err == nil {
		lines = append(lines, "user "+u.Username)
	}
	if len(cfg.Users) == 0 {
		lines = append(lines, "allow_anonymous true")
	} else {
		pw := filepath.Join(dir, "passwd")
		writePasswords(t, pw, cfg.Users)
		lines = append(lines, "allow_anonymous false", "password_file "+pw)
	}
	lines = append(lines, cfg.Extra...)
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("mqtttest: %v", err)
	}

	m := &Mosquitto{Port: port, URL: fmt.Sprintf("tcp://127.0.0.1:%d", port), logs: &syncBuffer{}, done: make(chan struct{})}
	m.cmd = exec.Command(bin, "-c", conf)
	m.cmd.Stdout = m.logs
	m.cmd.Stderr = m.logs
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("mqtttest: start %s: %v", bin, err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(m.Stop)

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return m
		}
		select {
		case <-m.done:
			t.Fatalf("mqtttest: mosquitto exited at start:\n%s", m.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mqtttest: mosquitto not listening on %d after 10 s:\n%s", port, m.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop terminates the broker (at once; it is also called at the test's cleanup).
func (m *Mosquitto) Stop() {
	m.once.Do(func() {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(3 * time.Second):
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	})
}

// Logs is what the broker printed.
func (m *Mosquitto) Logs() string { return m.logs.String() }

func binary() string {
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	return ""
}

func writePasswords(t testing.TB, file string, users map[string]string) {
	t.Helper()
	tool, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatal("mqtttest: mosquitto_passwd not found; install with: sudo apt-get install mosquitto (or run make test)")
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	for u, p := range users {
		if out, err := exec.Command(tool, "-b", file, u, p).CombinedOutput(); err != nil {
			t.Fatalf("mqtttest: mosquitto_passwd %s: %v\n%s", u, err, out)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
