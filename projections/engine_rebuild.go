package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Rebuild builds the read model name again from position 0 into a new
// generation beside the live one, then switches readers over and drops the
// old generation. The live projection keeps applying new events, and
// readers keep reading it, until the switch. progress (may be nil) is
// called once when the build starts, every Config.ProgressInterval, and
// once more, with Done set, after the switch.
//
// Across processes: the build holds the rebuild lease "rebuild/<name>", so
// one rebuild of a read model runs at a time among every engine (and
// `cxledger replay`) sharing the backend — a second one fails with
// ErrRebuildInProgress naming the holder — and its commits are fenced by
// that lease. Whichever engine owns the projection keeps it live
// meanwhile. The switch (Backend.Switch) happens only once the new
// generation has caught up with the active one, in one step that retires
// the old generation: the owner's next commit to it is fenced, and the
// owner (this engine or another) starts again on the new generation from
// its checkpoint, so readers never see the read model go back in time and
// no process writes, or recreates, the dropped generation. Rebuild needs a
// running engine. If it fails or ctx ends before the switch, the new
// generation is dropped and the old one goes on as if nothing happened.
func (e *Engine) Rebuild(ctx context.Context, name string, progress func(Progress)) error {
	e.mu.Lock()
	rs, s := e.run, e.slots[name]
	switch {
	case rs == nil || rs.closing:
		e.mu.Unlock()
		return fmt.Errorf("rebuild %s: %w", name, ErrNotRunning)
	case s == nil:
		e.mu.Unlock()
		return fmt.Errorf("rebuild %s: %w", name, ErrUnknownProjection)
	case s.building:
		e.mu.Unlock()
		return fmt.Errorf("rebuild %s: %w", name, ErrRebuildInProgress)
	case s.openErr != nil:
		err := s.openErr
		e.mu.Unlock()
		return fmt.Errorf("rebuild %s: cannot start: %w", name, err)
	}
	s.building = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		s.building = false
		e.mu.Unlock()
	}()
	return e.build(ctx, rs, []*slot{s}, progress)
}

// RebuildLeaseName is the name of the lease a build of read model name
// holds (Rebuild, Replay).
func RebuildLeaseName(name string) string { return "rebuild/" + name }

// buildJob is one read model being built beside its active generation.
type buildJob struct {
	s     *slot
	lease Lease
	r     *runner
	err   error
	done  bool
}

// build builds a new generation of each slot beside the active one, each
// under its rebuild lease, on one shared subscription, and switches each
// read model over once its new generation has caught up (see Rebuild). It
// returns when every build has switched or failed, joining the failures.
func (e *Engine) build(ctx context.Context, rs *runState, slots []*slot, progress func(Progress)) error {
	var jobs []*buildJob
	var errs []error
	for _, s := range slots {
		name := s.p.Name()
		l, err := e.b.AcquireLease(ctx, RebuildLeaseName(name), e.cfg.Owner, e.cfg.LeaseTTL)
		if errors.Is(err, ErrLeaseHeld) {
			errs = append(errs, fmt.Errorf("rebuild %s: %w: %w", name, ErrRebuildInProgress, err))
			continue
		} else if err != nil {
			errs = append(errs, fmt.Errorf("rebuild %s: %w", name, err))
			continue
		}
		if active, err := e.b.Active(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("rebuild %s: %w", name, err))
			e.releaseLease(l)
			continue
		} else if v, _, ok := parseNamespace(name, active); ok && v > s.p.Version() {
			errs = append(errs, fmt.Errorf("rebuild %s: active read model %s is newer than version %d", name, active, s.p.Version()))
			e.releaseLease(l)
			continue
		}
		ns, err := e.newGeneration(ctx, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("rebuild %s: %w", name, err))
			e.releaseLease(l)
			continue
		}
		j := &buildJob{s: s, lease: l, r: e.newRunnerLease(s, ns, 0, l)}
		e.mu.Lock()
		s.next = j.r
		e.mu.Unlock()
		e.log.InfoContext(ctx, "projections: rebuild started", "projection", name, "namespace", ns, "owner", l.Owner, "epoch", l.Epoch)
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return errors.Join(errs...)
	}
	runners := make([]*runner, len(jobs))
	for i, j := range jobs {
		runners[i] = j.r
	}
	e.startGroup(rs, runners, 0)

	report := func(j *buildJob, done bool) {
		p := j.r.progress(e.cfg.Now(), e.head.Load())
		p.Done = done
		if progress != nil {
			progress(p)
		}
		e.log.InfoContext(ctx, "projections: rebuild progress", "projection", j.s.p.Name(), "namespace", j.r.ns,
			"position", p.Position, "head", p.Head, "events_per_second", int64(p.EventsPerSecond), "eta", p.ETA.Round(time.Second), "done", done)
	}
	for _, j := range jobs {
		report(j, false) // a caller always hears of a build before it is done
	}
	tick := time.NewTicker(min(e.cfg.ProgressInterval, 50*time.Millisecond))
	defer tick.Stop()
	lastReport, lastRenew := time.Now(), time.Now()
	for pending := len(jobs); pending > 0; {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		now := time.Now()
		renew := now.Sub(lastRenew) >= e.cfg.LeaseInterval
		if renew {
			lastRenew = now
		}
		for _, j := range jobs {
			if j.done || j.err != nil {
				continue
			}
			name := j.s.p.Name()
			switch {
			case ctx.Err() != nil:
				j.err = ctx.Err()
			case !j.r.running():
				j.err = cmp.Or(j.r.failure(), error(ErrNotRunning))
			case renew:
				if err := e.b.RenewLease(ctx, j.lease, e.cfg.LeaseTTL); err != nil && ctx.Err() == nil {
					j.err = fmt.Errorf("rebuild lease: %w", err)
				}
			}
			if j.err == nil && j.r.isLive() {
				j.err = e.trySwitch(ctx, j)
				if j.done {
					report(j, true)
				}
			}
			if j.err != nil {
				j.err = fmt.Errorf("rebuild %s into %s: %w", name, j.r.ns, j.err)
				e.abandonBuild(ctx, j)
			}
			if j.done || j.err != nil {
				pending--
			}
		}
		if now.Sub(lastReport) >= e.cfg.ProgressInterval {
			lastReport = now
			for _, j := range jobs {
				if !j.done && j.err == nil {
					report(j, false)
				}
			}
		}
	}
	for _, j := range jobs {
		if j.err != nil {
			errs = append(errs, j.err)
		}
	}
	return errors.Join(errs...)
}

