package projections

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"
)

// Ownership: each projection has one owner among every engine sharing the
// backend, the holder of its lease "projection/<name>" (see lease.go). An
// engine starts the runners of the projections it holds and renews their
// leases every LeaseInterval; it tries for the others at the same pace, so
// a projection whose owner died is taken over within about LeaseTTL +
// LeaseInterval, from its stored checkpoint (open reads it afresh on every
// acquisition, never from memory). Every runner's commit is fenced by its
// lease: an engine that lost a lease without noticing — paused, cut off —
// commits nothing. A runner that finds itself fenced stops; its engine
// starts it again from the backend's state if it still holds the lease,
// and otherwise leaves the projection to its new owner.

// LeaseName is the name of the lease owning the projection name.
func LeaseName(name string) string { return "projection/" + name }

// DefaultOwner names this process in leases: host, process id and a random
// suffix, so that two engines of one process, or a restarted process with
// the same id, never pass for each other.
func DefaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	var b [4]byte
	_, _ = crand.Read(b[:])
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:])
}

// Owner returns the name this engine holds leases under.
func (e *Engine) Owner() string { return e.cfg.Owner }

// acquire tries for the leases of slots it does not hold yet and starts the
// projections it got, together, so that those starting at about the same
// checkpoint share one subscription.
func (e *Engine) acquire(rs *runState, slots []*slot) {
	if e.cfg.Standby {
		return
	}
	var got []*slot
	for _, s := range slots {
		e.mu.Lock()
		held := !s.lease.IsZero()
		e.mu.Unlock()
		if held {
			continue
		}
		start := time.Now()
		l, err := e.b.AcquireLease(rs.ctx, LeaseName(s.p.Name()), e.cfg.Owner, e.cfg.LeaseTTL)
		if err != nil {
			if !errors.Is(err, ErrLeaseHeld) && rs.ctx.Err() == nil {
				e.log.WarnContext(rs.ctx, "projections: acquire lease", "projection", s.p.Name(), "error", err)
			}
			continue
		}
		e.mu.Lock()
		if s.gone {
			// Removed meanwhile (Remove): give the lease back at once.
			e.mu.Unlock()
			e.releaseLease(l)
			continue
		}
		s.lease, s.renewed, s.restart = l, start, false
		s.cur, s.next, s.building = nil, nil, false
		e.mu.Unlock()
		e.log.InfoContext(rs.ctx, "projections: took ownership", "projection", s.p.Name(), "owner", l.Owner, "epoch", l.Epoch)
		got = append(got, s)
	}
	if len(got) > 0 {
		e.startSlots(rs, got)
	}
}

// own keeps the leases: renews held ones, restarts fenced projections,
// tries for free ones and refreshes what Status shows of the projections
// other engines own, every LeaseInterval (with jitter, so engines started
// together do not try in lockstep) until rs ends.
func (e *Engine) own(rs *runState) {
	for {
		jitter := time.Duration(rand.Int64N(int64(e.cfg.LeaseInterval)/5 + 1))
		select {
		case <-rs.ctx.Done():
			return
		case <-time.After(e.cfg.LeaseInterval - jitter):
		}
		slots := e.slotList()
		var free []*slot
		for _, s := range slots {
			e.mu.Lock()
			l, renewed, restart := s.lease, s.renewed, s.restart
			e.mu.Unlock()
			if l.IsZero() {
				free = append(free, s)
				continue
			}
			start := time.Now()
			err := e.b.RenewLease(rs.ctx, l, e.cfg.LeaseTTL)
			switch {
			case err == nil:
				e.mu.Lock()
				s.renewed = start
				cur := s.cur
				e.mu.Unlock()
				// A rebuild, here or in another process, may have switched
				// the read model to a new generation: the live runner,
				// still on the old one, starts again on it (an idle one
				// would otherwise not learn of it until its next commit).
				if !restart && cur != nil {
					if active, err := e.b.Active(rs.ctx, s.p.Name()); err == nil && active != "" && active != cur.ns {
						restart = true
					}
				}
				// An owner whose projection stopped on a transient error
				// (the backend, not a poison event) would otherwise hold
				// the lease over a read model nobody applies: it starts
				// again, with a growing pause.
				if !restart && e.transientFailure(s, cur) {
					restart = true
				}
				if restart {
					e.restartSlot(rs, s)
				}
			case rs.ctx.Err() != nil:
				return
			case errors.Is(err, ErrLeaseLost) || time.Since(renewed) >= e.cfg.LeaseTTL:
				// Lost, or unrenewable for a whole TTL (then another
				// engine may hold it by now): step down.
				e.log.WarnContext(rs.ctx, "projections: lost ownership", "projection", s.p.Name(), "epoch", l.Epoch, "error", err)
				e.demote(s)
			default:
				e.log.WarnContext(rs.ctx, "projections: renew lease (retrying)", "projection", s.p.Name(), "error", err)
			}
		}
		e.acquire(rs, free)
		e.refreshStandby(rs.ctx)
	}
}

