// Package brokertest gives tests real message brokers to run against:
// NATSURL and AMQPURL find and check the local servers, NATS and AMQP build
// watermill publishers and subscribers on them, and Topic makes a topic name
// of the test's own, so that tests run in parallel on one shared server
// without cleaning up after each other.
//
// When a server cannot be reached the test is skipped with one loud, uniform
// message, except under CI (CI=true), where a skipped broker test would hide
// a broken build, so it is a failure instead. This mirrors
// eventstore/pgstore/pgtest.
package brokertest

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// Environment variables naming the test brokers.
const (
	EnvNATSURL = "CXLEDGER_TEST_NATS_URL"
	EnvAMQPURL = "CXLEDGER_TEST_AMQP_URL"
)

// Default broker addresses: the local development servers.
const (
	DefaultNATSURL = "nats://127.0.0.1:4222"
	DefaultAMQPURL = "amqp://guest:guest@127.0.0.1:5672/"
)

// reachable caches, per address, the outcome of the first check so that a
// package with many tests dials once and every test reports the same reason.
var reachable sync.Map // string -> error (errOK for success)

type okType struct{}

func (okType) Error() string { return "ok" }

var errOK error = okType{}

// NATSURL returns the test NATS server's URL after checking that it answers
// with JetStream enabled. When it does not, the test is skipped with a
// message saying loudly that the NATS tests were NOT run, or fails when
// CI=true.
func NATSURL(t testing.TB) string {
	t.Helper()
	u := env(EnvNATSURL, DefaultNATSURL)
	check(t, "NATS", EnvNATSURL, u, func() error {
		nc, err := nats.Connect(u, nats.Timeout(3*time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := nc.JetStream()
		if err != nil {
			return err
		}
		_, err = js.AccountInfo()
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		return nil
	})
	return u
}

// AMQPURL returns the test RabbitMQ server's URL after checking that its
// port accepts connections; otherwise it skips (or fails under CI=true)
// like NATSURL.
func AMQPURL(t testing.TB) string {
	t.Helper()
	u := env(EnvAMQPURL, DefaultAMQPURL)
	check(t, "AMQP", EnvAMQPURL, u, func() error {
		p, err := url.Parse(u)
		if err != nil {
			return err
		}
		host := p.Host
		if p.Port() == "" {
			host = net.JoinHostPort(p.Hostname(), "5672")
		}
		c, err := net.DialTimeout("tcp", host, 3*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return u
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func check(t testing.TB, broker, envName, addr string, ping func() error) {
	t.Helper()
	v, ok := reachable.Load(addr)
	if !ok {
		err := ping()
		if err == nil {
			err = errOK
		}
		v, _ = reachable.LoadOrStore(addr, err)
	}
	if err := v.(error); err != errOK {
		msg := fmt.Sprintf("!!! %s TESTS WERE NOT RUN: cannot reach %s: %v. "+
			"Start the broker or set %s to a reachable one (under CI=true this is a failure).",
			broker, redact(addr), err, envName)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// redact hides a password in a URL before it is printed.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Topic returns a topic name unique to this call, valid as a JetStream
// stream name and an AMQP queue name (letters, digits, underscores).
func Topic(t testing.TB, purpose string) string {
	t.Helper()
	return "cxledger_test_" + purpose + "_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
}

// NATSOptions are the JetStream settings of the test publishers and
// subscribers. TrackMsgID turns on the broker's own de-duplication by
// message uuid; ingest tests leave it off so that a message published twice
// really is delivered twice.
type NATSOptions struct {
	TrackMsgID bool
	// AckWait is how long the broker waits for an ack before redelivering
	// (default 30s).
	AckWait time.Duration
}

// NATS returns a JetStream publisher and subscriber on the test server.
// Streams are created on first use (one per topic); they and the
// connections are removed when the test ends.
func NATS(t testing.TB, opts NATSOptions) (message.Publisher, message.Subscriber) {
	t.Helper()
	u := NATSURL(t)
	logger := watermill.NopLogger{}
	js := wnats.JetStreamConfig{
		AutoProvision:    true,
		SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
		TrackMsgId:       opts.TrackMsgID,
	}
	natsOpts := []nats.Option{nats.Name("cxledger-test"), nats.Timeout(5 * time.Second)}
	pub, err := wnats.NewPublisher(wnats.PublisherConfig{URL: u, NatsOptions: natsOpts, JetStream: js}, logger)
	if err != nil {
		t.Fatalf("nats publisher: %v", err)
	}
	sub, err := wnats.NewSubscriber(wnats.SubscriberConfig{
		URL:            u,
		NatsOptions:    natsOpts,
		AckWaitTimeout: cmp.Or(opts.AckWait, 30*time.Second),
		CloseTimeout:   5 * time.Second,
		JetStream:      js,
	}, logger)
	if err != nil {
		t.Fatalf("nats subscriber: %v", err)
	}
	t.Cleanup(func() {
		_ = sub.Close()
		_ = pub.Close()
	})
	c := &streamCleaner{t: t, url: u}
	return cleaningPublisher{pub, c}, cleaningSubscriber{sub, c}
}

// streamCleaner creates the JetStream stream of every topic on first use,
// in memory (tests need no disk, and the server has been seen to fail
// creating file stores under many parallel creations), and deletes it when
// the test ends, so that test runs leave no streams behind. Publishers and
// subscribers both report topics: either may come first.
type streamCleaner struct {
	t   testing.TB
	url string

	mu     sync.Mutex
	topics map[string]bool
}

func (s *streamCleaner) use(topic string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topics[topic] {
		return nil
	}
	if err := createStream(s.url, topic); err != nil {
		return err
	}
	if s.topics == nil {
		s.topics = map[string]bool{}
	}
	s.topics[topic] = true
	s.t.Cleanup(func() { deleteStream(s.url, topic) })
	return nil
}

type cleaningPublisher struct {
	message.Publisher
	c *streamCleaner
}

func (p cleaningPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.c.use(topic); err != nil {
		return err
	}
	return p.Publisher.Publish(topic, msgs...)
}

type cleaningSubscriber struct {
	message.Subscriber
	c *streamCleaner
}

func (s cleaningSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.c.use(topic); err != nil {
		return nil, err
	}
	return s.Subscriber.Subscribe(ctx, topic)
}

// createStream creates the stream watermill's default layout expects for
// topic (stream and subject named after it), retrying briefly.
func createStream(u, name string) error {
	nc, err := nats.Connect(u)
	if err != nil {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	for attempt := 1; ; attempt++ {
		_, err = js.AddStream(&nats.StreamConfig{Name: name, Subjects: []string{name}, Storage: nats.MemoryStorage})
		if err == nil || attempt == 5 {
			break
		}
		time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return nil
}

func deleteStream(u, name string) {
	nc, err := nats.Connect(u)
	if err != nil {
		return
	}
	defer nc.Close()
	if js, err := nc.JetStream(); err == nil {
		_ = js.DeleteStream(name)
	}
}

// AMQP returns a RabbitMQ publisher and subscriber on the test server, with
// one auto-deleted queue per topic (watermill's queue layout: topic =
// queue name). Subscribe before publishing: the queue exists from the first
// subscription on, and the default exchange drops messages for a queue that
// does not exist yet.
func AMQP(t testing.TB) (message.Publisher, message.Subscriber) {
	t.Helper()
	cfg := wamqp.NewNonDurableQueueConfig(AMQPURL(t))
	cfg.Queue.AutoDelete = true
	logger := watermill.NopLogger{}
	pub, err := wamqp.NewPublisher(cfg, logger)
	if err != nil {
		t.Fatalf("amqp publisher: %v", err)
	}
	sub, err := wamqp.NewSubscriber(cfg, logger)
	if err != nil {
		t.Fatalf("amqp subscriber: %v", err)
	}
	t.Cleanup(func() {
		_ = sub.Close()
		_ = pub.Close()
	})
	return pub, sub
}

// NATSClient is a plain watermill JetStream publisher and subscriber on
// natsURL, as a producer or consumer outside the ledger would use: it
// provisions no stream, so it reads (from the start) and writes the streams
// a cxledger server created. Both close when the test ends.
func NATSClient(t testing.TB, natsURL string) (message.Publisher, message.Subscriber) {
	t.Helper()
	js := wnats.JetStreamConfig{SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()}}
	pub, err := wnats.NewPublisher(wnats.PublisherConfig{URL: natsURL, JetStream: js}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := wnats.NewSubscriber(wnats.SubscriberConfig{URL: natsURL, JetStream: js, CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sub.Close()
		_ = pub.Close()
	})
	return pub, sub
}

// WaitStreams waits (up to 20 s) until a server has created the JetStream
// stream of each topic, so that a NATSClient subscribing then reads it from
// the start.
func WaitStreams(t testing.TB, natsURL string, topics ...string) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, err := js.StreamNameBySubject(topic)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no JetStream stream for %s: %v", topic, err)
			}
		}
	}
}
