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
	"math/rand/v2"
	"strings"
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

// Keys protects personal data at rest: adapters/keyring.Keyring. The
// ledger seals every event it stores and destroys the key of a customer it
// forgets.
type Keys interface {
	// Seal returns the encoded event data with its personal fields sealed
	// for customer, deterministically (the same event gives the same bytes,
	// so that a retried append stays an idempotent retry). It fails with
	// an error wrapping domain.ErrRejected once the customer is forgotten.
	Seal(ctx context.Context, customer uuid.UUID, typ string, data []byte) ([]byte, error)
	// Forget destroys customer's key, idempotently.
	Forget(ctx context.Context, customer uuid.UUID) error
}

// Service appends touchpoints. It is safe for concurrent use.
type Service struct {
	store Store
	cache *cache // nil: disabled
	// Keys seals personal data before it is stored; nil stores plaintext
	// (tests, tools, stores without a keyring).
	Keys Keys
	// Now is the clock metadata is validated against.
	Now func() time.Time
	// NewID makes ids for touchpoints that have none (default: uuid v7).
	NewID func() uuid.UUID
	// RetryFor bounds how long an append with a non-exact expected version
	// keeps being re-decided after concurrent writers moved the stream: it
	// retries until RetryFor has passed since its first attempt (or ctx
	// ends), not a fixed number of times, so that under contention from
	// several processes it wins eventually instead of giving up.
	RetryFor time.Duration
}

// DefaultRetryFor is Service.RetryFor of New and NewWithCache.
const DefaultRetryFor = 2 * time.Second

// New returns a Service over store with the DefaultCache of folded
// histories.
func New(store Store) *Service { return NewWithCache(store, DefaultCache) }

// NewWithCache returns a Service over store that caches folded histories
// within cfg's bounds; the zero CacheConfig disables the cache, and every
// append then folds its customer's whole stream.
//
// The cache is safe with other writers of the same store (other processes,
// other Services): an append always reads what the stream gained since
// the cached version before deciding, so the cache only saves reading what
// this Service has already folded.
func NewWithCache(store Store, cfg CacheConfig) *Service {
	return &Service{store: store, cache: newCache(cfg), Now: time.Now, NewID: newEventID, RetryFor: DefaultRetryFor}
}

// CacheStats reports the cache's size and counters (all zero when it is
// disabled).
func (s *Service) CacheStats() CacheStats { return s.cache.snapshot() }

// Append decides touchpoints against customer's history and appends them
// atomically. Consent is decided by the world's clock: a marketing
// message is allowed only if the customer's latest consent decision at or
// before its Metadata.OccurredAt, ordered by occurred-at and then log
// order, is a grant (domain.Customer.CheckAt); times count at the
// microsecond precision the store keeps.
//
// expected is the caller's concurrency condition. With an exact version,
// NoStream or StreamExists the stream must be in that state. With Any, the
// service still appends at the exact version it decided against and, when
// another writer got there first, decides again against the new history
// (until RetryFor has passed), so that no invariant is ever checked against a
// stale history.
//
// as is the role the append is made by: each touchpoint's type must be
// one as may append (domain.MayAppend), else the whole append fails with a
// *domain.ForbiddenError before anything else is looked at. Edges pass
// their caller's role (an API token's, the broker's or the import's
// configured one); the ledger's own writers (reactors, Forget) pass
// domain.RoleSystem.
//
// Errors: domain.ErrForbidden (as may not append a touchpoint's type),
// domain.ErrInvalid (a touchpoint or its metadata is malformed),
// domain.ErrRejected (an invariant forbids it), and the store's sentinel
// errors (eventstore.ErrWrongExpectedVersion, ErrDuplicateEvent, …). A
// duplicate id says only that the id is taken, never where: ids are
// global, and the stream holding one may be another customer's.
// Nothing is written when an error is returned — with Keys, at most the
// key of a customer whose append was decided and then failed in the store.
func (s *Service) Append(ctx context.Context, as domain.Role, customer uuid.UUID, expected eventstore.ExpectedVersion, tps ...Touchpoint) (eventstore.AppendResult, error) {
	for i, tp := range tps {
		if tp.Event == nil {
			continue // reported below, with the rest of the validation
		}
		if err := domain.MayAppend(as, tp.Event.EventType()); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("event %d: %w", i, err)
		}
	}
	if customer == uuid.Nil {
		return eventstore.AppendResult{}, &domain.ValidationError{Field: "customerId", Rule: "required"}
	}
	if len(tps) == 0 {
		return eventstore.AppendResult{}, &domain.ValidationError{Field: "events", Rule: "at least one event is required"}
	}
	stream := domain.StreamID(customer)
	events := make([]domain.Timed, len(tps))
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
		// Sealed only once decided (decideAndAppend): a refused append
		// must not even make the customer a key.
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
		// Decided at the occurred-at the store will keep (microseconds),
		// which a later fold of the stream reads back.
		events[i] = domain.Timed{Event: tp.Event, At: eventstore.Metadata(md).Normalize().OccurredAt}
		data[i] = eventstore.EventData{ID: id, Type: typ, Data: payload, Metadata: eventstore.Metadata(md)}
	}

	e, err := s.cache.acquire(ctx, stream, customer)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	defer s.cache.release(e)
	h := e.history()
	res, err := s.decideAndAppend(ctx, stream, customer, expected, h, events, data)
	if errors.Is(err, eventstore.ErrDuplicateEvent) {
		err = idTaken(data)
	}
	// Whatever the outcome, h holds only what the store confirmed: events
	// it returned, and this append's events only if it accepted them at
	// the version decided. A rejected or failed append publishes no
	// undecided state (at most the tail read before deciding). A panic
	// skips publish and leaves the entry as it was.
	s.cache.publish(e, h)
	return res, err
}

