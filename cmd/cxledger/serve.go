package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/cxledger/cxledger/adapters/broker"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
)

func init() {
	register(command{"serve", "serve the HTTP API (JSON under /v1), running every read model live and the broker (--broker)", serveCommand})
}

const defaultAddr = "127.0.0.1:8080"

func serveCommand(fs *flag.FlagSet) func(context.Context, *env) error {
	addr := fs.String("addr", envOr("CXLEDGER_ADDR", defaultAddr), "listen address (env CXLEDGER_ADDR)")
	tokensFile := fs.String("tokens", os.Getenv("CXLEDGER_TOKENS_FILE"), "API tokens file: JSON or lines \"role token\" (env CXLEDGER_TOKENS_FILE; CXLEDGER_TOKENS=role:token,… adds more)")
	insecure := fs.Bool("insecure-no-auth", false, "serve without authentication on a non-loopback address (every request is admin)")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long a shutdown waits for in-flight requests")
	maxBody := fs.Int64("max-body", 1<<20, "largest request body in bytes (413 beyond)")
	var brk BrokerConfig
	brk.register(fs)
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("serve takes no arguments")
		}
		tokens, err := loadTokens(*tokensFile, os.Getenv("CXLEDGER_TOKENS"))
		if err != nil {
			return usageErr("%v", err)
		}
		m := &Main{
			Config: e.cfg, Addr: *addr, Tokens: tokens, InsecureNoAuth: *insecure,
			ShutdownTimeout: *shutdown, MaxBodyBytes: *maxBody, Broker: brk, Log: e.log, store: e.store,
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
// publishing, see BrokerConfig).
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
	Broker BrokerConfig
	Log    *slog.Logger
	// API tunes the HTTP layer further (tests shorten timeouts); the
	// fields Main owns (store, read models, tokens) are overwritten.
	API httpapi.Config

	store     eventstore.Store // set when the caller opened it (the CLI)
	ownStore  bool
	rm        projections.Backend
	engine    *projections.Engine
	stopEng   context.CancelFunc
	engDone   chan struct{}
	broker    *brokerRun
	api       *httpapi.Server
	serveErr  chan error
	serveDone chan struct{}
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
	if m.Tokens == nil {
		m.Tokens = &httpapi.Tokens{}
	}
	authOff, err := m.authDisabled()
	if err != nil {
		return err
	}
	m.Broker.setDefaults()
	if err := m.Broker.Validate(); err != nil {
		return usageErr("%v", err)
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
	if m.rm, err = openReadModels(ctx, m.Config); err != nil {
		return err
	}
	if m.engine, err = projections.NewEngine(m.store, m.rm, projections.Config{Logger: m.Log}); err != nil {
		return fmt.Errorf("projection engine: %w", err)
	}
	for _, p := range catalog.All() {
		if err := m.engine.Register(p); err != nil {
			return fmt.Errorf("projection engine: %w", err)
		}
	}
	// The engine outlives ctx until Close: a shutdown first drains the
	// HTTP requests, which may be waiting for read models.
	engCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.stopEng, m.engDone = stop, make(chan struct{})
	go func() {
		defer close(m.engDone)
		if err := m.engine.Run(engCtx); err != nil {
			m.Log.Error("projection engine stopped", "error", err)
		}
	}()
	// The broker, too, runs until Close, in the background: a broker that
	// is down delays ingest and publishing, never serving or appending.
	if m.Broker.enabled() {
		if m.broker, err = newBrokerRun(m.Broker, m.store, m.rm, m.Log); err != nil {
			return err
		}
		m.broker.start(context.WithoutCancel(ctx))
	}

	cfg := m.API
	cfg.Store, cfg.ReadModels, cfg.Projections = m.store, m.rm, m.engine
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
	m.Log.Info("serving the cxledger API", "url", m.URL(), "tokens", m.Tokens.Len(), "read_models", len(catalog.All()), "broker", m.Broker.Kind)
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
		errs = append(errs, m.broker.close())
		m.broker = nil
	}
	if m.stopEng != nil {
		m.stopEng()
		<-m.engDone
		m.stopEng = nil
	}
	if m.rm != nil {
		errs = append(errs, m.rm.Close())
		m.rm = nil
	}
	if m.store != nil && m.ownStore {
		errs = append(errs, m.store.Close())
	}
	m.store = nil
	return errors.Join(errs...)
}

