package devicesim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// Config configures a Sim. Zero values take the documented defaults.
type Config struct {
	// BrokerURL is the broker's address, tcp://host:port (required); each device logs in with
	// its own uid and secret.
	BrokerURL string
	// Prefix of the topics; default "aghali".
	Prefix string
	// Fleet to simulate (required).
	Fleet Fleet
	// Speed multiplies how fast soil dries and wets, so a demo shows in minutes what takes
	// days; default 1.
	Speed float64
	// ReportEvery is how often each node publishes; default 10 s (±10 % jitter).
	ReportEvery time.Duration
	// StateEvery is how often each controller reports its state even when nothing changed;
	// default 30 s.
	StateEvery time.Duration
	// Location for the sun's daily course; default Asia/Baku.
	Location *time.Location
	// Logger; default: discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Seed makes the noise repeatable; 0: random.
	Seed uint64
}

// Sim runs a fleet of simulated devices.
type Sim struct {
	cfg   Config
	log   *slog.Logger
	soils []*soil
	nodes []*node
	ctrls map[string]*controller

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

// New checks cfg and returns a Sim; Start connects its devices.
func New(cfg Config) (*Sim, error) {
	if cfg.BrokerURL == "" {
		return nil, errors.New("devicesim: Config.BrokerURL is required")
	}
	if err := cfg.Fleet.Validate(); err != nil {
		return nil, fmt.Errorf("devicesim: %w", err)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "aghali"
	}
	if cfg.Speed <= 0 {
		cfg.Speed = 1
	}
	if cfg.ReportEvery <= 0 {
		cfg.ReportEvery = 10 * time.Second
	}
	if cfg.StateEvery <= 0 {
		cfg.StateEvery = 30 * time.Second
	}
	if cfg.Location == nil {
		loc, err := time.LoadLocation("Asia/Baku")
		if err != nil {
			return nil, fmt.Errorf("devicesim: %w", err)
		}
		cfg.Location = loc
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	s := &Sim{cfg: cfg, log: cfg.Logger, ctrls: map[string]*controller{}}
	now := cfg.Now()
	for _, z := range cfg.Fleet.Zones {
		s.soils = append(s.soils, newSoil(z, now, cfg.Speed, cfg.Location))
	}
	for i, n := range cfg.Fleet.Nodes {
		s.nodes = append(s.nodes, &node{sim: s, spec: n, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)))})
	}
	for i, c := range cfg.Fleet.Controllers {
		s.ctrls[c.UID] = newController(s, c, rand.New(rand.NewPCG(cfg.Seed, uint64(1_000_000+i))))
	}
	return s, nil
}

// Start connects every device and starts reporting. It fails if a device is refused by the
// broker (wrong credentials); an unreachable broker is retried in the background. It returns
// once the controllers have subscribed to their commands (at most controllerReadyWait): a
// command sent to a controller whose session is new and not yet subscribed is not kept for it.
func (s *Sim) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("devicesim: already started")
	}
	s.started = true
	caller := ctx
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, c := range s.ctrls {
		if err := c.connect(ctx); err != nil {
			s.cancel()
			s.stopAll()
			return err
		}
	}
	for _, n := range s.nodes {
		if err := n.connect(ctx); err != nil {
			s.cancel()
			s.stopAll()
			return err
		}
	}
	s.controllersReady(caller)
	for _, c := range s.ctrls {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); c.run(ctx) }()
	}
	for _, n := range s.nodes {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); n.run(ctx) }()
	}
	s.log.Info("simulated devices started", "nodes", len(s.nodes), "controllers", len(s.ctrls))
	return nil
}

// controllerReadyWait bounds how long Start waits for the controllers' subscriptions; with the
// broker unreachable they come later, in the background.
const controllerReadyWait = 5 * time.Second

// controllersReady waits, up to controllerReadyWait, for every controller's subscriptions.
func (s *Sim) controllersReady(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, controllerReadyWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range s.ctrls {
		c.mu.Lock()
		l := c.link
		c.mu.Unlock()
		if l == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.WaitReady(ctx); err != nil {
				s.log.Warn("simulated controller not subscribed yet; commands reach it once it is", "uid", c.spec.UID, "err", err)
			}
		}()
	}
	wg.Wait()
}

// Stop disconnects every device.
func (s *Sim) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.cancel == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
	s.stopAll()
	s.cancel = nil
}

func (s *Sim) stopAll() {
	for _, c := range s.ctrls {
		c.disconnect()
	}
	for _, n := range s.nodes {
		if n.link != nil {
			n.link.Stop()
		}
	}
}

// ZoneVWC is the simulated water content of zone i now (for tests and the demo's log).
func (s *Sim) ZoneVWC(i int) float64 { return s.soils[i].at(s.cfg.Now()) }

// ValveOpen reports whether the controller's valve is open.
func (s *Sim) ValveOpen(controllerUID string, channel int) bool {
	c, ok := s.ctrls[controllerUID]
	if !ok {
		return false
	}
	return c.isOpen(channel)
}

// SetFault makes a controller misbehave (or behave again with FaultNone).
func (s *Sim) SetFault(controllerUID string, f Fault) error {
	c, ok := s.ctrls[controllerUID]
	if !ok {
		return fmt.Errorf("devicesim: no controller %q", controllerUID)
	}
	return c.setFault(f)
}

// Executed lists the command ids a controller has carried out, in order (for tests).
func (s *Sim) Executed(controllerUID string) []string {
	c, ok := s.ctrls[controllerUID]
	if !ok {
		return nil
	}
	return c.executedIDs()
}

// Received lists the raw command payloads a controller has received, in order (for tests that
// check what crossed the wire).
func (s *Sim) Received(controllerUID string) [][]byte {
	c, ok := s.ctrls[controllerUID]
	if !ok {
		return nil
	}
	return c.receivedPayloads()
}

func (s *Sim) link(uid, secret string) (*mqttlink.Link, error) {
	return mqttlink.New(mqttlink.Config{
		URL:      s.cfg.BrokerURL,
		ClientID: uid,
		Username: uid,
		Password: secret,
		Logger:   s.log.With("device", uid),
		Now:      s.cfg.Now,
	})
}