// Encode returns what Append stores for event e of customer: its type
// name, schema version and data, validated (domain.Encode) and with its
// personal fields sealed by Keys. Callers that compare a stored event with
// one they would append (a redelivery check) encode it with this.
func (s *Service) Encode(ctx context.Context, customer uuid.UUID, e domain.Event) (typ string, schemaVersion int, data []byte, err error) {
	typ, schemaVersion, data, err = domain.Encode(e)
	if err != nil {
		return "", 0, nil, err
	}
	if s.Keys != nil {
		if data, err = s.Keys.Seal(ctx, customer, typ, data); err != nil {
			return "", 0, nil, fmt.Errorf("encode %s: %w", typ, err)
		}
	}
	return typ, schemaVersion, data, nil
}

// decideAndAppend brings h up to date with the store, decides events
// against it and appends them at the version decided, re-deciding after a
// concurrent write when expected allows it. On success h includes the
// appended events. data is sealed (Keys) just before it goes to the store,
// once: after a decision, or for a retry of what may be stored already.
func (s *Service) decideAndAppend(ctx context.Context, stream string, customer uuid.UUID, expected eventstore.ExpectedVersion, h *history, events []domain.Timed, data []eventstore.EventData) (eventstore.AppendResult, error) {
	sealed := false
	seal := func() error {
		if sealed || s.Keys == nil {
			return nil
		}
		for i := range data {
			d, err := s.Keys.Seal(ctx, customer, data[i].Type, data[i].Data)
			if err != nil {
				return fmt.Errorf("event %d: encode %s: %w", i, data[i].Type, err)
			}
			data[i].Data = d
		}
		sealed = true
		return nil
	}
	deadline := time.Now().Add(s.RetryFor)
	for attempt := 1; ; attempt++ {
		// After a version conflict this reads only what the other writer
		// added since the last read.
		if err := s.catchUp(ctx, stream, customer, h); err != nil {
			return eventstore.AppendResult{}, err
		}
		if h.hasAny(data) {
			// A retry of an append that may already be stored: the store
			// alone knows whether it is the same append (the original
			// result) or a reuse of ids (ErrDuplicateEvent).
			if err := seal(); err != nil {
				return eventstore.AppendResult{}, err
			}
			return s.store.Append(ctx, stream, expected, data...)
		}
		if err := eventstore.CheckExpected(stream, expected, h.version); err != nil {
			return eventstore.AppendResult{}, err
		}
		if err := h.customer.CheckAllAt(events); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("customer %s: %w", customer, err)
		}
		decided := eventstore.NoStream
		if h.version >= 0 {
			decided = eventstore.Exact(uint64(h.version))
		}
		if err := seal(); err != nil {
			return eventstore.AppendResult{}, err
		}
		res, err := s.store.Append(ctx, stream, decided, data...)
		if err != nil && errors.Is(err, eventstore.ErrWrongExpectedVersion) && decided != expected && time.Now().Before(deadline) {
			// Another writer moved the stream: decide again, at once the
			// first time, then after a short random pause, so that writers
			// racing on one stream from several processes spread out.
			if attempt > 1 {
				select {
				case <-ctx.Done():
					return eventstore.AppendResult{}, fmt.Errorf("append to %s after %d version conflicts: %w", stream, attempt, ctx.Err())
				case <-time.After(rand.N(time.Duration(min(attempt, 10)) * time.Millisecond)):
				}
			}
			continue
		}
		if err == nil {
			h.appended(res, data)
		}
		return res, err
	}
}