// Broker kinds, defaults and fixed names of the serve command's broker
// wiring.
const (
	brokerNone = "none"
	brokerNATS = "nats"
	brokerAMQP = "amqp"

	defaultNATSURL     = "nats://127.0.0.1:4222"
	defaultAMQPURL     = "amqp://guest:guest@127.0.0.1:5672/"
	defaultIngestTopic = "cxledger.touchpoints"
	defaultPoisonTopic = "cxledger.touchpoints.poison"
	defaultEventsTopic = "cxledger.events"

	// relayNamespace is the read-model namespace holding the relay's
	// checkpoint, beside the read models.
	relayNamespace = "broker_relay"
	// natsConsumer names the durable JetStream consumer of the ingest
	// topic and its queue group: a restarted server resumes after the last
	// acknowledged message, and several servers share the messages.
	natsConsumer = "cxledger_ingest"
	// ingestAckWait is how long the broker waits for an ingested message's
	// acknowledgement before redelivering it: far above the handler's
	// in-place retries (about 3 s with broker.RouteConfig's defaults).
	ingestAckWait = 60 * time.Second
	// ingestNakDelay spaces the redeliveries of a message whose in-place
	// retries all failed (the store down), so that it does not spin.
	ingestNakDelay = 5 * time.Second
	// brokerCloseTimeout bounds the wait for in-flight messages when the
	// router closes.
	brokerCloseTimeout = 15 * time.Second
)

// BrokerConfig connects serve to a message broker through adapters/broker:
// touchpoint messages consumed from IngestTopic are appended (invalid ones
// go to PoisonTopic with the reason), and every event in the log is
// published to EventsTopic, at least once and in log order, from a
// checkpoint kept beside the read models.
//
// A broker that cannot be reached does not stop the server: it serves the
// API and appends as usual, logs a warning and retries the broker in the
// background with backoff; publishing then starts from the checkpoint, so
// nothing appended meanwhile is lost. Only a malformed configuration is
// refused at start.
type BrokerConfig struct {
	// Kind is "none" (or empty), "nats" (NATS JetStream) or "amqp"
	// (RabbitMQ).
	Kind string
	// URL is the broker's address; empty means the local default of Kind
	// (nats://127.0.0.1:4222, amqp://guest:guest@127.0.0.1:5672/). NATS
	// takes a comma-separated list of servers. Its credentials are never
	// logged.
	URL string
	// IngestTopic is the topic touchpoints are consumed from; empty
	// disables ingest.
	IngestTopic string
	// PoisonTopic receives touchpoints that can never be ingested.
	// Required with IngestTopic.
	PoisonTopic string
	// EventsTopic is the topic every event is published to; empty
	// disables publishing.
	EventsTopic string
	// MinRetry and MaxRetry bound the backoff between attempts to reach
	// the broker (defaults 1s and 30s).
	MinRetry, MaxRetry time.Duration
}

