package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/mod/sumdb/note"

	"github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/broker"
	"github.com/cxledger/cxledger/adapters/console"
	"github.com/cxledger/cxledger/adapters/delivery"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/process"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/cxledger/cxledger/projections/engage"
	"github.com/cxledger/cxledger/projections/loyalty"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/cxledger/cxledger/projections/rules"
	"github.com/cxledger/cxledger/projections/script"
)

func init() {
	register(command{name: "serve", short: "serve the HTTP API (JSON under /v1), running every read model live and the broker (--broker)", flags: serveCommand, creates: true})
}

const defaultAddr = "127.0.0.1:8080"

func serveCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	addr := fs.String("addr", envOr("CXLEDGER_ADDR", defaultAddr), "listen address (env CXLEDGER_ADDR)")
	tokensFile := fs.String("tokens", os.Getenv("CXLEDGER_TOKENS_FILE"), "API tokens file: JSON or lines \"role token\" (env CXLEDGER_TOKENS_FILE; CXLEDGER_TOKENS=role:token,… adds more)")
	insecure := fs.Bool("insecure-no-auth", false, "serve without authentication on a non-loopback address (every request is admin)")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long a shutdown waits for in-flight requests")
	maxBody := fs.Int64("max-body", 1<<20, "largest request body in bytes (413 beyond)")
	rulesFile := fs.String("rules", os.Getenv("CXLEDGER_RULES_FILE"), "automation rules (JSON, see 'cxledger rules list'): run as reactors over the log, each starting at the head when first seen (env CXLEDGER_RULES_FILE)")
	automations := fs.String("automations", os.Getenv("CXLEDGER_AUTOMATIONS"), "built-in automations to run, comma-separated, or all: "+strings.Join(builtinNames, ", ")+" (env CXLEDGER_AUTOMATIONS)")
	loyaltyRates := fs.String("loyalty-rates", os.Getenv("CXLEDGER_LOYALTY_RATES"), "loyalty points per purchase, CURRENCY=POINTS/PER_AMOUNT, comma-separated (e.g. EUR=1/1,JPY=1/100); empty: no loyalty reactor (env CXLEDGER_LOYALTY_RATES)")
	loyaltyExpiry := fs.Duration("loyalty-expiry", loyalty.DefaultExpiry, "how long earned points last (0: forever)")
	cpKey := fs.String("checkpoint-key", os.Getenv("CXLEDGER_CHECKPOINT_KEY"), "signer key file ('cxledger checkpoint keygen') with which GET /v1/audit/checkpoint signs (env CXLEDGER_CHECKPOINT_KEY; none: that route answers 503)")
	run := fs.String("run", envOr("CXLEDGER_RUN", "all"), "roles of this process, comma-separated: api, projections, reactors, relay, delivery, or all; several processes on one PostgreSQL schema share the work, one owner each (env CXLEDGER_RUN)")
	leaseTTL := fs.Duration("lease-ttl", 6*time.Second, "with several processes on one PostgreSQL schema: how long a projection, reactor or relay lease lasts unrenewed, the bound on failover after an owner dies")
	var brk broker.ServiceConfig
	registerBrokerFlags(fs, &brk)
	dlv := registerDeliveryFlags(fs)
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("serve takes no arguments")
		}
		tokens, err := loadTokens(*tokensFile, os.Getenv("CXLEDGER_TOKENS"))
		if err != nil {
			return usageErr("%v", err)
		}
		roles, err := process.Parse(*run)
		if err != nil {
			return usageErr("--run: %v", err)
		}
		deliverySettings, err := dlv.settings()
		if err != nil {
			return usageErr("%v", err)
		}
		m := &Main{
			Delivery: deliverySettings,
			Config:   e.cfg, Addr: *addr, Tokens: tokens, InsecureNoAuth: *insecure,
			ShutdownTimeout: *shutdown, MaxBodyBytes: *maxBody, Broker: brk, Log: e.log,
			CheckpointKeyFile: *cpKey, RulesFile: *rulesFile, LeaseTTL: *leaseTTL, Roles: roles,
		}
		if *automations != "" {
			if m.Automations, err = parseAutomations(*automations); err != nil {
				return usageErr("--automations: %v", err)
			}
		}
		if *loyaltyRates != "" {
			rates, err := parseRates(*loyaltyRates)
			if err != nil {
				return usageErr("--loyalty-rates: %v", err)
			}
			m.Loyalty = &loyalty.Config{Rates: rates, Expiry: *loyaltyExpiry}
		}
		if err := m.Run(ctx); err != nil {
			return err
		}
		var serveErr error
		select {
		case <-ctx.Done():
			e.log.Info("shutting down: finishing in-flight requests", "timeout", *shutdown)
		case serveErr = <-m.serveErr:
		}
		return errors.Join(serveErr, m.Close())
	}
}

