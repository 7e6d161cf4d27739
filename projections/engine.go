package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cxledger/cxledger/eventstore"
)

// Source is what the engine needs from the event store: the global log,
// delivered in position order (catch-up, then live), and its head for lag.
// Every eventstore.Store is a Source.
type Source interface {
	// Subscribe delivers every event after opts.After, exactly once and in
	// position order, until ctx ends or handle fails (eventstore.Store).
	Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error
	// Head returns the position of the last committed event.
	Head(ctx context.Context) (uint64, error)
}

// Sentinel errors the CLI and HTTP layers branch on with errors.Is.
var (
	// ErrUnknownProjection: no projection of that name is registered.
	ErrUnknownProjection = errors.New("unknown projection")
	// ErrDuplicateProjection: a projection of that name is already
	// registered.
	ErrDuplicateProjection = errors.New("projection already registered")
	// ErrNotRunning: the call needs a running engine (Run).
	ErrNotRunning = errors.New("projection engine not running")
	// ErrRebuildInProgress: the read model is already being built beside
	// the live one.
	ErrRebuildInProgress = errors.New("rebuild already in progress")
	// ErrNotFailed: Restart was asked for a projection that is running.
	ErrNotFailed = errors.New("projection is not failed")
)

// Config tunes an Engine. The zero Config is ready to use.
type Config struct {
	// PageSize is how many records one subscription read delivers; 0 means
	// eventstore.DefaultReadLimit.
	PageSize int
	// BatchSize caps the events one read-model transaction applies; 0
	// means 8192. A projection that falls behind its feed merges the
	// pages waiting for it into one transaction up to this size, so
	// catch-up runs in large transactions while a live projection commits
	// each new page at once.
	BatchSize int
	// CacheLimit caps the decoded objects a projection keeps between
	// batches (the cache is emptied when it grows past it); 0 means
	// 20000, negative keeps nothing between batches.
	CacheLimit int
	// GroupWindow: projections whose checkpoints lie within this many
	// positions of each other when the engine starts share one
	// subscription, so each record is read and decoded once for all of
	// them. 0 means 4 × BatchSize.
	GroupWindow uint64
	// ProgressInterval is how often rebuild progress is reported (and
	// logged); 0 means one second.
	ProgressInterval time.Duration
	// HeadInterval is how often the engine reads the store's head for lag
	// while nothing arrives; 0 means one second.
	HeadInterval time.Duration
	// RetryDelay is the first pause before a failed subscription (a store
	// error) is resumed; it doubles up to a minute. 0 means 500ms.
	RetryDelay time.Duration
	// Logger receives the engine's log; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for rates and ETAs; nil means time.Now.
	Now func() time.Time
	// Owner names this engine in leases (see Leases): which process owns
	// a projection. Empty means the host name, the process id and a
	// random suffix, unique per engine.
	Owner string
	// LeaseTTL is how long a projection's lease lasts without renewal:
	// after an owner dies without releasing it (SIGKILL, a lost network),
	// another engine takes the projection over within about LeaseTTL +
	// LeaseInterval. 0 means 6s.
	LeaseTTL time.Duration
	// LeaseInterval is how often held leases are renewed and free ones
	// tried for; it must be well below LeaseTTL. 0 means LeaseTTL/4.
	LeaseInterval time.Duration
	// Standby never takes a lease: the engine runs no projection itself
	// and only reports (Status) and waits for (WaitFor) what the owners in
	// other processes commit — a stateless API replica's engine.
	Standby bool
}

