package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aghali/aghali/fieldnodes/devicesim"
)

// faultNamed is the way a simulated controller can be told to misbehave, by name.
func faultNamed(name string) (devicesim.Fault, bool) {
	switch f := devicesim.Fault(name); f {
	case devicesim.FaultDropAcks, devicesim.FaultOffline, devicesim.FaultStickOpen, devicesim.FaultLeak:
		return f, true
	case "none":
		return devicesim.FaultNone, true
	}
	return "", false
}

// faultFlags is --fault uid=fault, repeatable.
type faultFlags [][2]string

func (f *faultFlags) String() string { return fmt.Sprint(*f) }

func (f *faultFlags) Set(v string) error {
	uid, fault, ok := strings.Cut(v, "=")
	if !ok || uid == "" {
		return fmt.Errorf("%q: want controller-uid=fault", v)
	}
	if _, ok := faultNamed(fault); !ok {
		return fmt.Errorf("%q: fault %q is not one of none, drop_acks, offline, stick_open, leak", v, fault)
	}
	*f = append(*f, [2]string{uid, fault})
	return nil
}

// cmdSimulate runs a fleet of simulated nodes and controllers against any broker, e.g. the demo
// fleet against a production-like Mosquitto. Controllers obey the protocol and can be told to
// misbehave: --fault at start, and while running by lines on standard input,
// "fault <controller-uid> <none|drop_acks|offline|stick_open|leak>".
func cmdSimulate(ctx context.Context, args []string, env Env) error {
	var fleetPath string
	var speed float64
	var stateEvery time.Duration
	var faults faultFlags
	cfg, err := parseConfig("simulate", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&fleetPath, "fleet", "", "fleet file: devices, their secrets and zones (aghali demo writes one as demo.json)")
		fs.Float64Var(&speed, "sim-speed", 1, "how many times faster than real time soil dries and wets")
		fs.DurationVar(&stateEvery, "state-every", 30*time.Second, "how often each controller reports its state when nothing changes")
		fs.Var(&faults, "fault", "controller-uid=fault: make a controller misbehave (none, drop_acks, offline, stick_open, leak); repeatable")
	})
	if err != nil {
		return err
	}
	if fleetPath == "" {
		return errors.New("simulate: --fleet is required")
	}
	if cfg.MQTTURL == "" {
		return errors.New("simulate: AGHALI_MQTT_URL (or --mqtt-url) is required: the broker the devices connect to")
	}
	log, err := newLogger(cfg, env)
	if err != nil {
		return err
	}
	st, ok, err := loadDemoState(fleetPath)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("simulate: %s does not exist", fleetPath)
	}
	sim, err := devicesim.New(devicesim.Config{BrokerURL: cfg.MQTTURL, Prefix: cfg.MQTTPrefix, Fleet: st.Fleet, Speed: speed, Logger: log,
		StateEvery: stateEvery})
	if err != nil {
		return err
	}
	if err := sim.Start(ctx); err != nil {
		return err
	}
	defer sim.Stop()
	for _, f := range faults {
		fault, _ := faultNamed(f[1])
		if err := sim.SetFault(f[0], fault); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "controller %s: %s\n", f[0], f[1])
	}
	fmt.Fprintf(env.Stdout, "simulating %d nodes and %d controllers against %s; Ctrl-C stops; "+
		"\"fault <controller> <none|drop_acks|offline|stick_open|leak>\" on standard input changes a controller\n",
		len(st.Fleet.Nodes), len(st.Fleet.Controllers), cfg.MQTTURL)
	if env.Stdin != nil {
		go readFaults(ctx, env.Stdin, env.Stdout, sim)
	}
	<-ctx.Done()
	return nil
}

// readFaults applies "fault <uid> <fault>" lines until the input ends.
func readFaults(ctx context.Context, in io.Reader, out io.Writer, sim *devicesim.Sim) {
	sc := bufio.NewScanner(in)
	for sc.Scan() && ctx.Err() == nil {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		fault, ok := faultNamed(f[len(f)-1])
		if len(f) != 3 || f[0] != "fault" || !ok {
			fmt.Fprintln(out, `want: fault <controller-uid> <none|drop_acks|offline|stick_open|leak>`)
			continue
		}
		if err := sim.SetFault(f[1], fault); err != nil {
			fmt.Fprintln(out, err)
			continue
		}
		fmt.Fprintf(out, "controller %s: %s\n", f[1], f[2])
	}
}
