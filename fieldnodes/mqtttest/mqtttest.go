package mqtttest

import (
	"bytes"
	"errors"
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
	// Persistence keeps sessions and queued messages across a Restart (in the broker's
	// directory), as production brokers do (docs/mqtt.md).
	Persistence bool
	// Extra configuration lines, appended to the generated ones.
	Extra []string
}

// Mosquitto is a running broker.
type Mosquitto struct {
	Port int
	URL  string // tcp://127.0.0.1:port

	bin  string
	conf string
	logs *syncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs a Mosquitto for t and stops it when t ends. It fails t when Mosquitto is not
// installed or does not come up.
func Start(t testing.TB, cfg Config) *Mosquitto {
	t.Helper()
	m, err := Run(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Run runs a Mosquitto whose configuration (and persistence) lives in dir, until Stop: Start
// for programs that are not tests (`aghali bench ingest`).
func Run(dir string, cfg Config) (*Mosquitto, error) {
	bin := binary()
	if bin == "" {
		return nil, errors.New("mqtttest: mosquitto not found; install with: sudo apt-get install mosquitto (or run make test)")
	}
	port := cfg.Port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		// Mosquitto's defaults (1000 queued, 20 in flight) silently drop bursts; Aghali needs
		// neither limit (docs/mqtt.md, broker settings).
		"max_queued_messages 0",
		"max_queued_bytes 0",
		"max_inflight_messages 0",
		"persistent_client_expiration 7d",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"log_type notice",
	}
	if cfg.Persistence {
		lines = append(lines, "persistence true", "persistence_location "+dir+"/", "autosave_interval 60")
	} else {
		lines = append(lines, "persistence false")
	}
	if os.Geteuid() == 0 {
		// As root Mosquitto drops to user "mosquitto", which may not exist or read the
		// directory; stay root.
		lines = append(lines, "user root")
	} else if u, err := user.Current(); err == nil {
		lines = append(lines, "user "+u.Username)
	}
	if len(cfg.Users) == 0 {
		lines = append(lines, "allow_anonymous true")
	} else {
		pw := filepath.Join(dir, "passwd")
		if err := writePasswords(pw, cfg.Users); err != nil {
			return nil, err
		}
		lines = append(lines, "allow_anonymous false", "password_file "+pw)
	}
	lines = append(lines, cfg.Extra...)
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("mqtttest: %w", err)
	}
	m := &Mosquitto{Port: port, URL: fmt.Sprintf("tcp://127.0.0.1:%d", port), bin: bin, conf: conf, logs: &syncBuffer{}}
	if err := m.start(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Mosquitto) start() error {
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout = m.logs
	cmd.Stderr = m.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mqtttest: start %s: %w", m.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.Port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("mqtttest: mosquitto exited at start:\n%s", m.Logs())
		default:
		}
		if time.Now().After(deadline) {
			m.Stop()
			return fmt.Errorf("mqtttest: mosquitto not listening on %d after 10 s:\n%s", m.Port, m.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop terminates the broker (SIGTERM: with Persistence it saves its state first). Calling it
// again, or after the broker exited, does nothing.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		// Killed, it saved no state: a test that counts on persistence should know why.
		fmt.Fprintln(m.logs, "mqtttest: mosquitto did not exit 5 s after SIGTERM; killed (its persistence not saved)")
	}
}

// Restart stops the broker and starts it again on the same port with the same configuration.
func (m *Mosquitto) Restart() error {
	m.Stop()
	return m.start()
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

func writePasswords(file string, users map[string]string) error {
	tool, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		return errors.New("mqtttest: mosquitto_passwd not found; install with: sudo apt-get install mosquitto (or run make test)")
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		return fmt.Errorf("mqtttest: %w", err)
	}
	for u, p := range users {
		if out, err := exec.Command(tool, "-b", file, u, p).CombinedOutput(); err != nil {
			return fmt.Errorf("mqtttest: mosquitto_passwd %s: %v\n%s", u, err, out)
		}
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mqtttest: %w", err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return strconv.Atoi(port)
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
