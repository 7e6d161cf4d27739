package pgstore_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// The torture tests run a short variant always and a long one on demand:
//
//	go test -race ./eventstore/pgstore -run Torture -timeout 30m -pgstore.torture
//	CXLEDGER_TORTURE_LONG=1 go test -race ./eventstore/pgstore -run Torture -timeout 30m
var tortureLong = flag.Bool("pgstore.torture", false, "run the long torture variants (200,000 events); CXLEDGER_TORTURE_LONG=1 does the same")

func longTorture() bool { return *tortureLong || os.Getenv("CXLEDGER_TORTURE_LONG") == "1" }

// Event types of the torture load: explicit names, as stored history has.
const (
	typeCall     = "CallLogged"
	typeNote     = "NoteAdded"
	typePurchase = "PurchaseCompleted"
)

var tortureTypes = []string{typeCall, typeNote, typePurchase}

// placed is where the store said an acknowledged event landed.
type placed struct {
	stream            string
	version, position uint64
}

// seen is what a subscriber keeps of a delivered record: enough to compare
// it with ReadAll without holding every payload.
type seen struct {
	position, version uint64
	id                uuid.UUID
	stream, typ       string
}

func seenOf(r eventstore.Record) seen {
	return seen{position: r.Position, version: r.Version, id: r.ID, stream: r.Stream, typ: r.Type}
}

// watcher is one live subscriber of the torture: it records every record
// delivered and flags, as it happens, a position that does not follow the
// previous one (unfiltered: exactly the next; filtered: strictly greater).
// With restartEvery > 0 it ends its subscription after about that many
// events and resubscribes after the last position it got, as a client
// reconnecting with Last-Event-ID does.
type watcher struct {
	name         string
	opts         eventstore.SubscribeOptions
	restartEvery int

	mu       sync.Mutex
	got      []seen
	bad      error
	restarts int
}

var errRestart = errors.New("torture: resubscribe")

func (w *watcher) handle(_ context.Context, batch []eventstore.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range batch {
		prev := w.opts.After
		if n := len(w.got); n > 0 {
			prev = w.got[n-1].position
		}
		filtered := len(w.opts.Filter.Types) > 0
		if w.bad == nil && (!filtered && r.Position != prev+1 || filtered && r.Position <= prev) {
			w.bad = fmt.Errorf("%s: position %d delivered after %d (skip, repeat or reorder)", w.name, r.Position, prev)
		}
		if w.bad == nil && filtered && !w.opts.Filter.Match(r) {
			w.bad = fmt.Errorf("%s: position %d of type %s passed the filter %v", w.name, r.Position, r.Type, w.opts.Filter.Types)
		}
		w.got = append(w.got, seenOf(r))
	}
	if w.restartEvery > 0 && len(w.got)/w.restartEvery > w.restarts {
		w.restarts++
		return errRestart
	}
	return nil
}

// run subscribes until ctx ends, resubscribing after the last delivered
// position when the handler asked for a restart.
func (w *watcher) run(ctx context.Context, s eventstore.Store) error {
	for {
		opts := w.opts
		w.mu.Lock()
		if n := len(w.got); n > 0 {
			opts.After = w.got[n-1].position
		}
		w.mu.Unlock()
		err := s.Subscribe(ctx, opts, w.handle)
		switch {
		case errors.Is(err, errRestart):
			continue
		case ctx.Err() != nil && errors.Is(err, context.Canceled):
			return nil
		default:
			return fmt.Errorf("%s: subscription ended: %w", w.name, err)
		}
	}
}

func (w *watcher) state() (n int, last uint64, bad error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n = len(w.got); n > 0 {
		last = w.got[n-1].position
	}
	return n, last, w.bad
}

// watchers runs subscribers in the background and stops them at the end of
// the test, failing it if one ended for any reason but that.
type watchers struct {
	t      *testing.T
	ctx    context.Context
	g      errgroup.Group
	all    []*watcher
	cancel context.CancelFunc
}

