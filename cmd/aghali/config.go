package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Config is the configuration every subcommand shares. Each field has a flag and an AGHALI_*
// variable; a flag beats the variable, the variable beats the default. docs/config.md lists them.
type Config struct {
	DatabaseURL   string        // AGHALI_DATABASE_URL: empty = demo manages a local cluster; serve refuses
	DataDir       string        // AGHALI_DATA_DIR: managed cluster and demo state (default ./.aghali)
	MQTTURL       string        // AGHALI_MQTT_URL: external broker; empty = embedded broker
	MQTTListen    string        // AGHALI_MQTT_LISTEN: embedded broker's listener (default :1883)
	MQTTPrefix    string        // AGHALI_MQTT_PREFIX: topic prefix (default aghali)
	HTTPAddr      string        // AGHALI_HTTP_ADDR: API and web app (default :8080)
	SecureCookies bool          // AGHALI_SECURE_COOKIES: mark session cookies Secure (behind TLS)
	LogLevel      string        // AGHALI_LOG_LEVEL: debug, info, warn, error (default info)
	LogFormat     string        // AGHALI_LOG_FORMAT: text or json (default text)
	ShutdownGrace time.Duration // AGHALI_SHUTDOWN_GRACE: time to drain on SIGTERM (default 20s)

	// Valve commands (docs/irrigation.md).
	CommandTTL        time.Duration // AGHALI_COMMAND_TTL: a command is never sent or carried out later than this after it was queued (default 60s)
	CommandRetry      time.Duration // AGHALI_COMMAND_RETRY: first wait before resending an unacknowledged command; doubles up to 30 s (default 2s)
	LoRaWANCommandTTL time.Duration // AGHALI_LORAWAN_COMMAND_TTL: CommandTTL for LoRaWAN controllers (default 20m)

	// Field nodes (docs/lorawan.md, docs/mqtt.md).
	MQTTGateways        string // AGHALI_MQTT_GATEWAYS: user:password,… gateways/network servers allowed into the embedded broker
	MQTTShared          string // AGHALI_MQTT_SHARED: shared subscription group of several instances; empty: plain subscriptions
	ChirpStackTopic     string // AGHALI_CHIRPSTACK_TOPIC: ChirpStack v4 event topic template; "off" disables
	ChirpStackDownTopic string // AGHALI_CHIRPSTACK_DOWN_TOPIC: ChirpStack v4 downlink (command/down) topic template
	ChirpStackMQTTURL   string // AGHALI_CHIRPSTACK_MQTT_URL: broker ChirpStack publishes to; empty = Aghali's
	TTSTopic            string // AGHALI_TTS_TOPIC: The Things Stack v3 topic template; "off" disables
	TTSDownTopic        string // AGHALI_TTS_DOWN_TOPIC: The Things Stack v3 downlink (down/push) topic template
	TTSMQTTURL          string // AGHALI_TTS_MQTT_URL: The Things Stack's MQTT server; empty = Aghali's broker
	NodeMissedReports   int    // AGHALI_NODE_MISSED_REPORTS: reports a node may miss before it is alerted silent (default 3)
}

type setting struct {
	flag, env, def, help string
	set                  func(Config, string) (Config, error)
}

