package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/pipeline"
	"github.com/google/uuid"
)

// Basis says which clock an as-of question is asked on.
type Basis string

// The two clocks of every event.
const (
	// Recorded folds the events the ledger had recorded by the moment: what
	// the company knew then. Corrections and backdated imports recorded
	// later are left out, as they were unknown.
	Recorded Basis = "recorded"
	// Occurred folds the events that had happened in the world by the
	// moment, whenever they were recorded: what the company knows now
	// about that date.
	Occurred Basis = "occurred"
)

// ParseBasis reads "recorded" or "occurred"; "" means Recorded.
func ParseBasis(s string) (Basis, error) {
	switch Basis(s) {
	case "", Recorded:
		return Recorded, nil
	case Occurred:
		return Occurred, nil
	}
	return "", fmt.Errorf("%w: basis must be recorded or occurred, not %q", domain.ErrInvalid, s)
}

// AsOf is a moment in the past and the clock it is read on.
type AsOf struct {
	At    time.Time
	Basis Basis
}

// includes reports whether r belongs to history as of the moment.
func (a AsOf) includes(r eventstore.Record) bool {
	if a.Basis == Occurred {
		return !r.Metadata.OccurredAt.After(a.At)
	}
	return !r.RecordedAt.After(a.At)
}

// LogReader is what as-of questions read: the event log itself, never the
// read models, which only know the present.
type LogReader interface {
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
}

// History answers as-of questions by folding the log up to a moment into
// throw-away in-memory read models, with the same projections and queries
// as the live ones: the answer is exactly what the live view showed then
// (on the recorded basis), not an approximation.
type History struct {
	log LogReader
	// Keys reveals the personal data of as-of views, as Service.Keys does
	// for live ones; nil leaves it as stored.
	Keys Keys
}

// NewHistory returns a History over log.
func NewHistory(log LogReader) *History { return &History{log: log} }

// AsOfView is a customer view as of a moment.
type AsOfView struct {
	CustomerView
	AsOf  time.Time `json:"asOf"`
	Basis Basis     `json:"basis"`
	// Events is how many of the customer's events were folded.
	Events int `json:"events"`
}

// Customer returns the unified view of customer id as of a. Customer 360
// folds the customer's own stream; the analytics score ranks the customer
// against every customer, so withScore folds the whole log as well (slower
// on a large ledger). It fails with projections.ErrNotFound when the
// customer had no event by then.
func (h *History) Customer(ctx context.Context, id uuid.UUID, a AsOf, withScore bool) (AsOfView, error) {
	if a.At.IsZero() {
		return AsOfView{}, fmt.Errorf("%w: as-of time is required", domain.ErrInvalid)
	}
	var events []domain.Envelope
	stream := domain.StreamID(id)
	for from := uint64(0); ; {
		page, err := h.log.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: from, Limit: eventstore.DefaultReadLimit})
		if errors.Is(err, eventstore.ErrNotFound) {
			break
		}
		if err != nil {
			return AsOfView{}, fmt.Errorf("as-of view of %s: %w", id, err)
		}
		for _, r := range page {
			if !a.includes(r) {
				continue
			}
			e, err := projections.Envelope(r)
			if err != nil {
				return AsOfView{}, fmt.Errorf("as-of view of %s: %w", id, err)
			}
			events = append(events, e)
		}
		if len(page) < eventstore.DefaultReadLimit {
			break
		}
		from = page[len(page)-1].Version + 1
	}
	if len(events) == 0 {
		return AsOfView{}, fmt.Errorf("customer %s had no events as of %s (%s): %w", id, a.At.Format(time.RFC3339), a.Basis, projections.ErrNotFound)
	}
	mem := projections.NewMemory()
	if err := fold(ctx, mem, customer360.New(), events); err != nil {
		return AsOfView{}, err
	}
	if withScore {
		scores := analytics.NewCustomers(analytics.Config{})
		if err := h.foldLog(ctx, mem, scores, a); err != nil {
			return AsOfView{}, err
		}
		// Rank the customer against the base as it was: the model
		// fitted over the folded history as of the moment.
		if _, err := analytics.FitAndSave(ctx, mem, analytics.FitOptions{Now: a.At, AsOf: a.At}); err != nil {
			return AsOfView{}, err
		}
	} else if err := fold(ctx, mem, analytics.NewCustomers(analytics.Config{}), nil); err != nil {
		return AsOfView{}, err
	}
	q := New(mem)
	q.Now = func() time.Time { return a.At }
	q.Keys = h.Keys
	v, err := q.Customer(ctx, id)
	if err != nil {
		return AsOfView{}, err
	}
	return AsOfView{CustomerView: v, AsOf: a.At, Basis: a.Basis, Events: len(events)}, nil
}

