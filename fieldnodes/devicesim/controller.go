package devicesim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// Fault is a way a controller can misbehave.
type Fault string

// Faults.
const (
	FaultNone      Fault = ""           // behave
	FaultDropAcks  Fault = "drop_acks"  // carry out commands but never acknowledge them
	FaultOffline   Fault = "offline"    // disconnect; commands queue at the broker until it is back
	FaultStickOpen Fault = "stick_open" // valves that are open stay open: close and duration_s are ignored
	FaultLeak      Fault = "leak"       // water flows (and is metered) while every valve is closed
)

// leakLPM is the flow a leaking controller meters with every valve closed.
const leakLPM = 4.0

type command struct {
	ID        string    `json:"id"`
	Action    string    `json:"action"`
	Valve     int       `json:"valve"`
	DurationS int       `json:"duration_s"`
	ExpiresAt time.Time `json:"expires_at"`
}

type ack struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

type valveState struct {
	spec    Valve
	open    bool
	closeAt time.Time
}

type controller struct {
	sim  *Sim
	spec Controller
	rng  *rand.Rand
	in   chan mqttlink.Message

	mu       sync.Mutex
	link     *mqttlink.Link
	fault    Fault
	valves   map[int]*valveState
	answered map[string]ack // commands seen, and what was answered (bounded)
	order    []string
	executed []string
	received [][]byte // raw command payloads, in arrival order (bounded)
	volume   float64
	lastFlow time.Time
	ctx      context.Context
}

func newController(s *Sim, spec Controller, rng *rand.Rand) *controller {
	c := &controller{sim: s, spec: spec, rng: rng, in: make(chan mqttlink.Message, 64),
		valves: map[int]*valveState{}, answered: map[string]ack{}}
	for _, v := range spec.Valves {
		c.valves[v.Channel] = &valveState{spec: v}
	}
	return c
}

func (c *controller) topic(leaf string) string {
	return c.sim.cfg.Prefix + "/controllers/" + c.spec.UID + "/" + leaf
}

func (c *controller) connect(ctx context.Context) error {
	l, err := c.sim.link(c.spec.UID, c.spec.Secret)
	if err != nil {
		return err
	}
	if err := l.Subscribe(c.topic("cmd"), func(m mqttlink.Message) {
		select {
		case c.in <- m:
		case <-ctx.Done():
		}
	}); err != nil {
		return err
	}
	// The link must be in place before Start: a command queued while the controller was away
	// arrives as soon as the session resumes, and its ack goes out through c.link.
	c.mu.Lock()
	c.link = l
	c.ctx = ctx
	c.mu.Unlock()
	if err := l.Start(ctx); err != nil {
		c.mu.Lock()
		c.link = nil
		c.mu.Unlock()
		return fmt.Errorf("controller %s: %w", c.spec.UID, err)
	}
	return nil
}

func (c *controller) disconnect() {
	c.mu.Lock()
	l := c.link
	c.link = nil
	c.mu.Unlock()
	if l != nil {
		l.Stop()
	}
}

func (c *controller) run(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	nextState := c.sim.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.in:
			c.handle(ctx, m.Payload)
			m.Ack()
		case <-tick.C:
			now := c.sim.cfg.Now()
			changed := c.selfClose(now)
			if changed || !now.Before(nextState) {
				c.publishState(ctx)
				nextState = now.Add(c.sim.cfg.StateEvery)
			}
		}
	}
}

func (c *controller) handle(ctx context.Context, payload []byte) {
	now := c.sim.cfg.Now()
	var cmd command
	if err := json.Unmarshal(payload, &cmd); err != nil || cmd.ID == "" {
		c.sim.log.Warn("simulated controller got an unreadable command", "controller", c.spec.UID, "payload", string(payload))
		return
	}
	c.mu.Lock()
	if len(c.received) < 4096 {
		c.received = append(c.received, append([]byte(nil), payload...))
	}
	if prev, seen := c.answered[cmd.ID]; seen {
		// A repeated id is never carried out again, but answered again: the first ack may be lost.
		c.mu.Unlock()
		c.sendAck(ctx, prev)
		return
	}
	a := c.execute(now, cmd)
	c.remember(cmd.ID, a)
	c.mu.Unlock()
	c.sendAck(ctx, a)
	c.publishState(ctx)
}

