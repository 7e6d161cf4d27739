package projections

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Ownership across processes. Every piece of work that writes read-model
// state — a projection, a reactor, the broker relay — has one owner among
// all the processes sharing a backend: the holder of its lease. A lease is
// a row in the backend (PostgreSQL: rm__leases; the embedded backends: in
// the process, which is alone on its file) with an owner, an epoch and an
// expiry judged by the backend's own clock, never a process's. An owner
// renews it well before it expires; a process that dies stops renewing and
// another takes the lease over once it has expired, with the next epoch.
//
// A lease alone does not stop an owner that has not noticed it lost (a
// paused process, a slow network): its commits are fenced instead. Every
// engine commit is a Backend.Commit with a Claim, checked inside the
// commit's own transaction: the lease is still held by that owner and
// epoch and unexpired, the namespace still exists and is not retired, and
// its checkpoint is still the one the writer started from. A writer that
// lost any of these commits nothing and gets ErrFenced.

// Sentinel errors of leases and fenced commits.
var (
	// ErrLeaseHeld: another owner holds the lease and it has not expired.
	ErrLeaseHeld = errors.New("lease held by another owner")
	// ErrLeaseLost: the lease expired or was taken over; the former owner
	// must stop writing and acquire it again before going on.
	ErrLeaseLost = errors.New("lease lost")
	// ErrFenced: a Commit's claim no longer holds (lease lost, namespace
	// dropped or retired by a switch, or the checkpoint moved since the
	// writer read it). Nothing was written; the writer must re-read where
	// things stand.
	ErrFenced = errors.New("commit fenced")
	// ErrNotCaughtUp: a Switch found the new namespace behind the one
	// serving reads.
	ErrNotCaughtUp = errors.New("new generation has not caught up with the active one")
	// ErrCheckpointBackwards: a write would move a namespace's checkpoint
	// to an earlier position. Checkpoints only grow: a rebuild writes a new
	// namespace instead.
	ErrCheckpointBackwards = errors.New("checkpoint would move backwards")
)

// Lease is held ownership of a named piece of work. Its Epoch is the
// fencing token: it grows by one each time the lease changes hands (or is
// taken again after it expired), and is kept when the lease is released,
// so a later owner never reuses an earlier owner's token.
type Lease struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
	Epoch int64  `json:"epoch"`
}

// IsZero reports whether l is the zero Lease (no lease: nothing to check).
func (l Lease) IsZero() bool { return l == Lease{} }

// LeaseInfo describes a lease as the backend holds it, for status pages.
type LeaseInfo struct {
	Lease
	// Held is whether the lease is unexpired now, by the backend's clock.
	Held bool `json:"held"`
	// ExpiresIn is how long until it expires (negative: expired that long
	// ago).
	ExpiresIn time.Duration `json:"-"`
}

// Claim is what an engine commit must still hold: the lease (zero: none to
// check) and the checkpoint the writer last read, From.
type Claim struct {
	Lease Lease
	From  uint64
}

// Leases grants leases. Backends implement it so that the lease and the
// writes it fences live in one place and one transaction.
type Leases interface {
	// AcquireLease takes the lease name for owner for ttl, if it is free,
	// expired, or already owner's (then it is extended and keeps its
	// epoch). Otherwise it fails with an error wrapping ErrLeaseHeld.
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error)
	// RenewLease extends l by ttl from now, if l is still held (same owner
	// and epoch, unexpired); otherwise it fails with ErrLeaseLost.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) error
	// ReleaseLease gives l up at once, keeping its epoch, if it is still
	// held; releasing a lost lease is not an error.
	ReleaseLease(ctx context.Context, l Lease) error
	// ListLeases returns every lease the backend knows, in name order.
	ListLeases(ctx context.Context) ([]LeaseInfo, error)
}

// Notifier is what a backend shared by several processes offers to push
// progress: Listen calls fn with the namespace and checkpoint of every
// fenced commit, from any process, until ctx ends; ns "" means "notices
// may have been lost (a reconnect): re-read". pgrm implements it with
// LISTEN/NOTIFY; the embedded backends need none (one process).
type Notifier interface {
	Listen(ctx context.Context, fn func(ns string, checkpoint uint64)) error
}

// LocalLeases keeps leases in the process: the embedded backends' leases,
// exact because their file belongs to one process at a time. It is safe
// for concurrent use; the zero value is ready.
type LocalLeases struct {
	// Now is the clock expiry is judged by; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	leases map[string]*localLease
}

type localLease struct {
	l       Lease
	expires time.Time
}

