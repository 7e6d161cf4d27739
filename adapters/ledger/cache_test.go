package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/google/uuid"
)

var on = ledger.DefaultCache

// countingStore counts what the ledger reads from and appends to a store.
type countingStore struct {
	ledger.Store

	mu      sync.Mutex
	reads   int      // ReadStream calls
	records int      // records those calls returned
	from    []uint64 // their From
	appends int      // Append calls
}

func (c *countingStore) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error) {
	recs, err := c.Store.ReadStream(ctx, stream, opts)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	c.records += len(recs)
	c.from = append(c.from, opts.From)
	return recs, err
}

func (c *countingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	c.mu.Lock()
	c.appends++
	c.mu.Unlock()
	return c.Store.Append(ctx, stream, expected, events...)
}

// took returns what was read and appended since the last call.
func (c *countingStore) took() (records int, from []uint64, appends int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	records, from, appends = c.records, c.from, c.appends
	c.reads, c.records, c.from, c.appends = 0, 0, nil, 0
	return records, from, appends
}

// faultyStore fails the next append, after writing it when written is set:
// a commit whose acknowledgement was lost, the outcome an append cancelled
// mid-commit has.
type faultyStore struct {
	ledger.Store
	fail    bool
	written bool
}

var errConnReset = errors.New("read tcp 10.0.3.7:52814->10.0.3.2:5432: connection reset by peer")

func (f *faultyStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if !f.fail {
		return f.Store.Append(ctx, stream, expected, events...)
	}
	f.fail = false
	if f.written {
		if _, err := f.Store.Append(ctx, stream, expected, events...); err != nil {
			return eventstore.AppendResult{}, err
		}
	}
	return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w", stream, errConnReset)
}

func note(body string) ledger.Touchpoint {
	return ledger.Touchpoint{Event: domain.NoteAdded{Body: body}, Metadata: meta()}
}

func ptr[T any](v T) *T { return &v }

// appendDirect appends e to the customer's stream straight through the
// store, as another process or a tool that bypasses this ledger would.
func appendDirect(t testing.TB, store ledger.Store, customer uuid.UUID, expected eventstore.ExpectedVersion, e domain.Event) eventstore.AppendResult {
	t.Helper()
	typ, v, data, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	md := eventstore.Metadata(meta())
	md.SchemaVersion = v
	res, err := store.Append(context.Background(), domain.StreamID(customer), expected, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md})
	if err != nil {
		t.Fatalf("append %s straight to the store: %v", e.EventType(), err)
	}
	return res
}

// history returns n realistic touchpoints for a registered customer:
// tickets opened, worked and resolved, purchases and partial refunds,
// mail, calls and notes, so the aggregate has real state to fold and
// clone.
func history(n int) []ledger.Touchpoint {
	tps := make([]ledger.Touchpoint, 0, n)
	var ticket, order uuid.UUID
	for i := 0; len(tps) < n; i++ {
		var e domain.Event
		switch i % 10 {
		case 0:
			ticket = uuid.New()
			e = domain.TicketOpened{TicketID: ticket, Subject: "Colis non reçu", Priority: domain.PriorityHigh, Channel: domain.TicketEmail, Description: "Order shows delivered but nothing arrived."}
		case 1:
			e = domain.EmailSent{MessageID: fmt.Sprintf("<%d.4711@mail.cxledger.example>", i), Subject: "Votre commande est en route 🚚", From: "support@shop.example", To: "zoe.nunez@example.es", Template: "shipping-confirmation"}
		case 2:
			e = domain.TicketUpdated{TicketID: ticket, Status: ptr(domain.StatusInProgress), Assignee: ptr("user:marta.kowalska"), Comment: "Opened an inquiry with the carrier.", FirstResponse: true}
		case 3:
			e = domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: 754, Agent: "user:marta.kowalska", Outcome: domain.CallConnected, Summary: "Asked about delivery."}
		case 4:
			order = uuid.New()
			e = domain.PurchaseCompleted{OrderID: order, Amount: 12_990, Currency: "EUR", Lines: []domain.OrderLine{
				{SKU: "SNK-42-WHT", Description: "Baskets blanches, taille 42", Quantity: 1, UnitAmount: 8_990},
				{SKU: "SOCK-3P", Description: "Chaussettes (lot de 3)", Quantity: 2, UnitAmount: 2_000},
			}}
		case 5:
			e = domain.RefundIssued{RefundID: uuid.New(), OrderID: order, Amount: 2_000, Currency: "EUR", Reason: "Socks returned unopened"}
		case 6:
			e = domain.TicketResolved{TicketID: ticket, Resolution: "Carrier found the parcel."}
		default:
			e = domain.NoteAdded{Body: fmt.Sprintf("Prefers contact in Spanish, after 17:00 (%d).", i)}
		}
		tps = append(tps, ledger.Touchpoint{ID: uuid.New(), Event: e, Metadata: meta()})
	}
	return tps
}

