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
// The switch: once the new generation has caught up with the log, the old
// runner is stopped, the new one is let through the old one's last
// checkpoint (so readers never see the read model go back in time), and
// Backend.Activate points readers at it in one step. The new runner then
// goes on live. Rebuild needs a running engine. If it fails or ctx ends
// before the switch, the new generation is dropped and the old one goes on
// as if nothing happened.
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

	ns, err := e.newGeneration(ctx, s)
	if err != nil {
		e.mu.Lock()
		s.building = false
		e.mu.Unlock()
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	next := e.newRunner(s, ns, 0)
	e.mu.Lock()
	s.next = next
	e.mu.Unlock()
	e.log.InfoContext(ctx, "projections: rebuild started", "projection", name, "namespace", ns)
	e.startGroup(rs, []*runner{next}, 0)
	return e.handover(ctx, rs, s, next, progress, true)
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

// Replay builds each projection's read model from position 0 up to the
// log's head into a new generation, then switches readers to it and drops
// the previous one: what `cxledger replay` and the rebuild benchmarks run,
// without an engine. The projections share one subscription, so the log
// is read and decoded once for all of them while they apply in parallel.
// progress (may be nil) is called every cfg.ProgressInterval for each
// projection, and once with Done set after its switch.
//
// Replay must not run while an engine writes the same read models. A
// projection that fails leaves its read model as it was (its new
// generation is dropped); the others are still switched. The error joins
// every failure (*ProjectionError for a poison event).
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
	head, err := src.Head(ctx)
	if err != nil {
		return fmt.Errorf("replay: head: %w", err)
	}
	e.observeHead(head)

	slots := make([]*slot, 0, len(e.slots))
	for _, s := range e.slots {
		slots = append(slots, s)
	}
	slices.SortFunc(slots, func(a, b *slot) int { return cmp.Compare(a.p.Name(), b.p.Name()) })
	var errs []error
	runners := make([]*runner, 0, len(slots))
	for _, s := range slots {
		name := s.p.Name()
		active, err := b.Active(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("replay %s: %w", name, err))
			continue
		}
		if v, _, ok := parseNamespace(name, active); ok && v > s.p.Version() {
			errs = append(errs, fmt.Errorf("replay %s: active read model %s is newer than version %d", name, active, s.p.Version()))
			continue
		}
		ns, err := e.newGeneration(ctx, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("replay %s: %w", name, err))
			continue
		}
		s.active = active
		runners = append(runners, e.newRunner(s, ns, 0))
	}

	if head > 0 && len(runners) > 0 {
		rs := &runState{ctx: ctx}
		e.startGroup(rs, runners, head)
		finished := make(chan struct{})
		go func() {
			rs.wg.Wait()
			close(finished)
		}()
		t := time.NewTicker(e.cfg.ProgressInterval)
	wait:
		for {
			select {
			case <-finished:
				break wait
			case <-t.C:
				if progress != nil {
					for _, r := range runners {
						progress(r.progress(e.cfg.Now(), head))
					}
				}
			}
		}
		t.Stop()
	}

	cleanup := context.WithoutCancel(ctx)
	for _, r := range runners {
		name := r.s.p.Name()
		if err := r.failure(); err != nil || r.checkpoint.Load() < head || ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("stopped at %d of %d: %w", r.checkpoint.Load(), head, cmp.Or(ctx.Err(), ErrNotRunning))
			}
			errs = append(errs, fmt.Errorf("replay %s: %w", name, err))
			if derr := b.Drop(cleanup, r.ns); derr != nil {
				e.log.WarnContext(ctx, "projections: drop failed replay", "namespace", r.ns, "error", derr)
			}
			continue
		}
		if err := b.Activate(ctx, name, r.ns); err != nil {
			errs = append(errs, fmt.Errorf("replay %s: activate %s: %w", name, r.ns, err))
			continue
		}
		if r.s.active != "" && r.s.active != r.ns {
			if err := b.Drop(ctx, r.s.active); err != nil {
				errs = append(errs, fmt.Errorf("replay %s: switched to %s, but drop %s: %w", name, r.ns, r.s.active, err))
				continue
			}
		}
		if progress != nil {
			p := r.progress(e.cfg.Now(), head)
			p.Done = true
			progress(p)
		}
	}
	return errors.Join(errs...)
}
