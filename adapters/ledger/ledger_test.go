package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/google/uuid"
)

var now = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func meta() domain.Metadata {
	return domain.Metadata{OccurredAt: now.Add(-time.Minute), Actor: "service:shop", Channel: "web", CorrelationID: "checkout-4711"}
}

// caches are the cache configurations every ledger test runs under: off,
// the default, and one so small that it evicts on nearly every append.
var caches = []struct {
	name string
	cfg  ledger.CacheConfig
}{
	{"cache=off", ledger.CacheConfig{}},
	{"cache=default", ledger.DefaultCache},
	{"cache=tiny", ledger.CacheConfig{Streams: 1, Events: 3}},
}

// eachCache runs test once per cache configuration: the cache must not
// change what the ledger decides.
func eachCache(t *testing.T, test func(t *testing.T, cfg ledger.CacheConfig)) {
	for _, c := range caches {
		t.Run(c.name, func(t *testing.T) { test(t, c.cfg) })
	}
}

func newService(t testing.TB, store ledger.Store, cfg ledger.CacheConfig) *ledger.Service {
	t.Helper()
	s := ledger.NewWithCache(store, cfg)
	s.Now = func() time.Time { return now }
	return s
}

func register(t testing.TB, s *ledger.Service, customer uuid.UUID) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), domain.RoleSystem, customer, eventstore.NoStream, ledger.Touchpoint{
		ID:       uuid.New(),
		Event:    domain.CustomerRegistered{CustomerID: customer, Name: "Zoë Ñúñez", Country: "ES"},
		Metadata: meta(),
	})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return res
}

func streamLen(t testing.TB, store ledger.Store, customer uuid.UUID) int {
	t.Helper()
	recs, err := store.ReadStream(context.Background(), domain.StreamID(customer), eventstore.ReadStreamOptions{})
	if errors.Is(err, eventstore.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func TestAppendDecidesAgainstHistory(t *testing.T) {
	eachCache(t, testAppendDecidesAgainstHistory)
}

func testAppendDecidesAgainstHistory(t *testing.T, cfg ledger.CacheConfig) {
	store := memstore.New(memstore.Config{})
	s := newService(t, store, cfg)
	ctx := context.Background()
	customer, order := uuid.New(), uuid.New()

	if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, ledger.Touchpoint{
		Event: domain.PurchaseCompleted{OrderID: order, Amount: 1250, Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "TEA-GREEN-100G", Quantity: 1, UnitAmount: 1250}}}, Metadata: meta(),
	}); !errors.Is(err, domain.ErrRejected) {
		t.Fatalf("purchase before registration: got %v, want ErrRejected", err)
	}
	register(t, s, customer)

	purchase := ledger.Touchpoint{ID: uuid.New(), Event: domain.PurchaseCompleted{OrderID: order, Amount: 1250, Currency: "EUR",
		Lines: []domain.OrderLine{{SKU: "TEA-GREEN-100G", Quantity: 1, UnitAmount: 1250}}}, Metadata: meta()}
	res, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, purchase)
	if err != nil {
		t.Fatalf("purchase: %v", err)
	}
	if res.Version != 1 {
		t.Fatalf("purchase landed at version %d, want 1", res.Version)
	}

	refund := func(amount int64) ledger.Touchpoint {
		return ledger.Touchpoint{Event: domain.RefundIssued{RefundID: uuid.New(), OrderID: order, Amount: amount, Currency: "EUR"}, Metadata: meta()}
	}
	if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, refund(1000), refund(251)); !errors.Is(err, domain.ErrRejected) {
		t.Fatalf("refunds above the order amount in one append: got %v, want ErrRejected", err)
	}
	if got := streamLen(t, store, customer); got != 2 {
		t.Fatalf("a rejected append wrote something: stream has %d events, want 2", got)
	}
	if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Exact(1), refund(1000), refund(250)); err != nil {
		t.Fatalf("refunds up to the order amount: %v", err)
	}

	// An idempotent retry of the purchase returns the original result even
	// though the aggregate would now reject a second order with its id.
	again, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, purchase)
	if err != nil || again != res {
		t.Fatalf("retry of the purchase: got %+v, %v; want %+v", again, err, res)
	}
	if got := streamLen(t, store, customer); got != 4 {
		t.Fatalf("stream has %d events, want 4", got)
	}
}

func TestAppendRejectsBadInputWithoutWriting(t *testing.T) {
	eachCache(t, testAppendRejectsBadInputWithoutWriting)
}

