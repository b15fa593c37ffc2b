package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aghali/aghali/api"
	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/lorawan"
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
	broker     *broker.Broker   // nil with an external broker
	mqttURL    string           // where devices connect (the embedded broker's address, or cfg.MQTTURL)
	link       *mqttlink.Link   // ingest: node uplinks, controller acks and states
	nsLinks    []*mqttlink.Link // LoRaWAN network servers with a broker of their own
	cmdLink    *mqttlink.Link   // command delivery
	ingest     *fieldnodes.Ingest
	health     *fieldnodes.HealthMonitor
	dispatcher *irrigation.Dispatcher
	monitor    *irrigation.RunMonitor
	engine     *irrigation.Engine
	scheduler  *irrigation.Scheduler
	leader     *irrigation.Leader  // elects the instance that runs the periodic decisions
	decider    *irrigation.Decider // rules, weather, water balance, backtests
	http       *http.Server
	httpAddr   net.Addr
	httpDone   chan error
	beforeStop []func() // run first by stop, e.g. the demo's simulated devices
}

// startApp starts everything but the HTTP listener (see listen) against databaseURL. On error,
// whatever started is stopped again.
func startApp(ctx context.Context, cfg Config, log *slog.Logger, databaseURL string) (a *app, err error) {
	a = &app{cfg: cfg, log: log}
	partial := a // a is nil by the time a failed start returns
	defer func() {
		if err != nil {
			partial.stop(context.Background())
			a = nil
		}
	}()
	if a.pool, err = openDatabase(ctx, databaseURL, log); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if a.nodes, err = fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: a.pool, Logger: log, MissedIntervals: cfg.NodeMissedReports}); err != nil {
		return nil, err
	}
	if err = a.nodes.Start(ctx); err != nil {
		return nil, err
	}
	if a.irr, err = irrigation.NewStore(a.pool, a.nodes, irrigation.Config{Logger: log, Registerer: reg,
		CommandTTL: cfg.CommandTTL, LoRaWANCommandTTL: cfg.LoRaWANCommandTTL}); err != nil {
		return nil, err
	}

	// MQTT: the embedded broker unless an external one is configured; the server's own client
	// connects the same way in both cases.
	linkCfg := mqttlink.Config{URL: cfg.MQTTURL, ClientID: clientID(cfg), Logger: log, Shared: cfg.MQTTShared}
	integrations, err := lorawanIntegrations(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.MQTTURL == "" {
		gateways, err := parseLogins(cfg.MQTTGateways)
		if err != nil {
			return nil, fmt.Errorf("--mqtt-gateways / AGHALI_MQTT_GATEWAYS: %w", err)
		}
		// Gateways may publish the network servers' events and read their downlink topics.
		var gwPub, gwSub []string
		for _, in := range integrations {
			if in.URL == "" {
				gwPub = append(gwPub, in.Filter)
				gwSub = append(gwSub, in.Downlinks)
			}
		}
		a.broker, err = broker.New(broker.Config{Listen: cfg.MQTTListen, Prefix: cfg.MQTTPrefix, Auth: a.nodes, Logger: log, Registerer: reg,
			Gateways: gateways, GatewayPublish: gwPub, GatewaySubscribe: gwSub, AwaitHandoff: true})
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
	// One leader among the instances runs schedules, the periodic rule evaluation and the ET0
	// and water-balance upkeep; readings are evaluated wherever they are ingested.
	if a.leader, err = irrigation.NewLeader(a.irr, irrigation.LeaderConfig{}); err != nil {
		return nil, err
	}
	if a.decider, err = irrigation.NewDecider(a.irr, a.nodes, irrigation.DeciderConfig{
		Engine: irrigation.EngineConfig{Leader: a.leader}}); err != nil {
		return nil, err
	}
	a.engine = a.decider.Engine
	// LoRaWAN network servers: their events come in on their own broker when they have one
	// (ChirpStack's Mosquitto, TTS), else on Aghali's; LoRaWAN controllers' commands go down
	// the same way (on Aghali's broker, through the commands' link).
	var nsIntegrations []fieldnodes.Integration
	var downNets []fieldnodes.DownlinkNetwork
	for _, in := range integrations {
		fi := fieldnodes.Integration{Network: in.Network, Topic: in.Topic}
		dn := fieldnodes.DownlinkNetwork{Network: in.Network, Topic: in.DownTopic, UplinkTopic: in.Topic, Link: a.cmdLink}
		if in.URL != "" {
			l, err := mqttlink.New(mqttlink.Config{URL: in.URL, ClientID: linkCfg.ClientID + "-" + in.Network, Logger: log})
			if err != nil {
				return nil, fmt.Errorf("%s MQTT: %w", in.Network, err)
			}
			a.nsLinks = append(a.nsLinks, l)
			fi.Link, dn.Link = l, l
		}
		nsIntegrations = append(nsIntegrations, fi)
		downNets = append(downNets, dn)
	}
	var downlinks irrigation.DownlinkSender // nil without a network server: commands expire, alerted
	if len(downNets) > 0 {
		d, err := fieldnodes.NewDownlinks(fieldnodes.DownlinksConfig{Networks: downNets})
		if err != nil {
			return nil, err
		}
		downlinks = d
	}
	controllers := irrigation.NewControllerHandler(a.irr)
	a.ingest, err = fieldnodes.NewIngest(fieldnodes.IngestConfig{
		Store: a.nodes, Link: a.link, Prefix: cfg.MQTTPrefix, Listener: a.engine, Integrations: nsIntegrations,
		Controllers: controllers, LoRaWANControllers: controllers, Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	if a.broker != nil {
		// The embedded broker acknowledges uplinks once the ingest has committed them; those
		// that came in before this waited for it.
		a.broker.SetHandoff(a.ingest)
	}
	if err = a.ingest.Start(ctx); err != nil { // subscribes before the link connects
		return nil, err
	}
	if err = a.link.Start(ctx); err != nil {
		return nil, fmt.Errorf("MQTT: %w", err)
	}
	for _, l := range a.nsLinks {
		if err = l.Start(ctx); err != nil {
			return nil, fmt.Errorf("network server MQTT: %w", err)
		}
	}
	if a.health, err = fieldnodes.NewHealthMonitor(fieldnodes.HealthConfig{Store: a.nodes, Alerter: nodeAlerts{a.irr}, Logger: log, Registerer: reg}); err != nil {
		return nil, err
	}
	if err = a.health.Start(ctx); err != nil {
		return nil, err
	}
	if err = a.cmdLink.Start(ctx); err != nil {
		return nil, fmt.Errorf("MQTT: %w", err)
	}
	if a.dispatcher, err = irrigation.NewDispatcher(a.irr, commander, irrigation.DispatcherConfig{Downlinks: downlinks,
		RetryBase: cfg.CommandRetry, RetryMax: max(cfg.CommandRetry, 30*time.Second)}); err != nil {
		return nil, err
	}
	if a.monitor, err = irrigation.NewRunMonitor(a.irr, irrigation.RunMonitorConfig{}); err != nil {
		return nil, err
	}
	if a.scheduler, err = irrigation.NewScheduler(a.irr, irrigation.SchedulerConfig{Leader: a.leader, Decider: a.decider}); err != nil {
		return nil, err
	}
	for _, p := range []interface{ Start(context.Context) error }{a.leader, a.engine, a.dispatcher, a.monitor, a.scheduler} {
		if err = p.Start(ctx); err != nil {
			return nil, err
		}
	}

	srv, err := api.New(api.Config{
		DB: a.pool, Nodes: a.nodes, Irrigation: a.irr, Decider: a.decider, Logger: log, SecureCookies: cfg.SecureCookies,
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
	if a.health != nil {
		a.health.Stop()
	}
	if a.engine != nil {
		a.engine.Stop()
	}
	if a.scheduler != nil {
		a.scheduler.Stop()
	}
	if a.leader != nil {
		a.leader.Stop() // after what it elects for: the next leader takes over at once
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
	for _, l := range a.nsLinks {
		l.Stop()
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

// nodeAlerts lets fieldnodes' health monitor raise and resolve alerts in irrigation's store.
type nodeAlerts struct{ irr *irrigation.Store }

func (n nodeAlerts) RaiseAlert(ctx context.Context, a fieldnodes.NodeAlert) error {
	_, err := n.irr.RaiseAlert(ctx, irrigation.Alert{FarmID: a.FarmID, Kind: a.Kind, Severity: a.Severity, Subject: a.Subject, Message: a.Message})
	return err
}

func (n nodeAlerts) ResolveAlert(ctx context.Context, farmID int64, kind, subject string) error {
	return n.irr.ResolveAlert(ctx, farmID, kind, subject)
}

// lorawanIntegration is a configured network server: its event and downlink topic templates,
// the subscription and downlink filters they imply, and its own broker's URL ("" for Aghali's).
type lorawanIntegration struct {
	Network, Topic, DownTopic, URL, Filter, Downlinks string
}

func lorawanIntegrations(cfg Config) ([]lorawanIntegration, error) {
	var out []lorawanIntegration
	for _, in := range []struct{ network, topic, down, url string }{
		{fieldnodes.NetworkChirpStack, cfg.ChirpStackTopic, cmp.Or(cfg.ChirpStackDownTopic, fieldnodes.DefaultChirpStackDownTopic), cfg.ChirpStackMQTTURL},
		{fieldnodes.NetworkTTS, cfg.TTSTopic, cmp.Or(cfg.TTSDownTopic, fieldnodes.DefaultTTSDownTopic), cfg.TTSMQTTURL},
	} {
		if in.topic == "" || in.topic == "off" {
			continue
		}
		t, err := lorawan.ParseTemplate(in.topic)
		if err != nil {
			return nil, fmt.Errorf("%s topic: %w", in.network, err)
		}
		d, err := lorawan.ParseDownTemplate(in.down)
		if err != nil {
			return nil, fmt.Errorf("%s downlink topic: %w", in.network, err)
		}
		out = append(out, lorawanIntegration{Network: in.network, Topic: in.topic, DownTopic: in.down, URL: in.url,
			Filter: t.Filter(), Downlinks: d.Filter()})
	}
	return out, nil
}

// parseLogins reads "user:password,user2:password2".
func parseLogins(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		user, pass, ok := strings.Cut(pair, ":")
		if !ok || user == "" || pass == "" {
			return nil, fmt.Errorf("%q is not user:password", user)
		}
		out[user] = pass
	}
	return out, nil
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