func (c *Config) setDefaults() {
	if c.PageSize <= 0 {
		c.PageSize = eventstore.DefaultReadLimit
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 8192
	}
	if c.CacheLimit == 0 {
		c.CacheLimit = 20000
	}
	if c.GroupWindow == 0 {
		c.GroupWindow = 4 * uint64(c.BatchSize)
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	if c.HeadInterval <= 0 {
		c.HeadInterval = time.Second
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
	if c.Owner == "" {
		c.Owner = DefaultOwner()
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 6 * time.Second
	}
	if c.LeaseInterval <= 0 || c.LeaseInterval >= c.LeaseTTL {
		c.LeaseInterval = c.LeaseTTL / 4
	}
}

// State is where a projection stands.
type State string

// States reported by Status.
const (
	// StateStarting: registered, not yet running (or the engine is not
	// running).
	StateStarting State = "starting"
	// StateCatchingUp: applying stored history in large batches.
	StateCatchingUp State = "catching-up"
	// StateLive: caught up with the log; new events are applied as they
	// commit.
	StateLive State = "live"
	// StateRebuilding: a new generation is being built beside the one
	// serving reads (Rebuild, or a version change).
	StateRebuilding State = "rebuilding"
	// StateFailed: stopped by an error; other projections go on. A poison
	// event (*ProjectionError) keeps it stopped until Restart; a transient
	// error (the backend) is retried by the owning engine with a growing
	// pause, so that an owner never sits on a lease it does not use.
	StateFailed State = "failed"
	// StateStopped: the engine stopped it.
	StateStopped State = "stopped"
	// StateStandby: another process owns it (holds its lease); this
	// engine serves its reads and takes it over if that owner goes away.
	StateStandby State = "standby"
)

// Status describes one projection.
type Status struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Namespace is the namespace the engine writes: the active one, or,
	// while a new version is built beside an old one whose code is gone,
	// the new one.
	Namespace string `json:"namespace"`
	// Active is the namespace serving reads ("" before the first build).
	Active string `json:"active"`
	// Checkpoint is the last position committed into Namespace.
	Checkpoint uint64 `json:"checkpoint"`
	// Head is the last position of the log the engine knows of.
	Head uint64 `json:"head"`
	// Lag is Head minus Checkpoint.
	Lag   uint64 `json:"lag"`
	State State  `json:"state"`
	// Err is why the projection failed (a *ProjectionError for a poison
	// event), or the last store error being retried.
	Err error `json:"-"`
	// Error is Err's text, for JSON.
	Error string `json:"error,omitempty"`
	// EventsPerSecond is the recent rate at which positions are applied.
	EventsPerSecond float64 `json:"eventsPerSecond"`
	// Rebuild reports the new generation being built beside, if any.
	Rebuild *Progress `json:"rebuild,omitempty"`
	// Owner is the engine holding the projection's lease, as last seen
	// ("" when none does); Epoch its fencing token; Owned whether that is
	// this engine.
	Owner string `json:"owner,omitempty"`
	Epoch int64  `json:"epoch,omitempty"`
	Owned bool   `json:"owned"`
}

// Progress reports a build of a new generation from position 0.
type Progress struct {
	Projection string `json:"projection"`
	Namespace  string `json:"namespace"`
	// Position is the build's checkpoint; Head the log's last position.
	Position uint64 `json:"position"`
	Head     uint64 `json:"head"`
	// EventsPerSecond is the average rate since the build started.
	EventsPerSecond float64 `json:"eventsPerSecond"`
	// Elapsed is the time since the build started; ETA the estimated time
	// to reach Head at the current rate (0 when unknown or caught up).
	Elapsed time.Duration `json:"-"`
	ETA     time.Duration `json:"-"`
	// ElapsedSeconds and ETASeconds are Elapsed and ETA in seconds, for
	// JSON (a duration is never sent as unlabelled nanoseconds).
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	ETASeconds     float64 `json:"etaSeconds"`
	// Done is set on the last report, once the new generation serves reads.
	Done bool `json:"done"`
	// Owner is the engine building it, when that is another process (its
	// progress is then read from the backend: Position, Namespace).
	Owner string `json:"owner,omitempty"`
}

// Engine runs projections: each from its own checkpoint, in batches that
// commit together with the checkpoint, side by side with rebuilds.
//
// One engine at a time may write a backend's read models: the engine owns
// the namespaces of the projections registered with it (it drops leftover
// builds of them when it starts).
type Engine struct {
	src Source
	b   Backend
	cfg Config
	log *slog.Logger

	head atomic.Uint64 // the largest head position seen
	// progress wakes WaitFor when another process's commit is notified
	// (Notifier).
	progress eventstore.Signal

	mu    sync.Mutex
	slots map[string]*slot
	run   *runState // nil when not running
}

// runState is one Run of the engine.
type runState struct {
	ctx     context.Context
	wg      sync.WaitGroup
	closing bool // set under Engine.mu before wg.Wait: no more wg.Add
}

// slot is one registered projection. Its fields are guarded by Engine.mu.
type slot struct {
	p       Projection
	handles map[string]struct{}
	active  string  // namespace serving reads, as last seen or set
	cur     *runner // writes the active namespace; nil if none runs
	next    *runner // builds a new generation beside; nil if none
	// building is set from the moment a build is decided until it is
	// handed over or abandoned, so that two cannot start at once.
	building bool
	openErr  error // why the projection could not start

	// Ownership (see engine_own.go).
	lease   Lease     // held lease; zero while another engine owns it
	renewed time.Time // start of the last successful renewal (local clock)
	holder  LeaseInfo // the lease as last listed, for Status
	standby uint64    // checkpoint of the active namespace as last read, when not owned
	restart bool      // a runner was fenced: start again from the backend's state
	// retries counts consecutive automatic restarts after a transient
	// failure; retryAt is when the next may happen.
	retries int
	retryAt time.Time
	// remote is a build of a new generation by another process, as last
	// seen (nil: none).
	remote *Progress

	// Removal at run time (Remove, Replace). ctx is cancelled when the
	// slot is removed: every runner of the slot derives its context from
	// it, so that a runner started in a race with the removal stops at
	// once. gone is set (under Engine.mu) at the same moment; startMu is
	// held while the slot's runners are being started, so that Remove
	// waits for a start in flight and then stops what it started.
	ctx     context.Context
	cancel  context.CancelFunc
	gone    bool
	startMu sync.Mutex
}

// newSlot returns the slot of p.
func newSlot(p Projection) *slot {
	s := &slot{p: p, handles: typeSet(p.Types())}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// NewEngine returns an engine reading src and writing b.
func NewEngine(src Source, b Backend, cfg Config) (*Engine, error) {
	if src == nil || b == nil {
		return nil, errors.New("projections: NewEngine needs a source and a backend")
	}
	cfg.setDefaults()
	return &Engine{src: src, b: b, cfg: cfg, log: cfg.Logger, slots: map[string]*slot{}}, nil
}

// Register adds a projection. Registered before Run, it starts with the
// others; registered while the engine runs, it starts at once, on its own
// subscription, catching up from its checkpoint (position 0 for a new read
// model) without touching the others.
func (e *Engine) Register(p Projection) error {
	if p == nil {
		return errors.New("register projection: nil")
	}
	if err := ValidateProjection(p); err != nil {
		return fmt.Errorf("register projection: %w", err)
	}
	e.mu.Lock()
	if _, dup := e.slots[p.Name()]; dup {
		e.mu.Unlock()
		return fmt.Errorf("register projection %s: %w", p.Name(), ErrDuplicateProjection)
	}
	s := newSlot(p)
	e.slots[p.Name()] = s
	rs := e.run
	e.mu.Unlock()
	if rs != nil {
		e.acquire(rs, []*slot{s})
	}
	return nil
}

// Run runs every registered projection until ctx ends, then stops them
// and returns nil. A projection that fails stops alone (see Status); Run
// goes on. Run may be called again after it returned, not concurrently.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.run != nil {
		e.mu.Unlock()
		return errors.New("projection engine: already running")
	}
	rs := &runState{ctx: ctx}
	e.run = rs
	slots := slices.Collect(maps.Values(e.slots))
	e.mu.Unlock()

	if h, err := e.src.Head(ctx); err != nil {
		e.log.WarnContext(ctx, "projections: read head", "error", err)
	} else {
		e.observeHead(h)
	}
	e.acquire(rs, slots)
	e.refreshStandby(ctx)
	e.spawn(rs, func() { e.own(rs) })
	if n, ok := e.b.(Notifier); ok {
		e.spawn(rs, func() { e.listen(rs.ctx, n) })
	}
	e.spawn(rs, func() { e.pollHead(rs.ctx) })

	<-ctx.Done()
	e.mu.Lock()
	rs.closing = true
	e.mu.Unlock()
	rs.wg.Wait()
	// Hand over at once: the next owner need not wait for expiry.
	e.releaseAll()
	e.mu.Lock()
	e.run = nil
	e.mu.Unlock()
	return nil
}

