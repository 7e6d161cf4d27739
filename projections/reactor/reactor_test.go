package reactor_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/eventstore/storetest/backends"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/cxledger/cxledger/projections/reactor/reactortest"
	"github.com/google/uuid"
)

// storeAppender appends straight to an event store (the application goes
// through adapters/ledger): an id already stored is success.
type storeAppender struct{ s eventstore.Store }

func (a storeAppender) Append(ctx context.Context, customer uuid.UUID, events ...reactor.Emitted) error {
	data := make([]eventstore.EventData, len(events))
	for i, e := range events {
		typ, v, raw, err := domain.Encode(e.Event)
		if err != nil {
			return err
		}
		if err := e.Metadata.Validate(time.Now()); err != nil {
			return err
		}
		md := eventstore.Metadata(e.Metadata)
		md.SchemaVersion = v
		data[i] = eventstore.EventData{ID: e.ID, Type: typ, Data: raw, Metadata: md}
	}
	_, err := a.s.Append(ctx, domain.StreamID(customer), eventstore.Any, data...)
	if errors.Is(err, eventstore.ErrDuplicateEvent) {
		return nil
	}
	return err
}

// slaReactor is the toy of issue 8: a ticket opened schedules an SLA timer
// that its first response cancels; a breach adds a note. An urgent ticket
// also gets a note at once (an event-triggered emission).
type slaReactor struct{ sla time.Duration }

func (slaReactor) Name() string { return "ticket_sla" }
func (slaReactor) Types() []string {
	return []string{domain.TypeTicketOpened, domain.TypeTicketUpdated}
}

func (r slaReactor) React(_ context.Context, c *reactor.Context, e domain.Envelope) error {
	customer, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return err
	}
	switch ev := e.Event.(type) {
	case domain.TicketOpened:
		payload, _ := json.Marshal(map[string]string{"ticket": ev.TicketID.String()})
		if err := c.Schedule("sla/"+ev.TicketID.String(), customer, e.Metadata.OccurredAt.Add(r.sla), payload); err != nil {
			return err
		}
		if ev.Priority == domain.PriorityUrgent {
			return c.Emit(customer, domain.NoteAdded{Body: "Urgent ticket opened: " + ev.Subject})
		}
	case domain.TicketUpdated:
		if ev.FirstResponse {
			return c.Cancel("sla/" + ev.TicketID.String())
		}
	}
	return nil
}

func (slaReactor) Fire(_ context.Context, c *reactor.Context, t reactor.Timer) error {
	var p struct{ Ticket string }
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return err
	}
	return c.Emit(t.Customer, domain.NoteAdded{Body: "SLA breached: ticket " + p.Ticket})
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

var base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const sla = time.Hour

func appendEvent(t *testing.T, s eventstore.Store, customer uuid.UUID, at time.Time, e domain.Event) uuid.UUID {
	t.Helper()
	typ, v, data, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	md := eventstore.Metadata{OccurredAt: at, Actor: "user:agent-7", Channel: "web", SchemaVersion: v}
	if _, err := s.Append(context.Background(), domain.StreamID(customer), eventstore.Any, eventstore.EventData{ID: id, Type: typ, Data: data, Metadata: md}); err != nil {
		t.Fatal(err)
	}
	return id
}

func openTicket(t *testing.T, s eventstore.Store, customer, ticket uuid.UUID, at time.Time, p domain.TicketPriority) uuid.UUID {
	return appendEvent(t, s, customer, at, domain.TicketOpened{TicketID: ticket, Subject: "Colis jamais arrivé", Priority: p, Channel: domain.TicketWeb})
}

func firstResponse(t *testing.T, s eventstore.Store, customer, ticket uuid.UUID, at time.Time) {
	appendEvent(t, s, customer, at, domain.TicketUpdated{TicketID: ticket, Comment: "Nous regardons.", FirstResponse: true})
}

