package irrigation_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// t0 is where test clocks start: early morning in Aghali.
var t0 = time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(at time.Time) *testClock { return &testClock{now: at} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *testClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// sentCommand is one publish a recordingSender saw.
type sentCommand struct {
	UID string
	Cmd fieldnodes.Command
	At  time.Time // the test clock at the publish
}

// recordingSender is a CommandSender that records every publish; fail, when set, decides
// whether a publish fails.
type recordingSender struct {
	clock *testClock
	mu    sync.Mutex
	sent  []sentCommand
	fail  func(uid string, cmd fieldnodes.Command) error
	after func(sentCommand) // called after a publish is recorded
	ch    chan sentCommand
}

func newSender(clock *testClock) *recordingSender {
	return &recordingSender{clock: clock, ch: make(chan sentCommand, 10000)}
}

func (r *recordingSender) SendCommand(ctx context.Context, uid string, cmd fieldnodes.Command) error {
	r.mu.Lock()
	fail, after := r.fail, r.after
	r.mu.Unlock()
	if fail != nil {
		if err := fail(uid, cmd); err != nil {
			return err
		}
	}
	s := sentCommand{UID: uid, Cmd: cmd, At: r.clock.Now()}
	r.mu.Lock()
	r.sent = append(r.sent, s)
	r.mu.Unlock()
	select {
	case r.ch <- s:
	default:
	}
	if after != nil {
		after(s)
	}
	return nil
}

func (r *recordingSender) setFail(f func(uid string, cmd fieldnodes.Command) error) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

func (r *recordingSender) all() []sentCommand {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentCommand(nil), r.sent...)
}

// next waits for the next publish.
func (r *recordingSender) next(t testing.TB) sentCommand {
	t.Helper()
	select {
	case s := <-r.ch:
		return s
	case <-time.After(15 * time.Second):
		t.Fatal("no command was sent within 15 s")
		return sentCommand{}
	}
}

// dbSecrets is a SecretIssuer writing the device_secrets table, as fieldnodes does.
type dbSecrets struct {
	db   *pgxpool.Pool
	fail error
}

func (d *dbSecrets) NewSecret(ctx context.Context, uid, kind string) (string, error) {
	if d.fail != nil {
		return "", d.fail
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	secret := hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(secret))
	_, err := d.db.Exec(ctx, `INSERT INTO device_secrets (uid, kind, secret_hash) VALUES ($1, $2, $3)
		ON CONFLICT (uid) DO UPDATE SET secret_hash = EXCLUDED.secret_hash`, uid, kind, hex.EncodeToString(sum[:]))
	return secret, err
}

// nodeStore is fieldnodes' store on the fixture's database and clock: the real readings a
// rule engine reads.
func (f *fixture) nodeStore() *fieldnodes.Store {
	f.t.Helper()
	if f.fieldnodes == nil {
		ns, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: f.db, Now: f.clock.Now, Logger: testLogger(f.t)})
		if err != nil {
			f.t.Fatal(err)
		}
		f.fieldnodes = ns
	}
	return f.fieldnodes
}

// fixture is a fresh database with an organisation, one farm and a store on a test clock.
type fixture struct {
	t       testing.TB
	ctx     context.Context
	db      *pgxpool.Pool
	clock   *testClock
	secrets *dbSecrets
	store   *irrigation.Store
	sender  *recordingSender
	org     int64
	farm    int64
	n       int

	fieldnodes *fieldnodes.Store
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("IRRIGATION_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newFixture(t testing.TB, tz string) *fixture {
	t.Helper()
	return newFixtureOn(t, pgtest.NewDB(t), tz)
}

func newFixtureOn(t testing.TB, db *pgxpool.Pool, tz string) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, ctx: ctx, db: db, clock: newClock(t0), secrets: &dbSecrets{db: db}}
	f.sender = newSender(f.clock)
	f.store = f.newStore()
	if err := db.QueryRow(ctx, `INSERT INTO organisations (name) VALUES ('Aghali village') RETURNING id`).Scan(&f.org); err != nil {
		t.Fatal(err)
	}
	farm, err := geo.NewStore(db).CreateFarm(ctx, geo.Farm{OrgID: f.org, Name: "Hakari bank", Timezone: tz})
	if err != nil {
		t.Fatal(err)
	}
	f.farm = farm.ID
	return f
}

