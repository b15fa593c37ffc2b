package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aghali/aghali/api"
	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/web"
)

// app is one running Aghali server: everything `serve` starts, in the order it starts them.
type app struct {
	cfg        Config
	log        *slog.Logger
	pool       *pgxpool.Pool
	nodes      *fieldnodes.Store
	irr        *irrigation.Store
	broker     *broker.Broker // nil with an external broker
	mqttURL    string         // where devices connect (the embedded broker's address, or cfg.MQTTURL)
	link       *mqttlink.Link // ingest: node uplinks, controller acks and states
	cmdLink    *mqttlink.Link // command delivery
	ingest     *fieldnodes.Ingest
	dispatcher *irrigation.Dispatcher
	monitor    *irrigation.RunMonitor
	engine     *irrigation.Engine
	scheduler  *irrigation.Scheduler
	http       *http.Server
	httpAddr   net.Addr
	httpDone   chan error
	beforeStop []func() // run first by stop, e.g. the demo's simulated devices
}

// startApp starts everything but the HTTP listener (see listen) against databaseURL. On error,
// whatever started is stopped again.
func startApp(ctx context.Context, cfg Config, log *slog.Logger, databaseURL string) (a *app, err error) {
	a = &app{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			a.stop(context.Background())
			a = nil
		}
	}()
	if a.pool, err = openDatabase(ctx, databaseURL, log); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if a.nodes, err = fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: a.pool, Logger: log}); err != nil {
		return nil, err
	}
	if err = a.nodes.Start(ctx); err != nil {
		return nil, err
	}
	if a.irr, err = irrigation.NewStore(a.pool, a.nodes, irrigation.Config{Logger: log, Registerer: reg}); err != nil {
		return nil, err
	}

	// MQTT: the embedded broker unless an external one is configured; the server's own client
	// connects the same way in both cases.
	linkCfg := mqttlink.Config{URL: cfg.MQTTURL, ClientID: clientID(cfg), Logger: log, Shared: "aghali"}
	if cfg.MQTTURL == "" {
		a.broker, err = broker.New(broker.Config{Listen: cfg.MQTTListen, Prefix: cfg.MQTTPrefix, Auth: a.nodes, Logger: log, Registerer: reg})
		if err != nil {
			return nil, err
		}
		if err = a.broker.Start(ctx); err != nil {
			return nil, fmt.Errorf("embedded MQTT broker: %w", err)
		}
		linkCfg.URL = a.broker.URL()
		linkCfg.Username, linkCfg.Password = a.broker.InternalCredentials()
		a.mqttURL = a.broker.URL()
	} else {
		a.mqttURL = cfg.MQTTURL
	}
	if a.link, err = mqttlink.New(linkCfg); err != nil {
		return nil, err
	}
	// Commands go out on a link of their own, so their PUBACKs never wait behind an ingest
	// that is holding back a full buffer.
	cmdCfg := linkCfg
	cmdCfg.ClientID, cmdCfg.Shared = linkCfg.ClientID+"-cmd", ""
	if a.cmdLink, err = mqttlink.New(cmdCfg); err != nil {
		return nil, err
	}
	commander, err := fieldnodes.NewCommander(fieldnodes.CommanderConfig{Link: a.cmdLink, Prefix: cfg.MQTTPrefix})
	if err != nil {
		return nil, err
	}
	if a.engine, err = irrigation.NewEngine(a.irr, a.nodes, irrigation.EngineConfig{}); err != nil {
		return nil, err
	}
	a.ingest, err = fieldnodes.NewIngest(fieldnodes.IngestConfig{
		Store: a.nodes, Link: a.link, Prefix: cfg.MQTTPrefix, Listener: a.engine,
		Controllers: irrigation.NewControllerHandler(a.irr), Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	if err = a.ingest.Start(ctx); err != nil { // subscribes before the link connects
		return nil, err
	}
	if err = a.link.Start(ctx); err != nil {
		return nil, fmt.Errorf("MQTT: %w", err)
	}
	if err = a.cmdLink.Start(ctx); err != nil {
		return nil, fmt.Errorf("MQTT: %w", err)
	}
	if a.dispatcher, err = irrigation.NewDispatcher(a.irr, commander, irrigation.DispatcherConfig{}); err != nil {
		return nil, err
	}
	if a.monitor, err = irrigation.NewRunMonitor(a.irr, irrigation.RunMonitorConfig{}); err != nil {
		return nil, err
	}
	if a.scheduler, err = irrigation.NewScheduler(a.irr, irrigation.SchedulerConfig{}); err != nil {
		return nil, err
	}
	for _, p := range []interface{ Start(context.Context) error }{a.engine, a.dispatcher, a.monitor, a.scheduler} {
		if err = p.Start(ctx); err != nil {
			return nil, err
		}
	}

	srv, err := api.New(api.Config{
		DB: a.pool, Nodes: a.nodes, Irrigation: a.irr, Logger: log, SecureCookies: cfg.SecureCookies,
		Web: web.Handler(), Ready: a.ready,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
	})
	if err != nil {
		return nil, err
	}
	a.http = srv.HTTPServer(cfg.HTTPAddr)
	return a, nil
}

// listen starts serving HTTP; /readyz answers yes from here on.
func (a *app) listen() error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP: %w", err)
	}
	a.httpAddr = ln.Addr()
	a.httpDone = make(chan error, 1)
	go func() { a.httpDone <- a.http.Serve(ln) }()
	a.log.Info("aghali serving", "http", a.httpAddr.String(), "mqtt", a.mqttURL)
	return nil
}

