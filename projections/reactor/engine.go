package reactor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrDuplicateReactor: a reactor of that name is already registered.
	ErrDuplicateReactor = errors.New("reactor already registered")
	// ErrRunning: the engine is already running (Register and Run need a
	// stopped engine).
	ErrRunning = errors.New("reactor engine already running")
)

// Config tunes an Engine. The zero Config is ready to use.
type Config struct {
	// BatchSize caps the log events one batch (one transaction) handles; 0
	// means eventstore.DefaultReadLimit.
	BatchSize int
	// TimerInterval is how often due timers are looked for; 0 means 200ms.
	TimerInterval time.Duration
	// TimerBatch caps the timers one round fires; 0 means 256.
	TimerBatch int
	// RetryDelay is the first pause before a failed batch, timer or
	// subscription is retried; it doubles up to a minute. 0 means 500ms.
	RetryDelay time.Duration
	// Logger receives the engine's log; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock timers fall due by; nil means time.Now.
	Now func() time.Time
	// StartAtHead starts a reactor seen for the first time (its namespace
	// does not exist yet) at the log's head instead of position 0, so that
	// a rule added to a running ledger acts on what happens from then on,
	// not on years of history. A reactor with a namespace resumes from its
	// checkpoint either way.
	StartAtHead bool
	// Leases, when set, gives each reactor one owner across every process
	// sharing them (normally the read-model backend, as Backend is): a
	// reactor runs only while its engine holds the lease "reactor/<name>",
	// and every commit of its state is fenced by that lease, so that an
	// owner that lost it without noticing (paused, cut off) commits
	// nothing. Its emissions are idempotent by id, so one it had appended
	// before losing the lease is not appended twice by the new owner.
	Leases projections.Leases
	// Lease tunes the leases (owner, TTL, renewal); its Name is ignored.
	Lease projections.LeaseConfig
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = eventstore.DefaultReadLimit
	}
	if c.TimerInterval <= 0 {
		c.TimerInterval = 200 * time.Millisecond
	}
	if c.TimerBatch <= 0 {
		c.TimerBatch = 256
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Engine runs reactors, each from its own checkpoint in its own namespace
// of a projections.Backend. One engine at a time may run a given reactor on
// a backend.
type Engine struct {
	src projections.Source
	b   projections.Backend
	app Appender
	cfg Config

	mu       sync.Mutex
	runners  []*runner
	running  bool
	registry map[string]*runner
}

// New returns an engine reading src, keeping state in b and appending
// through app.
func New(src projections.Source, b projections.Backend, app Appender, cfg Config) *Engine {
	cfg.setDefaults()
	return &Engine{src: src, b: b, app: app, cfg: cfg, registry: make(map[string]*runner)}
}

// Register adds a reactor; it must be called before Run.
func (e *Engine) Register(r Reactor) error {
	if err := Validate(r); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running {
		return ErrRunning
	}
	if _, ok := e.registry[r.Name()]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicateReactor, r.Name())
	}
	types := r.Types()
	if len(types) == 0 {
		types = domain.Types()
	}
	ru := &runner{e: e, r: r, name: r.Name(), ns: Namespace(r.Name()), types: make(map[string]bool, len(types))}
	for _, t := range types {
		ru.types[t] = true
	}
	e.registry[ru.name] = ru
	e.runners = append(e.runners, ru)
	return nil
}