// spawn runs fn on a goroutine tracked by rs, unless rs is stopping.
func (e *Engine) spawn(rs *runState, fn func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if rs.closing {
		return false
	}
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		fn()
	}()
	return true
}

// startSlots opens each slot's namespaces and starts its runners. Runners
// whose checkpoints lie within GroupWindow of each other share one
// subscription: on a fresh start every projection is at 0 and all of them
// are fed by one decode of the log; a projection added later catches up
// on its own.
func (e *Engine) startSlots(rs *runState, slots []*slot) {
	// Hold each slot's start lock until its runners run (in name order:
	// two starts sharing slots cannot deadlock), skipping removed slots.
	slots = slices.Clone(slots)
	slices.SortFunc(slots, func(a, b *slot) int { return cmp.Compare(a.p.Name(), b.p.Name()) })
	slots = slices.CompactFunc(slots, func(a, b *slot) bool { return a == b })
	for _, s := range slots {
		s.startMu.Lock()
		defer s.startMu.Unlock()
	}
	slots = slices.DeleteFunc(slots, func(s *slot) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return s.gone
	})
	var runners []*runner
	for _, s := range slots {
		cur, next, err := e.open(rs.ctx, s)
		e.mu.Lock()
		if s.gone {
			e.mu.Unlock()
			continue
		}
		s.openErr = err
		if err != nil {
			s.cur, s.next, s.building = nil, nil, false
			e.mu.Unlock()
			e.log.ErrorContext(rs.ctx, "projections: cannot start", "projection", s.p.Name(), "error", err)
			continue
		}
		s.cur, s.next, s.building = cur, next, next != nil
		e.mu.Unlock()
		for _, r := range []*runner{cur, next} {
			if r != nil {
				runners = append(runners, r)
			}
		}
	}
	slices.SortFunc(runners, func(a, b *runner) int { return cmp.Compare(a.startAt, b.startAt) })
	for len(runners) > 0 {
		n := 1
		for n < len(runners) && runners[n].startAt-runners[0].startAt <= e.cfg.GroupWindow {
			n++
		}
		e.startGroup(rs, runners[:n], 0)
		runners = runners[n:]
	}
	// Builds of a new version hand over by themselves once caught up.
	for _, s := range slots {
		e.mu.Lock()
		next := s.next
		e.mu.Unlock()
		if next != nil {
			e.spawn(rs, func() {
				if err := e.handover(rs.ctx, rs, s, next, nil, false); err != nil && rs.ctx.Err() == nil {
					e.log.ErrorContext(rs.ctx, "projections: version build", "projection", s.p.Name(), "namespace", next.ns, "error", err)
				}
			})
		}
	}
}

