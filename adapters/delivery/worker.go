package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

// Defaults of Config.
const (
	DefaultNamespace   = "delivery"
	DefaultLease       = "relay/delivery"
	DefaultMaxAttempts = 5
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultMaxAge      = 72 * time.Hour
	DefaultParallel    = 4
	DefaultBatchSize   = 32
)

// Actor is the metadata actor of the outcomes the worker records.
const Actor = "system:delivery"

// Store is what the worker needs of the event store: the log, followed,
// and customers' streams, read.
type Store interface {
	Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
}

// Recorder appends outcomes through the write path (ledger.Service).
type Recorder interface {
	Append(ctx context.Context, as domain.Role, customer uuid.UUID, expected eventstore.ExpectedVersion, tps ...ledger.Touchpoint) (eventstore.AppendResult, error)
}

// Keys reveals sealed addresses (keyring.Keyring).
type Keys interface {
	Reveal(ctx context.Context, customer uuid.UUID, s string) (string, error)
}

// Config configures a Worker.
type Config struct {
	// Store is the log the messages are queued in. Required.
	Store Store
	// Recorder records outcomes. Required.
	Recorder Recorder
	// Keys reveals the recipients' sealed addresses; nil: the log holds
	// plaintext (no keyring).
	Keys Keys
	// Email and SMS send the messages of each channel; a channel without
	// one records MessageFailed (no_channel). At least one is required.
	Email, SMS Sender
	// Backend keeps the checkpoint in Namespace (default "delivery").
	// Required.
	Backend   projections.Backend
	Namespace string
	// Leases, when set, makes the worker one across the processes sharing
	// them (lease Lease.Name, default "relay/delivery"), its checkpoint
	// saves fenced by that lease.
	Leases projections.Leases
	Lease  projections.LeaseConfig
	// MaxAttempts is how many sends a message gets before the dead letter
	// (MessageFailed, attempts_exhausted); default 5.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential backoff between a
	// message's attempts, ±20% jitter (defaults 1s and 5m).
	MinBackoff, MaxBackoff time.Duration
	// MaxAge: a message queued longer ago than this when first tried is
	// not sent (MessageFailed, expired); default 72h, negative: no limit.
	MaxAge time.Duration
	// Parallel is how many messages are sent at once (default 4), and
	// BatchSize how many the checkpoint moves by at most (default 32).
	Parallel, BatchSize int
	Logger              *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Lease.Name == "" {
		c.Lease.Name = DefaultLease
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Parallel <= 0 {
		c.Parallel = DefaultParallel
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports a missing field.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("missing Store"))
	}
	if c.Recorder == nil {
		errs = append(errs, errors.New("missing Recorder"))
	}
	if c.Backend == nil {
		errs = append(errs, errors.New("missing Backend"))
	}
	if c.Email == nil && c.SMS == nil {
		errs = append(errs, errors.New("no sender: configure an e-mail or SMS channel"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	return nil
}

// Worker delivers queued messages (see the package documentation).
type Worker struct {
	cfg Config
}

// New returns a Worker, or an error when cfg is incomplete.
func New(cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg}, nil
}

// Run delivers from the checkpoint on, then follows the log, until ctx is
// done (then nil) or the store is closed (an error wrapping
// eventstore.ErrClosed). Other failures are logged and retried with
// backoff from the last committed checkpoint.
func (w *Worker) Run(ctx context.Context) error {
	if w.cfg.Leases == nil {
		return w.run(ctx, nil)
	}
	lc := w.cfg.Lease
	lc.OnWaiting = func(err error) {
		w.cfg.Logger.InfoContext(ctx, "delivery: on standby: another process delivers", "lease", lc.Name, "holder", err)
	}
	return projections.RunOwned(ctx, w.cfg.Leases, lc, func(ctx context.Context, l projections.Lease) error {
		w.cfg.Logger.InfoContext(ctx, "delivery: owns the lease; delivering", "lease", l.Name, "epoch", l.Epoch)
		return w.run(ctx, &l)
	})
}

func (w *Worker) run(ctx context.Context, lease *projections.Lease) error {
	failures := 0
	for {
		err := w.follow(ctx, lease, func() { failures = 0 })
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, eventstore.ErrClosed):
			return fmt.Errorf("delivery: %w", err)
		case errors.Is(err, projections.ErrFenced) && lease != nil:
			// Lost the lease without noticing yet: stop, RunOwned
			// acquires again and re-reads the checkpoint.
			return nil
		}
		failures++
		wait := jittered(w.cfg.MinBackoff, w.cfg.MaxBackoff, failures)
		w.cfg.Logger.WarnContext(ctx, "delivery: interrupted; resuming from the checkpoint", "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// loadCheckpoint reads the checkpoint, creating the namespace if needed
// (fenced commits never create one).
func (w *Worker) loadCheckpoint(ctx context.Context) (uint64, error) {
	if err := w.cfg.Backend.Update(ctx, w.cfg.Namespace, func(projections.Writer) error { return nil }); err != nil {
		return 0, fmt.Errorf("load checkpoint %s: %w", w.cfg.Namespace, err)
	}
	p, err := w.cfg.Backend.Checkpoint(ctx, w.cfg.Namespace)
	if err != nil {
		return 0, fmt.Errorf("load checkpoint %s: %w", w.cfg.Namespace, err)
	}
	return p, nil
}

func (w *Worker) saveCheckpoint(ctx context.Context, lease *projections.Lease, from, to uint64) error {
	set := func(wr projections.Writer) error { return wr.SetCheckpoint(ctx, to) }
	var err error
	if lease != nil {
		err = w.cfg.Backend.Commit(ctx, w.cfg.Namespace, projections.Claim{Lease: *lease, From: from}, set)
	} else {
		err = w.cfg.Backend.Update(ctx, w.cfg.Namespace, set)
	}
	if err != nil {
		return fmt.Errorf("save checkpoint %s at %d: %w", w.cfg.Namespace, to, err)
	}
	return nil
}

// follow subscribes from the checkpoint and delivers until an error.
func (w *Worker) follow(ctx context.Context, lease *projections.Lease, progress func()) error {
	from, err := w.loadCheckpoint(ctx)
	if err != nil {
		return err
	}
	opts := eventstore.SubscribeOptions{After: from, Filter: eventstore.Filter{Types: []string{domain.TypeMessageQueued}}, BatchSize: w.cfg.BatchSize}
	return w.cfg.Store.Subscribe(ctx, opts, func(ctx context.Context, batch []eventstore.Record) error {
		if err := w.deliverBatch(ctx, batch); err != nil {
			return err
		}
		// Every message of the batch has its outcome recorded: save that
		// even if a shutdown cancelled ctx meanwhile, within a bound.
		saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		last := batch[len(batch)-1].Position
		if err := w.saveCheckpoint(saveCtx, lease, from, last); err != nil {
			return err
		}
		from = last
		progress()
		return nil
	})
}

// deliverBatch delivers the batch's messages, Parallel at a time, and
// returns the first error (the batch is then redone from the checkpoint:
// messages with an outcome are skipped).
func (w *Worker) deliverBatch(ctx context.Context, batch []eventstore.Record) error {
	sem := make(chan struct{}, w.cfg.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, rec := range batch {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := w.deliver(ctx, rec); err != nil {
				mu.Lock()
				first = cmp(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// customerState is what the worker reads of a customer's stream.
type customerState struct {
	customer *domain.Customer
	outcomes map[uuid.UUID]bool
	// email and phone are the latest linked identifiers (sealed tokens
	// with a keyring).
	email, phone string
}

func (w *Worker) load(ctx context.Context, customer uuid.UUID) (*customerState, error) {
	st := &customerState{customer: domain.NewCustomer(customer), outcomes: map[uuid.UUID]bool{}}
	stream := domain.StreamID(customer)
	var next uint64
	for {
		page, err := w.cfg.Store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: next, Limit: eventstore.DefaultReadLimit})
		if errors.Is(err, eventstore.ErrNotFound) {
			return st, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		for _, rec := range page {
			e, err := domain.Decode(rec.Type, rec.Metadata.SchemaVersion, rec.Data)
			if err != nil {
				return nil, fmt.Errorf("read %s: event %s: %w", stream, rec.ID, err)
			}
			st.customer.ApplyAt(e, rec.Metadata.OccurredAt)
			switch e := e.(type) {
			case domain.IdentifierLinked:
				switch e.Kind {
				case domain.IdentifierEmail:
					st.email = e.Value
				case domain.IdentifierPhone:
					st.phone = e.Value
				}
			case domain.MessageDelivered:
				st.outcomes[e.MessageID] = true
			case domain.MessageFailed:
				st.outcomes[e.MessageID] = true
			}
			next = rec.Version + 1
		}
		if len(page) < eventstore.DefaultReadLimit {
			return st, nil
		}
	}
}

// gate decides on the customer's stream as it is now whether q may be
// sent: done when it already has an outcome, or the reason it must not be
// sent.
func gate(st *customerState, q domain.MessageQueued) (done bool, reason domain.FailureReason) {
	switch {
	case st.outcomes[q.MessageID]:
		return true, ""
	case st.customer.Forgotten():
		return false, domain.FailureCustomerErased
	}
	if need, ok := domain.MarketingConsent(q); ok && !st.customer.Consented(need) {
		return false, domain.FailureConsentWithdrawn
	}
	return false, ""
}

// deliver sends one queued message and records its outcome; it returns an
// error only when neither happened for good (the batch is then redone).
func (w *Worker) deliver(ctx context.Context, rec eventstore.Record) error {
	customer, err := domain.ParseStreamID(rec.Stream)
	if err != nil {
		w.cfg.Logger.WarnContext(ctx, "delivery: MessageQueued outside a customer stream; skipped", "event", rec.ID, "stream", rec.Stream)
		return nil
	}
	ev, err := domain.Decode(rec.Type, rec.Metadata.SchemaVersion, rec.Data)
	if err != nil {
		return fmt.Errorf("decode %s: %w", rec.ID, err)
	}
	q, ok := ev.(domain.MessageQueued)
	if !ok {
		return nil
	}
	o := outcome{rec: rec, customer: customer, q: q}
	st, err := w.load(ctx, customer)
	if err != nil {
		return err
	}
	if done, reason := gate(st, q); done {
		return nil
	} else if reason != "" {
		return w.fail(ctx, o, reason, 0, "")
	}
	if w.cfg.MaxAge > 0 && w.cfg.Now().Sub(rec.Metadata.OccurredAt) > w.cfg.MaxAge {
		return w.fail(ctx, o, domain.FailureExpired, 0, "")
	}
	sender := w.cfg.Email
	token := st.email
	if q.Channel == domain.ConsentSMS {
		sender, token = w.cfg.SMS, st.phone
	}
	if sender == nil {
		return w.fail(ctx, o, domain.FailureNoChannel, 0, "")
	}
	o.via = sender.Via()
	if token == "" {
		return w.fail(ctx, o, domain.FailureNoRecipient, 0, "no "+string(q.Channel)+" identifier linked")
	}
	msg := Message{ID: q.MessageID, Customer: customer, Channel: q.Channel, Template: q.Template,
		Purpose: q.Purpose, Campaign: q.Campaign, QueuedAt: rec.Metadata.OccurredAt}
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			// The customer may have withdrawn consent or been erased
			// while the message waited for its retry.
			if st, err = w.load(ctx, customer); err != nil {
				return err
			}
			if done, reason := gate(st, q); done {
				return nil
			} else if reason != "" {
				return w.fail(ctx, o, reason, attempt-1, "")
			}
			token = st.email
			if q.Channel == domain.ConsentSMS {
				token = st.phone
			}
		}
		to, reason, err := w.reveal(ctx, customer, token)
		if err != nil {
			return err
		}
		if reason != "" {
			return w.fail(ctx, o, reason, attempt-1, "")
		}
		msg.To, msg.Attempt = to, attempt
		err = sender.Send(ctx, msg)
		msg.To = ""
		if err == nil {
			return w.record(ctx, o, domain.MessageDelivered{MessageID: q.MessageID, Channel: q.Channel, Via: o.via, Attempts: attempt})
		}
		if ctx.Err() != nil {
			// Shutting down, or the lease lost: the next owner retries.
			return ctx.Err()
		}
		if errors.Is(err, ErrPermanent) {
			w.cfg.Logger.WarnContext(ctx, "delivery: refused for good", "msg", msg, "err", err)
			return w.fail(ctx, o, domain.FailureRejected, attempt, detailOf(err))
		}
		if attempt >= w.cfg.MaxAttempts {
			w.cfg.Logger.WarnContext(ctx, "delivery: attempts exhausted; dead letter", "msg", msg, "err", err)
			return w.fail(ctx, o, domain.FailureAttemptsExhausted, attempt, detailOf(err))
		}
		wait := jittered(w.cfg.MinBackoff, w.cfg.MaxBackoff, attempt)
		w.cfg.Logger.InfoContext(ctx, "delivery: send failed; retrying", "msg", msg, "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// reveal opens the recipient's sealed address in memory. reason is set
// when it cannot be had: the key destroyed (customer_erased), or a token
// that does not open (no_recipient).
func (w *Worker) reveal(ctx context.Context, customer uuid.UUID, token string) (string, domain.FailureReason, error) {
	if w.cfg.Keys == nil {
		if domain.IsSealed(token) {
			return "", domain.FailureNoRecipient, nil
		}
		return token, "", nil
	}
	to, err := w.cfg.Keys.Reveal(ctx, customer, token)
	if err != nil {
		return "", "", fmt.Errorf("reveal recipient of customer %s: %w", customer, err)
	}
	switch {
	case to == keyring.Erased:
		return "", domain.FailureCustomerErased, nil
	case to == keyring.Undecryptable || domain.IsSealed(to):
		return "", domain.FailureNoRecipient, nil
	}
	return to, "", nil
}

// outcome is what recording a message's outcome needs.
type outcome struct {
	rec      eventstore.Record
	customer uuid.UUID
	q        domain.MessageQueued
	via      domain.DeliveryVia
}

func (w *Worker) fail(ctx context.Context, o outcome, reason domain.FailureReason, attempts int, detail string) error {
	return w.record(ctx, o, domain.MessageFailed{MessageID: o.q.MessageID, Channel: o.q.Channel, Reason: reason,
		Via: o.via, Attempts: attempts, Detail: detail})
}

// record appends the message's outcome under its deterministic id. It
// outlives a cancelled ctx briefly: after a send, recording it is what
// keeps the next owner from sending again.
func (w *Worker) record(ctx context.Context, o outcome, e domain.Event) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	corr := o.rec.Metadata.CorrelationID
	if corr == "" {
		corr = o.rec.ID.String()
	}
	tp := ledger.Touchpoint{ID: domain.DeliveryOutcomeID(o.q.MessageID), Event: e, Metadata: domain.Metadata{
		OccurredAt: w.cfg.Now().UTC(), Actor: Actor, CorrelationID: corr, CausationID: o.rec.ID.String(),
	}}
	_, err := w.cfg.Recorder.Append(rctx, domain.RoleSystem, o.customer, eventstore.Any, tp)
	switch {
	case err == nil:
		w.cfg.Logger.InfoContext(ctx, "delivery: outcome recorded", "message", o.q.MessageID, "customer", o.customer, "type", e.EventType())
		return nil
	case errors.Is(err, eventstore.ErrDuplicateEvent):
		// Another run recorded this message's outcome first.
		return nil
	case errors.Is(err, domain.ErrRejected):
		// The stream refuses it (the customer forgotten meanwhile, for
		// an outcome other than customer_erased): record that instead.
		if f, ok := e.(domain.MessageFailed); !ok || f.Reason != domain.FailureCustomerErased {
			detail := ""
			if _, sent := e.(domain.MessageDelivered); sent {
				detail = "sent before the erasure was seen"
			}
			return w.record(ctx, o, domain.MessageFailed{MessageID: o.q.MessageID, Channel: o.q.Channel, Reason: domain.FailureCustomerErased, Via: o.via, Detail: detail})
		}
	}
	return fmt.Errorf("record outcome of message %s: %w", o.q.MessageID, err)
}

// jittered is the attempt-th delay of an exponential backoff from lo,
// capped at hi, with ±20% jitter so that retries spread out.
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