// notes returns the NoteAdded records of s.
func notes(t *testing.T, s eventstore.Store) []eventstore.Record {
	t.Helper()
	recs, err := s.ReadAll(context.Background(), eventstore.ReadAllOptions{Limit: 10000, Filter: eventstore.Filter{Types: []string{domain.TypeNoteAdded}}})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// running is an engine run in the background.
type running struct {
	e    *reactor.Engine
	stop func() error
}

func start(t *testing.T, s eventstore.Store, b projections.Backend, cfg reactor.Config) *running {
	t.Helper()
	if cfg.TimerInterval == 0 {
		cfg.TimerInterval = 20 * time.Millisecond
	}
	cfg.RetryDelay = 20 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	e := reactor.New(s, b, storeAppender{s}, cfg)
	if err := e.Register(slaReactor{sla: sla}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return &running{e: e, stop: stop}
}

func status(t *testing.T, e *reactor.Engine) reactor.Status { return reactortest.Status(t, e) }

func waitFor(t *testing.T, what string, cond func() bool) { reactortest.WaitFor(t, what, cond) }

func settle(t *testing.T, s eventstore.Store, e *reactor.Engine) { reactortest.Settle(t, s, e) }

// once checks that every note has its own causation: nothing was emitted
// twice.
func once(t *testing.T, recs []eventstore.Record) map[string]eventstore.Record {
	t.Helper()
	by := make(map[string]eventstore.Record)
	for _, r := range recs {
		if _, dup := by[r.Metadata.CausationID]; dup {
			t.Errorf("two notes caused by %s", r.Metadata.CausationID)
		}
		by[r.Metadata.CausationID] = r
	}
	return by
}

func TestTimerFiresOnceAfterDue(t *testing.T) {
	t.Parallel()
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		t.Parallel()
		s := memstore.New(memstore.Config{})
		clk := &clock{now: base}
		customer, ticket := uuid.New(), uuid.New()
		opened := openTicket(t, s, customer, ticket, base, domain.PriorityHigh)
		r := start(t, s, b, reactor.Config{Now: clk.Now})
		settle(t, s, r.e)
		if st := status(t, r.e); st.Pending != 1 || !st.NextDue.Equal(base.Add(sla)) || st.Error != "" {
			t.Fatalf("status = %+v, want one timer due at %s", st, base.Add(sla))
		}
		clk.Set(base.Add(sla - time.Second))
		time.Sleep(100 * time.Millisecond)
		if n := len(notes(t, s)); n != 0 {
			t.Fatalf("%d notes before the due time", n)
		}
		clk.Set(base.Add(sla))
		waitFor(t, "the breach note", func() bool { return len(notes(t, s)) > 0 })
		time.Sleep(100 * time.Millisecond)
		got := notes(t, s)
		if len(got) != 1 {
			t.Fatalf("%d notes, want 1", len(got))
		}
		n := got[0]
		timerID := reactor.Timer{Key: "sla/" + ticket.String(), Due: base.Add(sla)}.ID("ticket_sla")
		e, err := projections.Envelope(n)
		if err != nil {
			t.Fatal(err)
		}
		want := domain.NoteAdded{Body: "SLA breached: ticket " + ticket.String()}
		if e.Event != want || n.Stream != domain.StreamID(customer) {
			t.Errorf("note = %+v in %s, want %+v in the customer's stream", e.Event, n.Stream, want)
		}
		md := n.Metadata
		if md.CausationID != timerID.String() || md.CorrelationID != opened.String() ||
			md.Actor != "system:reactor/ticket_sla" || !md.OccurredAt.Equal(base.Add(sla)) {
			t.Errorf("note metadata = %+v, want caused by timer %s, correlated with %s", md, timerID, opened)
		}
		if st := status(t, r.e); st.Pending != 0 {
			t.Errorf("%d timers pending after firing", st.Pending)
		}
	})
}

func TestFirstResponseCancelsTimer(t *testing.T) {
	t.Parallel()
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		t.Parallel()
		s := memstore.New(memstore.Config{})
		clk := &clock{now: base}
		customer, ticket := uuid.New(), uuid.New()
		openTicket(t, s, customer, ticket, base, domain.PriorityNormal)
		r := start(t, s, b, reactor.Config{Now: clk.Now})
		settle(t, s, r.e)
		firstResponse(t, s, customer, ticket, base.Add(10*time.Minute))
		settle(t, s, r.e)
		clk.Set(base.Add(2 * sla))
		time.Sleep(150 * time.Millisecond)
		if n := len(notes(t, s)); n != 0 {
			t.Errorf("%d notes for an answered ticket", n)
		}
		if st := status(t, r.e); st.Pending != 0 {
			t.Errorf("%d timers pending after the first response", st.Pending)
		}
	})
}