func startWatchers(t *testing.T, ctx context.Context) *watchers {
	ws := &watchers{t: t}
	ws.ctx, ws.cancel = context.WithCancel(ctx)
	t.Cleanup(func() {
		ws.cancel()
		if err := ws.g.Wait(); err != nil {
			t.Error(err)
		}
	})
	return ws
}

func (ws *watchers) start(s eventstore.Store, w *watcher) *watcher {
	ws.all = append(ws.all, w)
	ws.g.Go(func() error { return w.run(ws.ctx, s) })
	return w
}

// waitAll waits until every watcher has delivered up to head (the last
// position of the whole log), failing at once on a recorded violation.
func (ws *watchers) waitAll(head uint64, lastMatching func(eventstore.Filter) uint64, within time.Duration) {
	t := ws.t
	t.Helper()
	deadline := time.Now().Add(within)
	for _, w := range ws.all {
		want := head
		if len(w.opts.Filter.Types) > 0 {
			want = lastMatching(w.opts.Filter)
		}
		for {
			_, last, bad := w.state()
			if bad != nil {
				t.Fatal(bad)
			}
			if last >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s reached position %d of %d within %s", w.name, last, want, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// tortureLoad is the write side: writers appending on their own streams
// with exact expected versions and, now and then, on a few hot streams
// shared by all (read the head, append at exactly it, retry on conflict).
type tortureLoad struct {
	stores  []*pgstore.Store
	writers int
	total   int           // events to append in all
	hot     []string      // streams every writer appends to
	own     int           // streams per writer
	pace    time.Duration // pause between a writer's appends (0: none)

	reserved  atomic.Int64
	conflicts atomic.Int64
	appends   atomic.Int64

	mu     sync.Mutex
	acked  map[uuid.UUID]placed
	counts map[string]uint64 // events acknowledged per stream
	spans  []appendSpan
}

// appendSpan is one acknowledged append: when it was called and returned,
// and the positions it took.
type appendSpan struct {
	start, end time.Time
	first      uint64 // first position
	last       uint64
}

func newLoad(stores []*pgstore.Store, writers, total int) *tortureLoad {
	l := &tortureLoad{stores: stores, writers: writers, total: total, own: 8,
		acked: make(map[uuid.UUID]placed, total), counts: map[string]uint64{}}
	for range 4 {
		l.hot = append(l.hot, customerStream())
	}
	return l
}

// tortureEvent is a small realistic event of one of the torture's types.
func tortureEvent(writer, seq int) eventstore.EventData {
	e := touchpoint(seq)
	e.Type = tortureTypes[rand.IntN(len(tortureTypes))]
	e.Metadata.Actor = fmt.Sprintf("service:torture-%d", writer)
	return e
}

// run appends until total events are acknowledged; every append is
// decided with an exact expected version (NoStream for a new stream).
func (l *tortureLoad) run(ctx context.Context) error {
	var g errgroup.Group
	for w := range l.writers {
		s := l.stores[w%len(l.stores)]
		g.Go(func() error { return l.writer(ctx, w, s) })
	}
	return g.Wait()
}

func (l *tortureLoad) writer(ctx context.Context, w int, s *pgstore.Store) error {
	own := make([]string, l.own)
	for i := range own {
		own[i] = customerStream()
	}
	version := map[string]int64{} // own streams: last version, -1 when new
	for _, st := range own {
		version[st] = -1
	}
	for seq := 0; ; seq++ {
		n := 1
		if rand.IntN(2) == 0 {
			n = 2 + rand.IntN(4) // multi-event appends of 2 to 5
		}
		// Take n events of the total; the writer whose take passes the
		// end appends the remainder, the later ones stop.
		if over := l.reserved.Add(int64(n)) - int64(l.total); over > 0 {
			if n -= int(over); n <= 0 {
				return nil
			}
		}
		evs := make([]eventstore.EventData, n)
		for i := range evs {
			evs[i] = tortureEvent(w, seq)
		}
		var (
			stream string
			res    eventstore.AppendResult
			start  time.Time
			err    error
		)
		if rand.IntN(10) == 0 {
			stream = l.hot[rand.IntN(len(l.hot))]
			start, res, err = l.appendHot(ctx, s, stream, evs)
		} else {
			stream = own[rand.IntN(len(own))]
			expected := eventstore.NoStream
			if v := version[stream]; v >= 0 {
				expected = eventstore.Exact(uint64(v))
			}
			start = time.Now()
			res, err = s.Append(ctx, stream, expected, evs...)
			if err == nil && int64(res.Version) != version[stream]+int64(n) {
				err = fmt.Errorf("append %d events at %d to %s answered version %d", n, version[stream], stream, res.Version)
			}
			version[stream] = int64(res.Version)
		}
		end := time.Now()
		if err != nil {
			return fmt.Errorf("writer %d: %w", w, err)
		}
		l.record(stream, evs, res, start, end)
		if l.pace > 0 {
			time.Sleep(l.pace)
		}
	}
}

// appendHot appends to a shared stream at its current version, re-reading
// the version after each conflict with another writer.
func (l *tortureLoad) appendHot(ctx context.Context, s *pgstore.Store, stream string, evs []eventstore.EventData) (time.Time, eventstore.AppendResult, error) {
	for {
		expected := eventstore.NoStream
		recs, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true, Limit: 1})
		switch {
		case err == nil:
			expected = eventstore.Exact(recs[0].Version)
		case !errors.Is(err, eventstore.ErrNotFound):
			return time.Time{}, eventstore.AppendResult{}, err
		}
		start := time.Now()
		res, err := s.Append(ctx, stream, expected, evs...)
		var conflict *eventstore.VersionConflictError
		if errors.As(err, &conflict) {
			l.conflicts.Add(1)
			continue
		}
		return start, res, err
	}
}

func (l *tortureLoad) record(stream string, evs []eventstore.EventData, res eventstore.AppendResult, start, end time.Time) {
	n := uint64(len(evs))
	l.appends.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range evs {
		l.acked[e.ID] = placed{stream: stream, version: res.Version - n + 1 + uint64(i), position: res.Position - n + 1 + uint64(i)}
	}
	l.counts[stream] += n
	l.spans = append(l.spans, appendSpan{start: start, end: end, first: res.Position - n + 1, last: res.Position})
}

// readLog reads the whole log with ReadAll.
func readLog(t *testing.T, ctx context.Context, s eventstore.Store) []seen {
	t.Helper()
	var log []seen
	for {
		after := uint64(0)
		if len(log) > 0 {
			after = log[len(log)-1].position
		}
		page, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 5000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return log
		}
		for _, r := range page {
			log = append(log, seenOf(r))
		}
	}
}

