package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

// ProjectionError is a poison event: the projection failed to apply it (its
// Apply returned an error or panicked, or the stored event could not be
// decoded). It stops only that projection, which stays failed until it is
// restarted; nothing is skipped.
type ProjectionError struct {
	Projection string
	Namespace  string
	Position   uint64
	EventID    string
	EventType  string
	Err        error
}

func (e *ProjectionError) Error() string {
	return fmt.Sprintf("projection %s (%s) stopped at position %d, event %s (%s): %v",
		e.Projection, e.Namespace, e.Position, e.EventID, e.EventType, e.Err)
}

// Unwrap returns the cause, so that errors.Is sees the projection's error.
func (e *ProjectionError) Unwrap() error { return e.Err }

// item is one decoded event of a page, shared read-only by every projection
// of a group. A record that failed to decode keeps its error, so that only
// the projections handling its type stop on it.
type item struct {
	env domain.Envelope
	err error
}

// decodeItem decodes r. On failure env still carries the record's identity
// (everything but Event) for the ProjectionError.
func decodeItem(r eventstore.Record) item {
	env := domain.Envelope{
		ID: r.ID, Stream: r.Stream, Type: r.Type, Version: r.Version, Position: r.Position,
		RecordedAt: r.RecordedAt, Metadata: domain.Metadata(r.Metadata),
	}
	ev, err := domain.Decode(r.Type, r.Metadata.SchemaVersion, r.Data)
	if err != nil {
		return item{env: env, err: fmt.Errorf("decode: %w", err)}
	}
	env.Event = ev
	return item{env: env}
}

// ApplyBatch applies a batch of events to projection p in namespace ns and
// moves the checkpoint to the last event's position, in one read-model
// transaction: the engine's unit of work, exported for tests and tools.
// Events p does not handle only move the checkpoint. A failing event gives
// a *ProjectionError and commits nothing.
func ApplyBatch(ctx context.Context, b Backend, ns string, p Projection, batch []domain.Envelope) error {
	return applyBatch(ctx, b, ns, p, nil, batch)
}

func applyBatch(ctx context.Context, b Backend, ns string, p Projection, cache *objectCache, batch []domain.Envelope) error {
	if len(batch) == 0 {
		return nil
	}
	handles := typeSet(p.Types())
	items := make([]*item, 0, len(batch))
	for i := range batch {
		if handled(handles, batch[i].Type) {
			items = append(items, &item{env: batch[i]})
		}
	}
	// Checkpoints never move backwards; tools and tests that apply
	// batches out of log order (to show order does not matter) keep the
	// furthest one.
	through := batch[len(batch)-1].Position
	if cp, err := b.Checkpoint(ctx, ns); err != nil {
		return fmt.Errorf("projection %s: checkpoint of %s: %w", p.Name(), ns, err)
	} else if cp > through {
		through = cp
	}
	return applyItems(ctx, b, ns, p, cache, items, through, nil)
}

// applyItems applies items (already restricted to the types p handles) and
// sets the checkpoint to through, in one transaction. through may lie past
// the last item: events of other types move the checkpoint too, so that a
// projection's lag is measured against the whole log. With a claim the
// transaction is a fenced Backend.Commit, as every engine runner's is;
// without one (ApplyBatch, tests and tools) a plain Update.
func applyItems(ctx context.Context, b Backend, ns string, p Projection, cache *objectCache, items []*item, through uint64, claim *Claim) error {
	var err error
	if claim == nil {
		err = b.Update(ctx, ns, func(w Writer) error { return fold(ctx, w, ns, p, cache, items, through) })
	} else {
		var ov *overlay
		if ov, err = foldOverlay(ctx, b, ns, p, cache, items, through, nil); err == nil {
			err = b.Commit(ctx, ns, *claim, func(w Writer) error { return ov.writeTo(ctx, w) })
		}
	}
	return batchDone(cache, p, ns, through, err)
}

// fold applies items to w and sets the checkpoint to through.
func fold(ctx context.Context, w Writer, ns string, p Projection, cache *objectCache, items []*item, through uint64) error {
	tx := newTx(ctx, w, cache)
	for _, it := range items {
		if err := applyOne(p, tx, it); err != nil {
			return &ProjectionError{Projection: p.Name(), Namespace: ns, Position: it.env.Position,
				EventID: it.env.ID.String(), EventType: it.env.Type, Err: err}
		}
	}
	if f, ok := p.(BatchFinisher); ok && len(items) > 0 {
		if err := finishBatch(f, tx); err != nil {
			last := items[len(items)-1]
			return &ProjectionError{Projection: p.Name(), Namespace: ns, Position: last.env.Position,
				EventID: last.env.ID.String(), EventType: last.env.Type, Err: fmt.Errorf("finish the batch: %w", err)}
		}
	}
	if err := tx.flush(); err != nil {
		return err
	}
	return w.SetCheckpoint(ctx, through)
}

// foldOverlay folds items on a snapshot of ns, outside the backend's write
// transaction (one at a time across namespaces), into an overlay for a
// fenced Commit (see overlay). below, when not nil, holds the writes of
// the batch before, folded but not yet committed: they are read as if
// committed, under this batch's own.
func foldOverlay(ctx context.Context, b Backend, ns string, p Projection, cache *objectCache, items []*item, through uint64, below *overlay) (*overlay, error) {
	ov := newOverlay()
	err := b.View(ctx, ns, func(r Reader) error {
		if below != nil {
			r = &overlay{r: r, pending: below.pending}
		}
		ov.r = r
		defer func() { ov.r = nil }()
		return fold(ctx, ov, ns, p, cache, items, through)
	})
	return ov, err
}

// batchDone settles the object cache after a batch (kept on success,
// dropped on failure: its objects may hold changes that did not commit)
// and gives err its context.
func batchDone(cache *objectCache, p Projection, ns string, through uint64, err error) error {
	if cache != nil {
		if err != nil {
			cache.reset()
		} else {
			cache.done()
		}
	}
	if err == nil {
		return nil
	}
	if pe := (*ProjectionError)(nil); errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("projection %s: apply through position %d to %s: %w", p.Name(), through, ns, err)
}

// finishBatch runs f.Finish, turning a panic into an error (see applyOne).
func finishBatch(f BatchFinisher, tx *Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return f.Finish(tx)
}

// applyOne applies one event, turning a panic into an error: a bug in one
// projection must stop that projection, not the process.
func applyOne(p Projection, tx *Tx, it *item) (err error) {
	if it.err != nil {
		return it.err
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return p.Apply(tx, it.env)
}

func typeSet(types []string) map[string]struct{} {
	if len(types) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(types))
	for _, t := range types {
		m[t] = struct{}{}
	}
	return m
}

// domainTypes is every event type of the domain: what a projection whose
// Types is empty handles.
var domainTypes = typeSet(domain.Types())

// handled reports whether a projection with type set handles (nil: every
// type of the domain) applies events of type typ. The log also holds
// records that are not customer touchpoints (the access log's
// AccessRecorded): they only move the checkpoint of a projection of every
// type, as any type it does not handle does.
func handled(handles map[string]struct{}, typ string) bool {
	if handles == nil {
		handles = domainTypes
	}
	_, ok := handles[typ]
	return ok
}