// Run runs every registered reactor until ctx ends (returning nil) or the
// store closes (returning eventstore.ErrClosed). Each reactor catches up
// from its checkpoint, then follows the log live, and fires its due timers
// every Config.TimerInterval. Failures are retried with backoff and
// reported by Status.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return ErrRunning
	}
	e.running = true
	runners := slices.Clone(e.runners)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		fatal error
		once  sync.Once
	)
	stop := func(err error) {
		once.Do(func() { fatal = err })
		cancel()
	}
	for _, ru := range runners {
		if e.cfg.Leases == nil {
			wg.Go(func() {
				if err := ru.run(ctx); err != nil {
					stop(err)
				}
			})
			continue
		}
		lc := e.cfg.Lease
		lc.Name = "reactor/" + ru.name
		lc.OnWaiting = func(err error) {
			ru.log().Info("reactor on standby: another process runs it", "holder", err)
		}
		wg.Go(func() {
			err := projections.RunOwned(ctx, e.cfg.Leases, lc, func(ctx context.Context, l projections.Lease) error {
				ru.lease.Store(&l)
				defer ru.lease.Store(nil)
				ru.log().Info("reactor owns its lease; running", "epoch", l.Epoch)
				return ru.run(ctx)
			})
			if err != nil {
				stop(err)
			}
		})
	}
	wg.Wait()
	return fatal
}

// run follows the log and fires timers until ctx ends (nil) or the store
// closes.
func (ru *runner) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { ru.timers(ctx) })
	err := ru.follow(ctx)
	cancel()
	wg.Wait()
	return err
}

// commit writes the reactor's namespace: fenced by its lease (Config.Leases)
// from the checkpoint it last committed, or a plain Update without leases.
func (ru *runner) commit(ctx context.Context, fn func(projections.Writer) error) error {
	if l := ru.lease.Load(); l != nil {
		return ru.e.b.Commit(ctx, ru.ns, projections.Claim{Lease: *l, From: ru.processed.Load()}, fn)
	}
	return ru.e.b.Update(ctx, ru.ns, fn)
}

// Status describes one reactor.
type Status struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Checkpoint is the last log position committed into Namespace.
	Checkpoint uint64 `json:"checkpoint"`
	// Pending counts the scheduled timers; NextDue is the earliest one's
	// due time (zero when none).
	Pending int       `json:"pending"`
	NextDue time.Time `json:"nextDue,omitzero"`
	// Error is the last failure being retried ("" when healthy).
	Error string `json:"error,omitempty"`
}

