package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/broker"
	"github.com/cxledger/cxledger/adapters/broker/brokertest"
	"github.com/cxledger/cxledger/adapters/client"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/cxledger/cxledger/projections/boltrm"
)

// logBuffer collects a server's log for assertions and shows it when the
// test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogBuffer(t *testing.T) (*logBuffer, *slog.Logger) {
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", b.String())
		}
	})
	return b, slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startBrokerMain runs the real server on a loopback port over the store
// cfg selects, with a broker.
func startBrokerMain(t *testing.T, cfg storeConfig, bc broker.ServiceConfig, log *slog.Logger) *Main {
	t.Helper()
	toks, err := loadTokens("", "service:"+serviceToken+",analyst:"+analystToken)
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Addr: "127.0.0.1:0", Tokens: toks, Log: log, Broker: bc, ShutdownTimeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// natsTopics returns topic names of the test's own, dotted as in
// production, and deletes their streams when the test ends.
func natsTopics(t *testing.T, natsURL string) broker.ServiceConfig {
	t.Helper()
	prefix := brokertest.Topic(t, "serve")
	bc := broker.ServiceConfig{
		Kind: broker.KindNATS, URL: natsURL,
		IngestTopic: prefix + ".touchpoints", PoisonTopic: prefix + ".touchpoints.poison", EventsTopic: prefix + ".events",
		MinRetry: 20 * time.Millisecond, MaxRetry: 200 * time.Millisecond,
		// A message a stopping server held unacknowledged comes back within
		// seconds, not the production minute (TestServeBrokerRestart).
		AckWait: 5 * time.Second,
	}
	t.Cleanup(func() {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			return
		}
		defer nc.Close()
		js, err := nc.JetStream()
		if err != nil {
			return
		}
		for _, topic := range []string{bc.IngestTopic, bc.PoisonTopic, bc.EventsTopic} {
			_ = js.DeleteStream(broker.NATSStreamName(topic))
		}
	})
	return bc
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publish(t *testing.T, pub message.Publisher, topic string, id uuid.UUID, tp broker.TouchpointMessage) {
	t.Helper()
	msg, err := broker.NewTouchpointMessage(id, tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(topic, msg); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

// feed reads the whole global log through the API.
func feed(t *testing.T, ctx context.Context, analyst *client.Client) []eventstore.Record {
	t.Helper()
	var all []eventstore.Record
	for after := uint64(0); ; {
		page, err := analyst.ReadAll(ctx, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Events...)
		if page.Next == nil {
			return all
		}
		after = *page.Next
	}
}

// checkPublished checks that every event of the log arrived on the events
// topic, as the record JSON with the event id and position in metadata.
func checkPublished(t *testing.T, log []eventstore.Record, events *brokertest.Collector) {
	t.Helper()
	eventually(t, 30*time.Second, "every event on the events topic", func() bool {
		first, _ := events.ByID()
		for _, r := range log {
			if first[r.ID.String()] == nil {
				return false
			}
		}
		return true
	})
	first, _ := events.ByID()
	for _, r := range log {
		m := first[r.ID.String()]
		if got := m.Metadata.Get(broker.MetadataEventID); got != r.ID.String() {
			t.Errorf("event %s: %s = %q", r.ID, broker.MetadataEventID, got)
		}
		if got := m.Metadata.Get(broker.MetadataPosition); got != strconv.FormatUint(r.Position, 10) {
			t.Errorf("event %s: %s = %q, want %d", r.ID, broker.MetadataPosition, got, r.Position)
		}
		var rec eventstore.Record
		if err := json.Unmarshal(m.Payload, &rec); err != nil || rec.ID != r.ID || rec.Type != r.Type || rec.Stream != r.Stream {
			t.Errorf("event %s: payload %s: %v", r.ID, m.Payload, err)
		}
	}
}

func callEvent() json.RawMessage {
	return json.RawMessage(`{"direction":"inbound","durationSeconds":312,"agent":"user:marta","outcome":"connected"}`)
}

// TestServeBrokerNATS runs both directions over NATS JetStream, on the
// embedded store and on PostgreSQL (the relay's checkpoint lives in either
// read-model backend).
func TestServeBrokerNATS(t *testing.T) {
	t.Parallel()
	// Each backend checks its own server, so that PostgreSQL missing
	// skips only its variant.
	for name, cfg := range map[string]func(t *testing.T) storeConfig{
		"embedded": func(t *testing.T) storeConfig { return storeConfig{Data: t.TempDir()} },
		"postgres": func(t *testing.T) storeConfig { return storeConfig{Store: pgtest.URL(t), Schema: pgtest.Schema(t)} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testServeBrokerNATS(t, cfg(t))
		})
	}
}

func testServeBrokerNATS(t *testing.T, cfg storeConfig) {
	natsURL := brokertest.NATSURL(t)
	bc := natsTopics(t, natsURL)
	_, log := newLogBuffer(t)
	m := startBrokerMain(t, cfg, bc, log)
	brokertest.WaitStreams(t, natsURL, bc.IngestTopic, bc.PoisonTopic, bc.EventsTopic)
	pub, sub := brokertest.NATSClient(t, natsURL)
	events := brokertest.Collect(t, sub, bc.EventsTopic)
	poison := brokertest.Collect(t, sub, bc.PoisonTopic)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc, analyst := client.New(m.URL(), serviceToken), client.New(m.URL(), analystToken)
	known := uuid.New()
	if _, err := svc.Register(ctx, httpapi.RegisterRequest{CustomerID: known, EventID: uuid.New(), Name: "Zoë Ñúñez", Country: "ES", Metadata: md()}); err != nil {
		t.Fatal(err)
	}

	// A call for a known customer, delivered twice (a producer retrying
	// after a timeout reuses the message uuid).
	call := uuid.New()
	tp := broker.TouchpointMessage{
		CustomerID: &known, Type: domain.TypeCallLogged, Event: callEvent(),
		OccurredAt: time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond), Actor: "service:pbx", Channel: "phone",
	}
	publish(t, pub, bc.IngestTopic, call, tp)
	publish(t, pub, bc.IngestTopic, call, tp)
	// A chat for an e-mail address nobody holds: a customer is registered.
	chat := uuid.New()
	email := "ana." + chat.String()[:8] + "@Example.com"
	publish(t, pub, bc.IngestTopic, chat, broker.TouchpointMessage{
		Identifier: &broker.Identifier{Kind: domain.IdentifierEmail, Value: email}, Name: "Ana",
		Type: domain.TypeCallLogged, Event: callEvent(), OccurredAt: tp.OccurredAt,
	})
	// An event type nobody knows: poisoned, nothing written.
	bad := uuid.New()
	publish(t, pub, bc.IngestTopic, bad, broker.TouchpointMessage{CustomerID: &known, Type: "CallTeleported", Event: json.RawMessage(`{}`)})

	// The subscription hands messages over one at a time, in order: once
	// the poisoned one is out, the others were handled.
	eventually(t, 30*time.Second, "the invalid message on the poison topic", func() bool { return len(poison.All()) > 0 })
	p := poison.All()[0]
	if p.UUID != bad.String() || !strings.Contains(p.Metadata.Get(middleware.ReasonForPoisonedKey), "CallTeleported") {
		t.Fatalf("poisoned %s with reason %q, want %s for its unknown type", p.UUID, p.Metadata.Get(middleware.ReasonForPoisonedKey), bad)
	}

	page, err := svc.ReadStream(ctx, known, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Events[1].ID != call || page.Events[1].Type != domain.TypeCallLogged || page.Events[1].Metadata.Actor != "service:pbx" {
		t.Fatalf("known customer's stream after a redelivered call: %+v", page.Events)
	}
	// With the keyring, the id derives from a keyed hash of the address
	// (generation 0: nobody was forgotten for it).
	norm, err := domain.NormalizeIdentifier(domain.IdentifierEmail, email)
	if err != nil {
		t.Fatal(err)
	}
	derived := testKeyring(t).CustomerID(domain.IdentifierEmail, norm, 0)
	if unkeyed, _ := broker.CustomerIDFor(domain.IdentifierEmail, email); unkeyed == derived {
		t.Fatal("the derived id is the unkeyed hash of the address")
	}
	// The identity read model lags the log: read at its head.
	head := feed(t, ctx, analyst)
	view, err := svc.Lookup(ctx, domain.IdentifierEmail, email, head[len(head)-1].Position)
	if err != nil || view.CustomerID != derived || view.Events != 3 {
		t.Fatalf("customer registered for %s: %s with %d events, %v; want %s with 3", email, view.CustomerID, view.Events, err, derived)
	}

	// An append over HTTP goes out on the events topic, like everything
	// before it.
	note := uuid.New()
	if _, err := svc.Append(ctx, known, eventstore.Any, client.Touchpoint{ID: note, Event: domain.NoteAdded{Body: "prefers e-mail — ✓"}, Metadata: md()}); err != nil {
		t.Fatal(err)
	}
	log6 := feed(t, ctx, analyst)
	if len(log6) != 6 || log6[5].ID != note {
		t.Fatalf("log: %d events, want 6 ending with the note", len(log6))
	}
	checkPublished(t, log6, events)
	for _, pm := range poison.All() {
		if pm.UUID != bad.String() {
			t.Errorf("valid message %s poisoned: %s", pm.UUID, pm.Metadata.Get(middleware.ReasonForPoisonedKey))
		}
	}
}

// TestServeBrokerRestart: after a restart, publishing resumes from the
// checkpoint (nothing lost, nothing before it republished) and ingest from
// the durable consumer (nothing acknowledged redelivered).
func TestServeBrokerRestart(t *testing.T) {
	t.Parallel()
	natsURL := brokertest.NATSURL(t)
	bc := natsTopics(t, natsURL)
	dir := t.TempDir()
	_, log := newLogBuffer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	m := startBrokerMain(t, storeConfig{Data: dir}, bc, log)
	brokertest.WaitStreams(t, natsURL, bc.IngestTopic, bc.EventsTopic)
	pub, sub := brokertest.NATSClient(t, natsURL)
	events := brokertest.Collect(t, sub, bc.EventsTopic)
	svc := client.New(m.URL(), serviceToken)
	customer := uuid.New()
	if _, err := svc.Register(ctx, httpapi.RegisterRequest{CustomerID: customer, Name: "Before the restart", Metadata: md()}); err != nil {
		t.Fatal(err)
	}
	before := uuid.New()
	publish(t, pub, bc.IngestTopic, before, broker.TouchpointMessage{CustomerID: &customer, Type: domain.TypeCallLogged, Event: callEvent(), OccurredAt: time.Now().UTC().Add(-time.Hour)})
	eventually(t, 30*time.Second, "the call ingested", func() bool {
		page, err := svc.ReadStream(ctx, customer, 0, 0)
		return err == nil && len(page.Events) == 2
	})
	for i := range 3 {
		if _, err := svc.Append(ctx, customer, eventstore.Any, client.Touchpoint{ID: uuid.New(), Event: domain.NoteAdded{Body: "first run " + strconv.Itoa(i)}, Metadata: md()}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "the first run's 5 events", func() bool { first, _ := events.ByID(); return len(first) == 5 })
	// The relay commits its checkpoint after the broker confirmed a batch;
	// a shutdown between the two republishes that batch (at least once).
	eventually(t, 10*time.Second, "the relay's checkpoint at 5", func() bool {
		cp, err := m.rm.Checkpoint(ctx, broker.RelayNamespace)
		return err == nil && cp == 5
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// The checkpoint is in the read-model file.
	rm, err := boltrm.Open(filepath.Join(dir, boltrm.FileName), boltrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := rm.Checkpoint(ctx, broker.RelayNamespace)
	_ = rm.Close()
	if err != nil || cp != 5 {
		t.Fatalf("relay checkpoint after the first run: %d, %v; want 5", cp, err)
	}

	// While the server is down, a touchpoint is sent and the CLI appends.
	during := uuid.New()
	publish(t, pub, bc.IngestTopic, during, broker.TouchpointMessage{CustomerID: &customer, Type: domain.TypeCallLogged, Event: callEvent(), OccurredAt: time.Now().UTC()})
	bolt, err := boltstore.Open(filepath.Join(dir, dataFileName), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	offline := uuid.New()
	_, err = ledger.New(bolt).Append(ctx, domain.RoleSystem, customer, eventstore.Any, ledger.Touchpoint{ID: offline, Event: domain.NoteAdded{Body: "appended while serve was down"}, Metadata: domain.Metadata{OccurredAt: time.Now(), Actor: "user:cli"}})
	_ = bolt.Close()
	if err != nil {
		t.Fatal(err)
	}

	logs2, log2 := newLogBuffer(t)
	m = startBrokerMain(t, storeConfig{Data: dir}, bc, log2)
	svc, analyst := client.New(m.URL(), serviceToken), client.New(m.URL(), analystToken)
	eventually(t, 30*time.Second, "the call sent while the server was down ingested", func() bool {
		page, err := svc.ReadStream(ctx, customer, 0, 0)
		return err == nil && len(page.Events) == 7 && page.Events[6].ID == during
	})
	if strings.Contains(logs2.String(), before.String()) {
		t.Errorf("the message acknowledged before the restart was delivered again")
	}
	for i := range 3 {
		if _, err := svc.Append(ctx, customer, eventstore.Any, client.Touchpoint{ID: uuid.New(), Event: domain.NoteAdded{Body: "second run " + strconv.Itoa(i)}, Metadata: md()}); err != nil {
			t.Fatal(err)
		}
	}
	all := feed(t, ctx, analyst)
	if len(all) != 10 {
		t.Fatalf("log: %d events, want 10", len(all))
	}
	checkPublished(t, all, events)
	first, n := events.ByID()
	if first[offline.String()] == nil {
		t.Fatal("the event appended while the server was down was not published")
	}
	var order []uint64
	for _, msg := range events.All() {
		p, _ := strconv.ParseUint(msg.Metadata.Get(broker.MetadataPosition), 10, 64)
		order = append(order, p)
		if n[msg.UUID] > 1 {
			t.Errorf("event %s at %d delivered %d times: the restart republished before the checkpoint", msg.UUID, p, n[msg.UUID])
		}
	}
	for i, p := range order {
		if p != uint64(i+1) {
			t.Fatalf("positions delivered %v, want 1…10 in order", order)
		}
	}
}

// toggleProxy forwards TCP connections to target while up; while down it
// accepts and closes them at once, a broker that is not there.
type toggleProxy struct {
	ln     net.Listener
	target string
	up     atomic.Bool
}

func newToggleProxy(t *testing.T, target string) *toggleProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &toggleProxy{ln: ln, target: target}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.up.Load() {
				_ = c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(u, c); _ = u.Close() })
			wg.Go(func() { _, _ = io.Copy(c, u); _ = c.Close() })
		}
	})
	return p
}

// TestServeBrokerDownAtStart: the server serves and appends while the
// broker is unreachable, retries it in the background, and publishes what
// was appended meanwhile once it answers.
func TestServeBrokerDownAtStart(t *testing.T) {
	t.Parallel()
	natsURL := brokertest.NATSURL(t)
	bc := natsTopics(t, natsURL)
	proxy := newToggleProxy(t, strings.TrimPrefix(natsURL, "nats://"))
	bc.URL = "nats://" + proxy.ln.Addr().String()
	logs, log := newLogBuffer(t)
	m := startBrokerMain(t, storeConfig{Data: t.TempDir()}, bc, log)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc, analyst := client.New(m.URL(), serviceToken), client.New(m.URL(), analystToken)
	customer := uuid.New()
	if _, err := svc.Register(ctx, httpapi.RegisterRequest{CustomerID: customer, Name: "While the broker is down", Metadata: md()}); err != nil {
		t.Fatalf("append with the broker down: %v", err)
	}
	eventually(t, 10*time.Second, "a logged retry", func() bool { return strings.Count(logs.String(), "broker unreachable") >= 2 })

	proxy.up.Store(true)
	brokertest.WaitStreams(t, natsURL, bc.IngestTopic, bc.EventsTopic)
	pub, sub := brokertest.NATSClient(t, natsURL)
	events := brokertest.Collect(t, sub, bc.EventsTopic)
	publish(t, pub, bc.IngestTopic, uuid.New(), broker.TouchpointMessage{CustomerID: &customer, Type: domain.TypeCallLogged, Event: callEvent(), OccurredAt: time.Now().UTC().Add(-time.Minute)})
	eventually(t, 30*time.Second, "the ingested call", func() bool {
		page, err := svc.ReadStream(ctx, customer, 0, 0)
		return err == nil && len(page.Events) == 2
	})
	checkPublished(t, feed(t, ctx, analyst), events)
	if !strings.Contains(logs.String(), "broker connected") {
		t.Error("no log line says the broker connected")
	}
}

// TestServeBrokerUnreachableNoCredentialsLogged needs no broker: nothing
// listens where the URL points.
func TestServeBrokerUnreachableNoCredentialsLogged(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	for _, tc := range []struct{ kind, url string }{
		{broker.KindNATS, "nats://ops:n4ts-s3cret@" + addr},
		{broker.KindNATS, "nats://t0ken-s3cret@" + addr},
		{broker.KindAMQP, "amqp://ops:amqp-s3cret@" + addr + "/vhost"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			logs, log := newLogBuffer(t)
			bc := broker.ServiceConfig{Kind: tc.kind, URL: tc.url, IngestTopic: "in", PoisonTopic: "poison", EventsTopic: "out", MinRetry: 10 * time.Millisecond, MaxRetry: 50 * time.Millisecond}
			m := startBrokerMain(t, storeConfig{Data: t.TempDir()}, bc, log)
			svc := client.New(m.URL(), serviceToken)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := svc.Register(ctx, httpapi.RegisterRequest{Name: "Appended regardless", Metadata: md()}); err != nil {
				t.Fatalf("append with the broker unreachable: %v", err)
			}
			eventually(t, 10*time.Second, "retries in the log", func() bool { return strings.Count(logs.String(), "broker unreachable") >= 3 })
			start := time.Now()
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("close took %s with the broker unreachable", d)
			}
			out := logs.String()
			if strings.Contains(out, "s3cret") {
				t.Fatalf("credentials in the log:\n%s", out)
			}
			if !strings.Contains(out, "xxxxx@"+addr) {
				t.Errorf("the log does not name the (redacted) broker:\n%s", out)
			}
		})
	}
}