// register adds the broker flags, each defaulting to its environment
// variable.
func (c *BrokerConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Kind, "broker", envOr("CXLEDGER_BROKER", brokerNone), "message broker for touchpoint ingest and event publishing: none, nats (JetStream) or amqp (RabbitMQ) (env CXLEDGER_BROKER)")
	fs.StringVar(&c.URL, "broker-url", os.Getenv("CXLEDGER_BROKER_URL"), "broker URL; default "+defaultNATSURL+" or "+defaultAMQPURL+" (env CXLEDGER_BROKER_URL)")
	fs.StringVar(&c.IngestTopic, "ingest-topic", envOrSet("CXLEDGER_INGEST_TOPIC", defaultIngestTopic), "topic touchpoint messages are consumed from; empty disables ingest (env CXLEDGER_INGEST_TOPIC)")
	fs.StringVar(&c.PoisonTopic, "poison-topic", envOrSet("CXLEDGER_POISON_TOPIC", defaultPoisonTopic), "topic receiving touchpoints that cannot be ingested, with the reason in metadata reason_poisoned (env CXLEDGER_POISON_TOPIC)")
	fs.StringVar(&c.EventsTopic, "events-topic", envOrSet("CXLEDGER_EVENTS_TOPIC", defaultEventsTopic), "topic every appended event is published to; empty disables publishing (env CXLEDGER_EVENTS_TOPIC)")
}

// envOrSet is envOr for settings that an empty value turns off: a variable
// set to "" wins over the default.
func envOrSet(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func (c *BrokerConfig) setDefaults() {
	c.Kind = strings.ToLower(strings.TrimSpace(c.Kind))
	if c.Kind == "" {
		c.Kind = brokerNone
	}
	if c.URL == "" {
		switch c.Kind {
		case brokerNATS:
			c.URL = defaultNATSURL
		case brokerAMQP:
			c.URL = defaultAMQPURL
		}
	}
	if c.MinRetry <= 0 {
		c.MinRetry = time.Second
	}
	if c.MaxRetry < c.MinRetry {
		c.MaxRetry = max(30*time.Second, c.MinRetry)
	}
}

// enabled reports whether a broker is configured.
func (c BrokerConfig) enabled() bool { return c.Kind != brokerNone && c.Kind != "" }

// Validate reports a configuration the server must refuse: an unknown
// kind, a malformed URL (without echoing it), a topic the broker cannot
// carry, or topics that would feed the ledger its own events.
func (c BrokerConfig) Validate() error {
	kind := strings.ToLower(strings.TrimSpace(c.Kind))
	if kind == "" || kind == brokerNone {
		return nil
	}
	if kind != brokerNATS && kind != brokerAMQP {
		return fmt.Errorf("--broker: unknown broker %q: use none, nats or amqp", c.Kind)
	}
	if err := c.validateURL(kind); err != nil {
		return err
	}
	var errs []error
	switch {
	case c.IngestTopic == "" && c.EventsTopic == "":
		errs = append(errs, errors.New("--broker: both --ingest-topic and --events-topic are empty: nothing to do (use --broker none)"))
	case c.IngestTopic != "" && c.PoisonTopic == "":
		errs = append(errs, errors.New("--poison-topic: required with --ingest-topic (a message that can never be ingested must go somewhere)"))
	case c.IngestTopic != "" && c.PoisonTopic == c.IngestTopic:
		errs = append(errs, errors.New("--poison-topic: must differ from --ingest-topic"))
	case c.IngestTopic != "" && c.EventsTopic == c.IngestTopic:
		errs = append(errs, errors.New("--events-topic: must differ from --ingest-topic (the ledger would consume its own events)"))
	}
	for _, t := range []struct{ flag, topic string }{{"ingest-topic", c.IngestTopic}, {"poison-topic", c.PoisonTopic}, {"events-topic", c.EventsTopic}} {
		if err := validTopic(kind, t.topic); err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: %w", t.flag, t.topic, err))
		}
	}
	return errors.Join(errs...)
}

func (c BrokerConfig) validateURL(kind string) error {
	schemes := map[string][]string{brokerNATS: {"nats", "tls", "ws", "wss"}, brokerAMQP: {"amqp", "amqps"}}[kind]
	parts := []string{c.URL}
	if kind == brokerNATS {
		parts = strings.Split(c.URL, ",")
	}
	for _, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("--broker-url: not a valid URL: %s", redact(err))
		}
		if !slices.Contains(schemes, u.Scheme) || u.Host == "" {
			return fmt.Errorf("--broker-url: %s needs %s://host:port, got %s", kind, schemes[0], redactURL(p))
		}
	}
	return nil
}