// Status reports every registered reactor, in registration order. It reads
// the backend, so it also works while the engine is stopped.
func (e *Engine) Status(ctx context.Context) ([]Status, error) {
	e.mu.Lock()
	runners := slices.Clone(e.runners)
	e.mu.Unlock()
	out := make([]Status, 0, len(runners))
	for _, ru := range runners {
		st := Status{Name: ru.name, Namespace: ru.ns}
		cp, err := e.b.Checkpoint(ctx, ru.ns)
		if err != nil {
			return nil, fmt.Errorf("reactor %s: %w", ru.name, err)
		}
		st.Checkpoint = cp
		err = e.b.View(ctx, ru.ns, func(r projections.Reader) error {
			return r.Scan(ctx, duePrefix, "", func(_ string, v []byte) (bool, error) {
				if st.Pending == 0 {
					var t Timer
					if err := json.Unmarshal(v, &t); err != nil {
						return false, err
					}
					st.NextDue = t.Due
				}
				st.Pending++
				return true, nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("reactor %s: %w", ru.name, err)
		}
		if err := ru.lastErr.Load(); err != nil {
			st.Error = (*err).Error()
		}
		out = append(out, st)
	}
	return out, nil
}

// runner runs one reactor.
type runner struct {
	e     *Engine
	r     Reactor
	name  string
	ns    string
	types map[string]bool

	// mu serializes the reactor's batches and timer rounds, the only
	// writers of its namespace.
	mu sync.Mutex
	// processed is the last log position handled (committed), watermark
	// the recording time of the last event handled, in Unix nanoseconds.
	processed atomic.Uint64
	watermark atomic.Int64
	lastErr   atomic.Pointer[error]
	// lease is held while the reactor runs under Config.Leases.
	lease atomic.Pointer[projections.Lease]
}

func (ru *runner) log() *slog.Logger { return ru.e.cfg.Logger.With("reactor", ru.name) }

func (ru *runner) fail(err error) {
	ru.lastErr.Store(&err)
	ru.log().Error("reactor failed, will retry", "err", err)
}

// sleep waits d or until ctx ends, reporting whether ctx is still alive.
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

// follow reads the log from the checkpoint and handles it batch by batch,
// resubscribing after failures, until ctx ends (nil) or the store closes.
func (ru *runner) follow(ctx context.Context) error {
	delay := ru.e.cfg.RetryDelay
	for {
		err := ru.subscribe(ctx, &delay)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, eventstore.ErrClosed) {
			return fmt.Errorf("reactor %s: %w", ru.name, err)
		}
		ru.fail(err)
		if !sleep(ctx, delay) {
			return nil
		}
		delay = min(2*delay, time.Minute)
	}
}

func (ru *runner) subscribe(ctx context.Context, delay *time.Duration) error {
	start := uint64(0)
	if ru.e.cfg.StartAtHead {
		spaces, err := ru.e.b.Namespaces(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(spaces, ru.ns) {
			if start, err = ru.e.src.Head(ctx); err != nil {
				return err
			}
		}
	}
	// Create the namespace, so that View works before the first batch.
	if err := ru.e.b.Update(ctx, ru.ns, func(w projections.Writer) error {
		if start > 0 {
			return w.SetCheckpoint(ctx, start)
		}
		return nil
	}); err != nil {
		return err
	}
	cp, err := ru.e.b.Checkpoint(ctx, ru.ns)
	if err != nil {
		return err
	}
	ru.processed.Store(cp)
	// No type filter: the checkpoint then moves with every batch, so that
	// "caught up with the head" is observable for the timer gate.
	opts := eventstore.SubscribeOptions{After: cp, BatchSize: ru.e.cfg.BatchSize}
	return ru.e.src.Subscribe(ctx, opts, func(ctx context.Context, batch []eventstore.Record) error {
		if err := ru.handle(ctx, batch); err != nil {
			return err
		}
		ru.lastErr.Store(nil)
		*delay = ru.e.cfg.RetryDelay
		return nil
	})
}

// handle runs one batch: React on every matching event, append what was
// emitted, then commit timer changes and the checkpoint together.
func (ru *runner) handle(ctx context.Context, batch []eventstore.Record) error {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	var done []*Context
	for _, rec := range batch {
		if !ru.types[rec.Type] {
			continue
		}
		env, err := projections.Envelope(rec)
		if err != nil {
			return fmt.Errorf("reactor %s: %w", ru.name, err)
		}
		c := eventContext(ru.name, env)
		if err := safely(func() error { return ru.r.React(ctx, c, env) }); err != nil {
			return fmt.Errorf("reactor %s: event %s at position %d: %w", ru.name, env.ID, env.Position, err)
		}
		if len(c.emitted) > 0 || len(c.changes) > 0 {
			done = append(done, c)
		}
	}
	for _, c := range done {
		if err := ru.append(ctx, c); err != nil {
			return err
		}
	}
	last := batch[len(batch)-1]
	err := ru.commit(ctx, func(w projections.Writer) error {
		for _, c := range done {
			for _, ch := range c.changes {
				if err := applyChange(ctx, w, ch); err != nil {
					return err
				}
			}
		}
		return w.SetCheckpoint(ctx, last.Position)
	})
	if err != nil {
		return fmt.Errorf("reactor %s: commit at position %d: %w", ru.name, last.Position, err)
	}
	ru.processed.Store(last.Position)
	ru.watermark.Store(last.RecordedAt.UnixNano())
	return nil
}

// append appends c's emissions, each run of consecutive events for one
// customer in one atomic Append.
func (ru *runner) append(ctx context.Context, c *Context) error {
	for i := 0; i < len(c.emitted); {
		j := i + 1
		for j < len(c.emitted) && c.emitted[j].customer == c.emitted[i].customer {
			j++
		}
		events := make([]Emitted, 0, j-i)
		for _, em := range c.emitted[i:j] {
			events = append(events, em.Emitted)
		}
		customer := c.emitted[i].customer
		if err := ru.e.app.Append(ctx, customer, events...); err != nil {
			if !errors.Is(err, domain.ErrRejected) {
				return fmt.Errorf("reactor %s: append for %s caused by %s: %w", ru.name, customer, c.trigger, err)
			}
			ru.log().Warn("emission rejected, skipped", "customer", customer, "trigger", c.trigger, "err", err)
		}
		i = j
	}
	return nil
}

// applyChange schedules or cancels one timer key in w.
func applyChange(ctx context.Context, w projections.Writer, ch change) error {
	ref := keyPrefix + ch.key
	raw, ok, err := w.Get(ctx, ref)
	if err != nil {
		return err
	}
	if ok {
		var kr keyRef
		if err := json.Unmarshal(raw, &kr); err != nil {
			return fmt.Errorf("decode %q: %w", ref, err)
		}
		if err := w.Delete(ctx, kr.Due); err != nil {
			return err
		}
	}
	if ch.timer == nil {
		return w.Delete(ctx, ref)
	}
	dk := dueKey(*ch.timer)
	data, err := json.Marshal(ch.timer)
	if err != nil {
		return err
	}
	if err := w.Put(ctx, dk, data); err != nil {
		return err
	}
	kr, err := json.Marshal(keyRef{Due: dk})
	if err != nil {
		return err
	}
	return w.Put(ctx, ref, kr)
}

// safely calls fn, turning a panic into an error.
func safely(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn()
}

// timers fires due timers every TimerInterval until ctx ends.
func (ru *runner) timers(ctx context.Context) {
	tick := time.NewTicker(ru.e.cfg.TimerInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := ru.fireDue(ctx); err != nil && ctx.Err() == nil {
			ru.fail(err)
		}
	}
}

// fireDue fires the timers that are due and that the reactor has read the
// log far enough for (see the package documentation).
func (ru *runner) fireDue(ctx context.Context) error {
	head, err := ru.e.src.Head(ctx)
	if err != nil {
		return err
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	now := ru.e.cfg.Now()
	caughtUp := ru.processed.Load() >= head
	watermark := time.Unix(0, ru.watermark.Load())
	var due []Timer
	err = ru.e.b.View(ctx, ru.ns, func(r projections.Reader) error {
		due = due[:0]
		return r.Scan(ctx, duePrefix, "", func(_ string, v []byte) (bool, error) {
			var t Timer
			if err := json.Unmarshal(v, &t); err != nil {
				return false, err
			}
			if t.Due.After(now) || (!caughtUp && t.Due.After(watermark)) {
				return false, nil
			}
			due = append(due, t)
			return len(due) < ru.e.cfg.TimerBatch, nil
		})
	})
	if err != nil {
		return fmt.Errorf("reactor %s: scan timers: %w", ru.name, err)
	}
	for _, t := range due {
		if err := ru.fire(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// fire fires one timer: Fire, append, then delete it (and apply what Fire
// scheduled) in one transaction.
func (ru *runner) fire(ctx context.Context, t Timer) error {
	c := timerContext(ru.name, t)
	if err := safely(func() error { return ru.r.Fire(ctx, c, t) }); err != nil {
		return fmt.Errorf("reactor %s: timer %q due %s: %w", ru.name, t.Key, t.Due, err)
	}
	if err := ru.append(ctx, c); err != nil {
		return err
	}
	dk := dueKey(t)
	err := ru.commit(ctx, func(w projections.Writer) error {
		if err := w.Delete(ctx, dk); err != nil {
			return err
		}
		ref := keyPrefix + t.Key
		raw, ok, err := w.Get(ctx, ref)
		if err != nil {
			return err
		}
		var kr keyRef
		if ok && json.Unmarshal(raw, &kr) == nil && kr.Due == dk {
			if err := w.Delete(ctx, ref); err != nil {
				return err
			}
		}
		for _, ch := range c.changes {
			if err := applyChange(ctx, w, ch); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reactor %s: commit timer %q: %w", ru.name, t.Key, err)
	}
	ru.log().Debug("timer fired", "key", t.Key, "due", t.Due, "id", c.trigger)
	return nil
}