// longCustomer registers a customer whose stream holds n events.
func longCustomer(t testing.TB, store ledger.Store, n int) uuid.UUID {
	t.Helper()
	s := newService(t, store, on)
	customer := uuid.New()
	register(t, s, customer)
	tps := history(n - 1)
	for len(tps) > 0 {
		batch := tps[:min(len(tps), 250)]
		tps = tps[len(batch):]
		if _, err := s.Append(context.Background(), domain.RoleSystem, customer, eventstore.Any, batch...); err != nil {
			t.Fatalf("history: %v", err)
		}
	}
	return customer
}

func mustAppend(t testing.TB, s *ledger.Service, customer uuid.UUID, expected eventstore.ExpectedVersion, tps ...ledger.Touchpoint) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), domain.RoleSystem, customer, expected, tps...)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

func TestCacheReadsOnlyTheTail(t *testing.T) {
	const n = 2_500 // several read pages
	base := memstore.New(memstore.Config{})
	customer := longCustomer(t, base, n)
	store := &countingStore{Store: base}

	s := newService(t, store, on)
	mustAppend(t, s, customer, eventstore.Any, note("first append: a miss"))
	if records, _, _ := store.took(); records != n {
		t.Fatalf("a miss read %d records, want the whole stream (%d)", records, n)
	}
	for i := range 3 {
		res := mustAppend(t, s, customer, eventstore.Exact(uint64(n+i)), note("cached"))
		records, from, _ := store.took()
		if records != 0 || len(from) != 1 || from[0] != uint64(n+i+1) {
			t.Fatalf("append %d to a cached customer read %d records from %v, want 0 from [%d]", i, records, from, n+i+1)
		}
		if res.Version != uint64(n+i+1) {
			t.Fatalf("landed at version %d, want %d", res.Version, n+i+1)
		}
	}
	if st := s.CacheStats(); st.Streams != 1 || st.Events != n+4 || st.Hits != 3 || st.Misses != 1 || st.Evictions != 0 {
		t.Fatalf("stats %+v", st)
	}

	off := newService(t, store, ledger.CacheConfig{})
	mustAppend(t, off, customer, eventstore.Any, note("uncached"))
	if records, _, _ := store.took(); records != n+4 {
		t.Fatalf("without a cache an append read %d records, want %d", records, n+4)
	}
	if st := off.CacheStats(); st != (ledger.CacheStats{}) {
		t.Fatalf("disabled cache reports %+v", st)
	}
}