// validTopic checks what the broker would refuse later, in the background:
// a NATS subject has no spaces, wildcards or empty tokens.
func validTopic(kind, topic string) error {
	if topic == "" {
		return nil
	}
	if strings.ContainsFunc(topic, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("contains spaces or control characters")
	}
	if kind == brokerNATS {
		if strings.ContainsAny(topic, "*>") {
			return errors.New("a NATS subject cannot contain the wildcards * and >")
		}
		if slices.Contains(strings.Split(topic, "."), "") {
			return errors.New("a NATS subject cannot have empty tokens (leading, trailing or double dots)")
		}
	}
	return nil
}

// redactedURL is URL fit for logs.
func (c BrokerConfig) redactedURL() string {
	parts := strings.Split(c.URL, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// redactURL hides the credentials in u: a password, or a user name
// standing alone (NATS reads it as a token).
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(malformed URL)"
	}
	if p.User == nil {
		return u
	}
	if _, ok := p.User.Password(); ok {
		p.User = url.UserPassword(p.User.Username(), "xxxxx")
	} else {
		p.User = url.User("xxxxx")
	}
	return p.String()
}

// scrub returns err's message with every credential of the URL replaced,
// for errors of client libraries that might quote it.
func (c BrokerConfig) scrub(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, p := range strings.Split(c.URL, ",") {
		u, perr := url.Parse(strings.TrimSpace(p))
		if perr != nil || u.User == nil {
			continue
		}
		secret, ok := u.User.Password()
		if !ok {
			secret = u.User.Username()
		}
		if secret == "" {
			continue
		}
		// As given, and in the escaped forms a library might print.
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), strings.TrimPrefix(url.UserPassword("", secret).String(), ":")} {
			msg = strings.ReplaceAll(msg, form, "xxxxx")
		}
	}
	return msg
}

// brokerRun is the broker side of a running server: a background loop that
// connects (retrying while the broker is unreachable), then runs the relay
// and the ingest router until close.
type brokerRun struct {
	cfg    BrokerConfig
	log    *slog.Logger
	wlog   watermill.LoggerAdapter
	store  eventstore.Store
	rm     projections.Backend
	ingest *broker.Ingest

	stop context.CancelFunc
	done chan struct{}

	mu     sync.Mutex
	closed bool
	router *message.Router // the running ingest router, if any
}

func newBrokerRun(cfg BrokerConfig, store eventstore.Store, rm projections.Backend, log *slog.Logger) (*brokerRun, error) {
	log = log.With("broker", cfg.Kind)
	b := &brokerRun{
		cfg: cfg, log: log, store: store, rm: rm,
		// Watermill's routine messages (handler started, subscriber
		// closed) are debug lines here; its warnings and errors stay.
		wlog: watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}),
	}
	if cfg.IngestTopic != "" {
		in, err := broker.NewIngest(broker.Config{Store: store, Lookup: query.New(rm), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("broker ingest: %w", err)
		}
		b.ingest = in
	}
	return b, nil
}

// start runs the broker loop until close.
func (b *brokerRun) start(ctx context.Context) {
	ctx, b.stop = context.WithCancel(ctx)
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		b.run(ctx)
	}()
}

// close stops the broker side gracefully: the ingest router closes (its
// in-flight messages finish, within brokerCloseTimeout), then the relay
// returns and the connections close.
func (b *brokerRun) close() error {
	b.mu.Lock()
	b.closed = true
	r := b.router
	b.mu.Unlock()
	var err error
	if r != nil {
		if err = r.Close(); err != nil {
			err = fmt.Errorf("broker: close ingest router: %w", err)
		}
	}
	b.stop()
	// A connection attempt cannot be interrupted (a dial may take up to
	// its own timeout); nothing else is running then, so it is left to
	// finish and give up by itself.
	select {
	case <-b.done:
	case <-time.After(brokerCloseTimeout):
		err = errors.Join(err, errors.New("broker: still busy at shutdown; abandoned"))
	}
	return err
}