func TestBrokerConfigValidate(t *testing.T) {
	ok := broker.ServiceConfig{Kind: "nats", IngestTopic: broker.DefaultIngestTopic, PoisonTopic: broker.DefaultPoisonTopic, EventsTopic: broker.DefaultEventsTopic}
	ok.SetDefaults()
	if err := ok.Validate(); err != nil || ok.URL != broker.DefaultNATSURL {
		t.Fatalf("defaults: %v, url %s", err, ok.URL)
	}
	for name, tc := range map[string]struct {
		change func(*broker.ServiceConfig)
		want   string
	}{
		"unknown kind":    {func(c *broker.ServiceConfig) { c.Kind = "gochannel" }, "unknown broker"},
		"wrong scheme":    {func(c *broker.ServiceConfig) { c.URL = "amqp://u:pw-s3cret@h:5672/" }, "nats needs nats://"},
		"malformed URL":   {func(c *broker.ServiceConfig) { c.URL = "nats://u:pw-s3cret@h:port" }, "not a valid URL"},
		"no host":         {func(c *broker.ServiceConfig) { c.URL = "nats://" }, "needs nats://host"},
		"wildcard":        {func(c *broker.ServiceConfig) { c.IngestTopic = "cxledger.*" }, "wildcards"},
		"empty token":     {func(c *broker.ServiceConfig) { c.EventsTopic = "cxledger..events" }, "empty tokens"},
		"space":           {func(c *broker.ServiceConfig) { c.PoisonTopic = "bad topic" }, "spaces"},
		"no poison":       {func(c *broker.ServiceConfig) { c.PoisonTopic = "" }, "--poison-topic: required"},
		"poison = ingest": {func(c *broker.ServiceConfig) { c.PoisonTopic = c.IngestTopic }, "must differ"},
		"events = ingest": {func(c *broker.ServiceConfig) { c.EventsTopic = c.IngestTopic }, "its own events"},
		"nothing to do":   {func(c *broker.ServiceConfig) { c.IngestTopic, c.EventsTopic = "", "" }, "nothing to do"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error echoes the password: %v", err)
			}
		})
	}
	// A NATS server list is one URL per server; AMQP takes amqps.
	for _, c := range []broker.ServiceConfig{
		{Kind: "NATS", URL: "nats://a:4222, tls://b:4222", EventsTopic: "e"},
		{Kind: "amqp", URL: "amqps://u:p@rabbit/vh", IngestTopic: "cxledger.touchpoints", PoisonTopic: "p"},
		{Kind: "none", URL: "whatever"},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	// Refused at start, as a usage error, before anything is opened.
	m := &Main{Config: storeConfig{Data: t.TempDir()}, Addr: "127.0.0.1:0", Log: discardLogger(), Broker: broker.ServiceConfig{Kind: "kafka"}}
	if err := m.Run(context.Background()); !errors.Is(err, errUsage) {
		_ = m.Close()
		t.Fatalf("unknown broker: %v", err)
	}
}