func (e *Engine) slotList() []*slot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Collect(maps.Values(e.slots))
}

// stopRunners stops s's runners and forgets them. A start of s in flight
// (startSlots) is waited for first, so that what it starts is stopped too.
func (e *Engine) stopRunners(s *slot) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	e.mu.Lock()
	cur, next := s.cur, s.next
	s.cur, s.next, s.building = nil, nil, false
	e.mu.Unlock()
	for _, r := range []*runner{cur, next} {
		if r != nil && r.handed() {
			r.stop()
		}
	}
}

// transientFailure reports whether cur, s's live runner, stopped on an
// error that is not a poison event and its retry is due; it schedules the
// next retry (doubling from RetryDelay up to a minute).
func (e *Engine) transientFailure(s *slot, cur *runner) bool {
	if cur == nil || cur.running() {
		e.mu.Lock()
		if cur != nil && cur.checkpoint.Load() > cur.startAt {
			s.retries = 0 // progress since the last restart
		}
		e.mu.Unlock()
		return false
	}
	err := cur.failure()
	var pe *ProjectionError
	if err == nil || errors.As(err, &pe) {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if now.Before(s.retryAt) {
		return false
	}
	delay := e.cfg.RetryDelay << min(s.retries, 7)
	s.retries++
	s.retryAt = now.Add(min(delay, time.Minute))
	e.log.Warn("projections: restarting after a transient failure", "projection", s.p.Name(), "attempt", s.retries, "error", err)
	return true
}

// demote stops s, whose lease this engine no longer holds.
func (e *Engine) demote(s *slot) {
	e.stopRunners(s)
	e.mu.Lock()
	s.lease, s.restart = Lease{}, false
	e.mu.Unlock()
}

// restartSlot starts s again from the backend's state after a runner was
// fenced (a switch by another process retired its namespace, or its
// checkpoint moved).
func (e *Engine) restartSlot(rs *runState, s *slot) {
	e.stopRunners(s)
	e.mu.Lock()
	s.restart = false
	e.mu.Unlock()
	e.log.InfoContext(rs.ctx, "projections: restarting from the stored state after a fenced commit", "projection", s.p.Name())
	e.startSlots(rs, []*slot{s})
}

// fenced is called by a runner whose commit was fenced. A runner of the
// projection's own lease (the live one, or a version build) is started
// again; a rebuild's runner is its build's business.
func (e *Engine) fenced(r *runner) {
	e.mu.Lock()
	if !r.lease.IsZero() && r.lease == r.s.lease {
		r.s.restart = true
	}
	e.mu.Unlock()
}

// refreshStandby reads, for the projections other engines own, who owns
// them and how far their active namespace is, for Status.
func (e *Engine) refreshStandby(ctx context.Context) {
	leases, err := e.b.ListLeases(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.WarnContext(ctx, "projections: list leases", "error", err)
		}
		return
	}
	byName := map[string]LeaseInfo{}
	for _, li := range leases {
		byName[li.Name] = li
	}
	var spaces []string
	for _, s := range e.slotList() {
		name := s.p.Name()
		// A build by another process: show it, from the backend.
		var remote *Progress
		if li, ok := byName[RebuildLeaseName(name)]; ok && li.Held && li.Owner != e.cfg.Owner {
			if spaces == nil {
				spaces, _ = e.b.Namespaces(ctx)
			}
			remote = &Progress{Projection: name, Owner: li.Owner}
			e.mu.Lock()
			_, activeGen, _ := parseNamespace(name, s.active)
			e.mu.Unlock()
			best := 0
			for _, ns := range spaces {
				if _, g, ok := parseNamespace(name, ns); ok && g > activeGen && g > best {
					best, remote.Namespace = g, ns
				}
			}
			if remote.Namespace != "" {
				remote.Position, _ = e.b.Checkpoint(ctx, remote.Namespace)
			}
		}
		e.mu.Lock()
		s.remote = remote
		held := !s.lease.IsZero()
		e.mu.Unlock()
		if held {
			continue
		}
		active, err := e.b.Active(ctx, name)
		var cp uint64
		if err == nil && active != "" {
			cp, err = e.b.Checkpoint(ctx, active)
		}
		if err != nil {
			continue
		}
		e.mu.Lock()
		s.holder, s.active, s.standby = byName[LeaseName(name)], active, cp
		e.mu.Unlock()
	}
}