// TestTimerSurvivesRestart stops the engine before the due time and starts
// a new one over the same stores: the timer fires within a second of due,
// on the real clock, exactly once.
func TestTimerSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, name := range backends.Names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := backends.Open(t, name)
			var b projections.Backend
			switch name {
			case "memory":
				b = projectiontest.Memory(t)
			case "embedded":
				b = projectiontest.Bolt(t)
			default:
				b = projectiontest.Postgres(t)
			}
			cfg := reactor.Config{TimerInterval: 200 * time.Millisecond} // the default, real clock
			customer, ticket := uuid.New(), uuid.New()
			opened := time.Now().UTC().Truncate(time.Microsecond)
			// A timer due 2s after the ticket opened.
			openTicket(t, s, customer, ticket, opened.Add(2*time.Second-sla), domain.PriorityHigh)
			due := opened.Add(2 * time.Second)
			r1 := start(t, s, b, cfg)
			waitFor(t, "the timer", func() bool { return status(t, r1.e).Pending == 1 })
			if err := r1.stop(); err != nil {
				t.Fatal(err)
			}
			if time.Now().After(due) {
				t.Fatal("the first engine ran past the due time; the test proves nothing")
			}
			r2 := start(t, s, b, cfg)
			waitFor(t, "the breach note", func() bool { return len(notes(t, s)) > 0 })
			fired := time.Now()
			if late := fired.Sub(due); late > time.Second {
				t.Errorf("fired %s after due, want within 1s", late)
			}
			time.Sleep(500 * time.Millisecond)
			if n := len(notes(t, s)); n != 1 {
				t.Errorf("%d notes, want 1", n)
			}
			if st := status(t, r2.e); st.Pending != 0 || st.Error != "" {
				t.Errorf("status = %+v", st)
			}

			// A timer that falls due while no engine runs fires right
			// after the next start.
			if err := r2.stop(); err != nil {
				t.Fatal(err)
			}
			ticket2 := uuid.New()
			openTicket(t, s, customer, ticket2, time.Now().Add(-sla), domain.PriorityHigh)
			r3 := start(t, s, b, cfg)
			waitFor(t, "the overdue note", func() bool { return len(notes(t, s)) == 2 })
			time.Sleep(500 * time.Millisecond)
			once(t, notes(t, s))
			if n := len(notes(t, s)); n != 2 {
				t.Errorf("%d notes, want 2", n)
			}
			_ = r3.stop()
		})
	}
}

// scenario writes three tickets: one answered in time, one breached, one
// urgent and breached (a note at once, another at the breach).
func scenario(t *testing.T, s eventstore.Store) {
	customer := uuid.New()
	answered, breached, urgent := uuid.New(), uuid.New(), uuid.New()
	openTicket(t, s, customer, answered, base, domain.PriorityNormal)
	openTicket(t, s, customer, breached, base.Add(time.Minute), domain.PriorityHigh)
	openTicket(t, s, uuid.New(), urgent, base.Add(2*time.Minute), domain.PriorityUrgent)
	firstResponse(t, s, customer, answered, base.Add(20*time.Minute))
}

const scenarioNotes = 3 // 2 breaches + 1 urgent