// history is one append's view of a customer's stream, folded into the
// aggregate: always a prefix of the stream as stored, versions 0 to
// version.
//
// The aggregate starts as the cache entry's, shared read-only: deciding
// (CheckAll) never changes it, so the common append, to a stream nobody
// else wrote to, costs no copy of it. Folding a tail first takes a private
// copy, so that nothing reaches the entry before publish.
type history struct {
	customer *domain.Customer
	owned    bool  // customer is this append's copy, not the entry's
	version  int64 // -1: no events
	// ids are the cached entry's ids (read-only here; nil when folding from
	// the first event), tail the ids folded since.
	ids  map[uuid.UUID]struct{}
	tail map[uuid.UUID]struct{}
	// accepted are the events of this append once the store accepted them,
	// decoded and dated, counted in version and tail but left for publish
	// to fold: into the entry's aggregate in place, or into the copy that
	// replaces it. ApplyAt cannot fail, so publishing them is all or
	// nothing.
	accepted []domain.Timed
}

func (h *history) hasAny(events []eventstore.EventData) bool {
	for _, e := range events {
		if _, ok := h.ids[e.ID]; ok {
			return true
		}
		if _, ok := h.tail[e.ID]; ok {
			return true
		}
	}
	return false
}

// fold applies one event read from the store, which occurred at at. The
// aggregate, the version and the ids move together, so h is a consistent
// prefix after every call.
func (h *history) fold(e domain.Event, at time.Time, id uuid.UUID, version uint64) {
	if !h.owned {
		h.customer, h.owned = h.customer.Clone(), true
	}
	h.customer.ApplyAt(e, at)
	h.addID(id)
	h.version = int64(version)
}

func (h *history) addID(id uuid.UUID) {
	if h.tail == nil {
		h.tail = make(map[uuid.UUID]struct{})
	}
	h.tail[id] = struct{}{}
}

// appended records events the store has just accepted. It decodes what
// was stored rather than keeping the caller's values, and dates it with
// the occurred-at as stored (normalized), so that the cached aggregate is
// exactly what a fold of the stream would give. Should the result not be
// where the append was decided (it always is: the store writes at the
// expected version, or finds the very same events there), or an event not
// decode, h stays as it was and the next append reads those events from
// the store instead.
func (h *history) appended(res eventstore.AppendResult, data []eventstore.EventData) {
	if res.Version != uint64(h.version+int64(len(data))) {
		return
	}
	decoded := make([]domain.Timed, len(data))
	for i, d := range data {
		e, err := domain.Decode(d.Type, d.Metadata.SchemaVersion, d.Data)
		if err != nil {
			return
		}
		decoded[i] = domain.Timed{Event: e, At: d.Metadata.Normalize().OccurredAt}
	}
	for _, d := range data {
		h.addID(d.ID)
	}
	h.accepted = decoded
	h.version = int64(res.Version)
}