// AsOfPipeline is the pipeline report as of a moment.
type AsOfPipeline struct {
	PipelineReport
	AsOf  time.Time `json:"asOf"`
	Basis Basis     `json:"basis"`
}

// Pipeline returns the pipeline report as of a, folding every sales event
// of the log up to the moment; opts.Now is set to the moment.
func (h *History) Pipeline(ctx context.Context, a AsOf, opts pipeline.Options) (AsOfPipeline, error) {
	if a.At.IsZero() {
		return AsOfPipeline{}, fmt.Errorf("%w: as-of time is required", domain.ErrInvalid)
	}
	mem := projections.NewMemory()
	p := pipeline.New(pipeline.Config{})
	if err := h.foldLog(ctx, mem, p, a); err != nil {
		return AsOfPipeline{}, err
	}
	opts.Now = a.At
	q := New(mem)
	rep, err := q.Pipeline(ctx, opts)
	if err != nil {
		return AsOfPipeline{}, err
	}
	return AsOfPipeline{PipelineReport: rep, AsOf: a.At, Basis: a.Basis}, nil
}

// foldLog folds every event of the log that p handles and a includes, in
// pages, so memory holds the read model and one page, not the log.
func (h *History) foldLog(ctx context.Context, mem *projections.Memory, p projections.Projection, a AsOf) error {
	ns := projections.NamespaceFor(p.Name(), p.Version(), 1)
	filter := eventstore.Filter{Types: p.Types()}
	for after := uint64(0); ; {
		page, err := h.log.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: eventstore.DefaultReadLimit, Filter: filter})
		if err != nil {
			return fmt.Errorf("as-of %s: read log: %w", p.Name(), err)
		}
		batch := make([]domain.Envelope, 0, len(page))
		for _, r := range page {
			if !a.includes(r) {
				continue
			}
			e, err := projections.Envelope(r)
			if err != nil {
				return fmt.Errorf("as-of %s: %w", p.Name(), err)
			}
			batch = append(batch, e)
		}
		if len(batch) > 0 {
			if err := projections.ApplyBatch(ctx, mem, ns, p, batch); err != nil {
				return fmt.Errorf("as-of %s: %w", p.Name(), err)
			}
		}
		if len(page) < eventstore.DefaultReadLimit {
			break
		}
		after = page[len(page)-1].Position
	}
	if err := mem.Activate(ctx, p.Name(), ns); err != nil {
		return fmt.Errorf("as-of %s: %w", p.Name(), err)
	}
	return nil
}

// fold applies events to p in a fresh namespace of mem and activates it.
func fold(ctx context.Context, mem *projections.Memory, p projections.Projection, events []domain.Envelope) error {
	ns := projections.NamespaceFor(p.Name(), p.Version(), 1)
	if len(events) > 0 {
		if err := projections.ApplyBatch(ctx, mem, ns, p, events); err != nil {
			return fmt.Errorf("as-of %s: %w", p.Name(), err)
		}
	}
	if err := mem.Activate(ctx, p.Name(), ns); err != nil {
		return fmt.Errorf("as-of %s: %w", p.Name(), err)
	}
	return nil
}
