package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

// Metadata keys of published event messages. The message uuid is the event
// id too; the position orders the whole log, the stream and version order
// one customer's history.
const (
	MetadataEventID  = "cxledger_event_id"
	MetadataPosition = "cxledger_position"
	MetadataStream   = "cxledger_stream"
	MetadataVersion  = "cxledger_version"
	MetadataType     = "cxledger_type"
)

// Log is what the relay needs of an event store: its log, followed from a
// position.
type Log interface {
	Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error
}

// Checkpoint keeps the position of the last event published. Save is
// called only after every event up to position was confirmed by the
// publisher, so that a crash republishes, never skips.
type Checkpoint interface {
	// Load returns the saved position (0: nothing published yet).
	Load(ctx context.Context) (uint64, error)
	// Save durably records position.
	Save(ctx context.Context, position uint64) error
}

// BackendCheckpoint keeps the checkpoint in a namespace of a read-model
// backend, next to the read models (one bbolt file or one PostgreSQL
// database to back up).
type BackendCheckpoint struct {
	Backend projections.Backend
	// Namespace holds only the checkpoint; it must not be a read model's
	// ("<name>_v<n>_g<n>"), e.g. "broker_relay". One per relay.
	Namespace string
}

// FencedCheckpoint is a Checkpoint whose saves a lease can fence: what a
// relay with RelayConfig.Leases needs, so that a relay that lost its lease
// without noticing cannot record progress for the new owner.
type FencedCheckpoint interface {
	Checkpoint
	// SaveFenced records position only if l is still held and the saved
	// position is still from; otherwise it fails with an error wrapping
	// projections.ErrFenced.
	SaveFenced(ctx context.Context, l projections.Lease, from, position uint64) error
}

// Load implements Checkpoint. It creates the namespace if needed, so that
// fenced saves (which never create one) find it.
func (c BackendCheckpoint) Load(ctx context.Context) (uint64, error) {
	if err := c.Backend.Update(ctx, c.Namespace, func(projections.Writer) error { return nil }); err != nil {
		return 0, fmt.Errorf("load checkpoint %s: %w", c.Namespace, err)
	}
	p, err := c.Backend.Checkpoint(ctx, c.Namespace)
	if err != nil {
		return 0, fmt.Errorf("load checkpoint %s: %w", c.Namespace, err)
	}
	return p, nil
}

// Save implements Checkpoint.
func (c BackendCheckpoint) Save(ctx context.Context, position uint64) error {
	err := c.Backend.Update(ctx, c.Namespace, func(w projections.Writer) error {
		return w.SetCheckpoint(ctx, position)
	})
	if err != nil {
		return fmt.Errorf("save checkpoint %s at %d: %w", c.Namespace, position, err)
	}
	return nil
}

// SaveFenced implements FencedCheckpoint with a fenced Backend.Commit.
func (c BackendCheckpoint) SaveFenced(ctx context.Context, l projections.Lease, from, position uint64) error {
	err := c.Backend.Commit(ctx, c.Namespace, projections.Claim{Lease: l, From: from}, func(w projections.Writer) error {
		return w.SetCheckpoint(ctx, position)
	})
	if err != nil {
		return fmt.Errorf("save checkpoint %s at %d: %w", c.Namespace, position, err)
	}
	return nil
}

// TopicFunc chooses the topic an event is published to.
type TopicFunc func(eventstore.Record) string

// FixedTopic publishes every event to one topic: the publisher receives
// them in log order, so in order per customer too.
func FixedTopic(topic string) TopicFunc {
	return func(eventstore.Record) string { return topic }
}

