package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// Config is what New needs. Only DB is required; every other field has the default its comment
// gives when left zero. The domain stores (Geo, Nodes, Irrigation) are always there once New
// returns: left nil, they are built on DB.
type Config struct {
	// DB is the pool everything is stored in. Its connections must have geo.RegisterTypes
	// applied (geo.OpenPool does that). Required.
	DB *pgxpool.Pool

	// Geo keeps farms and fields. Default: geo.NewStore(DB).
	Geo *geo.Store

	// Nodes keeps field nodes, their readings and MQTT secrets, the metrics catalogue, pending
	// devices and rejected messages: the routes /farms/{farm}/nodes, /nodes/..., /metrics-catalog,
	// /pending-devices, /rejected-messages and the map's node layer need it.
	// Default: fieldnodes.NewStore on DB with Logger and Now. A process that also runs the MQTT
	// broker must pass the store the broker authenticates with, so that a rotated secret stops
	// working at once (each store caches successful device logins).
	Nodes *fieldnodes.Store

	// Irrigation keeps zones, water sources, controllers, valves, runs, rules, schedules and
	// alerts; every route about them and the map's zone, valve and water_source layers need it.
	// Default: irrigation.NewStore(DB, Nodes, irrigation.Config{Now: Now, Logger: Logger}),
	// whose metrics are registered nowhere; a process that runs the dispatcher and scheduler
	// passes its own store, so runs started here are counted with the rest.
	Irrigation *irrigation.Store

	// Decider answers rule dry runs, backtests, ET0 and water balances. Default:
	// irrigation.NewDecider on Irrigation and Nodes; a process that runs the rule engine passes
	// its own.
	Decider *irrigation.Decider

	// Logger receives one line per request, failed logins and unexpected errors.
	// Default: discard everything.
	Logger *slog.Logger

	// Now is the clock used for sessions, tokens and rate limits. Default: time.Now.
	Now func() time.Time

	// SecureCookies marks the session cookie Secure; set it whenever clients reach the server
	// over TLS (directly or through a proxy). Default: false.
	SecureCookies bool

	// Web serves every path outside /api/, /healthz, /readyz and /metrics (the embedded app).
	// Default: nil, which answers those paths with 404.
	Web http.Handler

	// Ready reports whether the service can do its work (database, broker); /readyz answers 503
	// when it returns an error. Default: ping DB.
	Ready func(ctx context.Context) error

	// Metrics serves /metrics (Prometheus text format). Default: nil, which answers 404.
	Metrics http.Handler

	// LoginRate limits login attempts per client address and per e-mail. Zero members take the
	// defaults documented on LoginRate.
	LoginRate LoginRate

	// SessionIdle is how long an unused session lives; each use extends it. Default: 7 days.
	SessionIdle time.Duration

	// SessionMaxAge is how long a session lives after login however much it is used.
	// Default: 30 days.
	SessionMaxAge time.Duration

	// BodyLimit is the largest request body accepted, in bytes; larger ones get 413.
	// Default: 4 MiB (a detailed field boundary is far smaller).
	BodyLimit int64

	// RequestTimeout bounds the context of each request. Default: 30 s; negative: no bound.
	RequestTimeout time.Duration

	// TrustProxyHeaders takes the client address from X-Forwarded-For when the TCP peer is a
	// loopback or private address (a reverse proxy). Default: false, the TCP peer's address.
	TrustProxyHeaders bool

	// TrustedOrigins are origins, besides the request's own, whose pages may send
	// cookie-authenticated unsafe requests, e.g. "https://aghali.example.org". Default: none.
	TrustedOrigins []string
}