// loadTokens reads the tokens file (if any) and the CXLEDGER_TOKENS value.
func loadTokens(file, env string) (*httpapi.Tokens, error) {
	t := &httpapi.Tokens{}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--tokens: %w", err)
		}
		if err := httpapi.ParseTokens(data, t); err != nil {
			return nil, fmt.Errorf("--tokens %s: %w", file, err)
		}
	}
	if env != "" {
		if err := httpapi.ParseTokensEnv(env, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Main is the cxledger server wired together: store, read models, the
// projection engine running every catalog read model, the HTTP API and,
// when Broker names one, the message broker (touchpoint ingest and event
// publishing, see broker.ServiceConfig).
// Run starts it and returns once it listens; Close stops it gracefully.
// End-to-end tests run the real thing with Addr "127.0.0.1:0" and a temp
// data directory (wtf's cmd/wtfd Main).
type Main struct {
	// Config selects the store; the read models live beside it.
	Config storeConfig
	// Addr is the listen address; "127.0.0.1:0" picks a free port.
	Addr string
	// Tokens authenticates requests. With none, the server runs without
	// auth on a loopback address (and says so in its log), and refuses a
	// non-loopback address unless InsecureNoAuth is set.
	Tokens         *httpapi.Tokens
	InsecureNoAuth bool
	// ShutdownTimeout bounds Close's wait for in-flight requests.
	ShutdownTimeout time.Duration
	// MaxBodyBytes caps request bodies (0: 1 MiB).
	MaxBodyBytes int64
	// Broker connects the server to a message broker (zero: none).
	Broker broker.ServiceConfig
	// CheckpointKeyFile holds the key the server signs checkpoints with
	// (empty: it serves proofs but signs none).
	CheckpointKeyFile string
	// RulesFile holds automation rules (projections/rules), run as
	// reactors that append through the ledger (empty: none).
	RulesFile string
	// Loyalty runs the loyalty programme's reactors (points per purchase,
	// expiry); nil runs none.
	Loyalty *loyalty.Config
	// Automations names the built-in automations to run (builtinNames),
	// with their default configuration.
	Automations []string
	// Delivery configures outbound delivery of queued messages (webhook,
	// SMTP); with no channel configured, none runs.
	Delivery delivery.Settings
	Log      *slog.Logger
	// Roles says what this process runs (zero: everything, as
	// process.All): a stateless API replica, a worker, or all in one.
	Roles process.Roles
	// LeaseTTL bounds failover when several processes share one
	// PostgreSQL schema: a projection, reactor or relay whose owner died
	// is taken over within about LeaseTTL (0: 6s).
	LeaseTTL time.Duration
	// API tunes the HTTP layer further (tests shorten timeouts); the
	// fields Main owns (store, read models, tokens, keyring) are
	// overwritten.
	API httpapi.Config

	store       eventstore.Store // set when the caller opened it (the CLI)
	ownStore    bool
	keys        *keyring.Keyring
	rm          projections.Backend
	engine      *projections.Engine
	analyst     *analyst.Manager
	anaDone     chan struct{}
	notary      *notary.Notary
	stopEng     context.CancelFunc
	engDone     chan struct{}
	notDone     chan struct{}
	eraseDone   chan struct{}
	reactDone   chan struct{}
	deliverDone chan struct{}
	react       *reactor.Engine // the reactor engine, when reactors run
	broker      *broker.Service
	api         *httpapi.Server
	serveErr    chan error
	serveDone   chan struct{}
}

// Run opens the store and the read models, starts the projection engine
// and the HTTP server, and returns once the server listens. On error
// everything opened is closed again.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.Log == nil {
		m.Log = slog.Default()
	}
	if m.ShutdownTimeout <= 0 {
		m.ShutdownTimeout = 30 * time.Second
	}
	if m.Roles == (process.Roles{}) {
		m.Roles = process.All()
	}
	if m.Tokens == nil {
		m.Tokens = &httpapi.Tokens{}
	}
	authOff, err := m.authDisabled()
	if err != nil {
		return err
	}
	m.Broker.SetDefaults()
	if err := m.Broker.Validate(); err != nil {
		return usageErr("%v", err)
	}
	// A bad rules file or loyalty configuration stops the start before
	// anything is opened.
	if m.Loyalty != nil {
		if err := m.Loyalty.Validate(); err != nil {
			return usageErr("loyalty: %v", err)
		}
	}
	var ruleSet []rules.Rule
	if m.RulesFile != "" {
		data, err := os.ReadFile(m.RulesFile)
		if err != nil {
			return usageErr("--rules: %v", err)
		}
		if ruleSet, err = rules.Parse(data); err != nil {
			return usageErr("--rules %s: %v", m.RulesFile, err)
		}
	}
	var signer note.Signer
	if m.CheckpointKeyFile != "" {
		if signer, err = loadSigner(m.CheckpointKeyFile, m.Log); err != nil {
			return err
		}
	}
	// A start refused for its address (taken, malformed, not ours) must
	// create no data directory: try the address before opening anything.
	// The port may be taken again before the real listen; that start then
	// fails after creating the store, which is rare and harmless.
	if m.Roles.API {
		if err := tryListen(m.Addr); err != nil {
			return err
		}
	}
	defer func() {
		if err != nil {
			_ = m.Close()
		}
	}()
	if m.store == nil {
		if m.store, err = openStore(ctx, m.Config, m.Log); err != nil {
			return err
		}
		m.ownStore = true
	}
	// The keyring: appends seal personal data with it, answers reveal it,
	// the identity index blinds identifiers with it. A wrong master key
	// stops the start here.
	if m.keys, err = openKeyring(ctx, m.Config, m.Log); err != nil {
		return err
	}
	if m.rm, err = openReadModels(ctx, m.Config); err != nil {
		return err
	}
	if m.engine, err = projections.NewEngine(m.store, m.rm, projections.Config{Logger: m.Log, LeaseTTL: m.LeaseTTL, Standby: !m.Roles.Projections}); err != nil {
		return fmt.Errorf("projection engine: %w", err)
	}
	deps, err := catalogDeps(m.keys)
	if err != nil {
		return err
	}
	readModels := catalog.All(deps)
	for _, p := range readModels {
		if err := m.engine.Register(p); err != nil {
			return fmt.Errorf("projection engine: %w", err)
		}
	}
	// Analysts' JavaScript projections: their definitions are shared by
	// every process on the database; the manager keeps this engine in step.
	if m.analyst, err = analyst.New(analyst.Config{Backend: m.rm, Engine: m.engine, Compile: analyst.ScriptCompiler(script.Limits{}),
		LeaseTTL: m.LeaseTTL, Logger: m.Log.With("component", "analyst")}); err != nil {
		return err
	}
	// The engine outlives ctx until Close: a shutdown first drains the
	// HTTP requests, which may be waiting for read models.
	engCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.stopEng, m.engDone = stop, make(chan struct{})
	go func() {
		defer close(m.engDone)
		if m.Roles.Projections {
			defer startAnalyticsFitter(engCtx, m.rm, projections.LeaseConfig{Owner: m.engine.Owner(), TTL: m.LeaseTTL}, m.Log)()
		}
		if err := m.engine.Run(engCtx); err != nil {
			m.Log.Error("projection engine stopped", "error", err)
		}
	}()
	m.anaDone = make(chan struct{})
	go func() {
		defer close(m.anaDone)
		m.analyst.Run(engCtx)
	}()
	// The notary keeps the log's Merkle tree current beside the engine, off
	// the append path; KurrentDB keeps none.
	if hs, ok := m.store.(notary.HashStore); ok {
		m.notary = notary.New(m.store, hs, m.Log.With("component", "notary"))
		m.notDone = make(chan struct{})
		go func() {
			defer close(m.notDone)
			runNotary(engCtx, m.notary, m.Log)
		}()
	} else {
		m.Log.Warn("this store keeps no Merkle tree: the audit proof routes answer 503")
	}
	// A forget interrupted between its CustomerForgotten and the key's
	// destruction leaves the key alive: the eraser finishes every such
	// erasure, at start and as they come.
	if m.keys != nil {
		m.eraseDone = make(chan struct{})
		go func() {
			defer close(m.eraseDone)
			runEraser(engCtx, m.store, m.keys, m.Log)
		}()
	}
	// Automation rules: reactors that append through the write path, so
	// their actions are decided (consent, invariants) and sealed like any.
	if m.Roles.Reactors && (len(ruleSet) > 0 || m.Loyalty != nil || len(m.Automations) > 0) {
		eng, err := m.reactors(ruleSet)
		if err != nil {
			return err
		}
		m.react = eng
		m.reactDone = make(chan struct{})
		go func() {
			defer close(m.reactDone)
			if err := eng.Run(engCtx); err != nil {
				m.Log.Error("reactor engine stopped", "error", err)
			}
		}()
		m.Log.Info("reactors running", "rules_file", m.RulesFile, "rules", len(ruleSet), "loyalty", m.Loyalty != nil, "automations", m.Automations)
	}
	// Outbound delivery of queued messages, one owner across processes.
	if m.Roles.Delivery && m.Delivery.Enabled() {
		if err := m.startDelivery(engCtx); err != nil {
			return err
		}
	}
	// The broker, too, runs until Close, in the background: a broker that
	// is down delays ingest and publishing, never serving or appending.
	bcfg := m.Broker
	if !m.Roles.Relay {
		bcfg.EventsTopic = "" // another process publishes
	}
	if !m.Roles.API {
		bcfg.IngestTopic = "" // ingest appends like the API: an API replica's job
	}
	if m.Broker.Enabled() && (bcfg.EventsTopic != "" || bcfg.IngestTopic != "") {
		bcfg.Keys = m.keys
		if m.broker, err = broker.NewService(bcfg, m.store, m.rm, m.Log); err != nil {
			return err
		}
		m.broker.Start(context.WithoutCancel(ctx))
	}

	if !m.Roles.API {
		m.Log.Info("worker running (no HTTP API)", "roles", m.Roles.String(), "owner", m.engine.Owner(), "read_models", len(readModels))
		return nil
	}
	cfg := m.API
	cfg.Store, cfg.ReadModels, cfg.Projections, cfg.Keyring = m.store, m.rm, m.engine, m.keys
	cfg.Analyst = m.analyst
	cfg.CheckpointSigner = signer
	cfg.Console = console.Handler()
	if m.notary != nil {
		cfg.Notary = m.notary
	}
	cfg.Tokens, cfg.AuthDisabled, cfg.Logger = m.Tokens, authOff, m.Log
	if m.MaxBodyBytes > 0 {
		cfg.MaxBodyBytes = m.MaxBodyBytes
	}
	if m.api, err = httpapi.New(cfg); err != nil {
		return err
	}
	if err := m.api.Listen(m.Addr); err != nil {
		return err
	}
	m.serveErr, m.serveDone = make(chan error, 1), make(chan struct{})
	go func() {
		defer close(m.serveDone)
		if err := m.api.Serve(); err != nil {
			m.serveErr <- err
		}
	}()
	if authOff {
		m.Log.Warn("AUTH DISABLED: no API tokens configured, every request is treated as admin; set --tokens FILE or CXLEDGER_TOKENS to enable auth", "addr", m.api.Addr())
	}
	m.Log.Info("serving the cxledger API", "url", m.URL(), "tokens", m.Tokens.Len(), "read_models", len(readModels), "broker", m.Broker.Kind,
		"roles", m.Roles.String(), "owner", m.engine.Owner())
	return nil
}

