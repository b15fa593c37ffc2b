package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/aghali/aghali/fieldnodes/devicesim"
)

// cmdSimulate runs a fleet of simulated nodes and controllers against any broker, e.g. the demo
// fleet against a production-like Mosquitto.
func cmdSimulate(ctx context.Context, args []string, env Env) error {
	var fleetPath string
	var speed float64
	cfg, err := parseConfig("simulate", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&fleetPath, "fleet", "", "fleet file: devices, their secrets and zones (aghali demo writes one as demo.json)")
		fs.Float64Var(&speed, "sim-speed", 1, "how many times faster than real time soil dries and wets")
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
	sim, err := devicesim.New(devicesim.Config{BrokerURL: cfg.MQTTURL, Prefix: cfg.MQTTPrefix, Fleet: st.Fleet, Speed: speed, Logger: log})
	if err != nil {
		return err
	}
	if err := sim.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "simulating %d nodes and %d controllers against %s; Ctrl-C stops\n", len(st.Fleet.Nodes), len(st.Fleet.Controllers), cfg.MQTTURL)
	<-ctx.Done()
	sim.Stop()
	return nil
}