// open decides where a projection starts, from the backend's namespaces:
//
//   - no active namespace: a new one, activated at once, from 0;
//   - an active namespace of the projection's version: resume it from its
//     checkpoint;
//   - an active namespace of an older version: that one keeps serving reads
//     (its code is gone, so nothing updates it) while a new one is built
//     beside it from 0, or resumed from an interrupted build of this
//     version; it is switched over when caught up (handover);
//   - an active namespace of a newer version: an error; a binary never
//     overwrites a newer read model.
//
// Other namespaces of the projection (interrupted rebuilds, old versions)
// are dropped, except newer versions', which may belong to a newer binary.
func (e *Engine) open(ctx context.Context, s *slot) (cur, next *runner, err error) {
	name, version := s.p.Name(), s.p.Version()
	active, err := e.b.Active(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	all, err := e.b.Namespaces(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	type nsInfo struct {
		ns       string
		ver, gen int
	}
	var mine []nsInfo
	maxGen := 0
	for _, ns := range all {
		if v, g, ok := parseNamespace(name, ns); ok {
			mine = append(mine, nsInfo{ns, v, g})
			maxGen = max(maxGen, g)
		}
	}
	activeVer, activeGen, ok := parseNamespace(name, active)
	if active != "" && !ok {
		return nil, nil, fmt.Errorf("open %s: active namespace %q is not one of its namespaces", name, active)
	}
	maxGen = max(maxGen, activeGen)
	keep := map[string]bool{active: true}
	switch {
	case active == "":
		ns := NamespaceFor(name, version, maxGen+1)
		if err := e.b.Activate(ctx, name, ns); err != nil {
			return nil, nil, fmt.Errorf("open %s: activate %s: %w", name, ns, err)
		}
		active = ns
		keep[ns] = true
		cur = e.newRunner(s, ns, 0)
	case activeVer == version:
		cp, err := e.b.Checkpoint(ctx, active)
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: checkpoint of %s: %w", name, active, err)
		}
		cur = e.newRunner(s, active, cp)
	case activeVer > version:
		return nil, nil, fmt.Errorf("open %s: active read model %s is version %d, newer than this projection's version %d", name, active, activeVer, version)
	default:
		resume := ""
		for _, n := range mine {
			if n.ver == version && n.gen > activeGen && n.ns > resume {
				resume = n.ns
			}
		}
		var cp uint64
		if resume != "" {
			if cp, err = e.b.Checkpoint(ctx, resume); err != nil {
				return nil, nil, fmt.Errorf("open %s: checkpoint of %s: %w", name, resume, err)
			}
		} else {
			resume = NamespaceFor(name, version, maxGen+1)
			if err := create(ctx, e.b, resume); err != nil {
				return nil, nil, fmt.Errorf("open %s: %w", name, err)
			}
		}
		keep[resume] = true
		next = e.newRunner(s, resume, cp)
		e.log.InfoContext(ctx, "projections: building new version beside the active one",
			"projection", name, "active", active, "namespace", resume, "from", cp)
	}
	// A build in progress, in this process or another (its rebuild lease
	// is held), owns the generations above the active one: not leftovers.
	building := false
	if leases, err := e.b.ListLeases(ctx); err == nil {
		for _, li := range leases {
			building = building || (li.Name == RebuildLeaseName(name) && li.Held)
		}
	}
	for _, n := range mine {
		if building && n.gen > activeGen {
			continue
		}
		if !keep[n.ns] && n.ver <= version {
			if err := e.b.Drop(ctx, n.ns); err != nil {
				return nil, nil, fmt.Errorf("open %s: drop leftover %s: %w", name, n.ns, err)
			}
			e.log.InfoContext(ctx, "projections: dropped leftover namespace", "projection", name, "namespace", n.ns)
		}
	}
	e.mu.Lock()
	s.active = active
	e.mu.Unlock()
	return cur, next, nil
}

// create makes an empty namespace with checkpoint 0, so that it is listed
// (and found again after a crash) before its first batch commits.
func create(ctx context.Context, b Backend, ns string) error {
	if err := b.Update(ctx, ns, func(w Writer) error { return w.SetCheckpoint(ctx, 0) }); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

// Status reports every registered projection, in name order.
func (e *Engine) Status() []Status {
	e.mu.Lock()
	slots := slices.Collect(maps.Values(e.slots))
	running := e.run != nil
	e.mu.Unlock()
	slices.SortFunc(slots, func(a, b *slot) int { return cmp.Compare(a.p.Name(), b.p.Name()) })
	head := e.head.Load()
	now := e.cfg.Now()
	out := make([]Status, 0, len(slots))
	for _, s := range slots {
		e.mu.Lock()
		cur, next, active, openErr := s.cur, s.next, s.active, s.openErr
		lease, holder, standby, remote := s.lease, s.holder, s.standby, s.remote
		e.mu.Unlock()
		st := Status{Name: s.p.Name(), Version: s.p.Version(), Active: active, Head: head, State: StateStarting}
		if !lease.IsZero() {
			st.Owner, st.Epoch, st.Owned = lease.Owner, lease.Epoch, true
		} else if running {
			// Another engine owns it: report what the backend showed.
			st.State, st.Namespace, st.Checkpoint = StateStandby, active, standby
			st.Head = max(head, standby)
			if holder.Held {
				st.Owner, st.Epoch = holder.Owner, holder.Epoch
			}
			st.Lag = st.Head - st.Checkpoint
			if remote != nil {
				r := *remote
				r.Head = max(st.Head, r.Position)
				st.Rebuild = &r
			}
			out = append(out, st)
			continue
		}
		main := cur
		if main == nil {
			main = next
		}
		if main != nil {
			snap := main.snapshot(now)
			st.Namespace, st.Checkpoint, st.State, st.Err, st.EventsPerSecond = main.ns, snap.checkpoint, snap.state, snap.err, snap.rate
			st.Head = max(head, snap.checkpoint)
		}
		if next == nil && remote != nil {
			r := *remote
			r.Head = max(st.Head, r.Position)
			st.Rebuild = &r
		}
		if next != nil {
			p := next.progress(now, st.Head)
			st.Rebuild = &p
			if st.State != StateFailed {
				st.State = StateRebuilding
			}
			if ns := next.snapshot(now); ns.state == StateFailed {
				st.State, st.Err = StateFailed, ns.err
			}
		}
		if openErr != nil {
			st.State, st.Err = StateFailed, openErr
		}
		if !running && st.State != StateFailed {
			st.State = StateStopped
		}
		st.Lag = st.Head - st.Checkpoint
		if st.Err != nil {
			st.Error = st.Err.Error()
		}
		out = append(out, st)
	}
	return out
}

// Restart starts a failed projection again from its checkpoint, after the
// cause (a bug fixed by a redeploy, a backend back online) is dealt with.
// A poison event that still fails stops it again at the same place.
func (e *Engine) Restart(name string) error {
	e.mu.Lock()
	rs := e.run
	s := e.slots[name]
	switch {
	case rs == nil || rs.closing:
		e.mu.Unlock()
		return fmt.Errorf("restart %s: %w", name, ErrNotRunning)
	case s == nil:
		e.mu.Unlock()
		return fmt.Errorf("restart %s: %w", name, ErrUnknownProjection)
	case s.openErr == nil && (s.cur.running() || s.next.running()):
		e.mu.Unlock()
		return fmt.Errorf("restart %s: %w", name, ErrNotFailed)
	}
	s.cur, s.next, s.building = nil, nil, false
	e.mu.Unlock()
	e.startSlots(rs, []*slot{s})
	return nil
}

// observeHead records a head position seen by a feed or read from the
// store.
func (e *Engine) observeHead(h uint64) {
	for {
		old := e.head.Load()
		if h <= old || e.head.CompareAndSwap(old, h) {
			return
		}
	}
}

// pollHead reads the store's head now and then, so that the lag of a
// failed or stopped projection keeps growing visibly.
func (e *Engine) pollHead(ctx context.Context) {
	t := time.NewTicker(e.cfg.HeadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if h, err := e.src.Head(ctx); err == nil {
				e.observeHead(h)
			} else if ctx.Err() == nil {
				e.log.WarnContext(ctx, "projections: read head", "error", err)
			}
		}
	}
}