// brokerConn is a connection to the broker: one publisher for the relay
// and the poison queue, and fresh subscribers for the ingest router.
type brokerConn struct {
	// pub publishes events and poisoned touchpoints; once connected it
	// reconnects by itself.
	pub message.Publisher
	// newSubscriber opens a subscriber for one run of the ingest router,
	// which closes it when it stops.
	newSubscriber func() (message.Subscriber, error)
}

// run connects, retrying with backoff until the broker answers, then runs
// the relay and the ingest until ctx is done.
func (b *brokerRun) run(ctx context.Context) {
	var conn *brokerConn
	for attempt := 1; ; attempt++ {
		c, err := b.connect()
		if ctx.Err() != nil {
			if c != nil {
				_ = c.pub.Close()
			}
			return
		}
		if err == nil {
			conn = c
			break
		}
		wait := b.backoff(attempt)
		b.log.Warn("broker unreachable: serving and appending without it, retrying in the background; ingest and publishing start when it answers",
			"url", b.cfg.redactedURL(), "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "error", b.cfg.scrub(err))
		if !sleepCtx(ctx, wait) {
			return
		}
	}
	defer func() { _ = conn.pub.Close() }()
	b.log.Info("broker connected", "url", b.cfg.redactedURL(),
		"ingest_topic", b.cfg.IngestTopic, "poison_topic", b.cfg.PoisonTopic, "events_topic", b.cfg.EventsTopic)

	var wg sync.WaitGroup
	if b.cfg.EventsTopic != "" {
		wg.Go(func() { b.runRelay(ctx, conn) })
	}
	if b.ingest != nil {
		wg.Go(func() { b.runIngest(ctx, conn) })
	}
	wg.Wait()
}

// runRelay publishes the log to EventsTopic until ctx is done. The relay
// retries a failed publish itself, from the checkpoint.
func (b *brokerRun) runRelay(ctx context.Context, conn *brokerConn) {
	relay, err := broker.NewRelay(broker.RelayConfig{
		Log:        b.store,
		Checkpoint: broker.BackendCheckpoint{Backend: b.rm, Namespace: relayNamespace},
		Publisher:  conn.pub,
		Topic:      broker.FixedTopic(b.cfg.EventsTopic),
		Logger:     b.log,
	})
	if err != nil {
		b.log.Error("broker: relay not started", "error", err)
		return
	}
	if err := relay.Run(ctx); err != nil {
		b.log.Error("broker: relay stopped", "error", err)
	}
}

// runIngest runs the ingest router until close, starting a new one (after
// a backoff) whenever it stops on its own, e.g. when subscribing failed.
func (b *brokerRun) runIngest(ctx context.Context, conn *brokerConn) {
	for attempt := 1; ; attempt++ {
		started := time.Now()
		err := b.route(ctx, conn)
		if ctx.Err() != nil || b.isClosed() {
			return
		}
		if time.Since(started) > b.cfg.MaxRetry {
			attempt = 1
		}
		wait := b.backoff(attempt)
		b.log.Warn("broker: ingest stopped; subscribing again", "topic", b.cfg.IngestTopic, "retry_in", wait.Round(time.Millisecond), "error", b.cfg.scrub(err))
		if !sleepCtx(ctx, wait) {
			return
		}
	}
}

// route runs one ingest router until it stops.
func (b *brokerRun) route(ctx context.Context, conn *brokerConn) error {
	sub, err := conn.newSubscriber()
	if err != nil {
		return err
	}
	defer func() { _ = sub.Close() }()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: brokerCloseTimeout}, b.wlog)
	if err != nil {
		return err
	}
	_, err = b.ingest.AddHandler(router, broker.RouteConfig{
		Topic: b.cfg.IngestTopic, Subscriber: sub,
		PoisonPublisher: conn.pub, PoisonTopic: b.cfg.PoisonTopic,
		Logger: b.log,
	})
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.router = router
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.router = nil
		b.mu.Unlock()
	}()
	if err := router.Run(ctx); err != nil {
		return err
	}
	return errors.New("the ingest router stopped")
}

