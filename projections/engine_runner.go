package projections

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cxledger/cxledger/eventstore"
)

// The engine's data path. A group is one subscription to the log feeding
// one or more runners (one per projection namespace). The group's feed
// decodes each record once, in parallel for large pages, and hands the
// same read-only page to every member; each member applies it on its own
// goroutine, in its own transactions. So a full rebuild of every read
// model reads and decodes the log once, the projections apply in parallel,
// and the feed decodes the next page while they apply the last.
//
// A member that falls behind merges the pages queued for it into one
// transaction (up to BatchSize events); a live member finds a single small
// page and commits it at once. A member that fails leaves the group; the
// others go on. The group's pace is its slowest member's, which is why
// only projections starting at about the same position share one.

// page is a slice of the log as delivered to a group's members.
type page struct {
	items []item // decoded records of the types some member handles
	n     int    // records in the page, of every type
	last  uint64 // position of the page's last record
	live  bool   // the feed reached the end of the log with this page
}

// group is one subscription shared by its members.
type group struct {
	members []*runner
	wanted  map[string]struct{} // types any member handles; nil: all
	alive   atomic.Int32
	cancel  context.CancelFunc
}

// runner applies the pages of its group to one namespace of one
// projection.
type runner struct {
	e       *Engine
	s       *slot
	ns      string
	lease   Lease  // fences every commit (zero: Replay, which holds none)
	startAt uint64 // checkpoint at start
	cache   *objectCache
	in      chan *page

	ctx     context.Context
	cancel  context.CancelFunc
	unhook  func() bool   // undoes the link from the slot's context to cancel
	done    chan struct{} // closed when the runner's goroutine ended
	live    chan struct{} // closed once the runner caught up with the log
	changed eventstore.Signal

	checkpoint atomic.Uint64

	mu      sync.Mutex
	state   State
	err     error // why it failed
	warn    error // a store error being retried
	started time.Time
	rate    float64
	window  uint64
	since   time.Time
	lastAt  time.Time
}

func (e *Engine) newRunner(s *slot, ns string, checkpoint uint64) *runner {
	e.mu.Lock()
	lease := s.lease
	e.mu.Unlock()
	return e.newRunnerLease(s, ns, checkpoint, lease)
}

// newRunnerLease is newRunner with the lease its commits are fenced by
// (a rebuild's, rather than the projection's).
func (e *Engine) newRunnerLease(s *slot, ns string, checkpoint uint64, lease Lease) *runner {
	r := &runner{
		e: e, s: s, ns: ns, lease: lease, startAt: checkpoint,
		done: make(chan struct{}), live: make(chan struct{}), state: StateStarting,
	}
	if e.cfg.CacheLimit > 0 {
		r.cache = newObjectCache(e.cfg.CacheLimit)
		// A namespace at checkpoint 0 is empty (create makes it so; every
		// commit moves the checkpoint), and this runner's fenced commits
		// keep it its own: the cache starts knowing all of it.
		r.cache.complete = checkpoint == 0
	}
	r.checkpoint.Store(checkpoint)
	return r
}

// running reports whether r exists and its goroutine has not ended.
func (r *runner) running() bool {
	if r == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// handed reports whether r was handed to a group (its context is set).
func (r *runner) handed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancel != nil
}

// stop cancels r and waits for its goroutine to end.
func (r *runner) stop() {
	r.mu.Lock()
	cancel := r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	<-r.done
}

// failure returns the error r stopped with, if any.
func (r *runner) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

type runnerSnapshot struct {
	checkpoint uint64
	state      State
	err        error
	rate       float64
}

func (r *runner) snapshot(now time.Time) runnerSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	rate := r.rate
	if now.Sub(r.lastAt) > 5*time.Second {
		rate = 0 // idle: the last window's rate is history
	}
	err := r.err
	if err == nil {
		err = r.warn
	}
	return runnerSnapshot{checkpoint: r.checkpoint.Load(), state: r.state, err: err, rate: rate}
}

// progress reports r as a build from position 0.
func (r *runner) progress(now time.Time, head uint64) Progress {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	pos := r.checkpoint.Load()
	head = max(head, pos)
	p := Progress{Projection: r.s.p.Name(), Namespace: r.ns, Position: pos, Head: head}
	if !started.IsZero() {
		p.Elapsed = now.Sub(started)
	}
	if secs := p.Elapsed.Seconds(); secs > 0 && pos > r.startAt {
		p.EventsPerSecond = float64(pos-r.startAt) / secs
		p.ETA = time.Duration(float64(head-pos) / p.EventsPerSecond * float64(time.Second))
	}
	p.ElapsedSeconds, p.ETASeconds = p.Elapsed.Seconds(), p.ETA.Seconds()
	return p
}