// releaseAll gives up every lease this engine holds, once its runners
// stopped, so that another engine takes over at once.
func (e *Engine) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range e.slotList() {
		e.mu.Lock()
		l := s.lease
		s.lease = Lease{}
		e.mu.Unlock()
		if l.IsZero() {
			continue
		}
		if err := e.b.ReleaseLease(ctx, l); err != nil {
			e.log.Warn("projections: release lease", "projection", s.p.Name(), "error", err)
		}
	}
}

// listen follows the commits other processes notify (Notifier): the
// standby checkpoints Status shows move with them, and WaitFor wakes.
func (e *Engine) listen(ctx context.Context, n Notifier) {
	err := n.Listen(ctx, func(ns string, cp uint64) {
		if ns != "" {
			e.mu.Lock()
			for _, s := range e.slots {
				if s.lease.IsZero() && s.active == ns && cp > s.standby {
					s.standby = cp
				}
			}
			e.mu.Unlock()
		}
		e.progress.Notify()
	})
	if err != nil && ctx.Err() == nil {
		e.log.WarnContext(ctx, "projections: listening for other processes' progress stopped; waits fall back to polling", "error", err)
	}
}

// WaitFor waits until each named read model has applied position pos (or
// ctx ends), whichever engine owns it: for a projection this engine runs it
// follows the runner; for one another engine owns it reads the active
// namespace's checkpoint from the backend, which that engine's commits
// move.
func (e *Engine) WaitFor(ctx context.Context, pos uint64, names ...string) error {
	for _, name := range names {
		if err := e.waitOne(ctx, name, pos); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) waitOne(ctx context.Context, name string, pos uint64) error {
	e.mu.Lock()
	s := e.slots[name]
	var cur *runner
	if s != nil && !s.lease.IsZero() {
		cur = s.cur
	}
	e.mu.Unlock()
	if s == nil {
		return fmt.Errorf("wait for %s: %w", name, ErrUnknownProjection)
	}
	if cur.running() {
		if cur.checkpoint.Load() >= pos {
			return nil
		}
		if err := cur.waitCheckpoint(ctx, pos); err == nil || ctx.Err() != nil {
			return err
		}
		// The runner stopped (fenced, demoted): read the backend instead.
	}
	// Another process owns it: read its progress from the backend, again
	// whenever a commit is notified (Notifier), and at a slow poll in case
	// a notice was lost.
	delay := time.Millisecond
	for {
		wake := e.progress.C()
		active, err := e.b.Active(ctx, name)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", name, err)
		}
		if active != "" {
			cp, err := e.b.Checkpoint(ctx, active)
			if err != nil {
				return fmt.Errorf("wait for %s: %w", name, err)
			}
			if cp >= pos {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-time.After(delay):
		}
		delay = min(2*delay, e.pollCeiling())
	}
}

// pollCeiling is how often WaitFor reads a standby read model's progress
// at most: rarely when commits are notified, often when they are not.
func (e *Engine) pollCeiling() time.Duration {
	if _, ok := e.b.(Notifier); ok {
		return 250 * time.Millisecond
	}
	return 25 * time.Millisecond
}