// verify checks the end state: the log is exactly the acknowledged events
// at positions 1..N where each append was told they landed, every stream's
// versions are gapless and in position order (in ReadAll and ReadStream
// alike), and every subscriber holds exactly its slice of that log, each
// position once and in order.
func verify(t *testing.T, ctx context.Context, s eventstore.Store, l *tortureLoad, ws *watchers) {
	t.Helper()
	log := readLog(t, ctx, s)
	if len(log) != len(l.acked) {
		t.Fatalf("ReadAll holds %d events, %d were acknowledged", len(log), len(l.acked))
	}
	next := map[string]uint64{}
	for i, r := range log {
		if r.position != uint64(i+1) {
			t.Fatalf("ReadAll: event %d at position %d; positions must be 1..N without gaps", i, r.position)
		}
		p, ok := l.acked[r.id]
		if !ok {
			t.Fatalf("position %d holds event %s, which no writer appended", r.position, r.id)
		}
		if p != (placed{r.stream, r.version, r.position}) {
			t.Fatalf("event %s stored at %s v%d p%d, its append answered %s v%d p%d", r.id, r.stream, r.version, r.position, p.stream, p.version, p.position)
		}
		if r.version != next[r.stream] {
			t.Fatalf("stream %s: version %d at position %d, want %d (versions gapless, in log order)", r.stream, r.version, r.position, next[r.stream])
		}
		next[r.stream]++
	}
	for stream, n := range l.counts {
		if next[stream] != n {
			t.Fatalf("stream %s: %d events in the log, %d acknowledged", stream, next[stream], n)
		}
	}
	// ReadStream agrees with the log, stream by stream.
	byStream := map[string][]seen{}
	for _, r := range log {
		byStream[r.stream] = append(byStream[r.stream], r)
	}
	for stream, want := range byStream {
		recs, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Limit: len(want) + 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(want) {
			t.Fatalf("ReadStream %s: %d events, the log holds %d", stream, len(recs), len(want))
		}
		for i, r := range recs {
			if seenOf(r) != want[i] {
				t.Fatalf("ReadStream %s: event %d is %+v, the log has %+v", stream, i, seenOf(r), want[i])
			}
		}
	}
	for _, w := range ws.all {
		_, _, bad := w.state()
		if bad != nil {
			t.Fatal(bad)
		}
		var want []seen
		for _, r := range log {
			if r.position > w.opts.After && w.opts.Filter.Match(eventstore.Record{Type: r.typ}) {
				want = append(want, r)
			}
		}
		w.mu.Lock()
		got := slices.Clone(w.got)
		w.mu.Unlock()
		if len(got) != len(want) {
			t.Fatalf("%s got %d events, ReadAll holds %d for it", w.name, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: event %d is %+v, ReadAll has %+v", w.name, i, got[i], want[i])
			}
		}
		t.Logf("%s: %d events, in order, none skipped or repeated (%d resubscriptions)", w.name, len(got), w.restarts)
	}
}