// Other writers (another node, a tool appending straight to the store)
// are folded in before the next decision: the cache never decides against
// a stale history.
func TestCacheFoldsWritesThatBypassIt(t *testing.T) {
	base := memstore.New(memstore.Config{})
	store := &countingStore{Store: base}
	s := newService(t, store, on)
	ctx := context.Background()
	customer, ticket := uuid.New(), uuid.New()
	register(t, s, customer)
	mustAppend(t, s, customer, eventstore.Exact(0), ledger.Touchpoint{Event: domain.TicketOpened{TicketID: ticket, Subject: "Factura duplicada", Priority: domain.PriorityNormal, Channel: domain.TicketPhone}, Metadata: meta()})

	appendDirect(t, base, customer, eventstore.Exact(1), domain.TicketClosed{TicketID: ticket, Reason: "Duplicate of another ticket"})
	store.took()

	_, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, ledger.Touchpoint{Event: domain.TicketUpdated{TicketID: ticket, Status: ptr(domain.StatusInProgress)}, Metadata: meta()})
	if !errors.Is(err, domain.ErrRejected) {
		t.Fatalf("update of a ticket another writer closed: got %v, want ErrRejected", err)
	}
	if records, _, _ := store.took(); records != 1 {
		t.Fatalf("read %d records, want the 1 the other writer added", records)
	}
	res := mustAppend(t, s, customer, eventstore.Exact(2), ledger.Touchpoint{Event: domain.TicketReopened{TicketID: ticket, Reason: "Not a duplicate after all"}, Metadata: meta()})
	if res.Version != 3 {
		t.Fatalf("reopen landed at %d, want 3", res.Version)
	}

	// A stale exact expectation fails although the cache was current when
	// this Service last appended.
	other := newService(t, base, on)
	mustAppend(t, other, customer, eventstore.Exact(3), note("from another node"))
	if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Exact(3), note("stale")); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("append at a version another node moved past: got %v, want ErrWrongExpectedVersion", err)
	}
	if got := streamLen(t, base, customer); got != 5 {
		t.Fatalf("stream has %d events, want 5", got)
	}
}

