package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

// Broker kinds, defaults and fixed names of the serve command's broker
// wiring.
const (
	KindNone = "none"
	KindNATS = "nats"
	KindAMQP = "amqp"

	DefaultNATSURL     = "nats://127.0.0.1:4222"
	DefaultAMQPURL     = "amqp://guest:guest@127.0.0.1:5672/"
	DefaultIngestTopic = "cxledger.touchpoints"
	DefaultPoisonTopic = "cxledger.touchpoints.poison"
	DefaultEventsTopic = "cxledger.events"

	// RelayNamespace is the read-model namespace holding the relay's
	// checkpoint, beside the read models.
	RelayNamespace = "broker_relay"
	// natsConsumer names the durable JetStream consumer of the ingest
	// topic and its queue group: a restarted server resumes after the last
	// acknowledged message, and several servers share the messages.
	natsConsumer = "cxledger_ingest"
	// DefaultAckWait is how long the broker waits for an ingested message's
	// acknowledgement before redelivering it: far above the handler's
	// in-place retries (about 3 s with RouteConfig's defaults).
	DefaultAckWait = 60 * time.Second
	// ingestNakDelay spaces the redeliveries of a message whose in-place
	// retries all failed (the store down), so that it does not spin.
	ingestNakDelay = 5 * time.Second
	// closeTimeout bounds the wait for in-flight messages when the
	// router closes.
	closeTimeout = 15 * time.Second
)

// ServiceConfig connects serve to a message broker through adapters/broker:
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
type ServiceConfig struct {
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
	// AMQPQueueArguments are set on every queue declared on RabbitMQ
	// (e.g. x-queue-type: quorum, or an x-expires for scratch queues).
	AMQPQueueArguments map[string]any
	// AckWait is how long NATS waits for an ingested message's
	// acknowledgement before delivering it again — also to another server
	// when this one stopped with the message in hand (default
	// DefaultAckWait). It must exceed the handler's in-place retries.
	AckWait time.Duration
	// Keys is the ledger's keyring: ingest seals with it, looks
	// identifiers up by their blind index and derives new customers' ids
	// from it (see Config.Keys). Not a flag: the caller wires it; nil
	// means none.
	Keys Keys
}