// lastMatchingIn returns, for a filter, the last position of the log it
// matches.
func lastMatchingIn(t *testing.T, ctx context.Context, s eventstore.Store) func(eventstore.Filter) uint64 {
	return func(f eventstore.Filter) uint64 {
		log := readLog(t, ctx, s)
		for i := len(log) - 1; i >= 0; i-- {
			if f.Match(eventstore.Record{Type: log[i].typ}) {
				return log[i].position
			}
		}
		return 0
	}
}

// randomDelay is the in-transaction delay of the torture: every batch a
// Store commits sleeps 0 to limit between its insert and its COMMIT, so that
// commits of different "processes" overlap in every order.
func randomDelay(limit time.Duration) func() {
	return func() { time.Sleep(rand.N(limit)) }
}

// openTortureStores opens n Stores ("processes") on schema, each pausing a
// random small time inside every transaction.
func openTortureStores(t *testing.T, schema string, n int) []*pgstore.Store {
	stores := make([]*pgstore.Store, n)
	for i := range stores {
		stores[i] = openStore(t, schema, pgstore.Options{MaxConns: 4})
		pgstore.SetAfterInsertHook(stores[i], randomDelay(2*time.Millisecond))
	}
	return stores
}

// waitHead waits until the log of s reaches position p.
func waitHead(t *testing.T, ctx context.Context, s eventstore.Store, p uint64) {
	t.Helper()
	for {
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatalf("waiting for position %d: %v", p, err)
		}
		if head >= p {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTorture: 16 writers on three Stores sharing one schema (three
// "processes"), each transaction pausing a random 0-2ms between insert and
// COMMIT, append single events and runs of 2 to 5 on 132 streams with
// exact expected versions (hot streams shared by all writers, with
// conflicts). Live subscribers watch throughout: unfiltered ones woken
// only by NOTIFY and by local commits, one filtered by type, one with
// batches of 3 started mid-load from the beginning (catch-up racing the
// load), one started mid-load at the head, one resubscribing every few
// hundred events. At the end every subscriber holds every position of its
// slice of the log exactly once, in order, equal to ReadAll, and every
// stream's versions are gapless.
func TestTorture(t *testing.T) {
	t.Parallel()
	total, within := 20_000, 3*time.Minute
	if longTorture() {
		total, within = 200_000, 30*time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	schema := pgtest.Schema(t)
	stores := openTortureStores(t, schema, 3)
	reader := openStore(t, schema, pgstore.Options{Poll: time.Hour, MaxConns: 4})

	ws := startWatchers(t, ctx)
	ws.start(reader, &watcher{name: "unfiltered (NOTIFY only)"})
	ws.start(reader, &watcher{name: "filtered by type", opts: eventstore.SubscribeOptions{Filter: eventstore.Filter{Types: []string{typePurchase}}, BatchSize: 50}})
	ws.start(stores[0], &watcher{name: "resubscribing", opts: eventstore.SubscribeOptions{BatchSize: 10}, restartEvery: total / 40})

	load := newLoad(stores, 16, total)
	began := time.Now()
	loadErr := make(chan error, 1)
	go func() { loadErr <- load.run(ctx) }()

	// Two more join under load: one replays the log from the start in
	// batches of 3 while it grows, one starts at the head of the moment.
	waitHead(t, ctx, reader, uint64(total/4))
	ws.start(stores[1], &watcher{name: "batch of 3, joined mid-load from 0", opts: eventstore.SubscribeOptions{BatchSize: 3}})
	head, err := reader.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ws.start(stores[2], &watcher{name: fmt.Sprintf("joined mid-load after %d", head), opts: eventstore.SubscribeOptions{After: head, BatchSize: 17}})

	if err := <-loadErr; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(began)
	ws.waitAll(uint64(total), lastMatchingIn(t, ctx, reader), time.Until(deadlineOf(ctx)))
	caughtUp := time.Since(began)
	verify(t, ctx, reader, load, ws)
	t.Logf("%d events in %d appends by 16 writers on 3 stores in %s (%d version conflicts on hot streams retried); subscribers caught up %s after the start",
		total, load.appends.Load(), elapsed.Round(time.Millisecond), load.conflicts.Load(), caughtUp.Round(time.Millisecond))
}

func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Minute)
	}
	return d
}

// TestTortureHeldPosition: under the torture load, one transaction of a
// fourth Store draws its positions and then holds them for 2.5s before
// COMMIT. The technique's promise is that no reader passes it: the other
// Stores keep appending (and committing later positions) during the hold,
// but subscribers see nothing past it until it commits, a Head asked during
// the hold answers only once it has committed, and then everyone sees it and
// everything after in order. The price is paid by readers, who wait for the
// held transaction; the test logs how long, and what the appends cost.
func TestTortureHeldPosition(t *testing.T) {
	t.Parallel()
	total, within := 6_000, 3*time.Minute
	if longTorture() {
		total, within = 60_000, 30*time.Minute
	}
	const hold = 2500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	schema := pgtest.Schema(t)
	stores := openTortureStores(t, schema, 3)
	reader := openStore(t, schema, pgstore.Options{Poll: time.Hour, MaxConns: 4})
	holder := openStore(t, schema, pgstore.Options{MaxConns: 2})

	var (
		armed                     atomic.Bool
		holding                   = make(chan struct{})
		holdStart, holdEnd        time.Time // written by the hook before holding/held close
		held                      = make(chan struct{})
		headDuring, deliveredSeen uint64
	)
	armed.Store(true)
	pgstore.SetAfterInsertHook(holder, func() {
		if !armed.CompareAndSwap(true, false) {
			return
		}
		holdStart = time.Now()
		close(holding)
		time.Sleep(hold)
		holdEnd = time.Now()
		close(held)
	})

	ws := startWatchers(t, ctx)
	unfiltered := ws.start(reader, &watcher{name: "unfiltered (NOTIFY only)"})
	ws.start(reader, &watcher{name: "filtered by type", opts: eventstore.SubscribeOptions{Filter: eventstore.Filter{Types: []string{typeCall}}, BatchSize: 20}})
	ws.start(stores[0], &watcher{name: "batch of 1", opts: eventstore.SubscribeOptions{BatchSize: 1}})

	load := newLoad(stores, 16, total)
	// A little pacing keeps the load running for the whole hold, even
	// on a fast machine.
	load.pace = time.Millisecond
	loadErr := make(chan error, 1)
	go func() { loadErr <- load.run(ctx) }()

	waitHead(t, ctx, reader, uint64(total/4))
	heldEvents := []eventstore.EventData{tortureEvent(99, 0), tortureEvent(99, 1), tortureEvent(99, 2)}
	heldStream := customerStream()
	type result struct {
		res eventstore.AppendResult
		err error
	}
	heldRes := make(chan result, 1)
	go func() {
		res, err := holder.Append(ctx, heldStream, eventstore.NoStream, heldEvents...)
		heldRes <- result{res, err}
	}()
	select {
	case <-holding:
	case <-ctx.Done():
		t.Fatal("the held transaction never reached its insert")
	}
	// Mid-hold: what subscribers got is from before it, and a Head asked
	// now waits for it.
	time.Sleep(hold / 2)
	_, deliveredSeen, _ = unfiltered.state()
	readBegan := time.Now()
	headDuring, err := reader.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	headAnswered := time.Now()
	readTook := headAnswered.Sub(readBegan)
	r := <-heldRes
	if r.err != nil {
		t.Fatal(r.err)
	}
	<-held
	first := r.res.Position - uint64(len(heldEvents)) + 1
	if deliveredSeen >= first {
		t.Fatalf("during the hold a subscriber was at %d; the held positions start at %d", deliveredSeen, first)
	}
	if headAnswered.Before(holdEnd) || headDuring < r.res.Position {
		t.Fatalf("Head asked during the hold answered %d after %s, before the held positions %d-%d committed",
			headDuring, readTook, first, r.res.Position)
	}
	if err := <-loadErr; err != nil {
		t.Fatal(err)
	}
	load.record(heldStream, heldEvents, r.res, holdStart, holdEnd)
	n := uint64(total + len(heldEvents))
	ws.waitAll(n, lastMatchingIn(t, ctx, reader), time.Until(deadlineOf(ctx)))
	verify(t, ctx, reader, load, ws)

	// What the hold cost the other appenders: nothing but their own work.
	var (
		during    []time.Duration // appends in flight during the hold
		normal    []time.Duration // appends entirely outside it
		overtaken int             // appends of later positions that returned during the hold
	)
	for _, sp := range load.spans {
		if sp.first == first {
			continue // the held append itself
		}
		if sp.last > r.res.Position && sp.end.Before(holdEnd) {
			overtaken++
		}
		switch {
		case sp.start.Before(holdEnd) && sp.end.After(holdStart):
			during = append(during, sp.end.Sub(sp.start))
		default:
			normal = append(normal, sp.end.Sub(sp.start))
		}
	}
	if overtaken == 0 {
		t.Fatal("no append committed a later position during the hold: appends still wait for each other")
	}
	slices.Sort(during)
	slices.Sort(normal)
	t.Logf("held positions %d-%d for %s before COMMIT; meanwhile %d appends of later positions committed, subscribers stayed at %d, "+
		"and a Head asked mid-hold waited %s for the held transaction",
		first, r.res.Position, holdEnd.Sub(holdStart).Round(time.Millisecond), overtaken, deliveredSeen, readTook.Round(time.Millisecond))
	if len(during) > 0 {
		t.Logf("appends in flight during the hold: %d, median %s, longest %s (outside it: median %s, p99 %s over %d appends)",
			len(during), during[len(during)/2].Round(time.Millisecond), during[len(during)-1].Round(time.Millisecond),
			percentile(normal, 50), percentile(normal, 99), len(normal))
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, len(d)*p/100)].Round(100 * time.Microsecond)
}