// ready is /readyz: the database answers and the MQTT link is connected.
func (a *app) ready(ctx context.Context) error {
	if err := a.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if !a.link.Connected() || !a.cmdLink.Connected() {
		return errors.New("MQTT broker not connected")
	}
	return nil
}

// stop shuts down in the order that loses nothing: stop taking HTTP requests; drain ingest
// (buffered messages are committed and acknowledged, their rules evaluated); stop deciding
// (rules, schedules, run monitor); let the dispatcher finish what it is sending; then close the
// MQTT link, the broker and the database.
func (a *app) stop(ctx context.Context) {
	for _, f := range a.beforeStop {
		f()
	}
	if a.httpDone != nil {
		if err := a.http.Shutdown(ctx); err != nil {
			a.log.Warn("HTTP shutdown", "err", err)
		}
	}
	if a.ingest != nil {
		a.ingest.Stop()
	}
	if a.engine != nil {
		a.engine.Stop()
	}
	if a.scheduler != nil {
		a.scheduler.Stop()
	}
	if a.monitor != nil {
		a.monitor.Stop()
	}
	if a.dispatcher != nil {
		a.dispatcher.Stop()
	}
	if a.link != nil {
		a.link.Stop()
	}
	if a.cmdLink != nil {
		a.cmdLink.Stop()
	}
	if a.broker != nil {
		a.broker.Stop()
	}
	if a.nodes != nil {
		a.nodes.Stop()
	}
	if a.pool != nil {
		a.pool.Close()
	}
}

// clientID names this instance's MQTT session: stable across restarts of the same instance
// (so it gets back what was queued for it), different between instances on one host.
func clientID(cfg Config) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "|" + cfg.HTTPAddr + "|" + cfg.DataDir))
	return "aghali-serve-" + hex.EncodeToString(sum[:6])
}

// waitForShutdown blocks until ctx ends (SIGINT/SIGTERM) or the HTTP server fails, then stops
// the app within the grace period.
func (a *app) waitForShutdown(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down", "grace", a.cfg.ShutdownGrace)
	case err = <-a.httpDone:
		a.log.Error("HTTP server stopped", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownGrace)
	defer cancel()
	done := make(chan struct{})
	go func() { a.stop(sctx); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		return fmt.Errorf("shutdown took longer than %s", a.cfg.ShutdownGrace)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