// execute carries out cmd; c.mu is held.
func (c *controller) execute(now time.Time, cmd command) ack {
	if !cmd.ExpiresAt.IsZero() && now.After(cmd.ExpiresAt) {
		return ack{ID: cmd.ID, Status: "rejected", Reason: "expired at " + cmd.ExpiresAt.UTC().Format(time.RFC3339)}
	}
	switch cmd.Action {
	case "open":
		v, ok := c.valves[cmd.Valve]
		if !ok {
			return ack{ID: cmd.ID, Status: "rejected", Reason: "valve " + strconv.Itoa(cmd.Valve) + " unknown"}
		}
		if cmd.DurationS <= 0 {
			return ack{ID: cmd.ID, Status: "rejected", Reason: "open needs duration_s"}
		}
		c.setOpen(now, v, true)
		v.closeAt = now.Add(time.Duration(cmd.DurationS) * time.Second)
	case "close":
		v, ok := c.valves[cmd.Valve]
		if !ok {
			return ack{ID: cmd.ID, Status: "rejected", Reason: "valve " + strconv.Itoa(cmd.Valve) + " unknown"}
		}
		if c.fault != FaultStickOpen {
			c.setOpen(now, v, false)
		}
	case "close_all":
		if c.fault != FaultStickOpen {
			for _, v := range c.valves {
				c.setOpen(now, v, false)
			}
		}
	default:
		return ack{ID: cmd.ID, Status: "rejected", Reason: "unknown action " + strconv.Quote(cmd.Action)}
	}
	c.executed = append(c.executed, cmd.ID)
	return ack{ID: cmd.ID, Status: "ok"}
}

func (c *controller) remember(id string, a ack) {
	c.answered[id] = a
	c.order = append(c.order, id)
	if len(c.order) > 4096 {
		delete(c.answered, c.order[0])
		c.order = c.order[1:]
	}
}

// setOpen changes a valve and meters what flowed so far; c.mu is held.
func (c *controller) setOpen(now time.Time, v *valveState, open bool) {
	if v.open == open {
		return
	}
	c.meter(now)
	v.open = open
	if v.spec.Zone >= 0 {
		d := -1
		if open {
			d = 1
		}
		c.sim.soils[v.spec.Zone].valve(now, d)
	}
}

// selfClose closes valves whose duration_s ran out; it reports whether anything changed.
func (c *controller) selfClose(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	if c.fault == FaultStickOpen {
		return false
	}
	for _, v := range c.valves {
		if v.open && !now.Before(v.closeAt) {
			c.setOpen(now, v, false)
			changed = true
		}
	}
	return changed
}

// flow is the current flow in L/min; c.mu is held.
func (c *controller) flow() float64 {
	f := 0.0
	for _, v := range c.valves {
		if v.open {
			f += v.spec.FlowLPM
		}
	}
	if f == 0 && c.fault == FaultLeak {
		f = leakLPM
	}
	return f
}

// meter adds what flowed since the last call to the totaliser; c.mu is held.
func (c *controller) meter(now time.Time) {
	if !c.lastFlow.IsZero() {
		c.volume += c.flow() * now.Sub(c.lastFlow).Minutes()
	}
	c.lastFlow = now
}

type stateReport struct {
	TS      time.Time         `json:"ts"`
	Valves  map[string]string `json:"valves"`
	FlowLPM float64           `json:"flow_lpm"`
	VolumeL float64           `json:"volume_l"`
}

func (c *controller) publishState(ctx context.Context) {
	now := c.sim.cfg.Now()
	c.mu.Lock()
	c.meter(now)
	st := stateReport{TS: now.UTC().Truncate(time.Millisecond), Valves: map[string]string{}}
	for ch, v := range c.valves {
		st.Valves[strconv.Itoa(ch)] = map[bool]string{true: "open", false: "closed"}[v.open]
	}
	f := c.flow()
	if f > 0 {
		f *= 1 + c.rng.NormFloat64()*0.02
	}
	st.FlowLPM = round(f, 2)
	st.VolumeL = round(c.volume, 1)
	l := c.link
	c.mu.Unlock()
	if l == nil {
		return
	}
	payload, _ := json.Marshal(st)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Publish(pctx, c.topic("state"), 1, true, payload); err != nil && ctx.Err() == nil {
		c.sim.log.Warn("simulated controller could not report state", "controller", c.spec.UID, "err", err)
	}
}

func (c *controller) sendAck(ctx context.Context, a ack) {
	c.mu.Lock()
	l, fault := c.link, c.fault
	c.mu.Unlock()
	if l == nil || fault == FaultDropAcks {
		return
	}
	payload, _ := json.Marshal(a)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Publish(pctx, c.topic("ack"), 1, false, payload); err != nil && ctx.Err() == nil {
		c.sim.log.Warn("simulated controller could not ack", "controller", c.spec.UID, "err", err)
	}
}

func (c *controller) setFault(f Fault) error {
	c.mu.Lock()
	was := c.fault
	c.fault = f
	ctx := c.ctx
	c.mu.Unlock()
	switch {
	case f == FaultOffline && was != FaultOffline:
		c.disconnect()
	case was == FaultOffline && f != FaultOffline:
		if ctx == nil {
			return nil // not started yet
		}
		return c.connect(ctx)
	}
	return nil
}

func (c *controller) isOpen(channel int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.valves[channel]
	return ok && v.open
}

func (c *controller) receivedPayloads() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.received...)
}

func (c *controller) executedIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.executed...)
}