func (b *brokerRun) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// backoff is exponential from MinRetry, capped at MaxRetry, with ±20%
// jitter.
func (b *brokerRun) backoff(attempt int) time.Duration {
	d := b.cfg.MinRetry
	for i := 1; i < attempt && d < b.cfg.MaxRetry; i++ {
		d *= 2
	}
	d = min(d, b.cfg.MaxRetry)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// connect reaches the broker and provisions the topics.
func (b *brokerRun) connect() (*brokerConn, error) {
	if b.cfg.Kind == brokerAMQP {
		return b.connectAMQP()
	}
	return b.connectNATS()
}

// natsOptions are the connection options of every NATS connection: once
// connected, a connection reconnects forever (publishing and consuming
// resume by themselves), and says so in the log.
func (b *brokerRun) natsOptions(role string) []nats.Option {
	return []nats.Option{
		nats.Name("cxledger " + role),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("broker: NATS connection lost; reconnecting", "role", role, "error", b.cfg.scrub(err))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { b.log.Info("broker: NATS reconnected", "role", role) }),
	}
}

// connectNATS provisions a JetStream stream for every topic and opens the
// publisher. Streams are looked up by subject, so that streams an operator
// created (with retention of their choosing) are used as they are;
// missing ones are created with file storage, named after the topic with
// dots replaced (JetStream stream names cannot contain dots, which is why
// watermill's AutoProvision, naming the stream after the topic, is off).
func (b *brokerRun) connectNATS() (*brokerConn, error) {
	nc, err := nats.Connect(b.cfg.URL, nats.Name("cxledger provisioning"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	js, err := nc.JetStream()
	if err == nil {
		for _, topic := range []string{b.cfg.IngestTopic, b.cfg.PoisonTopic, b.cfg.EventsTopic} {
			if topic == "" || (topic == b.cfg.PoisonTopic && b.cfg.IngestTopic == "") {
				continue
			}
			if _, err = ensureNATSStream(js, topic); err != nil {
				break
			}
		}
	}
	if err == nil && b.cfg.IngestTopic != "" {
		err = ensureNATSConsumer(js, b.cfg.IngestTopic)
	}
	nc.Close()
	if err != nil {
		return nil, err
	}
	pub, err := wnats.NewPublisher(wnats.PublisherConfig{
		URL:         b.cfg.URL,
		NatsOptions: b.natsOptions("publisher"),
		// The broker drops a message whose uuid it stored a moment ago: a
		// relay republishing after a crash sends fewer duplicates.
		JetStream: wnats.JetStreamConfig{TrackMsgId: true},
	}, b.wlog)
	if err != nil {
		return nil, err
	}
	newSub := func() (message.Subscriber, error) {
		return wnats.NewSubscriber(wnats.SubscriberConfig{
			URL:         b.cfg.URL,
			NatsOptions: b.natsOptions("ingest"),
			// A durable consumer in a queue group: resumes after a restart,
			// shared by several servers.
			QueueGroupPrefix: natsConsumer,
			AckWaitTimeout:   ingestAckWait,
			CloseTimeout:     brokerCloseTimeout,
			SubscribeTimeout: 10 * time.Second,
			NakDelay:         wnats.NewStaticDelay(ingestNakDelay),
			JetStream: wnats.JetStreamConfig{
				DurablePrefix: natsConsumer,
				SubscribeOptions: []nats.SubOpt{
					nats.DeliverAll(), nats.AckExplicit(), nats.AckWait(ingestAckWait),
				},
			},
		}, b.wlog)
	}
	return &brokerConn{pub: pub, newSubscriber: newSub}, nil
}

// natsStreamName is the name of the stream created for topic.
func natsStreamName(topic string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, topic)
}

// ensureNATSStream makes sure a stream captures topic, and returns its
// name.
func ensureNATSStream(js nats.JetStreamContext, topic string) (string, error) {
	name, err := js.StreamNameBySubject(topic)
	if err == nil {
		return name, nil
	}
	if !errors.Is(err, nats.ErrNoMatchingStream) {
		return "", fmt.Errorf("look up the stream of %s: %w", topic, err)
	}
	name = natsStreamName(topic)
	_, err = js.AddStream(&nats.StreamConfig{Name: name, Subjects: []string{topic}, Storage: nats.FileStorage})
	if err != nil && !errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
		return "", fmt.Errorf("create stream %s for %s: %w", name, topic, err)
	}
	return name, nil
}

