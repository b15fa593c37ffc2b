package pgcluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstallHint is what to run when PostgreSQL or PostGIS is missing.
const InstallHint = "install them with `sudo apt-get install postgresql postgresql-postgis` (or run `make test` / `make demo`, which do it)"

// Config describes a cluster. The zero value of every field but Dir is usable.
type Config struct {
	// Dir holds the cluster (data/, password, server.log). Created when missing.
	Dir string
	// Port to listen on, on 127.0.0.1. 0: a free port chosen at each start.
	Port int
	// Trust disables password authentication (throwaway test clusters). Otherwise a random
	// password is generated at initdb and kept in Dir/password (mode 0600).
	Trust bool
	// Settings are extra server settings (-c name=value), e.g. fsync=off for tests.
	Settings map[string]string
	// RunAs is the unprivileged user the server runs as when this process is root.
	// Default "postgres" (created by Debian's postgresql package).
	RunAs string
	// Logger; nil discards.
	Logger *slog.Logger
}

// Cluster is a private PostgreSQL server. Start it, use URL, Stop it.
type Cluster struct {
	cfg   Config
	bin   string // directory of initdb, pg_ctl, postgres
	dir   string // resolved cluster directory
	cred  *syscall.Credential
	port  int
	pass  string
	adopt bool // the server was already running when Start was called
	log   *slog.Logger
	uid   int
	gid   int
}

const superuser = "aghali"

// New validates cfg and finds the PostgreSQL binaries; it starts nothing.
func New(cfg Config) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pgcluster: Config.Dir is required")
	}
	if cfg.RunAs == "" {
		cfg.RunAs = "postgres"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, bin: bin, dir: abs, log: log, uid: os.Getuid(), gid: os.Getgid()}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(cfg.RunAs)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: PostgreSQL refuses to run as root and user %q does not exist: %w; %s", cfg.RunAs, err, InstallHint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.uid, c.gid = uid, gid
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// Parents we create must let the server's user through; existing ones are left alone.
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return nil, fmt.Errorf("pgcluster: %w", err)
		}
		if !reachable(abs, uid, gid) {
			sum := sha256.Sum256([]byte(abs))
			moved := filepath.Join("/var/lib/aghali/clusters", filepath.Base(abs)+"-"+hex.EncodeToString(sum[:4]))
			log.Info("cluster directory is not reachable by the server's user; using another",
				"asked", abs, "user", cfg.RunAs, "dir", moved)
			c.dir = moved
			for _, d := range []string{"/var/lib/aghali", "/var/lib/aghali/clusters"} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return nil, fmt.Errorf("pgcluster: %w", err)
				}
				if err := os.Chmod(d, 0o755); err != nil { // let the server's user through
					return nil, fmt.Errorf("pgcluster: %w", err)
				}
			}
		}
	}
	return c, nil
}

// FindBinaries returns the bin directory of the newest local PostgreSQL that has PostGIS.
func FindBinaries() (string, error) {
	cands, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("pgcluster: PostgreSQL server binaries (initdb) not found; %s", InstallHint)
	}
	version := func(p string) int { // /usr/lib/postgresql/15/bin/initdb → 15
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	sort.SliceStable(cands, func(i, j int) bool { return version(cands[i]) > version(cands[j]) })
	for _, p := range cands {
		v := version(p)
		if v == 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/usr/share/postgresql/%d/extension/postgis.control", v)); err == nil {
			return filepath.Dir(p), nil
		}
	}
	return "", fmt.Errorf("pgcluster: PostgreSQL found at %s but PostGIS is not installed for it; %s", filepath.Dir(cands[0]), InstallHint)
}

// Dir is where the cluster actually lives (see New).
func (c *Cluster) Dir() string { return c.dir }

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

// Start initialises the cluster if needed and starts the server, or adopts one already running.
func (c *Cluster) Start(ctx context.Context) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Chown(c.dir, c.uid, c.gid); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if _, err := os.Stat(filepath.Join(c.dataDir(), "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx); err != nil {
			return err
		}
	}
	if !c.cfg.Trust {
		b, err := os.ReadFile(filepath.Join(c.dir, "password"))
		if err != nil {
			return fmt.Errorf("pgcluster: read password: %w", err)
		}
		c.pass = strings.TrimSpace(string(b))
	}
	if port, ok := c.running(ctx); ok {
		c.port, c.adopt = port, true
		c.log.Info("postgres already running; adopting it", "dir", c.dir, "port", port)
		return c.waitReady(ctx)
	}
	port := c.cfg.Port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return err
		}
	}
	opts := []string{"-c", "port=" + strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="}
	keys := make([]string, 0, len(c.cfg.Settings))
	for k := range c.cfg.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		opts = append(opts, "-c", k+"="+c.cfg.Settings[k])
	}
	// pg_ctl -o takes one string that it hands to a shell; quote each word.
	var o strings.Builder
	for _, w := range opts {
		o.WriteString(" '" + strings.ReplaceAll(w, "'", `'\''`) + "'")
	}
	if err := c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-l", filepath.Join(c.dataDir(), "server.log"),
		"-w", "-t", "120", "-o", o.String(), "start"); err != nil {
		return fmt.Errorf("pgcluster: start (log: %s): %w", filepath.Join(c.dataDir(), "server.log"), err)
	}
	c.port = port
	c.log.Info("postgres started", "dir", c.dir, "port", port)
	return c.waitReady(ctx)
}