// catchUp folds what the stream gained after h.version, reading only
// that. Streams only grow, so h stays a prefix of the stream; should the
// store still not continue h where it ended (a store replaced under a
// running Service), h is folded again from the first event rather than
// trusted.
func (s *Service) catchUp(ctx context.Context, stream string, customer uuid.UUID, h *history) error {
	refolded := false
	gap := func(got string) error {
		if refolded {
			return fmt.Errorf("load %s: store returned %s after version %d", stream, got, h.version)
		}
		refolded = true
		*h = history{customer: domain.NewCustomer(customer), owned: true, version: -1}
		return nil
	}
read:
	for {
		page, err := s.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: uint64(h.version + 1), Limit: eventstore.DefaultReadLimit})
		if errors.Is(err, eventstore.ErrNotFound) {
			if h.version < 0 {
				return nil
			}
			if err := gap("no stream"); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("load %s: %w", stream, err)
		}
		for _, rec := range page {
			if int64(rec.Version) != h.version+1 {
				if err := gap(fmt.Sprintf("version %d", rec.Version)); err != nil {
					return err
				}
				continue read
			}
			e, err := domain.Decode(rec.Type, rec.Metadata.SchemaVersion, rec.Data)
			if err != nil {
				return fmt.Errorf("load %s: event %s at version %d: %w", stream, rec.ID, rec.Version, err)
			}
			h.fold(e, rec.Metadata.OccurredAt, rec.ID, rec.Version)
		}
		if len(page) < eventstore.DefaultReadLimit {
			return nil
		}
	}
}

// idTaken replaces the store's duplicate-event error, which may name the
// stream holding the id — another customer's — with one saying only that
// an id of the append is taken. Which one only the store knows, and its
// message is what must not leak: the ids are listed (up to maxListedIDs).
func idTaken(data []eventstore.EventData) error {
	if len(data) == 1 {
		return fmt.Errorf("%w: event id %s is taken", eventstore.ErrDuplicateEvent, data[0].ID)
	}
	if len(data) > maxListedIDs {
		return fmt.Errorf("%w: one of the %d event ids of the append (%s … %s) is taken", eventstore.ErrDuplicateEvent, len(data), data[0].ID, data[len(data)-1].ID)
	}
	ids := make([]string, len(data))
	for i, d := range data {
		ids[i] = d.ID.String()
	}
	return fmt.Errorf("%w: one of the event ids %s is taken", eventstore.ErrDuplicateEvent, strings.Join(ids, ", "))
}

// maxListedIDs bounds the ids a duplicate-event error lists.
const maxListedIDs = 10

// newEventID makes time-ordered (version 7) uuids: stores index event ids
// in B+trees, and ids that arrive in roughly increasing order touch one
// page per commit instead of one random page per event.
func newEventID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// ForgetResult says what Forget did.
type ForgetResult struct {
	// Appended is false when the customer's stream already held its
	// CustomerForgotten (a re-run, or a concurrent Forget): only the key
	// was destroyed, again.
	Appended bool
	// AppendResult is where the CustomerForgotten landed, when Appended.
	eventstore.AppendResult
	// Merged lists the other customers of the customer's merge group
	// (its survivor, the customers merged into it), forgotten with it:
	// they are one person.
	Merged []uuid.UUID `json:"merged,omitempty"`
}

// Forget erases a customer (GDPR art. 17, crypto-shredding): it appends
// tp, which must hold a domain.CustomerForgotten, to the customer's stream
// — after which the aggregate refuses every append and the read models
// blank the customer's personal data — and then destroys the customer's
// key (Keys.Forget), so that every personal value sealed in the customer's
// events, exports and read models becomes unreadable for good while the
// stored bytes stay as they are.
//
// The order makes it safe to repeat: a crash between the two steps leaves
// a forgotten customer whose key still exists, and running Forget again
// finds the CustomerForgotten, appends nothing and destroys the key. Two
// concurrent Forgets of one customer append one event.
//
// Errors: domain.ErrInvalid (tp is not a CustomerForgotten, or malformed),
// eventstore.ErrNotFound (no such customer), domain.ErrRejected (a stream
// the aggregate refuses, e.g. never registered), the store's and the key
// store's errors. When the append fails the key is left alone.
//
// A customer merged with others (domain.CustomerMerged) is one person with
// them: Forget erases every customer of the merge group (ForgetResult.Merged),
// each with its own CustomerForgotten (ids derived from tp.ID) and key.
func (s *Service) Forget(ctx context.Context, customer uuid.UUID, tp Touchpoint) (ForgetResult, error) {
	switch tp.Event.(type) {
	case domain.CustomerForgotten, *domain.CustomerForgotten:
	default:
		return ForgetResult{}, &domain.ValidationError{Field: "type", Rule: "must be " + domain.TypeCustomerForgotten}
	}
	group, err := s.Group(ctx, customer)
	if err != nil {
		return ForgetResult{}, err
	}
	res, err := s.forgetOne(ctx, customer, tp)
	if err != nil {
		return res, err
	}
	for _, other := range group[1:] {
		otp := tp
		if tp.ID != uuid.Nil {
			otp.ID = uuid.NewSHA1(tp.ID, other[:])
		}
		if _, err := s.forgetOne(ctx, other, otp); err != nil {
			return res, fmt.Errorf("forget %s, merged with %s: %w", other, customer, err)
		}
		res.Merged = append(res.Merged, other)
	}
	return res, nil
}