// newStore returns another Store on the fixture's database and clock (another "instance").
func (f *fixture) newStore() *irrigation.Store {
	f.t.Helper()
	s, err := irrigation.NewStore(f.db, f.secrets, irrigation.Config{Now: f.clock.Now, Logger: testLogger(f.t)})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// square returns a valid ~100 m square polygon near Aghali, shifted by i squares east.
func square(t testing.TB, i int) *geom.Polygon {
	t.Helper()
	x := 46.63 + float64(i)*0.0012
	raw := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,39.09],[%g,39.09],[%g,39.0909],[%g,39.0909],[%g,39.09]]]}`,
		x, x+0.0012, x+0.0012, x, x)
	p, err := geo.ParsePolygon(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) zone(mods ...func(*irrigation.Zone)) irrigation.Zone {
	f.t.Helper()
	f.n++
	z := irrigation.Zone{FarmID: f.farm, Name: fmt.Sprintf("Zone %d", f.n), Geom: square(f.t, f.n), Crop: "cotton", MaxRuntimeS: 3600}
	for _, m := range mods {
		m(&z)
	}
	z, err := f.store.CreateZone(f.ctx, z)
	if err != nil {
		f.t.Fatal(err)
	}
	return z
}

func (f *fixture) controller(uid string) irrigation.Controller {
	f.t.Helper()
	c, secret, err := f.store.CreateController(f.ctx, irrigation.Controller{UID: uid, FarmID: f.farm, Name: uid})
	if err != nil {
		f.t.Fatal(err)
	}
	if secret == "" {
		f.t.Fatal("no secret for an MQTT controller")
	}
	return c
}

func (f *fixture) valve(ctl irrigation.Controller, channel int, zoneID int64) irrigation.Valve {
	f.t.Helper()
	v, err := f.store.CreateValve(f.ctx, irrigation.Valve{ControllerID: ctl.ID, Channel: channel, ZoneID: &zoneID, Name: fmt.Sprintf("V%d", channel)})
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// zoneWithValve makes a zone with one valve on a new controller.
func (f *fixture) zoneWithValve(mods ...func(*irrigation.Zone)) (irrigation.Zone, irrigation.Controller, irrigation.Valve) {
	f.t.Helper()
	z := f.zone(mods...)
	c := f.controller(fmt.Sprintf("ctl-%d", z.ID))
	return z, c, f.valve(c, 1, z.ID)
}

func (f *fixture) startRun(valveID int64, durationS int) irrigation.Run {
	f.t.Helper()
	r, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: valveID, DurationS: durationS, Origin: irrigation.OriginUser, Reason: "test"})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) run(id int64) irrigation.Run {
	f.t.Helper()
	r, err := f.store.Run(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) commands(runID int64) []irrigation.Command {
	f.t.Helper()
	cs, err := f.store.RunCommands(f.ctx, runID)
	if err != nil {
		f.t.Fatal(err)
	}
	return cs
}

func (f *fixture) dispatcher(cfg irrigation.DispatcherConfig) *irrigation.Dispatcher {
	f.t.Helper()
	d, err := irrigation.NewDispatcher(f.store, f.sender, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) openAlerts() []irrigation.Alert {
	f.t.Helper()
	as, err := f.store.Alerts(f.ctx, []int64{f.farm}, true, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	return as
}

func (f *fixture) alert(kind, subject string) (irrigation.Alert, bool) {
	f.t.Helper()
	for _, a := range f.openAlerts() {
		if a.Kind == kind && a.Subject == subject {
			return a, true
		}
	}
	return irrigation.Alert{}, false
}

func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.db.QueryRow(f.ctx, sql, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds or 15 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isValidation(err error, field string) bool {
	var ve *irrigation.ValidationError
	return errors.As(err, &ve) && ve.Field == field
}

func ptr[T any](v T) *T { return &v }

// ack has the controller answer a command at the test clock's time.
func ack(t testing.TB, f *fixture, h *irrigation.ControllerHandler, uid, cmdID, status string) {
	t.Helper()
	a := fieldnodes.ControllerAck{ControllerUID: uid, CommandID: cmdID, Status: status, ReceivedAt: f.clock.Now()}
	if status == "rejected" {
		a.Reason = "valve 1 jammed"
	}
	if err := h.HandleAck(f.ctx, a); err != nil {
		t.Fatalf("HandleAck: %v", err)
	}
}

// report has the controller report its valves at the test clock's time.
func report(t testing.TB, f *fixture, h *irrigation.ControllerHandler, uid string, valves map[int]string) {
	t.Helper()
	now := f.clock.Now()
	if err := h.HandleState(f.ctx, fieldnodes.ControllerState{ControllerUID: uid, TS: now, Valves: valves, ReceivedAt: now}); err != nil {
		t.Fatalf("HandleState: %v", err)
	}
}