func (m *LocalLeases) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// AcquireLease implements Leases.
func (m *LocalLeases) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error) {
	if err := checkLeaseArgs(name, owner, ttl); err != nil {
		return Lease{}, err
	}
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases == nil {
		m.leases = map[string]*localLease{}
	}
	now := m.now()
	cur := m.leases[name]
	switch {
	case cur == nil:
		cur = &localLease{l: Lease{Name: name, Owner: owner, Epoch: 1}}
		m.leases[name] = cur
	case cur.l.Owner == owner && now.Before(cur.expires):
		// Held by owner already: extend, same epoch.
	case now.Before(cur.expires):
		return Lease{}, fmt.Errorf("lease %s: %w (owner %s, epoch %d, %s left)", name, ErrLeaseHeld, cur.l.Owner, cur.l.Epoch, cur.expires.Sub(now).Round(time.Millisecond))
	default:
		cur.l = Lease{Name: name, Owner: owner, Epoch: cur.l.Epoch + 1}
	}
	cur.expires = now.Add(ttl)
	return cur.l, nil
}

// RenewLease implements Leases.
func (m *LocalLeases) RenewLease(ctx context.Context, l Lease, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if !m.heldLocked(l, now) {
		return fmt.Errorf("renew lease %s (epoch %d): %w", l.Name, l.Epoch, ErrLeaseLost)
	}
	m.leases[l.Name].expires = now.Add(ttl)
	return nil
}

// ReleaseLease implements Leases.
func (m *LocalLeases) ReleaseLease(ctx context.Context, l Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.heldLocked(l, now) {
		m.leases[l.Name].expires = now
	}
	return nil
}

// ListLeases implements Leases.
func (m *LocalLeases) ListLeases(ctx context.Context) ([]LeaseInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := make([]LeaseInfo, 0, len(m.leases))
	for _, name := range slices.Sorted(maps.Keys(m.leases)) {
		cur := m.leases[name]
		out = append(out, LeaseInfo{Lease: cur.l, Held: now.Before(cur.expires), ExpiresIn: cur.expires.Sub(now)})
	}
	return out, ctx.Err()
}

// Holds reports whether l is held now: what a fenced commit of an embedded
// backend checks, under its own write lock.
func (m *LocalLeases) Holds(l Lease) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heldLocked(l, m.now())
}

func (m *LocalLeases) heldLocked(l Lease, now time.Time) bool {
	cur := m.leases[l.Name]
	return cur != nil && cur.l == l && now.Before(cur.expires)
}

// CheckClaim is the part of a fenced commit every backend shares: given
// what the backend found in its transaction — whether the namespace
// exists, whether a switch retired it, its checkpoint, whether the lease is
// held — it says whether the commit may go on.
func CheckClaim(ns string, c Claim, exists, retired bool, checkpoint uint64, leaseHeld bool) error {
	switch {
	case !exists:
		return fmt.Errorf("namespace %s does not exist (dropped by a rebuild?): %w", ns, ErrFenced)
	case retired:
		return fmt.Errorf("namespace %s was retired by a switch to a newer generation: %w", ns, ErrFenced)
	case !c.Lease.IsZero() && !leaseHeld:
		return fmt.Errorf("lease %s (owner %s, epoch %d) is no longer held: %w", c.Lease.Name, c.Lease.Owner, c.Lease.Epoch, ErrFenced)
	case checkpoint != c.From:
		return fmt.Errorf("checkpoint of %s is %d, the writer started from %d (another writer?): %w", ns, checkpoint, c.From, ErrFenced)
	}
	return nil
}

// CheckSwitch is the decision of Backend.Switch, shared by the backends:
// given the active namespace found, whether to exists (and is not
// retired) and both checkpoints, may the reads move from from to to?
func CheckSwitch(name, from, to, active string, toExists bool, fromCP, toCP uint64) error {
	switch {
	case active != from:
		return fmt.Errorf("switch %s from %q: %q serves it now (another process switched?): %w", name, from, active, ErrFenced)
	case !toExists:
		return fmt.Errorf("switch %s to %s: no such namespace (or retired): %w", name, to, ErrFenced)
	case from != "" && toCP < fromCP:
		return fmt.Errorf("switch %s to %s at %d: %s is at %d: %w", name, to, toCP, from, fromCP, ErrNotCaughtUp)
	}
	return nil
}