// trySwitch switches j's read model to its new generation if it has caught
// up with the active one; otherwise it leaves j running (nil error, not
// done). After a switch it stops j's runner (the projection's owner goes
// on on the new generation), drops the old generation and releases the
// rebuild lease.
func (e *Engine) trySwitch(ctx context.Context, j *buildJob) error {
	name := j.s.p.Name()
	active, err := e.b.Active(ctx, name)
	if err != nil {
		return err
	}
	err = e.b.Switch(ctx, name, active, j.r.ns)
	if errors.Is(err, ErrNotCaughtUp) || errors.Is(err, ErrFenced) && active != "" {
		return nil // still behind the owner, or switched meanwhile: next round
	}
	if err != nil {
		return err
	}
	j.done = true
	j.r.stop()
	e.mu.Lock()
	if j.s.next == j.r {
		j.s.next = nil
	}
	j.s.active = j.r.ns
	e.mu.Unlock()
	e.log.InfoContext(ctx, "projections: switched readers to the new generation", "projection", name, "old", active, "new", j.r.ns, "through", j.r.checkpoint.Load())
	if active != "" && active != j.r.ns {
		if err := e.b.Drop(ctx, active); err != nil {
			// The switch happened; the owner's next start drops the leftover.
			e.log.WarnContext(ctx, "projections: drop the old generation", "projection", name, "namespace", active, "error", err)
		}
	}
	e.releaseLease(j.lease)
	return nil
}

// abandonBuild stops a failed build, drops its namespace and releases its
// lease.
func (e *Engine) abandonBuild(ctx context.Context, j *buildJob) {
	if j.r.handed() {
		j.r.stop()
	}
	// Clean up even when ctx ended: the namespace is garbage now.
	if err := e.b.Drop(context.WithoutCancel(ctx), j.r.ns); err != nil {
		e.log.WarnContext(ctx, "projections: drop abandoned rebuild", "namespace", j.r.ns, "error", err)
	}
	e.mu.Lock()
	if j.s.next == j.r {
		j.s.next = nil
	}
	e.mu.Unlock()
	e.releaseLease(j.lease)
}

// releaseLease gives l up, with its own short deadline (also at shutdown).
func (e *Engine) releaseLease(l Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.b.ReleaseLease(ctx, l); err != nil {
		e.log.Warn("projections: release lease", "lease", l.Name, "error", err)
	}
}

// newGeneration creates the namespace of the next generation of s at its
// current version.
func (e *Engine) newGeneration(ctx context.Context, s *slot) (string, error) {
	name := s.p.Name()
	all, err := e.b.Namespaces(ctx)
	if err != nil {
		return "", fmt.Errorf("list namespaces: %w", err)
	}
	gen := 0
	for _, ns := range all {
		if _, g, ok := parseNamespace(name, ns); ok {
			gen = max(gen, g)
		}
	}
	if active, err := e.b.Active(ctx, name); err != nil {
		return "", fmt.Errorf("active namespace: %w", err)
	} else if _, g, ok := parseNamespace(name, active); ok {
		gen = max(gen, g)
	}
	ns := NamespaceFor(name, s.p.Version(), gen+1)
	return ns, create(ctx, e.b, ns)
}

