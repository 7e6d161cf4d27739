package projections

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Projections added, replaced and removed while the engine runs: the
// analyst projections, whose definitions change at run time in every
// process sharing a backend. Register adds one (engine.go); Replace swaps
// its code for a new version, which is then built beside the old read
// model and switched over like a version change at start; Remove stops it
// and gives up its lease. Ownership is unchanged: whichever engine holds a
// projection's lease runs it, every commit fenced by that lease, so a
// projection is never applied twice even while engines learn of a change
// at different moments.

// Remove stops the projection name in this engine and forgets it: its
// runners (live, version build or rebuild) are stopped and waited for, and
// its lease is released, so that no process writes it through this engine
// any more. A start of it in flight (a lease just acquired, a restart) is
// waited for and then stopped. The read model's namespaces stay: see
// DropReadModel. Remove is safe while the engine runs and concurrently
// with every other method.
func (e *Engine) Remove(name string) error {
	e.mu.Lock()
	s := e.slots[name]
	if s == nil {
		e.mu.Unlock()
		return fmt.Errorf("remove %s: %w", name, ErrUnknownProjection)
	}
	delete(e.slots, name)
	s.gone = true
	s.cancel() // runners started from now on stop at once
	e.mu.Unlock()

	// A start in flight has set its runners once it lets go of startMu.
	s.startMu.Lock()
	//lint:ignore SA2001 waiting for the start in flight is the point
	s.startMu.Unlock()
	e.stopRunners(s)
	e.mu.Lock()
	l := s.lease
	s.lease = Lease{}
	e.mu.Unlock()
	if !l.IsZero() {
		e.releaseLease(l)
	}
	e.log.Info("projections: removed", "projection", name, "released", !l.IsZero())
	return nil
}

// Replace swaps the registered projection of p's name for p, a new
// version of it (p.Version must be higher than the old one's, so that its
// read model is built anew). The engine holding the projection's lease
// builds the new version from position 0 beside the old read model, which
// keeps serving reads until the new one has caught up and is switched to;
// an engine not holding the lease only learns the new code. Replace is
// Remove followed by Register: the lease is released and taken again
// (here or by another engine), and the new owner starts from the
// backend's state.
func (e *Engine) Replace(p Projection) error {
	if p == nil {
		return errors.New("replace projection: nil")
	}
	if err := ValidateProjection(p); err != nil {
		return fmt.Errorf("replace projection: %w", err)
	}
	e.mu.Lock()
	old := e.slots[p.Name()]
	e.mu.Unlock()
	if old == nil {
		return fmt.Errorf("replace %s: %w", p.Name(), ErrUnknownProjection)
	}
	if v := old.p.Version(); p.Version() <= v {
		return fmt.Errorf("replace %s: version %d is not above the registered version %d", p.Name(), p.Version(), v)
	}
	if err := e.Remove(p.Name()); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	if err := e.Register(p); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	return nil
}

// Forgetter is what a backend offers to forget a read model entirely: its
// pointer to the active namespace and the leases of its projection and
// its builds. DropReadModel uses it when the backend has it.
type Forgetter interface {
	Forget(ctx context.Context, name string) error
}

// DropReadModel deletes the read model name from b for good: every
// namespace of it and (with a Forgetter backend) its pointer and leases.
// It first takes the projection's lease as owner, so that no engine
// writes the read model while it is dropped (their commits are fenced),
// waiting up to wait for an owner to let go of it (an engine that
// Removed it releases it at once); it fails with ErrLeaseHeld if the
// lease is still held then. The projection must be removed from every
// engine first, or its owner goes on writing it.
func DropReadModel(ctx context.Context, b Backend, name, owner string, ttl, wait time.Duration) error {
	if err := CheckName("read-model name", name); err != nil {
		return fmt.Errorf("drop read model: %w", err)
	}
	deadline := time.Now().Add(wait)
	var l Lease
	for {
		var err error
		l, err = b.AcquireLease(ctx, LeaseName(name), owner, ttl)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrLeaseHeld) || time.Now().After(deadline) {
			return fmt.Errorf("drop read model %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop read model %s: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	all, err := b.Namespaces(ctx)
	if err != nil {
		return fmt.Errorf("drop read model %s: %w", name, err)
	}
	for _, ns := range all {
		if _, _, ok := parseNamespace(name, ns); !ok {
			continue
		}
		if err := b.Drop(ctx, ns); err != nil {
			return fmt.Errorf("drop read model %s: %w", name, err)
		}
	}
	if f, ok := b.(Forgetter); ok {
		if err := f.Forget(ctx, name); err != nil {
			return fmt.Errorf("drop read model %s: %w", name, err)
		}
		return nil // the lease is gone with the rest
	}
	if err := b.ReleaseLease(ctx, l); err != nil {
		return fmt.Errorf("drop read model %s: %w", name, err)
	}
	return nil
}

// IsNamespaceOf reports whether ns is a namespace of the read model name,
// and of which version.
func IsNamespaceOf(name, ns string) (version int, ok bool) {
	version, _, ok = parseNamespace(name, ns)
	return version, ok
}