// Stop stops the server (fast shutdown: sessions are ended, data is safe).
func (c *Cluster) Stop(ctx context.Context) error {
	if c.port == 0 {
		return nil
	}
	err := c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pgcluster: stop: %w", err)
	}
	c.port = 0
	return nil
}

// Destroy stops the server and deletes the cluster's directory, wherever it lives (New may
// have put it under /var/lib/aghali/clusters): for throwaway clusters (tests, benchmarks).
func (c *Cluster) Destroy(ctx context.Context) error {
	err := c.Stop(ctx)
	if rerr := os.RemoveAll(c.dir); rerr != nil && err == nil {
		err = fmt.Errorf("pgcluster: remove %s: %w", c.dir, rerr)
	}
	return err
}

// URL is a connection string for database db as the cluster's superuser.
func (c *Cluster) URL(db string) string {
	u := url.URL{Scheme: "postgres", Host: "127.0.0.1:" + strconv.Itoa(c.port), Path: "/" + db}
	if c.pass != "" {
		u.User = url.UserPassword(superuser, c.pass)
	} else {
		u.User = url.User(superuser)
	}
	q := url.Values{"sslmode": {"disable"}}
	u.RawQuery = q.Encode()
	return u.String()
}

// CreateDatabase creates db (if missing) with PostGIS in it.
func (c *Cluster) CreateDatabase(ctx context.Context, db string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			return fmt.Errorf("pgcluster: create database %s: %w", db, err)
		}
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	data := c.dataDir()
	args := []string{"-D", data, "-U", superuser, "-E", "UTF8", "--no-locale", "--no-instructions"}
	if c.cfg.Trust {
		args = append(args, "--auth=trust")
	} else {
		pass := make([]byte, 18)
		if _, err := rand.Read(pass); err != nil {
			return err
		}
		pw := hex.EncodeToString(pass)
		// The password file is read by initdb (as the server's user) and kept for our own use.
		pwfile := filepath.Join(c.dir, "password")
		if err := os.WriteFile(pwfile, []byte(pw+"\n"), 0o600); err != nil {
			return err
		}
		if err := os.Chown(pwfile, c.uid, c.gid); err != nil {
			return err
		}
		args = append(args, "--auth=scram-sha-256", "--pwfile="+pwfile)
	}
	c.log.Info("initialising postgres cluster", "dir", data)
	if err := c.run(ctx, "initdb", args...); err != nil {
		_ = os.RemoveAll(data) // a half-made cluster would block the next try
		return fmt.Errorf("pgcluster: initdb: %w", err)
	}
	return nil
}

// running reports whether a server is running on this data directory, and its port.
func (c *Cluster) running(ctx context.Context) (int, bool) {
	f, err := os.Open(filepath.Join(c.dataDir(), "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 4 {
		return 0, false
	}
	if err := c.run(ctx, "pg_ctl", "-D", c.dataDir(), "status"); err != nil {
		return 0, false // stale pid file: pg_ctl start copes with it
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	return port, err == nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, c.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("pgcluster: server on port %d not accepting connections: %w", c.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=" + c.bin + ":/usr/bin:/bin", "LANG=C", "LC_ALL=C", "TZ=UTC"}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// reachable reports whether uid/gid can enter every directory from / down to the nearest
// existing ancestor of dir.
func reachable(dir string, uid, gid int) bool {
	p := filepath.Dir(dir) // dir itself is created or chowned for uid by Start
	for {
		if _, err := os.Stat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	for {
		fi, err := os.Stat(p)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		mode := fi.Mode().Perm()
		switch {
		case int(st.Uid) == uid:
			if mode&0o100 == 0 {
				return false
			}
		case int(st.Gid) == gid:
			if mode&0o010 == 0 {
				return false
			}
		default:
			if mode&0o001 == 0 {
				return false
			}
		}
		parent := filepath.Dir(p)
		if parent == p {
			return true
		}
		p = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