func TestBrokerFlagsAndEnvironment(t *testing.T) {
	t.Setenv("CXLEDGER_BROKER", "nats")
	t.Setenv("CXLEDGER_BROKER_URL", "nats://n1:4222")
	t.Setenv("CXLEDGER_INGEST_TOPIC", "") // set and empty: ingest off
	t.Setenv("CXLEDGER_EVENTS_TOPIC", "crm.events")
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	var help bytes.Buffer
	fs.SetOutput(&help)
	var c broker.ServiceConfig
	registerBrokerFlags(fs, &c)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := broker.ServiceConfig{Kind: "nats", URL: "nats://n1:4222", PoisonTopic: broker.DefaultPoisonTopic, EventsTopic: "crm.events"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("from the environment: %+v, want %+v", c, want)
	}
	if err := fs.Parse([]string{"--broker", "amqp", "--broker-url", "", "--ingest-topic", "in", "--events-topic", ""}); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if c.Kind != broker.KindAMQP || c.URL != broker.DefaultAMQPURL || c.IngestTopic != "in" || c.EventsTopic != "" {
		t.Fatalf("flags over the environment: %+v", c)
	}
	fs.PrintDefaults()
	for _, env := range []string{"CXLEDGER_BROKER)", "CXLEDGER_BROKER_URL", "CXLEDGER_INGEST_TOPIC", "CXLEDGER_POISON_TOPIC", "CXLEDGER_EVENTS_TOPIC", "none, nats (JetStream) or amqp"} {
		if !strings.Contains(help.String(), env) {
			t.Errorf("--help lacks %s", env)
		}
	}
}