// ensureNATSConsumer makes sure the durable ingest consumer of topic
// exists. It must not be left to the subscription: nats.go deletes a
// consumer it created itself when the subscription ends, so that a
// restarted server would consume the whole stream again instead of
// resuming after the last acknowledged message.
func ensureNATSConsumer(js nats.JetStreamContext, topic string) error {
	stream, err := js.StreamNameBySubject(topic)
	if err != nil {
		return fmt.Errorf("look up the stream of %s: %w", topic, err)
	}
	_, err = js.ConsumerInfo(stream, natsConsumer)
	if err == nil {
		return nil
	}
	if !errors.Is(err, nats.ErrConsumerNotFound) {
		return fmt.Errorf("look up consumer %s of %s: %w", natsConsumer, stream, err)
	}
	_, err = js.AddConsumer(stream, &nats.ConsumerConfig{
		Durable:        natsConsumer,
		DeliverSubject: nats.NewInbox(),
		DeliverGroup:   natsConsumer,
		DeliverPolicy:  nats.DeliverAllPolicy,
		AckPolicy:      nats.AckExplicitPolicy,
		AckWait:        ingestAckWait,
		FilterSubject:  topic,
	})
	var apiErr *nats.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == nats.JSErrCodeConsumerAlreadyExists || apiErr.ErrorCode == nats.JSErrCodeConsumerNameExists) {
		err = nil // another server created it meanwhile
	}
	if err != nil {
		return fmt.Errorf("create consumer %s of %s: %w", natsConsumer, stream, err)
	}
	return nil
}

// amqpTestQueues, set only by tests, adjusts the queues they declare on a
// shared server (an expiry, so that test runs leave none behind).
var amqpTestQueues func(*wamqp.Config)

// connectAMQP opens a publisher that waits for the broker's confirmation
// of every message and declares the durable queues of the topics
// (watermill's durable-queue layout: the default exchange, one queue per
// topic named after it), so that nothing published lands nowhere.
func (b *brokerRun) connectAMQP() (*brokerConn, error) {
	cfg := wamqp.NewDurableQueueConfig(b.cfg.URL)
	cfg.Publish.ConfirmDelivery = true
	if amqpTestQueues != nil {
		amqpTestQueues(&cfg)
	}
	pub, err := wamqp.NewPublisher(cfg, b.wlog)
	if err != nil {
		return nil, err
	}
	decl, err := wamqp.NewSubscriberWithConnection(cfg, b.wlog, pub.ConnectionWrapper)
	if err == nil {
		for _, topic := range []string{b.cfg.IngestTopic, b.cfg.PoisonTopic, b.cfg.EventsTopic} {
			if topic == "" || (topic == b.cfg.PoisonTopic && b.cfg.IngestTopic == "") {
				continue
			}
			if err = decl.SubscribeInitialize(topic); err != nil {
				break
			}
		}
		_ = decl.Close()
	}
	if err != nil {
		_ = pub.Close()
		return nil, err
	}
	newSub := func() (message.Subscriber, error) { return wamqp.NewSubscriber(cfg, b.wlog) }
	return &brokerConn{pub: pub, newSubscriber: newSub}, nil
}