// waitCheckpoint waits until r has committed position target.
func (r *runner) waitCheckpoint(ctx context.Context, target uint64) error {
	for {
		ch := r.changed.C()
		if r.checkpoint.Load() >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			if r.checkpoint.Load() >= target {
				return nil
			}
			if err := r.failure(); err != nil {
				return err
			}
			return fmt.Errorf("projection %s: %s stopped at %d before reaching %d", r.s.p.Name(), r.ns, r.checkpoint.Load(), target)
		case <-ch:
		}
	}
}

// startGroup starts one subscription after the smallest checkpoint of rs
// (sorted ascending) and a goroutine per runner. until > 0 ends the group
// once a page reaches that position (Replay); otherwise it runs until its
// members are gone or rs ends.
func (e *Engine) startGroup(rs *runState, members []*runner, until uint64) {
	g := &group{members: members}
	for _, r := range members {
		if r.s.handles == nil {
			g.wanted = nil
			break
		}
		if g.wanted == nil {
			g.wanted = map[string]struct{}{}
		}
		for t := range r.s.handles {
			g.wanted[t] = struct{}{}
		}
	}
	// Enough room for a member to fall a full transaction behind, so that
	// it can merge pages instead of committing one per page.
	buf := max(2, e.cfg.BatchSize/e.cfg.PageSize)
	var gctx context.Context
	gctx, g.cancel = context.WithCancel(rs.ctx)
	now := e.cfg.Now()
	for _, r := range members {
		r.in = make(chan *page, buf)
		ctx, cancel := context.WithCancel(rs.ctx)
		r.mu.Lock()
		r.ctx, r.cancel = ctx, cancel
		if r.s.ctx != nil {
			// Removing the projection stops its runners (Engine.Remove).
			r.unhook = context.AfterFunc(r.s.ctx, cancel)
		}
		r.started, r.since, r.lastAt, r.state = now, now, now, StateCatchingUp
		r.mu.Unlock()
	}
	g.alive.Store(int32(len(members)))
	for _, r := range members {
		if !e.spawn(rs, func() { r.loop(g) }) {
			r.exit(nil)
			g.memberDone()
		}
	}
	after := members[0].startAt
	if !e.spawn(rs, func() { e.feed(gctx, g, after, until) }) {
		g.cancel()
		for _, r := range members {
			close(r.in)
		}
	}
}

func (g *group) memberDone() {
	if g.alive.Add(-1) == 0 {
		g.cancel() // nobody left to feed: end the subscription
	}
}

var (
	errGroupDone = errors.New("group done")
	errUntil     = errors.New("replay target reached")
)