// handover waits for next, a build beside the active namespace, to catch
// up, then makes it the one serving reads and drops the old namespace (see
// Rebuild). explicit marks a Rebuild: if it fails, the new generation is
// dropped. A build of a new version (explicit false) is instead left as it
// is: it shows failed in Status, and Restart or the next start resumes it
// from its checkpoint.
func (e *Engine) handover(ctx context.Context, rs *runState, s *slot, next *runner, progress func(Progress), explicit bool) error {
	name := s.p.Name()
	log := e.log.With("projection", name, "namespace", next.ns)
	report := func(done bool) {
		p := next.progress(e.cfg.Now(), e.head.Load())
		p.Done = done
		if progress != nil {
			progress(p)
		}
		log.InfoContext(ctx, "projections: rebuild progress", "position", p.Position, "head", p.Head,
			"events_per_second", int64(p.EventsPerSecond), "eta", p.ETA.Round(time.Second), "done", done)
	}
	abandon := func(cause error) error {
		if explicit {
			next.stop()
			// Clean up even when ctx ended: the namespace is garbage now.
			if err := e.b.Drop(context.WithoutCancel(ctx), next.ns); err != nil {
				log.WarnContext(ctx, "projections: drop abandoned rebuild", "error", err)
			}
			e.mu.Lock()
			if s.next == next {
				s.next, s.building = nil, false
			}
			e.mu.Unlock()
		}
		return fmt.Errorf("rebuild %s into %s: %w", name, next.ns, cause)
	}

	// A first report at once says the build has started (position 0), so a
	// caller always hears of a rebuild before it is done, however short.
	report(false)
	t := time.NewTicker(e.cfg.ProgressInterval)
	defer t.Stop()
wait:
	for {
		select {
		case <-next.live:
			break wait
		case <-next.done:
			if err := next.failure(); err != nil {
				return abandon(err)
			}
			return abandon(ErrNotRunning)
		case <-ctx.Done():
			return abandon(ctx.Err())
		case <-t.C:
			report(false)
		}
	}

	e.mu.Lock()
	old, oldNS := s.cur, s.active
	e.mu.Unlock()
	var target uint64
	if old != nil {
		old.stop()
		cp, err := e.b.Checkpoint(ctx, old.ns)
		if err != nil {
			e.resume(rs, s, old)
			return abandon(fmt.Errorf("checkpoint of %s: %w", old.ns, err))
		}
		target = cp
	}
	if err := next.waitCheckpoint(ctx, target); err != nil {
		e.resume(rs, s, old)
		return abandon(err)
	}
	if err := e.b.Activate(ctx, name, next.ns); err != nil {
		e.resume(rs, s, old)
		return abandon(fmt.Errorf("activate: %w", err))
	}
	e.mu.Lock()
	s.cur, s.next, s.active, s.building = next, nil, next.ns, false
	e.mu.Unlock()
	log.InfoContext(ctx, "projections: switched readers to the new generation", "old", oldNS, "through", target)
	if oldNS != "" && oldNS != next.ns {
		if err := e.b.Drop(ctx, oldNS); err != nil {
			// The switch happened; the next start drops the leftover.
			return fmt.Errorf("rebuild %s: switched to %s, but drop %s: %w", name, next.ns, oldNS, err)
		}
	}
	report(true)
	return nil
}

// resume starts old again after a handover that stopped it failed, unless
// it had failed by itself.
func (e *Engine) resume(rs *runState, s *slot, old *runner) {
	if old == nil || old.failure() != nil {
		return
	}
	cp, err := e.b.Checkpoint(rs.ctx, old.ns)
	if err != nil {
		old.setErr(fmt.Errorf("resume after failed rebuild: %w", err), true)
		return
	}
	r := e.newRunner(s, old.ns, cp)
	e.mu.Lock()
	s.cur = r
	e.mu.Unlock()
	e.startGroup(rs, []*runner{r}, 0)
}

// Replay builds each projection's read model from position 0 into a new
// generation, then switches readers to it and drops the previous one: what
// `cxledger replay` and the rebuild benchmarks run, without an engine of
// their own. The projections share one subscription, so the log is read
// and decoded once for all of them while they apply in parallel. progress
// (may be nil) is called every cfg.ProgressInterval for each projection,
// and once with Done set after its switch.
//
// Replay is a Rebuild of every projection (see there): it holds each read
// model's rebuild lease, and if servers run on the same backend their
// owners keep the read models live until each new generation has caught up
// with them and switched. A projection that fails leaves its read model as
// it was (its new generation is dropped); the others are still switched.
// The error joins every failure (*ProjectionError for a poison event).
// While it runs the garbage collector works less often, within a soft
// memory limit (see tuneGCForReplay).
func Replay(ctx context.Context, src Source, b Backend, ps []Projection, cfg Config, progress func(Progress)) error {
	e, err := NewEngine(src, b, cfg)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := e.Register(p); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	defer tuneGCForReplay()()
	head, err := src.Head(ctx)
	if err != nil {
		return fmt.Errorf("replay: head: %w", err)
	}
	e.observeHead(head)
	slots := e.slotList()
	slices.SortFunc(slots, func(a, b *slot) int { return cmp.Compare(a.p.Name(), b.p.Name()) })
	rctx, cancel := context.WithCancel(ctx)
	rs := &runState{ctx: rctx}
	err = e.build(ctx, rs, slots, progress)
	cancel()
	rs.wg.Wait()
	return err
}