// authDisabled decides whether the server runs without auth: only when no
// tokens are configured, and then only on a loopback address unless the
// operator insisted with InsecureNoAuth. Serving a network with every
// request as admin must never happen by forgetting a flag.
func (m *Main) authDisabled() (bool, error) {
	if m.Tokens.Len() > 0 {
		if m.InsecureNoAuth {
			return false, usageErr("--insecure-no-auth contradicts the configured tokens")
		}
		return false, nil
	}
	if m.InsecureNoAuth || isLoopback(m.Addr) {
		return true, nil
	}
	return false, usageErr("no API tokens configured: refusing to serve %s without auth; set --tokens FILE or CXLEDGER_TOKENS=role:token, listen on 127.0.0.1, or pass --insecure-no-auth", m.Addr)
}

// isLoopback reports whether addr listens only on the loopback interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL returns the server's base URL, after Run.
func (m *Main) URL() string {
	if m.api == nil {
		return ""
	}
	return "http://" + m.api.Addr()
}

// Close shuts down gracefully: no new connections, live feeds ended,
// in-flight requests (appends included) finished within ShutdownTimeout;
// then the broker's router closes (in-flight messages finished) and the
// relay returns, the engine stops, and the read models and store close.
// It is safe to call after a failed Run.
func (m *Main) Close() error {
	var errs []error
	if m.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownTimeout)
		errs = append(errs, m.api.Shutdown(ctx))
		cancel()
		if m.serveDone != nil {
			<-m.serveDone
		}
		m.api = nil
	}
	if m.broker != nil {
		errs = append(errs, m.broker.Close())
		m.broker = nil
	}
	if m.stopEng != nil {
		m.stopEng()
		<-m.engDone
		if m.anaDone != nil {
			<-m.anaDone
		}
		if m.notDone != nil {
			<-m.notDone
		}
		if m.eraseDone != nil {
			<-m.eraseDone
		}
		if m.reactDone != nil {
			<-m.reactDone
		}
		if m.deliverDone != nil {
			<-m.deliverDone
		}
		m.stopEng = nil
	}
	if m.rm != nil {
		errs = append(errs, m.rm.Close())
		m.rm = nil
	}
	if m.keys != nil {
		errs = append(errs, m.keys.Close())
		m.keys = nil
	}
	if m.store != nil && m.ownStore {
		errs = append(errs, m.store.Close())
	}
	m.store = nil
	return errors.Join(errs...)
}