// TopicPerType publishes each event to prefix + its type
// ("cxledger.PurchaseCompleted"). Events of one type stay in order per
// customer; across types a consumer must order by MetadataVersion.
func TopicPerType(prefix string) TopicFunc {
	return func(r eventstore.Record) string { return prefix + r.Type }
}

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Log is the store whose events are published. Required.
	Log Log
	// Checkpoint keeps the relay's position. Required.
	Checkpoint Checkpoint
	// Publisher publishes the events. Its Publish must return only once
	// the broker has the message (JetStream and RabbitMQ with confirms do;
	// a fire-and-forget publisher weakens at-least-once to at-most-once).
	// Required.
	Publisher message.Publisher
	// Topic chooses each event's topic. Required (FixedTopic for one).
	Topic TopicFunc
	// Filter keeps only matching events (default: every customer event
	// type, domain.Types(): the access log stays inside the ledger).
	Filter eventstore.Filter
	// BatchSize caps the events published between checkpoint commits
	// (default 100): a crash republishes at most this many.
	BatchSize int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// attempts after a failure (defaults 100ms and 30s).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Logger receives failures and recoveries (default slog.Default()).
	Logger *slog.Logger
	// Leases, when set, makes the relay one across every process sharing
	// them: it publishes only while it holds the lease Lease.Name (default
	// "relay/broker"), and each checkpoint save is fenced by that lease
	// (Checkpoint must be a FencedCheckpoint). A process that takes over
	// resumes from the last committed checkpoint, so the events its
	// predecessor published after that are published again: at least once
	// across a failover, once otherwise. The message id is the event id,
	// for consumers to deduplicate.
	Leases projections.Leases
	// Lease tunes the lease (name, owner, TTL, renewal interval).
	Lease projections.LeaseConfig
}