// Only what the store confirmed reaches the cache: a rejected decision or
// a failed append leaves it as it was, and the next append decides against
// the stream as stored.
func TestCacheKeepsOnlyWhatTheStoreConfirmed(t *testing.T) {
	ctx := context.Background()
	opened := func(ticket uuid.UUID) ledger.Touchpoint {
		return ledger.Touchpoint{Event: domain.TicketOpened{TicketID: ticket, Subject: "Lieferung beschädigt", Priority: domain.PriorityUrgent, Channel: domain.TicketChat}, Metadata: meta()}
	}
	comment := func(ticket uuid.UUID) ledger.Touchpoint {
		return ledger.Touchpoint{Event: domain.TicketUpdated{TicketID: ticket, Comment: "Photos received."}, Metadata: meta()}
	}

	t.Run("rejected", func(t *testing.T) {
		store := &countingStore{Store: memstore.New(memstore.Config{})}
		s := newService(t, store, on)
		customer, order, ticket := uuid.New(), uuid.New(), uuid.New()
		register(t, s, customer)
		mustAppend(t, s, customer, eventstore.Any, ledger.Touchpoint{Event: domain.PurchaseCompleted{OrderID: order, Amount: 1250, Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "TEA-GREEN-100G", Quantity: 1, UnitAmount: 1250}}}, Metadata: meta()})
		refund := func(amount int64) ledger.Touchpoint {
			return ledger.Touchpoint{Event: domain.RefundIssued{RefundID: uuid.New(), OrderID: order, Amount: amount, Currency: "EUR"}, Metadata: meta()}
		}
		// Another writer's event makes the ledger read a tail, so the
		// entry is updated on the rejections below: with that tail only.
		appendDirect(t, store.Store, customer, eventstore.Exact(1), domain.NoteAdded{Body: "Asked for a partial refund"})
		// The first event of each batch passes its check: it must not stay
		// folded when the second one is rejected.
		if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, refund(1000), refund(251)); !errors.Is(err, domain.ErrRejected) {
			t.Fatalf("refunds above the order amount: got %v, want ErrRejected", err)
		}
		if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, opened(ticket), opened(ticket)); !errors.Is(err, domain.ErrRejected) {
			t.Fatalf("one ticket opened twice: got %v, want ErrRejected", err)
		}
		store.took()
		if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, comment(ticket)); !errors.Is(err, domain.ErrRejected) {
			t.Fatalf("comment on the ticket of a rejected batch: got %v, want ErrRejected", err)
		}
		res := mustAppend(t, s, customer, eventstore.Exact(2), refund(1250), opened(ticket))
		if res.Version != 4 {
			t.Fatalf("landed at %d, want 4", res.Version)
		}
		if records, _, _ := store.took(); records != 0 {
			t.Fatalf("read %d records after rejections, want 0: nothing was written", records)
		}
	})

	// A store that panics (a driver bug, recovered by net/http's handler
	// recovery) must not leave a half-folded entry behind: the tail read
	// before the panic is folded into a clone, never into the entry.
	t.Run("store panics", func(t *testing.T) {
		base := memstore.New(memstore.Config{})
		store := &panickingStore{Store: base}
		s := newService(t, store, on)
		customer, order := uuid.New(), uuid.New()
		register(t, s, customer)
		mustAppend(t, s, customer, eventstore.Exact(0), ledger.Touchpoint{Event: domain.PurchaseCompleted{OrderID: order, Amount: 1000, Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "GIFT-CARD", Quantity: 1, UnitAmount: 1000}}}, Metadata: meta()})
		appendDirect(t, base, customer, eventstore.Exact(1), domain.RefundIssued{RefundID: uuid.New(), OrderID: order, Amount: 500, Currency: "EUR"})
		refund := ledger.Touchpoint{Event: domain.RefundIssued{RefundID: uuid.New(), OrderID: order, Amount: 500, Currency: "EUR"}, Metadata: meta()}

		store.panics = true
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the store did not panic")
				}
			}()
			s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, refund)
		}()
		store.panics = false
		if res := mustAppend(t, s, customer, eventstore.Exact(2), refund); res.Version != 3 {
			t.Fatalf("landed at %d, want 3", res.Version)
		}
	})

	t.Run("failed, nothing written", func(t *testing.T) {
		store := &faultyStore{Store: memstore.New(memstore.Config{})}
		s := newService(t, store, on)
		customer, ticket := uuid.New(), uuid.New()
		register(t, s, customer)
		store.fail = true
		if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, opened(ticket)); !errors.Is(err, errConnReset) {
			t.Fatalf("got %v, want the store's error", err)
		}
		if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, comment(ticket)); !errors.Is(err, domain.ErrRejected) {
			t.Fatalf("comment on a ticket whose opening failed: got %v, want ErrRejected", err)
		}
		if res := mustAppend(t, s, customer, eventstore.Exact(0), opened(ticket)); res.Version != 1 {
			t.Fatalf("landed at %d, want 1", res.Version)
		}
	})

	t.Run("failed after writing", func(t *testing.T) {
		store := &faultyStore{Store: memstore.New(memstore.Config{})}
		s := newService(t, store, on)
		customer, ticket := uuid.New(), uuid.New()
		register(t, s, customer)
		store.fail, store.written = true, true
		open := opened(ticket)
		open.ID = uuid.New()
		if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, open); !errors.Is(err, errConnReset) {
			t.Fatalf("got %v, want the store's error", err)
		}
		// The cache did not fold the append, the tail read does.
		if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, opened(ticket)); !errors.Is(err, domain.ErrRejected) {
			t.Fatalf("second opening of a ticket whose first opening was stored: got %v, want ErrRejected", err)
		}
		if res := mustAppend(t, s, customer, eventstore.Any, open); res.Version != 1 {
			t.Fatalf("retry of the unacknowledged append: version %d, want the original 1", res.Version)
		}
		if res := mustAppend(t, s, customer, eventstore.Exact(1), comment(ticket)); res.Version != 2 {
			t.Fatalf("landed at %d, want 2", res.Version)
		}
	})
}