// register adds the broker flags, each defaulting to its environment
// variable.
func registerBrokerFlags(fs *pflag.FlagSet, c *broker.ServiceConfig) {
	fs.StringVar(&c.Kind, "broker", envOr("CXLEDGER_BROKER", broker.KindNone), "message broker for touchpoint ingest and event publishing: none, nats (JetStream) or amqp (RabbitMQ) (env CXLEDGER_BROKER)")
	fs.StringVar(&c.URL, "broker-url", os.Getenv("CXLEDGER_BROKER_URL"), "broker URL; default "+broker.DefaultNATSURL+" or "+broker.DefaultAMQPURL+" (env CXLEDGER_BROKER_URL)")
	fs.StringVar(&c.IngestTopic, "ingest-topic", envOrSet("CXLEDGER_INGEST_TOPIC", broker.DefaultIngestTopic), "topic touchpoint messages are consumed from; empty disables ingest (env CXLEDGER_INGEST_TOPIC)")
	fs.StringVar(&c.PoisonTopic, "poison-topic", envOrSet("CXLEDGER_POISON_TOPIC", broker.DefaultPoisonTopic), "topic receiving touchpoints that cannot be ingested, with the reason in metadata reason_poisoned (env CXLEDGER_POISON_TOPIC)")
	fs.StringVar(&c.EventsTopic, "events-topic", envOrSet("CXLEDGER_EVENTS_TOPIC", broker.DefaultEventsTopic), "topic every appended event is published to; empty disables publishing (env CXLEDGER_EVENTS_TOPIC)")
}