func (c *RelayConfig) setDefaults() {
	if len(c.Filter.Types) == 0 {
		c.Filter.Types = domain.Types()
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Lease.Name == "" {
		c.Lease.Name = "relay/broker"
	}
}

// Validate reports a missing field.
func (c RelayConfig) Validate() error {
	var errs []error
	if c.Log == nil {
		errs = append(errs, errors.New("missing Log"))
	}
	if c.Checkpoint == nil {
		errs = append(errs, errors.New("missing Checkpoint"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("missing Publisher"))
	}
	if c.Topic == nil {
		errs = append(errs, errors.New("missing Topic"))
	}
	if _, ok := c.Checkpoint.(FencedCheckpoint); c.Leases != nil && c.Checkpoint != nil && !ok {
		errs = append(errs, errors.New("a relay with leases needs a FencedCheckpoint"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("broker: relay: %w", err)
	}
	return nil
}

// Relay publishes the store's events to a broker, at least once and in log
// order (see the package documentation). Run one Relay per checkpoint:
// two relays sharing one would each publish everything.
type Relay struct {
	cfg RelayConfig
}

// NewRelay returns a Relay, or an error when cfg is incomplete.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Relay{cfg: cfg}, nil
}

// Run publishes events from the checkpoint on, then follows the log, until
// ctx is done (it then returns nil) or the store is closed (an error
// wrapping eventstore.ErrClosed). Every other failure — the broker down,
// the checkpoint unwritable, a read error — is logged and retried with
// backoff from the last committed checkpoint.
func (r *Relay) Run(ctx context.Context) error {
	if r.cfg.Leases == nil {
		return r.run(ctx, nil)
	}
	lc := r.cfg.Lease
	lc.OnWaiting = func(err error) {
		r.cfg.Logger.InfoContext(ctx, "broker: relay on standby: another process publishes", "lease", lc.Name, "holder", err)
	}
	return projections.RunOwned(ctx, r.cfg.Leases, lc, func(ctx context.Context, l projections.Lease) error {
		r.cfg.Logger.InfoContext(ctx, "broker: relay owns the lease; publishing", "lease", l.Name, "epoch", l.Epoch)
		return r.run(ctx, &l)
	})
}

// run is Run under lease (nil: none).
func (r *Relay) run(ctx context.Context, lease *projections.Lease) error {
	failures := 0
	for {
		err := r.follow(ctx, lease, func() { failures = 0 })
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, eventstore.ErrClosed):
			return fmt.Errorf("broker: relay: %w", err)
		}
		failures++
		wait := r.backoff(failures)
		r.cfg.Logger.WarnContext(ctx, "broker: relay interrupted; resuming from the checkpoint", "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// follow subscribes from the checkpoint and publishes until an error.
// progress is called after every committed batch.
func (r *Relay) follow(ctx context.Context, lease *projections.Lease, progress func()) error {
	from, err := r.cfg.Checkpoint.Load(ctx)
	if err != nil {
		return err
	}
	opts := eventstore.SubscribeOptions{After: from, Filter: r.cfg.Filter, BatchSize: r.cfg.BatchSize}
	return r.cfg.Log.Subscribe(ctx, opts, func(ctx context.Context, batch []eventstore.Record) error {
		for _, rec := range batch {
			if err := r.publish(ctx, rec); err != nil {
				return err
			}
		}
		last := batch[len(batch)-1].Position
		// The broker has confirmed the whole batch: record that even when a
		// shutdown cancelled ctx meanwhile, so a restart does not publish
		// the batch again. A bounded timeout keeps shutdown prompt.
		saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if lease != nil {
			err = r.cfg.Checkpoint.(FencedCheckpoint).SaveFenced(saveCtx, *lease, from, last)
		} else {
			err = r.cfg.Checkpoint.Save(saveCtx, last)
		}
		if err != nil {
			return err
		}
		from = last
		progress()
		return nil
	})
}

// publish publishes one event, retrying with backoff until the publisher
// confirms it or ctx is done: the log cannot move past an event the broker
// does not have, and republishing from here duplicates only this event.
// Events go out one at a time, each confirmed before the next, because a
// Publish of several that fails midway does not say which made it.
func (r *Relay) publish(ctx context.Context, rec eventstore.Record) error {
	msg, err := NewEventMessage(rec)
	if err != nil {
		return err
	}
	topic := r.cfg.Topic(rec)
	for attempt := 1; ; attempt++ {
		err := r.cfg.Publisher.Publish(topic, msg)
		if err == nil {
			if attempt > 1 {
				r.cfg.Logger.InfoContext(ctx, "broker: relay publishing again", "position", rec.Position, "attempts", attempt)
			}
			return nil
		}
		wait := r.backoff(attempt)
		r.cfg.Logger.WarnContext(ctx, "broker: publish failed; retrying", "topic", topic, "event", rec.ID, "position", rec.Position, "attempt", attempt, "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return fmt.Errorf("publish event %s at %d: %w (gave up: %w)", rec.ID, rec.Position, err, ctx.Err())
		}
		// A message is not reused after a failed Publish: publishers may
		// have marked or consumed it.
		if msg, err = NewEventMessage(rec); err != nil {
			return err
		}
	}
}

// backoff is exponential from MinBackoff, capped at MaxBackoff, with ±20%
// jitter so that relays restarted together do not retry together.
func (r *Relay) backoff(failures int) time.Duration {
	return jittered(r.cfg.MinBackoff, r.cfg.MaxBackoff, failures)
}

// jittered is the attempt-th delay of an exponential backoff from lo,
// capped at hi, with ±20% jitter.
func jittered(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// sleep waits d, or less if ctx ends first, and reports whether it waited
// the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// NewEventMessage returns the message the relay publishes for rec: uuid
// the event id, payload the record JSON, and the Metadata* keys.
func NewEventMessage(rec eventstore.Record) (*message.Message, error) {
	payload, err := rec.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", rec.ID, err)
	}
	msg := message.NewMessage(rec.ID.String(), payload)
	msg.Metadata.Set(MetadataEventID, rec.ID.String())
	msg.Metadata.Set(MetadataPosition, strconv.FormatUint(rec.Position, 10))
	msg.Metadata.Set(MetadataStream, rec.Stream)
	msg.Metadata.Set(MetadataVersion, strconv.FormatUint(rec.Version, 10))
	msg.Metadata.Set(MetadataType, rec.Type)
	return msg, nil
}