func TestCacheIdempotentRetry(t *testing.T) {
	base := memstore.New(memstore.Config{})
	store := &countingStore{Store: base}
	s := newService(t, store, on)
	ctx := context.Background()
	customer, order := uuid.New(), uuid.New()
	register(t, s, customer)
	purchase := ledger.Touchpoint{ID: uuid.New(), Event: domain.PurchaseCompleted{OrderID: order, Amount: 4_990, Currency: "EUR",
		Lines: []domain.OrderLine{{SKU: "KETTLE-1L", Quantity: 1, UnitAmount: 4_990}}}, Metadata: meta()}
	want := mustAppend(t, s, customer, eventstore.Any, purchase)
	mustAppend(t, s, customer, eventstore.Any, note("after the purchase"), note("and more"))

	// The retry's id is in the cache: the ledger must not decide (the
	// aggregate would reject a second order with this id) but ask the store.
	store.took()
	got, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, purchase)
	if err != nil || got != want {
		t.Fatalf("retry: got %+v, %v; want %+v", got, err, want)
	}
	if _, _, appends := store.took(); appends != 1 {
		t.Fatalf("retry made %d store appends, want 1: only the store knows whether it is the same append", appends)
	}

	// The same id for other content is no retry.
	reuse := purchase
	reuse.Event = domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 990, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "FILTER-10", Quantity: 1, UnitAmount: 990}}}
	if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, reuse); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("reused id: got %v, want ErrDuplicateEvent", err)
	}

	// A retry of an append another node made: its ids are in the tail the
	// ledger reads, not yet in the cache.
	other := newService(t, base, on)
	n := note("appended by another node")
	n.ID = uuid.New()
	want = mustAppend(t, other, customer, eventstore.Any, n)
	if got, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, n); err != nil || got != want {
		t.Fatalf("retry of another node's append: got %+v, %v; want %+v", got, err, want)
	}
	if got := streamLen(t, base, customer); got != 5 {
		t.Fatalf("stream has %d events, want 5", got)
	}
}

func TestCacheEviction(t *testing.T) {
	t.Run("streams", func(t *testing.T) {
		store := &countingStore{Store: memstore.New(memstore.Config{})}
		cfg := ledger.CacheConfig{Streams: 2, Events: 1_000}
		s := newService(t, store, cfg)
		customers := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		for _, c := range customers {
			register(t, s, c)
			mustAppend(t, s, c, eventstore.Exact(0), note("hello"))
			if st := s.CacheStats(); st.Streams > cfg.Streams {
				t.Fatalf("%d streams cached, bound %d", st.Streams, cfg.Streams)
			}
		}
		store.took()
		mustAppend(t, s, customers[2], eventstore.Exact(1), note("recent: cached"))
		if _, from, _ := store.took(); len(from) != 1 || from[0] != 2 {
			t.Fatalf("recently used customer read from %v, want [2]", from)
		}
		mustAppend(t, s, customers[0], eventstore.Exact(1), note("least recently used: evicted"))
		if records, from, _ := store.took(); records != 2 || len(from) != 1 || from[0] != 0 {
			t.Fatalf("evicted customer read %d records from %v, want 2 from 0", records, from)
		}
		if st := s.CacheStats(); st.Streams != 2 || st.Evictions != 2 {
			t.Fatalf("stats %+v, want 2 streams and 2 evictions", st)
		}
	})

	t.Run("events", func(t *testing.T) {
		store := &countingStore{Store: memstore.New(memstore.Config{})}
		cfg := ledger.CacheConfig{Streams: 10, Events: 5}
		s := newService(t, store, cfg)
		check := func() {
			t.Helper()
			if st := s.CacheStats(); st.Events > cfg.Events {
				t.Fatalf("%d events cached, bound %d", st.Events, cfg.Events)
			}
		}
		a, b, long := uuid.New(), uuid.New(), uuid.New()
		for _, c := range []uuid.UUID{a, b} {
			register(t, s, c)
			mustAppend(t, s, c, eventstore.Exact(0), note("one"), note("two"))
			check()
		}
		if st := s.CacheStats(); st.Streams != 1 || st.Events != 3 {
			t.Fatalf("stats %+v, want only b's 3 events", st)
		}
		// A customer longer than the whole cache is never cached, and does
		// not push out the others.
		register(t, s, long)
		mustAppend(t, s, long, eventstore.Exact(0), note("1"), note("2"), note("3"), note("4"), note("5"))
		check()
		store.took()
		mustAppend(t, s, long, eventstore.Exact(5), note("6"))
		if records, _, _ := store.took(); records != 6 {
			t.Fatalf("uncacheable customer read %d records, want its 6", records)
		}
		mustAppend(t, s, b, eventstore.Exact(2), note("three"))
		if records, from, _ := store.took(); records != 0 || len(from) != 1 || from[0] != 3 {
			t.Fatalf("b read %d records from %v, want 0 from 3: still cached", records, from)
		}
		check()
	})
}