// CheckForward fails with ErrCheckpointBackwards when a commit would move a
// namespace's checkpoint from old to the earlier next.
func CheckForward(ns string, old, next uint64) error {
	if next < old {
		return fmt.Errorf("namespace %s: from %d to %d: %w", ns, old, next, ErrCheckpointBackwards)
	}
	return nil
}

// maxLeaseName bounds lease names (they are keys and table rows).
const maxLeaseName = 200

func checkLeaseArgs(name, owner string, ttl time.Duration) error {
	switch {
	case name == "" || len(name) > maxLeaseName:
		return fmt.Errorf("lease name %q: want 1 to %d bytes", name, maxLeaseName)
	case owner == "" || len(owner) > maxLeaseName:
		return fmt.Errorf("lease owner %q: want 1 to %d bytes", owner, maxLeaseName)
	case ttl < time.Millisecond:
		return fmt.Errorf("lease ttl %s: want at least a millisecond", ttl)
	}
	return nil
}

// CheckLeaseArgs validates AcquireLease's arguments, for backends.
func CheckLeaseArgs(name, owner string, ttl time.Duration) error {
	return checkLeaseArgs(name, owner, ttl)
}

// LeaseConfig tunes RunOwned.
type LeaseConfig struct {
	// Name is the lease: what is owned ("relay/broker_relay").
	Name string
	// Owner names this process (see Config.Owner); empty means
	// DefaultOwner().
	Owner string
	// TTL is how long the lease lasts without renewal; 0 means 6s.
	TTL time.Duration
	// Interval is how often the lease is renewed, and tried for while
	// another process holds it; 0 means TTL/4.
	Interval time.Duration
	// OnWaiting, if set, is called once each time the lease cannot be had
	// — held by another owner, or the backend failing — (for logging).
	OnWaiting func(err error)
}

func (c *LeaseConfig) setDefaults() {
	if c.Owner == "" {
		c.Owner = DefaultOwner()
	}
	if c.TTL <= 0 {
		c.TTL = 6 * time.Second
	}
	if c.Interval <= 0 || c.Interval >= c.TTL {
		c.Interval = c.TTL / 4
	}
}

// RunOwned runs work only while this process holds the lease cfg.Name,
// until ctx ends: the shape of kubernetes' leader election, with fencing
// left to work (every write it commits names the lease it was given, see
// Claim). It acquires the lease (trying every Interval while another owner
// holds it), calls work with a context that is cancelled the moment the
// lease is lost or cannot be renewed for a whole TTL, and, when work
// returns, releases the lease so that another process takes over at once.
// An error from work is returned only if the lease was still held (the
// caller decides to retry); work ending because the lease was lost starts
// the acquiring again. RunOwned returns nil when ctx ends.
func RunOwned(ctx context.Context, leases Leases, cfg LeaseConfig, work func(ctx context.Context, l Lease) error) error {
	cfg.setDefaults()
	waiting := false
	for {
		l, err := leases.AcquireLease(ctx, cfg.Name, cfg.Owner, cfg.TTL)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Held by another, or the backend unreachable (a database
			// restart): either way try again later; background work
			// must outlive an outage, not stop for good.
			if !waiting && cfg.OnWaiting != nil {
				cfg.OnWaiting(err)
			}
			waiting = true
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(cfg.Interval):
			}
			continue
		}
		waiting = false
		lost, werr := runHeld(ctx, leases, cfg, l, work)
		if ctx.Err() != nil {
			return nil
		}
		if !lost && werr != nil {
			return werr
		}
	}
}

// runHeld runs work under held lease l, renewing it, and reports whether
// the lease was lost.
func runHeld(ctx context.Context, leases Leases, cfg LeaseConfig, l Lease, work func(context.Context, Lease) error) (lost bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lostFlag atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		renewed := time.Now()
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			err := leases.RenewLease(wctx, l, cfg.TTL)
			switch {
			case err == nil:
				renewed = start
			case wctx.Err() != nil:
				return
			case errors.Is(err, ErrLeaseLost) || time.Since(renewed) >= cfg.TTL:
				lostFlag.Store(true)
				cancel()
				return
			}
		}
	}()
	err = work(wctx, l)
	cancel()
	<-done
	if !lostFlag.Load() {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = leases.ReleaseLease(rctx, l)
		rcancel()
	}
	return lostFlag.Load(), err
}

// ForgetLeases deletes the leases of the read model name (its projection's
// and its builds'), epochs included: what a Forgetter does when a read
// model is deleted for good, its namespaces gone with it.
func (m *LocalLeases) ForgetLeases(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.leases, LeaseName(name))
	delete(m.leases, RebuildLeaseName(name))
}
