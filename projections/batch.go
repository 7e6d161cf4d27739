package projections

import (
	"context"
	"fmt"

	"github.com/cxledger/cxledger/domain"
)

// ProjectionError is a poison event: the projection failed to apply it.
// It stops only that projection; nothing is skipped.
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

func (e *ProjectionError) Unwrap() error { return e.Err }

// ApplyBatch applies a batch of events to projection p in namespace ns and
// moves the checkpoint to the last event's position, in one read-model
// transaction: the engine's unit of work, exported for tests and tools.
// Events p does not handle only move the checkpoint. cache may be nil.
func ApplyBatch(ctx context.Context, b Backend, ns string, p Projection, batch []domain.Envelope) error {
	return applyBatch(ctx, b, ns, p, nil, batch)
}

func applyBatch(ctx context.Context, b Backend, ns string, p Projection, cache *objectCache, batch []domain.Envelope) error {
	if len(batch) == 0 {
		return nil
	}
	handles := typeSet(p.Types())
	err := b.Update(ctx, ns, func(w Writer) error {
		tx := newTx(ctx, w, cache)
		for _, e := range batch {
			if handles != nil {
				if _, ok := handles[e.Type]; !ok {
					continue
				}
			}
			if err := p.Apply(tx, e); err != nil {
				return &ProjectionError{Projection: p.Name(), Namespace: ns, Position: e.Position,
					EventID: e.ID.String(), EventType: e.Type, Err: err}
			}
		}
		if err := tx.flush(); err != nil {
			return err
		}
		return w.SetCheckpoint(ctx, batch[len(batch)-1].Position)
	})
	if cache != nil {
		if err != nil {
			clear(cache.m) // objects may hold changes that did not commit
		} else {
			cache.done()
		}
	}
	return err
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