// Appends to one customer wait for each other (they would conflict
// anyway); appends to others do not wait for them, and a waiting append
// gives up when its context ends.
func TestCacheLocksPerCustomer(t *testing.T) {
	base := memstore.New(memstore.Config{})
	store := &blockingStore{Store: base, entered: make(chan struct{}), release: make(chan struct{})}
	s := newService(t, store, on)
	slow, other := uuid.New(), uuid.New()
	register(t, newService(t, base, on), slow)
	register(t, newService(t, base, on), other)

	store.block.Store(domain.StreamID(slow), true)
	done := make(chan error)
	go func() {
		_, err := s.Append(context.Background(), domain.RoleSystem, slow, eventstore.Any, note("stuck in the store"))
		done <- err
	}()
	<-store.entered

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Append(ctx, domain.RoleSystem, slow, eventstore.Any, note("queued")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append behind a stuck append to the same customer: got %v, want DeadlineExceeded", err)
	}
	if _, err := s.Append(context.Background(), domain.RoleSystem, other, eventstore.Any, note("not queued")); err != nil {
		t.Fatalf("append to another customer while one is stuck: %v", err)
	}
	close(store.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// panickingStore panics in Append while panics is set.
type panickingStore struct {
	ledger.Store
	panics bool
}

func (p *panickingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if p.panics {
		panic("pgx: unexpected message type 'Z' in extended protocol")
	}
	return p.Store.Append(ctx, stream, expected, events...)
}

// blockingStore holds appends to the streams in block until release closes.
type blockingStore struct {
	ledger.Store
	block   sync.Map // stream -> true
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if _, ok := b.block.Load(stream); ok {
		b.entered <- struct{}{}
		<-b.release
	}
	return b.Store.Append(ctx, stream, expected, events...)
}

// Many goroutines on several nodes (Services sharing one store, one with a
// cache that evicts all the time) and a writer bypassing them all refund
// orders until the ledger refuses: every order must end refunded exactly
// once in full, never more. Run with -race.
func TestCacheConcurrent(t *testing.T) {
	const (
		customers  = 6
		goroutines = 24
		amount     = 1_000
		step       = 10
	)
	base := memstore.New(memstore.Config{})
	nodes := []*ledger.Service{
		newService(t, base, on),
		newService(t, base, on),
		newService(t, base, ledger.CacheConfig{Streams: 2, Events: 300}),
	}
	ids := make([]uuid.UUID, customers)
	orders := make([]uuid.UUID, customers)
	for i := range ids {
		ids[i], orders[i] = uuid.New(), uuid.New()
		register(t, nodes[0], ids[i])
		mustAppend(t, nodes[0], ids[i], eventstore.Exact(0), ledger.Touchpoint{Event: domain.PurchaseCompleted{OrderID: orders[i], Amount: amount, Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "GIFT-CARD", Quantity: 1, UnitAmount: amount}}}, Metadata: meta()})
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bypass sync.WaitGroup
	bypass.Go(func() {
		typ, v, data, _ := domain.Encode(domain.NoteAdded{Body: "written by the CRM sync job"})
		md := eventstore.Metadata(meta())
		md.SchemaVersion = v
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := base.Append(ctx, domain.StreamID(ids[i%customers]), eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md}); err != nil && ctx.Err() == nil {
				t.Errorf("bypassing writer: %v", err)
				return
			}
		}
	})

	var mu sync.Mutex
	refunded := make([]int, customers)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			c, node := g%customers, nodes[g%len(nodes)]
			for i := 0; ; i++ {
				tps := []ledger.Touchpoint{{Event: domain.RefundIssued{RefundID: uuid.New(), OrderID: orders[c], Amount: step, Currency: "EUR"}, Metadata: meta()}}
				if i%3 == 0 {
					tps = append(tps, note("refund requested by phone"))
				}
				_, err := node.Append(ctx, domain.RoleSystem, ids[c], eventstore.Any, tps...)
				switch {
				case err == nil:
					mu.Lock()
					refunded[c] += step
					mu.Unlock()
				case errors.Is(err, domain.ErrRejected):
					return // fully refunded
				case errors.Is(err, eventstore.ErrWrongExpectedVersion):
					// Lost the race for RetryFor: try again.
				default:
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	bypass.Wait()

	for i, c := range ids {
		if refunded[i] != amount {
			t.Errorf("customer %d: goroutines refunded %d, want %d", i, refunded[i], amount)
		}
		recs, err := base.ReadStream(context.Background(), domain.StreamID(c), eventstore.ReadStreamOptions{Limit: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		agg := domain.NewCustomer(c)
		for _, r := range recs {
			e, err := domain.Decode(r.Type, r.Metadata.SchemaVersion, r.Data)
			if err != nil {
				t.Fatal(err)
			}
			agg.Apply(e)
		}
		if o, _ := agg.Order(orders[i]); o.Refunded != amount {
			t.Errorf("customer %d: stream refunds %d, want %d", i, o.Refunded, amount)
		}
	}
	if st := nodes[2].CacheStats(); st.Streams > 2 || st.Events > 300 {
		t.Errorf("small cache out of bounds: %+v", st)
	}
}

// BenchmarkAppendLongHistory appends one note to a customer with 10,000
// realistic events on memstore, without and with the cache.
func BenchmarkAppendLongHistory(b *testing.B) {
	const n = 10_000
	for _, c := range []struct {
		name string
		cfg  ledger.CacheConfig
	}{{"cache=off", ledger.CacheConfig{}}, {"cache=on", on}} {
		b.Run(c.name, func(b *testing.B) {
			store := memstore.New(memstore.Config{})
			customer := longCustomer(b, store, n)
			s := newService(b, store, c.cfg)
			mustAppend(b, s, customer, eventstore.Any, note("warm up")) // a cache miss
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Append(ctx, domain.RoleSystem, customer, eventstore.Any, note("Called back about the delayed parcel.")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// swappableStore lets a test replace the store under a running Service.
type swappableStore struct{ ledger.Store }

// A cached history the store no longer continues (here: the stream is
// gone, as after restoring an older backup under a running node) is folded
// again from the store instead of being trusted forever.
func TestCacheRefoldsAStreamThatVanished(t *testing.T) {
	store := &swappableStore{Store: memstore.New(memstore.Config{})}
	s := newService(t, store, on)
	customer := uuid.New()
	register(t, s, customer)
	mustAppend(t, s, customer, eventstore.Exact(0), note("before the restore"))

	store.Store = memstore.New(memstore.Config{})
	if res := register(t, s, customer); res.Version != 0 {
		t.Fatalf("registration after the restore landed at %d, want 0", res.Version)
	}
	if res := mustAppend(t, s, customer, eventstore.Exact(0), note("after the restore")); res.Version != 1 {
		t.Fatalf("landed at %d, want 1", res.Version)
	}
}