func testAppendRejectsBadInputWithoutWriting(t *testing.T, cfg ledger.CacheConfig) {
	store := memstore.New(memstore.Config{})
	s := newService(t, store, cfg)
	ctx := context.Background()
	customer := uuid.New()
	register(t, s, customer)

	tests := []struct {
		name     string
		customer uuid.UUID
		expected eventstore.ExpectedVersion
		tps      []ledger.Touchpoint
		want     error
		field    string
	}{
		{"nil customer", uuid.Nil, eventstore.Any, []ledger.Touchpoint{{Event: domain.NoteAdded{Body: "hi"}, Metadata: meta()}}, domain.ErrInvalid, "customerId"},
		{"no events", customer, eventstore.Any, nil, domain.ErrInvalid, "events"},
		{"nil event", customer, eventstore.Any, []ledger.Touchpoint{{Metadata: meta()}}, domain.ErrInvalid, "type"},
		{"negative amount", customer, eventstore.Any, []ledger.Touchpoint{{Event: domain.PurchaseCompleted{OrderID: uuid.New(), Amount: -5, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "X", Quantity: 1, UnitAmount: 5}}}, Metadata: meta()}}, domain.ErrInvalid, "amount"},
		{"no actor", customer, eventstore.Any, []ledger.Touchpoint{{Event: domain.NoteAdded{Body: "hi"}, Metadata: domain.Metadata{OccurredAt: now}}}, domain.ErrInvalid, "metadata.actor"},
		{"occurred next week", customer, eventstore.Any, []ledger.Touchpoint{{Event: domain.NoteAdded{Body: "hi"}, Metadata: domain.Metadata{OccurredAt: now.Add(7 * 24 * time.Hour), Actor: "user:ana"}}}, domain.ErrInvalid, "metadata.occurredAt"},
		{"stale version", customer, eventstore.Exact(5), []ledger.Touchpoint{{Event: domain.NoteAdded{Body: "hi"}, Metadata: meta()}}, eventstore.ErrWrongExpectedVersion, ""},
		{"unknown ticket", customer, eventstore.Any, []ledger.Touchpoint{{Event: domain.TicketResolved{TicketID: uuid.New(), Resolution: "fixed"}, Metadata: meta()}}, domain.ErrRejected, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(ctx, domain.RoleSystem, tt.customer, tt.expected, tt.tps...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.field != "" {
				var ve *domain.ValidationError
				if !errors.As(err, &ve) || ve.Field != tt.field {
					t.Fatalf("error %v does not name field %q", err, tt.field)
				}
			}
			if got := streamLen(t, store, customer); got != 1 {
				t.Fatalf("stream has %d events after a rejected append, want 1", got)
			}
		})
	}
}

// racingStore appends a competing event right after the ledger has read
// the stream, the window an optimistic writer must survive.
type racingStore struct {
	eventstore.Store
	customer uuid.UUID
	races    int
}

func (r *racingStore) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error) {
	recs, err := r.Store.ReadStream(ctx, stream, opts)
	if r.races > 0 && err == nil {
		r.races--
		typ, v, data, _ := domain.Encode(domain.NoteAdded{Body: "written by someone else meanwhile"})
		md := eventstore.Metadata(meta())
		md.SchemaVersion = v
		if _, aerr := r.Store.Append(ctx, stream, eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md}); aerr != nil {
			return nil, aerr
		}
	}
	return recs, err
}

// TestAppendAnyRetriesUntilDeadline: an Any append keeps re-deciding for
// as long as RetryFor allows, however many times it loses the race (the
// old fixed five attempts answered 409 under cross-process contention), and
// with no time left it reports the conflict.
func TestAppendAnyRetriesUntilDeadline(t *testing.T) {
	eachCache(t, func(t *testing.T, cfg ledger.CacheConfig) {
		base := memstore.New(memstore.Config{})
		customer := uuid.New()
		register(t, newService(t, base, cfg), customer)
		const races = 40
		store := &racingStore{Store: base, customer: customer, races: races}
		s := newService(t, store, cfg)
		res, err := s.Append(context.Background(), domain.RoleService, customer, eventstore.Any, ledger.Touchpoint{Event: domain.NoteAdded{Body: "mine"}, Metadata: meta()})
		if err != nil {
			t.Fatalf("append with Any after losing %d races: %v", races, err)
		}
		if res.Version != races+1 {
			t.Fatalf("landed at version %d, want %d (after registration and %d racing notes)", res.Version, races+1, races)
		}

		store.races = 1
		s.RetryFor = 0
		if _, err := s.Append(context.Background(), domain.RoleService, customer, eventstore.Any, ledger.Touchpoint{Event: domain.NoteAdded{Body: "no time"}, Metadata: meta()}); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("Any with RetryFor 0 overtaken once: got %v, want ErrWrongExpectedVersion", err)
		}
	})
}

func TestAppendAnyRedecidesAfterConcurrentWrite(t *testing.T) {
	eachCache(t, testAppendAnyRedecidesAfterConcurrentWrite)
}

func testAppendAnyRedecidesAfterConcurrentWrite(t *testing.T, cfg ledger.CacheConfig) {
	base := memstore.New(memstore.Config{})
	customer := uuid.New()
	register(t, newService(t, base, cfg), customer)
	store := &racingStore{Store: base, customer: customer, races: 2}
	s := newService(t, store, cfg)

	res, err := s.Append(context.Background(), domain.RoleSystem, customer, eventstore.Any, ledger.Touchpoint{Event: domain.NoteAdded{Body: "mine"}, Metadata: meta()})
	if err != nil {
		t.Fatalf("append with Any under two racing writers: %v", err)
	}
	if res.Version != 3 {
		t.Fatalf("landed at version %d, want 3 (after registration and two racing notes)", res.Version)
	}

	store.races = 1
	if _, err := s.Append(context.Background(), domain.RoleSystem, customer, eventstore.Exact(3), ledger.Touchpoint{Event: domain.NoteAdded{Body: "exact"}, Metadata: meta()}); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("exact expected version overtaken by a racing writer: got %v, want ErrWrongExpectedVersion", err)
	}
}