// SetDefaults fills in the kind (none), the URL of the kind's local default
// and the retry bounds.
func (c *ServiceConfig) SetDefaults() {
	c.Kind = strings.ToLower(strings.TrimSpace(c.Kind))
	if c.Kind == "" {
		c.Kind = KindNone
	}
	if c.URL == "" {
		switch c.Kind {
		case KindNATS:
			c.URL = DefaultNATSURL
		case KindAMQP:
			c.URL = DefaultAMQPURL
		}
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MinRetry <= 0 {
		c.MinRetry = time.Second
	}
	if c.MaxRetry < c.MinRetry {
		c.MaxRetry = max(30*time.Second, c.MinRetry)
	}
}

// enabled reports whether a broker is configured.
func (c ServiceConfig) Enabled() bool { return c.Kind != KindNone && c.Kind != "" }

// Validate reports a configuration the server must refuse: an unknown
// kind, a malformed URL (without echoing it), a topic the broker cannot
// carry, or topics that would feed the ledger its own events.
func (c ServiceConfig) Validate() error {
	kind := strings.ToLower(strings.TrimSpace(c.Kind))
	if kind == "" || kind == KindNone {
		return nil
	}
	if kind != KindNATS && kind != KindAMQP {
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

func (c ServiceConfig) validateURL(kind string) error {
	schemes := map[string][]string{KindNATS: {"nats", "tls", "ws", "wss"}, KindAMQP: {"amqp", "amqps"}}[kind]
	parts := []string{c.URL}
	if kind == KindNATS {
		parts = strings.Split(c.URL, ",")
	}
	for _, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("--broker-url: not a valid URL: %s", redactParseError(err))
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
	if kind == KindNATS {
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
func (c ServiceConfig) redactedURL() string {
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
func (c ServiceConfig) scrub(err error) string {
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

// Service is the broker side of a running server: a background loop that
// connects (retrying while the broker is unreachable), then runs the relay
// and the ingest router until close.
type Service struct {
	cfg    ServiceConfig
	log    *slog.Logger
	wlog   watermill.LoggerAdapter
	store  eventstore.Store
	rm     projections.Backend
	ingest *Ingest

	stop context.CancelFunc
	done chan struct{}

	mu     sync.Mutex
	closed bool
	router *message.Router // the running ingest router, if any
}

func NewService(cfg ServiceConfig, store eventstore.Store, rm projections.Backend, log *slog.Logger) (*Service, error) {
	log = log.With("broker", cfg.Kind)
	b := &Service{
		cfg: cfg, log: log, store: store, rm: rm,
		// Watermill's routine messages (handler started, subscriber
		// closed) are debug lines here; its warnings and errors stay.
		wlog: watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}),
	}
	if cfg.IngestTopic != "" {
		q := query.New(rm)
		if cfg.Keys != nil {
			q.Keys = cfg.Keys
		}
		in, err := NewIngest(Config{Store: store, Lookup: q, Keys: cfg.Keys, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("broker ingest: %w", err)
		}
		b.ingest = in
	}
	return b, nil
}

// Start runs the broker loop until Close.
func (b *Service) Start(ctx context.Context) {
	ctx, b.stop = context.WithCancel(ctx)
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		b.run(ctx)
	}()
}

// Close stops the broker side gracefully: the ingest router closes (its
// in-flight messages finish, within closeTimeout), then the relay
// returns and the connections close.
func (b *Service) Close() error {
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
	case <-time.After(closeTimeout):
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
func (b *Service) run(ctx context.Context) {
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
		if !sleep(ctx, wait) {
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
func (b *Service) runRelay(ctx context.Context, conn *brokerConn) {
	relay, err := NewRelay(RelayConfig{
		Log:        b.store,
		Checkpoint: BackendCheckpoint{Backend: b.rm, Namespace: RelayNamespace},
		Publisher:  conn.pub,
		Topic:      FixedTopic(b.cfg.EventsTopic),
		Logger:     b.log,
		// One relay among every process sharing the read-model backend:
		// each event is published once per lease holder, not per process.
		Leases: b.rm,
		Lease:  projections.LeaseConfig{Name: "relay/" + RelayNamespace},
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
func (b *Service) runIngest(ctx context.Context, conn *brokerConn) {
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
		if !sleep(ctx, wait) {
			return
		}
	}
}

// route runs one ingest router until it stops.
func (b *Service) route(ctx context.Context, conn *brokerConn) error {
	sub, err := conn.newSubscriber()
	if err != nil {
		return err
	}
	defer func() { _ = sub.Close() }()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: closeTimeout}, b.wlog)
	if err != nil {
		return err
	}
	_, err = b.ingest.AddHandler(router, RouteConfig{
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

func (b *Service) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// backoff is exponential from MinRetry, capped at MaxRetry, with ±20%
// jitter.
func (b *Service) backoff(attempt int) time.Duration {
	return jittered(b.cfg.MinRetry, b.cfg.MaxRetry, attempt)
}

// connect reaches the broker and provisions the topics.
func (b *Service) connect() (*brokerConn, error) {
	if b.cfg.Kind == KindAMQP {
		return b.connectAMQP()
	}
	return b.connectNATS()
}

// natsOptions are the connection options of every NATS connection: once
// connected, a connection reconnects forever (publishing and consuming
// resume by themselves), and says so in the log.
func (b *Service) natsOptions(role string) []nats.Option {
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
func (b *Service) connectNATS() (*brokerConn, error) {
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
		err = ensureNATSConsumer(js, b.cfg.IngestTopic, b.cfg.AckWait)
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
			AckWaitTimeout:   b.cfg.AckWait,
			CloseTimeout:     closeTimeout,
			SubscribeTimeout: 10 * time.Second,
			NakDelay:         wnats.NewStaticDelay(ingestNakDelay),
			JetStream: wnats.JetStreamConfig{
				DurablePrefix: natsConsumer,
				SubscribeOptions: []nats.SubOpt{
					nats.DeliverAll(), nats.AckExplicit(), nats.AckWait(b.cfg.AckWait),
				},
			},
		}, b.wlog)
	}
	return &brokerConn{pub: pub, newSubscriber: newSub}, nil
}

// NATSStreamName is the name of the stream created for topic.
func NATSStreamName(topic string) string {
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
	name = NATSStreamName(topic)
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
func ensureNATSConsumer(js nats.JetStreamContext, topic string, ackWait time.Duration) error {
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
		AckWait:        ackWait,
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

// connectAMQP opens a publisher that waits for the broker's confirmation
// of every message and declares the durable queues of the topics
// (watermill's durable-queue layout: the default exchange, one queue per
// topic named after it), so that nothing published lands nowhere.
func (b *Service) connectAMQP() (*brokerConn, error) {
	cfg := wamqp.NewDurableQueueConfig(b.cfg.URL)
	cfg.Publish.ConfirmDelivery = true
	if b.cfg.AMQPQueueArguments != nil {
		cfg.Queue.Arguments = b.cfg.AMQPQueueArguments
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

// redactParseError keeps a URL parse error from echoing the URL, and with
// it a password, back into logs.
func redactParseError(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err.Error()
	}
	return "malformed URL"
}
