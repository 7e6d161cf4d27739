// Package ledger is the write path every edge shares (HTTP, broker ingest,
// import, CLI): it validates touchpoints, decides them against the
// customer's history with the domain aggregate, and appends them to the
// customer's stream under optimistic concurrency, so that an invariant
// checked is an invariant kept.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
)

// Store is what the ledger needs of an event store.
type Store interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
}

// Touchpoint is one event proposed for a customer's stream.
type Touchpoint struct {
	// ID is the event id and idempotency key; uuid.Nil gets a new random id
	// (and so no idempotent retry: callers that retry must set it).
	ID       uuid.UUID
	Event    domain.Event
	Metadata domain.Metadata
}

// Service appends touchpoints. It is safe for concurrent use.
type Service struct {
	store Store
	// Now is the clock metadata is validated against.
	Now func() time.Time
	// NewID makes ids for touchpoints that have none (default: uuid v7).
	NewID func() uuid.UUID
	// Attempts bounds how often an append with a non-exact expected version
	// is re-decided after a concurrent writer moved the stream.
	Attempts int
}

// New returns a Service over store.
func New(store Store) *Service {
	return &Service{store: store, Now: time.Now, NewID: newEventID, Attempts: 5}
}

// Append decides touchpoints against customer's history and appends them
// atomically.
//
// expected is the caller's concurrency condition. With an exact version,
// NoStream or StreamExists the stream must be in that state. With Any, the
// service still appends at the exact version it decided against and, when
// another writer got there first, decides again against the new history
// (up to Attempts times), so that no invariant is ever checked against a
// stale history.
//
// Errors: domain.ErrInvalid (a touchpoint or its metadata is malformed),
// domain.ErrRejected (an invariant forbids it), and the store's sentinel
// errors (eventstore.ErrWrongExpectedVersion, ErrDuplicateEvent, …).
// Nothing is written when an error is returned.
func (s *Service) Append(ctx context.Context, customer uuid.UUID, expected eventstore.ExpectedVersion, tps ...Touchpoint) (eventstore.AppendResult, error) {
	if customer == uuid.Nil {
		return eventstore.AppendResult{}, &domain.ValidationError{Field: "customerId", Rule: "required"}
	}
	if len(tps) == 0 {
		return eventstore.AppendResult{}, &domain.ValidationError{Field: "events", Rule: "at least one event is required"}
	}
	stream := domain.StreamID(customer)
	events := make([]domain.Event, len(tps))
	data := make([]eventstore.EventData, len(tps))
	now := s.Now()
	for i, tp := range tps {
		if tp.Event == nil {
			return eventstore.AppendResult{}, fmt.Errorf("event %d: %w", i, &domain.ValidationError{Field: "type", Rule: "required"})
		}
		if err := tp.Event.Validate(); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("event %d (%s): %w", i, tp.Event.EventType(), err)
		}
		if err := tp.Metadata.Validate(now); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("event %d (%s): %w", i, tp.Event.EventType(), err)
		}
		typ, version, payload, err := domain.Encode(tp.Event)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("event %d: %w", i, err)
		}
		id := tp.ID
		if id == uuid.Nil {
			id = s.NewID()
		}
		md := tp.Metadata
		md.SchemaVersion = version
		events[i] = tp.Event
		data[i] = eventstore.EventData{ID: id, Type: typ, Data: payload, Metadata: eventstore.Metadata(md)}
	}

	attempts := max(s.Attempts, 1)
	for attempt := 1; ; attempt++ {
		h, err := s.load(ctx, stream, customer)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if h.hasAny(data) {
			// A retry of an append that may already be stored: the store
			// alone knows whether it is the same append (the original
			// result) or a reuse of ids (ErrDuplicateEvent).
			return s.store.Append(ctx, stream, expected, data...)
		}
		if err := eventstore.CheckExpected(stream, expected, h.version); err != nil {
			return eventstore.AppendResult{}, err
		}
		if err := h.customer.CheckAll(events...); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("customer %s: %w", customer, err)
		}
		decided := eventstore.NoStream
		if h.version >= 0 {
			decided = eventstore.Exact(uint64(h.version))
		}
		res, err := s.store.Append(ctx, stream, decided, data...)
		if err != nil && errors.Is(err, eventstore.ErrWrongExpectedVersion) && decided != expected && attempt < attempts {
			continue // another writer moved the stream; decide again
		}
		return res, err
	}
}

// history is a customer's stream folded into the aggregate.
type history struct {
	customer *domain.Customer
	version  int64 // -1: no events
	ids      map[uuid.UUID]struct{}
}

func (h history) hasAny(events []eventstore.EventData) bool {
	for _, e := range events {
		if _, ok := h.ids[e.ID]; ok {
			return true
		}
	}
	return false
}

// load folds the customer's whole stream.
func (s *Service) load(ctx context.Context, stream string, customer uuid.UUID) (history, error) {
	h := history{customer: domain.NewCustomer(customer), version: -1, ids: map[uuid.UUID]struct{}{}}
	var from uint64
	for {
		page, err := s.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: from, Limit: eventstore.DefaultReadLimit})
		if errors.Is(err, eventstore.ErrNotFound) {
			return h, nil
		}
		if err != nil {
			return history{}, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, rec := range page {
			e, err := domain.Decode(rec.Type, rec.Metadata.SchemaVersion, rec.Data)
			if err != nil {
				return history{}, fmt.Errorf("load %s: event %s at version %d: %w", stream, rec.ID, rec.Version, err)
			}
			h.customer.Apply(e)
			h.ids[rec.ID] = struct{}{}
			h.version = int64(rec.Version)
		}
		if len(page) < eventstore.DefaultReadLimit {
			return h, nil
		}
		from = page[len(page)-1].Version + 1
	}
}

// newEventID makes time-ordered (version 7) uuids: stores index event ids
// in B+trees, and ids that arrive in roughly increasing order touch one
// page per commit instead of one random page per event.
func newEventID() uuid.UUID { return uuid.Must(uuid.NewV7()) }