// forgetOne is Forget of one customer, whatever its merges.
func (s *Service) forgetOne(ctx context.Context, customer uuid.UUID, tp Touchpoint) (ForgetResult, error) {
	forgotten, err := s.forgotten(ctx, customer)
	if err != nil {
		return ForgetResult{}, err
	}
	var res ForgetResult
	if !forgotten {
		ar, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.StreamExists, tp)
		switch {
		case err == nil:
			res = ForgetResult{Appended: true, AppendResult: ar}
		case errors.Is(err, domain.ErrRejected):
			// Refused: maybe a concurrent Forget got there first.
			if again, ferr := s.forgotten(ctx, customer); ferr != nil || !again {
				return ForgetResult{}, err
			}
		default:
			return ForgetResult{}, err
		}
	}
	if s.Keys != nil {
		if err := s.Keys.Forget(ctx, customer); err != nil {
			return res, fmt.Errorf("forget customer %s: the erasure is recorded but the key is not destroyed yet (run forget again): %w", customer, err)
		}
	}
	return res, nil
}

// forgotten folds customer's history (through the cache) and reports
// whether it holds CustomerForgotten; a missing stream is
// eventstore.ErrNotFound.
func (s *Service) forgotten(ctx context.Context, customer uuid.UUID) (bool, error) {
	var gone bool
	err := s.inspect(ctx, customer, func(c *domain.Customer) { gone = c.Forgotten() })
	return gone, err
}

// Earning returns the points still unspent and unexpired of one loyalty
// earning of customer, from the customer's folded history, and whether
// the earning exists: what the loyalty expiry reactor expires.
func (s *Service) Earning(ctx context.Context, customer, earning uuid.UUID) (remaining int64, found bool, err error) {
	err = s.inspect(ctx, customer, func(c *domain.Customer) {
		if st, ok := c.Earning(earning); ok {
			remaining, found = st.Remaining, true
		}
	})
	return remaining, found, err
}

// ClawbackDue implements loyalty.Balances: what a claw-back of order's
// purchase earning owes now, from the customer's aggregate.
func (s *Service) ClawbackDue(ctx context.Context, customer, order, earning uuid.UUID) (due int64, err error) {
	err = s.inspect(ctx, customer, func(c *domain.Customer) { due = c.ClawbackDue(order, earning) })
	return due, err
}

// TicketClock implements engage.TicketClocks: a ticket's service clock,
// from the customer's aggregate.
func (s *Service) TicketClock(ctx context.Context, customer, ticket uuid.UUID) (clock domain.TicketClock, found bool, err error) {
	err = s.inspect(ctx, customer, func(c *domain.Customer) { clock, found = c.TicketClock(ticket) })
	return clock, found, err
}

// inspect folds customer's history (through the cache) and calls fn with
// the aggregate, which fn must not keep; a missing stream is
// eventstore.ErrNotFound.
func (s *Service) inspect(ctx context.Context, customer uuid.UUID, fn func(*domain.Customer)) error {
	return s.inspectVersion(ctx, customer, func(c *domain.Customer, _ int64) { fn(c) })
}

// inspectVersion is inspect that also passes the stream's version.
func (s *Service) inspectVersion(ctx context.Context, customer uuid.UUID, fn func(*domain.Customer, int64)) error {
	if customer == uuid.Nil {
		return &domain.ValidationError{Field: "customerId", Rule: "required"}
	}
	stream := domain.StreamID(customer)
	e, err := s.cache.acquire(ctx, stream, customer)
	if err != nil {
		return err
	}
	defer s.cache.release(e)
	h := e.history()
	err = s.catchUp(ctx, stream, customer, h)
	s.cache.publish(e, h)
	switch {
	case err != nil:
		return err
	case h.version < 0:
		return fmt.Errorf("customer %s: %w", customer, eventstore.ErrNotFound)
	}
	fn(h.customer, h.version)
	return nil
}