// feed subscribes after position after and hands every page to the
// group's members until ctx ends, the members are gone, or until is
// reached. A store error is logged and the subscription resumed after the
// last page delivered, with a growing pause: a store outage delays the
// read models but does not fail them.
func (e *Engine) feed(ctx context.Context, g *group, after, until uint64) {
	defer func() {
		g.cancel()
		for _, r := range g.members {
			close(r.in) // the feed is the only sender
		}
	}()
	if until > 0 && after >= until {
		return
	}
	delay := e.cfg.RetryDelay
	// Members starting at the head would otherwise wait for the next
	// append to learn that they are live: tell them now.
	if h, err := e.src.Head(ctx); err == nil {
		e.observeHead(h)
		if after >= h && !e.deliver(ctx, g, &page{last: after, live: true}) {
			return
		}
	}
	handle := func(ctx context.Context, recs []eventstore.Record) error {
		pg := &page{items: g.decode(recs), n: len(recs), last: recs[len(recs)-1].Position}
		pg.live = len(recs) < e.cfg.PageSize
		if !pg.live {
			if h, err := e.src.Head(ctx); err == nil {
				e.observeHead(h)
				pg.live = pg.last >= h
			}
		}
		e.observeHead(pg.last)
		if !e.deliver(ctx, g, pg) {
			return ctx.Err()
		}
		after = pg.last
		delay = e.cfg.RetryDelay
		if until > 0 && after >= until {
			return errUntil
		}
		return nil
	}
	for {
		err := e.src.Subscribe(ctx, eventstore.SubscribeOptions{After: after, BatchSize: e.cfg.PageSize}, handle)
		if ctx.Err() != nil || errors.Is(err, errUntil) || errors.Is(err, errGroupDone) {
			return
		}
		if errors.Is(err, eventstore.ErrClosed) {
			e.log.WarnContext(ctx, "projections: event store closed", "after", after)
			for _, r := range g.members {
				r.setErr(fmt.Errorf("subscription after %d: %w", after, err), false)
			}
			return
		}
		e.log.ErrorContext(ctx, "projections: subscription failed, retrying", "after", after, "retry_in", delay, "error", err)
		for _, r := range g.members {
			r.setErr(fmt.Errorf("subscription after %d (retrying): %w", after, err), false)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

// deliver hands pg to every member still running; false when ctx ended.
func (e *Engine) deliver(ctx context.Context, g *group, pg *page) bool {
	for _, r := range g.members {
		select {
		case r.in <- pg:
		case <-r.done:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// minParallelDecode is the page size from which decoding is spread over
// the available cores.
const minParallelDecode = 256

// decode decodes the records some member handles, once for all members.
func (g *group) decode(recs []eventstore.Record) []item {
	sel := recs
	if g.wanted != nil {
		sel = make([]eventstore.Record, 0, len(recs))
		for _, r := range recs {
			if _, ok := g.wanted[r.Type]; ok {
				sel = append(sel, r)
			}
		}
	}
	items := make([]item, len(sel))
	workers := min(runtime.GOMAXPROCS(0), len(sel)/minParallelDecode)
	if workers <= 1 {
		for i, r := range sel {
			items[i] = decodeItem(r)
		}
		return items
	}
	var wg sync.WaitGroup
	chunk := (len(sel) + workers - 1) / workers
	for lo := 0; lo < len(sel); lo += chunk {
		hi := min(lo+chunk, len(sel))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				items[i] = decodeItem(sel[i])
			}
		})
	}
	wg.Wait()
	return items
}

// loop applies the group's pages until the feed ends, the runner is
// stopped, or a batch fails.
//
// While one batch commits, the next is folded: the commit (the backend's
// write transaction, one at a time across namespaces on bbolt) and the
// fold (applying and encoding) ran one after the other, leaving a core
// idle during a single read model's rebuild. The batch being committed is
// read under the next one's writes (foldOverlay), and the next commit
// starts only once it succeeded, fenced from its checkpoint. A runner with
// nothing more queued waits for its commit before it waits for pages, so a
// live read model's checkpoint moves as soon as its commit ends, and the
// runner never ends with a commit in flight.
func (r *runner) loop(g *group) {
	defer g.memberDone()
	log := r.e.log.With("projection", r.s.p.Name(), "namespace", r.ns)
	var fl *flight // the batch being committed
	fail := func(err error) {
		if r.ctx.Err() != nil {
			r.exit(nil) // stopped mid-batch: the batch rolled back or committed whole
			return
		}
		if errors.Is(err, ErrFenced) {
			// Nothing was written. The engine starts the projection
			// again from the backend's state if it still owns it.
			log.WarnContext(r.ctx, "projections: commit fenced; stopping", "checkpoint", r.checkpoint.Load(), "error", err)
			r.exit(nil)
			r.e.fenced(r)
			return
		}
		log.ErrorContext(r.ctx, "projections: projection stopped", "checkpoint", r.checkpoint.Load(), "error", err)
		r.exit(err)
	}
	// settle waits for the batch in flight, if any.
	settle := func() error {
		if fl == nil {
			return nil
		}
		err := r.finish(fl)
		fl = nil
		return err
	}
	for {
		var pg *page
		ok, received := false, false
		if fl != nil {
			select {
			case pg, ok = <-r.in:
				received = true
			default:
			}
		}
		if !received {
			if err := settle(); err != nil {
				fail(err)
				return
			}
			select {
			case pg, ok = <-r.in:
			case <-r.ctx.Done():
				r.exit(nil)
				return
			}
		}
		if !ok {
			if err := settle(); err != nil {
				fail(err)
				return
			}
			r.exit(nil)
			return
		}
		pages := []*page{pg}
		n, closed := len(pg.items), false
	merge:
		for n < r.e.cfg.BatchSize {
			select {
			case more, ok := <-r.in:
				if !ok {
					closed = true
					break merge
				}
				pages = append(pages, more)
				n += len(more.items)
			default:
				break merge
			}
		}
		next, err := r.fold(pages, fl)
		if serr := settle(); serr != nil {
			if err == nil && r.cache != nil {
				r.cache.reset() // next was folded on top of a batch that did not commit
			}
			err = serr
		}
		if err != nil {
			fail(err)
			return
		}
		fl = next
		r.launch(fl)
		if closed {
			if err := settle(); err != nil {
				fail(err)
				return
			}
			r.exit(nil)
			return
		}
	}
}

// flight is a folded batch on its way to the backend.
type flight struct {
	ov      *overlay // nil: nothing to write (the pages were applied before)
	from    uint64   // the checkpoint the commit is fenced from
	through uint64
	records uint64
	live    bool
	done    chan struct{}
	err     error
}

// fold applies pages on top of prev (the batch in flight, or nil),
// skipping what the namespace already holds (a member starting ahead of
// its group's subscription), and returns the batch to commit.
func (r *runner) fold(pages []*page, prev *flight) (*flight, error) {
	cp := r.checkpoint.Load()
	var below *overlay
	if prev != nil {
		cp, below = prev.through, prev.ov
	}
	f := &flight{from: cp, through: pages[len(pages)-1].last, done: make(chan struct{})}
	for _, pg := range pages {
		f.live = f.live || pg.live
	}
	if f.through <= cp {
		f.through = cp
		return f, nil
	}
	var items []*item
	for _, pg := range pages {
		if pg.last <= cp {
			continue
		}
		f.records += uint64(pg.n)
		for i := range pg.items {
			it := &pg.items[i]
			if it.env.Position > cp && handled(r.s.handles, it.env.Type) {
				items = append(items, it)
			}
		}
	}
	ov, err := foldOverlay(r.ctx, r.e.b, r.ns, r.s.p, r.cache, items, f.through, below)
	if err = batchDone(r.cache, r.s.p, r.ns, f.through, err); err != nil {
		return nil, err
	}
	ov.seal() // here, in parallel with other read models, not in the commit
	f.ov = ov
	return f, nil
}

// launch starts f's fenced commit on its own goroutine.
func (r *runner) launch(f *flight) {
	if f.ov == nil {
		close(f.done)
		return
	}
	go func() {
		defer close(f.done)
		f.err = r.e.b.Commit(r.ctx, r.ns, Claim{Lease: r.lease, From: f.from}, func(w Writer) error { return f.ov.writeTo(r.ctx, w) })
		if f.err != nil {
			f.err = fmt.Errorf("projection %s: commit through position %d to %s: %w", r.s.p.Name(), f.through, r.ns, f.err)
		}
	}()
}

// finish waits for f's commit and, when it succeeded, moves the runner's
// checkpoint; a failed commit drops the object cache, whose objects hold
// its changes.
func (r *runner) finish(f *flight) error {
	<-f.done
	if f.err != nil {
		if r.cache != nil {
			r.cache.reset()
		}
		return f.err
	}
	if f.ov != nil {
		r.checkpoint.Store(f.through)
		now := r.e.cfg.Now()
		r.mu.Lock()
		r.warn = nil // a store error being retried is over
		r.window += f.records
		r.lastAt = now
		if el := now.Sub(r.since); el >= time.Second {
			r.rate = float64(r.window) / el.Seconds()
			r.window, r.since = 0, now
		}
		r.mu.Unlock()
	}
	if f.live {
		r.markLive()
	}
	if f.ov != nil {
		r.changed.Notify()
	}
	return nil
}

// isLive reports whether r has caught up with the log once.
func (r *runner) isLive() bool {
	select {
	case <-r.live:
		return true
	default:
		return false
	}
}

// markLive records that r has caught up with the log.
func (r *runner) markLive() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == StateCatchingUp {
		r.state = StateLive
		close(r.live)
	}
}

// setErr records err: a failure (final) or a warning (a store error
// being retried, cleared by the next batch).
func (r *runner) setErr(err error, failed bool) {
	r.mu.Lock()
	if failed {
		r.err, r.state = err, StateFailed
	} else {
		r.warn = err
	}
	r.mu.Unlock()
}

// exit ends the runner: failed with err, or stopped.
func (r *runner) exit(err error) {
	r.mu.Lock()
	if err != nil {
		r.err, r.state = err, StateFailed
	} else if r.state != StateFailed {
		r.state = StateStopped
	}
	r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
	if r.unhook != nil {
		r.unhook()
	}
	close(r.done)
	r.changed.Notify()
}