// TestReplayEmitsNothingTwice runs the reactor, drops its namespace and
// runs it again from position 0: the store still holds each note once.
func TestReplayEmitsNothingTwice(t *testing.T) {
	t.Parallel()
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		t.Parallel()
		s := memstore.New(memstore.Config{})
		clk := &clock{now: base.Add(3 * sla)} // every timer is due at once
		scenario(t, s)
		for run := range 3 {
			r := start(t, s, b, reactor.Config{Now: clk.Now})
			waitFor(t, "every note", func() bool { return len(notes(t, s)) >= scenarioNotes })
			settle(t, s, r.e)
			waitFor(t, "no timer pending", func() bool { return status(t, r.e).Pending == 0 })
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			got := notes(t, s)
			once(t, got)
			if len(got) != scenarioNotes {
				t.Fatalf("run %d: %d notes, want %d", run, len(got), scenarioNotes)
			}
			if err := b.Drop(context.Background(), reactor.Namespace("ticket_sla")); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// failingBackend fails every Update while armed, after running fn: the
// appends of the batch are done, the commit is not.
type failingBackend struct {
	projections.Backend
	armed atomic.Bool
	fails atomic.Int64
}

// trackingWriter notes whether a transaction writes anything.
type trackingWriter struct {
	projections.Writer
	wrote bool
}

func (w *trackingWriter) Put(ctx context.Context, key string, value []byte) error {
	w.wrote = true
	return w.Writer.Put(ctx, key, value)
}

func (w *trackingWriter) Delete(ctx context.Context, key string) error {
	w.wrote = true
	return w.Writer.Delete(ctx, key)
}

func (w *trackingWriter) SetCheckpoint(ctx context.Context, position uint64) error {
	w.wrote = true
	return w.Writer.SetCheckpoint(ctx, position)
}

var errCrash = errors.New("injected crash before commit")

func (f *failingBackend) Update(ctx context.Context, ns string, fn func(projections.Writer) error) error {
	return f.Backend.Update(ctx, ns, func(w projections.Writer) error {
		tw := &trackingWriter{Writer: w}
		if err := fn(tw); err != nil {
			return err
		}
		if tw.wrote && f.armed.Load() {
			f.fails.Add(1)
			return errCrash
		}
		return nil
	})
}

// TestCrashBeforeCommit crashes after the append and before the commit of
// an event batch, then of a timer: after a restart nothing is emitted twice.
func TestCrashBeforeCommit(t *testing.T) {
	t.Parallel()
	projectiontest.EachBackend(t, func(t *testing.T, inner projections.Backend) {
		t.Parallel()
		s := memstore.New(memstore.Config{})
		b := &failingBackend{Backend: inner}
		clk := &clock{now: base}
		scenario(t, s)

		// An event batch: the urgent note is appended, the commit fails
		// (and is retried, failing again) until the engine is stopped.
		b.armed.Store(true)
		r := start(t, s, b, reactor.Config{Now: clk.Now})
		waitFor(t, "the urgent note and a retried commit", func() bool {
			return len(notes(t, s)) == 1 && b.fails.Load() >= 3
		})
		if st := status(t, r.e); st.Checkpoint != 0 || st.Error == "" {
			t.Fatalf("status = %+v, want checkpoint 0 and an error", st)
		}
		_ = r.stop()
		b.armed.Store(false)
		r = start(t, s, b, reactor.Config{Now: clk.Now})
		settle(t, s, r.e)
		if n := len(notes(t, s)); n != 1 {
			t.Fatalf("%d notes after restart, want 1", n)
		}

		// A timer: the first breach note is appended, deleting its timer
		// fails (and is retried, failing again, which holds up the
		// second timer).
		b.armed.Store(true)
		failed := b.fails.Load()
		clk.Set(base.Add(3 * sla))
		waitFor(t, "the first breach note and a retried commit", func() bool {
			return len(notes(t, s)) == 2 && b.fails.Load() >= failed+3
		})
		if st := status(t, r.e); st.Pending != 2 {
			t.Fatalf("status = %+v, want both timers still pending", st)
		}
		_ = r.stop()
		b.armed.Store(false)
		r = start(t, s, b, reactor.Config{Now: clk.Now})
		waitFor(t, "no timer pending", func() bool { return status(t, r.e).Pending == 0 })
		settle(t, s, r.e)
		got := notes(t, s)
		once(t, got)
		if len(got) != scenarioNotes {
			t.Errorf("%d notes, want %d", len(got), scenarioNotes)
		}
	})
}

func TestRegisterValidates(t *testing.T) {
	e := reactor.New(memstore.New(memstore.Config{}), projections.NewMemory(), nil, reactor.Config{})
	if err := e.Register(slaReactor{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Register(slaReactor{}); !errors.Is(err, reactor.ErrDuplicateReactor) {
		t.Errorf("second Register = %v, want ErrDuplicateReactor", err)
	}
	if err := e.Register(named("Bad-Name")); err == nil {
		t.Error("Register accepted an invalid name")
	}
}

type named string

func (n named) Name() string                                                 { return string(n) }
func (named) Types() []string                                                { return nil }
func (named) React(context.Context, *reactor.Context, domain.Envelope) error { return nil }
func (named) Fire(context.Context, *reactor.Context, reactor.Timer) error    { return nil }

// With StartAtHead a new reactor ignores the history before it started and
// acts on what happens afterwards; restarted, it resumes from its
// checkpoint.
func TestStartAtHead(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		s := memstore.New(memstore.Config{})
		clk := &clock{now: base}
		customer := uuid.New()
		openTicket(t, s, customer, uuid.New(), base, domain.PriorityHigh) // before the reactor existed
		r := start(t, s, b, reactor.Config{Now: clk.Now, StartAtHead: true})
		settle(t, s, r.e)
		if st := status(t, r.e); st.Pending != 0 {
			t.Fatalf("the old ticket was scheduled: %+v", st)
		}
		openTicket(t, s, customer, uuid.New(), base, domain.PriorityHigh)
		settle(t, s, r.e)
		if st := status(t, r.e); st.Pending != 1 {
			t.Fatalf("the new ticket is not scheduled: %+v", st)
		}
	})
}

// countingSLA is the SLA reactor counting the events it reacts to.
type countingSLA struct {
	slaReactor
	n *atomic.Int64
}

func (r countingSLA) React(ctx context.Context, c *reactor.Context, e domain.Envelope) error {
	r.n.Add(1)
	return r.slaReactor.React(ctx, c, e)
}

// TestOneOwnerAcrossEngines runs two reactor engines with leases on one
// backend, as two serve processes on one PostgreSQL schema would: only the
// lease holder reacts, every emission happens once, and when it shuts down
// the other engine takes the reactor over from its checkpoint and timers.
func TestOneOwnerAcrossEngines(t *testing.T) {
	t.Parallel()
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		t.Parallel()
		s := memstore.New(memstore.Config{})
		// Nothing is due while a scenario is written (an owner reacts
		// live); then every timer is.
		clk := &clock{now: base}
		startOwned := func(owner string, n *atomic.Int64) *running {
			e := reactor.New(s, b, storeAppender{s}, reactor.Config{Now: clk.Now, TimerInterval: 20 * time.Millisecond,
				RetryDelay: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler), Leases: b,
				Lease: projections.LeaseConfig{Owner: owner, TTL: 300 * time.Millisecond, Interval: 30 * time.Millisecond}})
			if err := e.Register(countingSLA{slaReactor{sla: sla}, n}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			var once sync.Once
			var err error
			stop := func() error { once.Do(func() { cancel(); err = <-done }); return err }
			t.Cleanup(func() { _ = stop() })
			return &running{e: e, stop: stop}
		}
		var na, nb atomic.Int64
		a := startOwned("engine-a", &na)
		waitFor(t, "the first engine owning the reactor", func() bool {
			ls, _ := b.ListLeases(context.Background())
			return len(ls) == 1 && ls[0].Owner == "engine-a" && ls[0].Held
		})
		other := startOwned("engine-b", &nb)
		scenario(t, s)
		clk.Set(base.Add(3 * sla))
		waitFor(t, "every note", func() bool { return len(notes(t, s)) >= scenarioNotes })
		settle(t, s, a.e)
		if nb.Load() != 0 {
			t.Fatalf("the standby engine reacted to %d events", nb.Load())
		}
		if err := a.stop(); err != nil {
			t.Fatal(err)
		}
		before := na.Load()
		clk.Set(base)
		scenario(t, s) // three more notes, now for the second engine
		clk.Set(base.Add(3 * sla))
		waitFor(t, "every note after the handover", func() bool { return len(notes(t, s)) >= 2*scenarioNotes })
		settle(t, s, other.e)
		got := notes(t, s)
		once(t, got)
		if len(got) != 2*scenarioNotes {
			t.Fatalf("%d notes, want %d", len(got), 2*scenarioNotes)
		}
		if nb.Load() == 0 || na.Load() != before {
			t.Fatalf("reactions: first engine %d (%d before stopping), second %d", na.Load(), before, nb.Load())
		}
	})
}