func settings() []setting {
	str := func(f func(*Config) *string) func(Config, string) (Config, error) {
		return func(c Config, v string) (Config, error) { *f(&c) = v; return c, nil }
	}
	return []setting{
		{"database-url", "AGHALI_DATABASE_URL", "", "PostgreSQL+PostGIS URL (empty: demo manages a local cluster)", str(func(c *Config) *string { return &c.DatabaseURL })},
		{"data-dir", "AGHALI_DATA_DIR", "./.aghali", "managed cluster and demo state", str(func(c *Config) *string { return &c.DataDir })},
		{"mqtt-url", "AGHALI_MQTT_URL", "", "external MQTT broker, e.g. tcp://user:pass@host:1883 (empty: embedded broker)", str(func(c *Config) *string { return &c.MQTTURL })},
		{"mqtt-listen", "AGHALI_MQTT_LISTEN", ":1883", "embedded broker's listener", str(func(c *Config) *string { return &c.MQTTListen })},
		{"mqtt-prefix", "AGHALI_MQTT_PREFIX", "aghali", "MQTT topic prefix", str(func(c *Config) *string { return &c.MQTTPrefix })},
		{"http-addr", "AGHALI_HTTP_ADDR", ":8080", "API and web app listener", str(func(c *Config) *string { return &c.HTTPAddr })},
		{"secure-cookies", "AGHALI_SECURE_COOKIES", "false", "mark session cookies Secure (when served over HTTPS)", func(c Config, v string) (Config, error) {
			b, err := strconv.ParseBool(v)
			c.SecureCookies = b
			return c, err
		}},
		{"log-level", "AGHALI_LOG_LEVEL", "info", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
		{"log-format", "AGHALI_LOG_FORMAT", "text", "text or json", str(func(c *Config) *string { return &c.LogFormat })},
		{"mqtt-gateways", "AGHALI_MQTT_GATEWAYS", "", "user:password,... logins for gateways and LoRaWAN network servers in the embedded broker", str(func(c *Config) *string { return &c.MQTTGateways })},
		{"mqtt-shared", "AGHALI_MQTT_SHARED", "", "shared subscription group when several instances share the ingest, e.g. aghali (empty: one instance, plain subscriptions)", str(func(c *Config) *string { return &c.MQTTShared })},
		{"chirpstack-topic", "AGHALI_CHIRPSTACK_TOPIC", "application/{application_id}/device/{dev_eui}/event/{event}", "ChirpStack v4 MQTT event topic template (off: no ChirpStack)", str(func(c *Config) *string { return &c.ChirpStackTopic })},
		{"chirpstack-down-topic", "AGHALI_CHIRPSTACK_DOWN_TOPIC", "application/{application_id}/device/{dev_eui}/command/down", "ChirpStack v4 MQTT downlink topic template, filled from a LoRaWAN controller's uplink topic", str(func(c *Config) *string { return &c.ChirpStackDownTopic })},
		{"chirpstack-mqtt-url", "AGHALI_CHIRPSTACK_MQTT_URL", "", "broker ChirpStack publishes to, tcp://user:pass@host:1883 (empty: Aghali's broker)", str(func(c *Config) *string { return &c.ChirpStackMQTTURL })},
		{"tts-topic", "AGHALI_TTS_TOPIC", "v3/{application_id}@{tenant_id}/devices/{device_id}/{event}", "The Things Stack v3 MQTT topic template (off: no TTS)", str(func(c *Config) *string { return &c.TTSTopic })},
		{"tts-down-topic", "AGHALI_TTS_DOWN_TOPIC", "v3/{application_id}@{tenant_id}/devices/{device_id}/down/push", "The Things Stack v3 MQTT downlink topic template, filled from a LoRaWAN controller's uplink topic", str(func(c *Config) *string { return &c.TTSDownTopic })},
		{"tts-mqtt-url", "AGHALI_TTS_MQTT_URL", "", "The Things Stack MQTT server, ssl://app%40tenant:API_KEY@host:8883 (empty: Aghali's broker)", str(func(c *Config) *string { return &c.TTSMQTTURL })},
		{"node-missed-reports", "AGHALI_NODE_MISSED_REPORTS", "3", "reports a node may miss before a node_silent alert", func(c Config, v string) (Config, error) {
			n, err := strconv.Atoi(v)
			if err == nil && n < 1 {
				err = fmt.Errorf("must be at least 1")
			}
			c.NodeMissedReports = n
			return c, err
		}},
		{"command-ttl", "AGHALI_COMMAND_TTL", "60s", "how long a valve command may wait to be carried out; never later", duration(func(c *Config) *time.Duration { return &c.CommandTTL })},
		{"command-retry", "AGHALI_COMMAND_RETRY", "2s", "first wait before resending an unacknowledged valve command (doubles, up to 30 s)", duration(func(c *Config) *time.Duration { return &c.CommandRetry })},
		{"lorawan-command-ttl", "AGHALI_LORAWAN_COMMAND_TTL", "20m", "command TTL for LoRaWAN controllers (class A hears a downlink only after its next uplink)", duration(func(c *Config) *time.Duration { return &c.LoRaWANCommandTTL })},
		{"shutdown-grace", "AGHALI_SHUTDOWN_GRACE", "20s", "time allowed to drain ingest and finish work on SIGTERM", func(c Config, v string) (Config, error) {
			d, err := time.ParseDuration(v)
			c.ShutdownGrace = d
			return c, err
		}},
	}
}

// duration parses a positive duration setting.
func duration(f func(*Config) *time.Duration) func(Config, string) (Config, error) {
	return func(c Config, v string) (Config, error) {
		d, err := time.ParseDuration(v)
		if err == nil && d <= 0 {
			err = fmt.Errorf("must be positive")
		}
		*f(&c) = d
		return c, err
	}
}

// parseConfig parses args for the subcommand name. extra registers the subcommand's own flags.
func parseConfig(name string, args []string, env Env, extra func(*flag.FlagSet)) (Config, error) {
	fs := flag.NewFlagSet("aghali "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	vals := map[string]*string{}
	for _, s := range settings() {
		def := s.def
		if v := env.Getenv(s.env); v != "" {
			def = v
		}
		vals[s.flag] = fs.String(s.flag, def, s.help+" ["+s.env+"]")
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (see aghali %s -h)", fs.Arg(0), name)
	}
	var c Config
	for _, s := range settings() {
		var err error
		if c, err = s.set(c, strings.TrimSpace(*vals[s.flag])); err != nil {
			return Config{}, fmt.Errorf("--%s / %s: %w", s.flag, s.env, err)
		}
	}
	return c, nil
}

func newLogger(c Config, env Env) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", c.LogFormat)
}