// tryListen listens on addr and closes again at once: the serve command
// checks its address before it creates anything.
func tryListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", addr, err)
	}
	return ln.Close()
}

// envOrSet is envOr for settings that an empty value turns off: a variable
// set to "" wins over the default.
func envOrSet(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// runNotary follows the log with the notary until ctx is done, restarting
// it after a failure with a growing pause. A tampered log is logged as an
// error every time: the tree refuses to grow over it, and serving goes on.
func runNotary(ctx context.Context, n *notary.Notary, log *slog.Logger) {
	pause := time.Second
	for {
		err := n.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, notary.ErrTampered) {
			log.Error("notary: THE LOG DOES NOT MATCH ITS MERKLE TREE; run cxledger verify", "error", err)
		} else {
			log.Warn("notary stopped; restarting", "error", err, "in", pause)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// runEraser destroys the key of every customer with a CustomerForgotten in
// the log whose key is still alive — an erasure a crash or a key-store
// failure interrupted — from the start of the log, then live, until ctx is
// done. Destroying is idempotent, so it retries a failure after a pause.
func runEraser(ctx context.Context, store eventstore.Store, keys *keyring.Keyring, log *slog.Logger) {
	for {
		err := store.Subscribe(ctx, eventstore.SubscribeOptions{Filter: eventstore.Filter{Types: []string{domain.TypeCustomerForgotten}}},
			func(ctx context.Context, batch []eventstore.Record) error {
				for _, r := range batch {
					id, err := domain.ParseStreamID(r.Stream)
					if err != nil {
						continue
					}
					gone, err := keys.Forgotten(ctx, id)
					if err != nil {
						return err
					}
					if !gone {
						if err := keys.Forget(ctx, id); err != nil {
							return err
						}
						log.Warn("finished an interrupted erasure: destroyed the key of a forgotten customer", "customer", id, "position", r.Position)
					}
				}
				return nil
			})
		if ctx.Err() != nil {
			return
		}
		log.Warn("eraser stopped; restarting", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// reactors returns the reactor engine running the rules.
func (m *Main) reactors(rs []rules.Rule) (*reactor.Engine, error) {
	l := ledger.New(m.store)
	l.Keys = m.keys
	eng := reactor.New(m.store, m.rm, ledger.ReactorAppender{Service: l}, reactor.Config{Logger: m.Log.With("component", "reactor"), StartAtHead: true,
		Leases: m.rm, Lease: projections.LeaseConfig{Owner: m.engine.Owner(), TTL: m.LeaseTTL}})
	for _, r := range rs {
		if err := eng.Register(rules.Reactor(r, m.Log)); err != nil {
			return nil, usageErr("--rules %s: %v", m.RulesFile, err)
		}
	}
	for _, name := range m.Automations {
		r, err := m.builtin(name, l)
		if err != nil {
			return nil, usageErr("--automations: %v", err)
		}
		if err := eng.Register(r); err != nil {
			return nil, err
		}
	}
	if m.Loyalty != nil {
		lr, err := loyalty.New(*m.Loyalty, l)
		if err != nil {
			return nil, usageErr("loyalty: %v", err)
		}
		if err := eng.Register(lr); err != nil {
			return nil, err
		}
	}
	return eng, nil
}

// parseRates reads CURRENCY=POINTS/PER,… (e.g. EUR=1/1,JPY=1/100).
func parseRates(s string) (map[string]loyalty.Rate, error) {
	rates := map[string]loyalty.Rate{}
	for part := range strings.SplitSeq(s, ",") {
		cur, rate, ok := strings.Cut(strings.TrimSpace(part), "=")
		points, per, ok2 := strings.Cut(rate, "/")
		n, err := strconv.ParseInt(points, 10, 64)
		if !ok || !ok2 || err != nil {
			return nil, fmt.Errorf("%q: want CURRENCY=POINTS/PER_AMOUNT, e.g. EUR=1/1", part)
		}
		rates[strings.ToUpper(cur)] = loyalty.Rate{Points: n, Per: per}
	}
	return rates, nil
}

// builtinNames are the built-in automations (projections/engage).
var builtinNames = []string{"sla_escalation", "purchase_follow_up", "thank_you_won", "birthday_greeting", "at_risk_retention"}

// parseAutomations reads a comma-separated list of builtinNames, or "all".
func parseAutomations(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return slices.Clone(builtinNames), nil
	}
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(builtinNames, name) {
			return nil, fmt.Errorf("unknown automation %q (want %s, or all)", name, strings.Join(builtinNames, ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// builtin returns a built-in automation with its default configuration.
func (m *Main) builtin(name string, l *ledger.Service) (reactor.Reactor, error) {
	switch name {
	case "sla_escalation":
		// The deadline follows the ticket's clock in its aggregate.
		return engage.NewSLAEscalation(engage.SLAConfig{Clocks: l})
	case "purchase_follow_up":
		return engage.NewPurchaseFollowUp(engage.FollowUpConfig{})
	case "thank_you_won":
		return engage.NewThankYouWon(engage.ThankYouConfig{})
	case "birthday_greeting":
		// The birthday is sealed personal data: the reactor reveals it in
		// memory to schedule the greeting (an erased one cancels it).
		var keys engage.Revealer
		if m.keys != nil {
			keys = m.keys
		}
		return engage.NewBirthdayGreeting(engage.BirthdayConfig{}, keys)
	case "at_risk_retention":
		return engage.NewAtRiskRetention(engage.AtRiskConfig{}, query.New(m.rm))
	}
	return nil, fmt.Errorf("unknown automation %q", name)
}