// TestServeBrokerAMQP runs both directions over RabbitMQ: a touchpoint in,
// every event out, with confirmed publishing into durable queues.
func TestServeBrokerAMQP(t *testing.T) {
	amqpURL := brokertest.AMQPURL(t)
	// The queues of this test expire a while after their last use instead
	// of staying on the shared server.
	prefix := brokertest.Topic(t, "serve")
	bc := broker.ServiceConfig{
		Kind: broker.KindAMQP, URL: amqpURL,
		IngestTopic: prefix + ".touchpoints", PoisonTopic: prefix + ".touchpoints.poison", EventsTopic: prefix + ".events",
		MinRetry: 20 * time.Millisecond, MaxRetry: 200 * time.Millisecond,
		AMQPQueueArguments: map[string]any{"x-expires": int32(120_000)},
	}
	logs, log := newLogBuffer(t)
	m := startBrokerMain(t, storeConfig{Data: t.TempDir()}, bc, log)
	eventually(t, 20*time.Second, "the broker connected", func() bool { return strings.Contains(logs.String(), "broker connected") })

	cfg := wamqp.NewDurableQueueConfig(amqpURL)
	cfg.Queue.Arguments = bc.AMQPQueueArguments
	pub, err := wamqp.NewPublisher(cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := wamqp.NewSubscriber(cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(); _ = pub.Close() })
	events := brokertest.Collect(t, sub, bc.EventsTopic)
	poison := brokertest.Collect(t, sub, bc.PoisonTopic)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc, analyst := client.New(m.URL(), serviceToken), client.New(m.URL(), analystToken)
	customer := uuid.New()
	if _, err := svc.Register(ctx, httpapi.RegisterRequest{CustomerID: customer, Name: "Über RabbitMQ", Metadata: md()}); err != nil {
		t.Fatal(err)
	}
	call := uuid.New()
	publish(t, pub, bc.IngestTopic, call, broker.TouchpointMessage{CustomerID: &customer, Type: domain.TypeCallLogged, Event: callEvent(), OccurredAt: time.Now().UTC().Add(-time.Minute)})
	bad := uuid.New()
	publish(t, pub, bc.IngestTopic, bad, broker.TouchpointMessage{CustomerID: &customer, Type: domain.TypeCallLogged, Event: json.RawMessage(`{"direction":"sideways"}`)})
	eventually(t, 30*time.Second, "the invalid message on the poison topic", func() bool { return len(poison.All()) > 0 })
	if p := poison.All()[0]; p.UUID != bad.String() || p.Metadata.Get(middleware.ReasonForPoisonedKey) == "" {
		t.Fatalf("poisoned %s (reason %q), want %s", p.UUID, p.Metadata.Get(middleware.ReasonForPoisonedKey), bad)
	}
	eventually(t, 30*time.Second, "the call ingested", func() bool {
		page, err := svc.ReadStream(ctx, customer, 0, 0)
		return err == nil && len(page.Events) == 2 && page.Events[1].ID == call
	})
	checkPublished(t, feed(t, ctx, analyst), events)
}