// Server is the HTTP API. Build it with New; serve Handler().
type Server struct {
	db     *pgxpool.Pool
	geo    *geo.Store
	nodes  *fieldnodes.Store
	irr    *irrigation.Store
	log    *slog.Logger
	now    func() time.Time
	cfg    Config
	echo   *echo.Echo
	ipRate *keyedLimiter
	mlRate *keyedLimiter
	// dummyHash is verified against when a login names an unknown e-mail, so that the answer
	// takes as long as for a wrong password.
	dummyHash string
	openAPI   []byte
	origins   map[string]bool
	mapBufs   sync.Pool // *[]byte: farm map layers, see farmMap
	mapFlate  sync.Pool // *flate.Writer: farm map layers, see farm_map_gzip.go
}

// New validates cfg, fills its defaults and builds the Server.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("api: Config.DB is required")
	}
	if cfg.Geo == nil {
		cfg.Geo = geo.NewStore(cfg.DB)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Nodes == nil {
		nodes, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: cfg.DB, Logger: cfg.Logger, Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("api: default Nodes: %w", err)
		}
		cfg.Nodes = nodes
	}
	if cfg.Irrigation == nil {
		irr, err := irrigation.NewStore(cfg.DB, cfg.Nodes, irrigation.Config{Now: cfg.Now, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("api: default Irrigation: %w", err)
		}
		cfg.Irrigation = irr
	}
	if cfg.Decider == nil {
		dec, err := irrigation.NewDecider(cfg.Irrigation, cfg.Nodes, irrigation.DeciderConfig{})
		if err != nil {
			return nil, fmt.Errorf("api: default Decider: %w", err)
		}
		cfg.Decider = dec
	}
	if cfg.Ready == nil {
		db := cfg.DB
		cfg.Ready = func(ctx context.Context) error { return db.Ping(ctx) }
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 7 * 24 * time.Hour
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = 30 * 24 * time.Hour
	}
	if cfg.SessionIdle > cfg.SessionMaxAge {
		return nil, fmt.Errorf("api: SessionIdle (%s) is longer than SessionMaxAge (%s)", cfg.SessionIdle, cfg.SessionMaxAge)
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 4 << 20
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	cfg.LoginRate = cfg.LoginRate.withDefaults()
	origins := map[string]bool{}
	for _, o := range cfg.TrustedOrigins {
		o = strings.TrimRight(strings.ToLower(o), "/")
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return nil, fmt.Errorf("api: trusted origin %q: want scheme://host[:port]", o)
		}
		origins[o] = true
	}
	dummy, err := hashPassword("unknown-account-" + randomToken(8))
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	doc, err := buildOpenAPI()
	if err != nil {
		return nil, fmt.Errorf("api: OpenAPI document: %w", err)
	}
	s := &Server{
		db:        cfg.DB,
		geo:       cfg.Geo,
		nodes:     cfg.Nodes,
		irr:       cfg.Irrigation,
		log:       cfg.Logger,
		now:       cfg.Now,
		cfg:       cfg,
		ipRate:    newKeyedLimiter(cfg.LoginRate.PerAddress),
		mlRate:    newKeyedLimiter(cfg.LoginRate.PerEmail),
		dummyHash: dummy,
		openAPI:   doc,
		origins:   origins,
	}
	s.echo = s.newEcho()
	return s, nil
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	if s.cfg.TrustProxyHeaders {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	s.routes(e)
	return e
}

// Handler returns the HTTP handler: /api/, /healthz, /readyz and /metrics go to the API, every
// other path to Config.Web.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if s.cfg.Web == nil || p == "/api" || strings.HasPrefix(p, "/api/") ||
			p == "/healthz" || p == "/readyz" || p == "/metrics" {
			s.echo.ServeHTTP(w, r)
			return
		}
		s.cfg.Web.ServeHTTP(w, r)
	})
}

// HTTPServer returns an http.Server for Handler with timeouts that suit it: slow clients cannot
// hold connections open by trickling headers or bodies, idle keep-alive connections are closed
// after two minutes. There is no write timeout, since event streams stay open; each request's
// work is bounded by Config.RequestTimeout instead.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
