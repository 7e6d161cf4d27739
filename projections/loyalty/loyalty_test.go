package loyalty_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/loyalty"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/cxledger/cxledger/projections/reactor/reactortest"
)

// clock is a settable test clock.
type clock = reactortest.Clock

var base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// ledgerAppender is the write path in small (reactortest.Appender).
type ledgerAppender = reactortest.Appender

// storeBalances folds the customer's stream, as adapters/ledger will.
type storeBalances struct{ s eventstore.Store }

func (b storeBalances) Earning(ctx context.Context, customer, earning uuid.UUID) (int64, bool, error) {
	c, _, err := reactortest.Fold(ctx, b.s, customer)
	if err != nil {
		return 0, false, err
	}
	st, ok := c.Earning(earning)
	return st.Remaining, ok, nil
}

func (b storeBalances) ClawbackDue(ctx context.Context, customer, order, earning uuid.UUID) (int64, error) {
	c, _, err := reactortest.Fold(ctx, b.s, customer)
	if err != nil {
		return 0, err
	}
	return c.ClawbackDue(order, earning), nil
}

var rates = map[string]loyalty.Rate{
	"EUR": {Points: 1, Per: "1"},
	"JPY": {Points: 1, Per: "100"},
}

func appendEvent(t *testing.T, s eventstore.Store, customer uuid.UUID, at time.Time, e domain.Event) {
	t.Helper()
	c, _, err := reactortest.Fold(context.Background(), s, customer)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckAt(e, at); err != nil {
		t.Fatalf("%s refused: %v", e.EventType(), err)
	}
	typ, v, data, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	md := eventstore.Metadata{OccurredAt: at, Actor: "user:agent-7", Channel: "web", SchemaVersion: v}
	if _, err := s.Append(context.Background(), domain.StreamID(customer), eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

func register(t *testing.T, s eventstore.Store, name string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	appendEvent(t, s, id, base.Add(-24*time.Hour), domain.CustomerRegistered{CustomerID: id, Name: name, Locale: "fr-FR", Country: "FR"})
	return id
}

func purchase(t *testing.T, s eventstore.Store, customer uuid.UUID, at time.Time, amount int64, currency string) uuid.UUID {
	t.Helper()
	order := uuid.New()
	appendEvent(t, s, customer, at, domain.PurchaseCompleted{OrderID: order, Amount: amount, Currency: currency, Lines: []domain.OrderLine{
		{SKU: "KAF-ÉTHIOPIE-250", Description: "Café d’Éthiopie, 250 g", Category: "coffee", Quantity: 1, UnitAmount: amount},
	}})
	return order
}

func redeem(t *testing.T, s eventstore.Store, customer uuid.UUID, at time.Time, points int64) {
	t.Helper()
	appendEvent(t, s, customer, at, domain.PointsRedeemed{RedemptionID: uuid.New(), Points: points, Reward: "MUG-2026"})
}

// running is an engine run in the background.
type running struct {
	e    *reactor.Engine
	stop func()
}

func start(t *testing.T, s eventstore.Store, b projections.Backend, clk *clock, cfg loyalty.Config) *running {
	t.Helper()
	r, err := loyalty.New(cfg, storeBalances{s})
	if err != nil {
		t.Fatal(err)
	}
	e := reactor.New(s, b, ledgerAppender{Store: s, Now: clk.Now}, reactor.Config{
		Now: clk.Now, TimerInterval: 10 * time.Millisecond, RetryDelay: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err := e.Register(r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("engine: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &running{e: e, stop: stop}
}

func status(t *testing.T, e *reactor.Engine) reactor.Status { return reactortest.Status(t, e) }

func waitFor(t *testing.T, what string, cond func() bool) { reactortest.WaitFor(t, what, cond) }

func settle(t *testing.T, s eventstore.Store, e *reactor.Engine) { reactortest.Settle(t, s, e) }

// loyaltyEvents returns the loyalty events of s, in log order, with the
// customer of each.
type stored struct {
	customer uuid.UUID
	event    domain.Event
	md       domain.Metadata
}

func loyaltyEvents(t *testing.T, s eventstore.Store, typ string) []stored {
	t.Helper()
	recs, err := s.ReadAll(context.Background(), eventstore.ReadAllOptions{Limit: 10000, Filter: eventstore.Filter{Types: []string{typ}}})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]stored, len(recs))
	for i, r := range recs {
		e, err := projections.Envelope(r)
		if err != nil {
			t.Fatal(err)
		}
		c, err := domain.ParseStreamID(r.Stream)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = stored{customer: c, event: e.Event, md: e.Metadata}
	}
	return out
}

func earned(t *testing.T, s eventstore.Store) []stored {
	return loyaltyEvents(t, s, domain.TypePointsEarned)
}

func expired(t *testing.T, s eventstore.Store) []stored {
	return loyaltyEvents(t, s, domain.TypePointsExpired)
}

func TestEarnsAtTheCurrencyRate(t *testing.T) {
	t.Parallel()
	s := memstore.New(memstore.Config{})
	clk := reactortest.NewClock(base.Add(time.Hour))
	amelie := register(t, s, "Amélie Poulain")
	eur := purchase(t, s, amelie, base, 12990, "EUR")                 // 129.90 € → 129
	jpy := purchase(t, s, amelie, base.Add(time.Minute), 1500, "JPY") // ¥1500 → 15
	purchase(t, s, amelie, base.Add(2*time.Minute), 50000, "GBP")     // no rate → none
	purchase(t, s, amelie, base.Add(3*time.Minute), 99, "EUR")        // 0.99 € → 0 → none
	r := start(t, s, projections.NewMemory(), clk, loyalty.Config{Rates: rates, Expiry: loyalty.DefaultExpiry})
	settle(t, s, r.e)

	got := earned(t, s)
	want := []domain.PointsEarned{
		{EarningID: loyalty.PurchaseEarningID(eur), Points: 129, Reason: domain.EarnPurchase, OrderID: &eur, ExpiresAt: base.Add(365 * 24 * time.Hour)},
		{EarningID: loyalty.PurchaseEarningID(jpy), Points: 15, Reason: domain.EarnPurchase, OrderID: &jpy, ExpiresAt: base.Add(time.Minute + 365*24*time.Hour)},
	}
	if len(got) != len(want) {
		t.Fatalf("%d earnings, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g, ok := got[i].event.(domain.PointsEarned)
		if !ok || got[i].customer != amelie || g.EarningID != w.EarningID || g.Points != w.Points ||
			g.Reason != w.Reason || g.OrderID == nil || *g.OrderID != *w.OrderID || !g.ExpiresAt.Equal(w.ExpiresAt) {
			t.Errorf("earning %d = %+v, want %+v", i, got[i].event, w)
		}
		if got[i].md.Actor != reactor.Actor(loyalty.Name) {
			t.Errorf("earning %d actor = %q", i, got[i].md.Actor)
		}
	}
	if st := status(t, r.e); st.Pending != 2 || !st.NextDue.Equal(want[0].ExpiresAt) {
		t.Errorf("status = %+v, want two expiry timers, the first at %s", st, want[0].ExpiresAt)
	}
	c, _, err := reactortest.Fold(context.Background(), s, amelie)
	if err != nil {
		t.Fatal(err)
	}
	if c.Points() != 144 {
		t.Errorf("balance = %d, want 129 + 15", c.Points())
	}
}

func TestNoExpiry(t *testing.T) {
	t.Parallel()
	s := memstore.New(memstore.Config{})
	clk := reactortest.NewClock(base.Add(time.Hour))
	c := register(t, s, "Jean Dupont")
	purchase(t, s, c, base, 2000, "EUR")
	r := start(t, s, projections.NewMemory(), clk, loyalty.Config{Rates: rates})
	settle(t, s, r.e)
	got := earned(t, s)
	if len(got) != 1 || got[0].event.(domain.PointsEarned).Points != 20 || !got[0].event.(domain.PointsEarned).ExpiresAt.IsZero() {
		t.Fatalf("earnings = %+v, want 20 points that never expire", got)
	}
	if st := status(t, r.e); st.Pending != 0 {
		t.Errorf("%d timers pending without expiry", st.Pending)
	}
}

// expiryScenario: Amélie earns 100 and redeems 40, Jean earns 50 and
// redeems them all. Both earnings expire at base + 30 days.
func expiryScenario(t *testing.T, s eventstore.Store, clk *clock, b projections.Backend) (amelie, jean uuid.UUID, r *running) {
	t.Helper()
	amelie, jean = register(t, s, "Amélie Poulain"), register(t, s, "Jean Dupont")
	purchase(t, s, amelie, base, 10000, "EUR")
	purchase(t, s, jean, base, 5000, "EUR")
	r = start(t, s, b, clk, loyalty.Config{Rates: rates, Expiry: 30 * 24 * time.Hour})
	waitFor(t, "two earnings", func() bool { return len(earned(t, s)) == 2 })
	redeem(t, s, amelie, base.Add(time.Hour), 40)
	redeem(t, s, jean, base.Add(time.Hour), 50)
	settle(t, s, r.e)
	return amelie, jean, r
}

const expiry = 30 * 24 * time.Hour

// checkExpired checks that exactly Amélie's 60 remaining points expired,
// at the earning's ExpiresAt, and that both balances are 0.
func checkExpired(t *testing.T, s eventstore.Store, amelie, jean uuid.UUID) {
	t.Helper()
	got := expired(t, s)
	if len(got) != 1 {
		t.Fatalf("%d expiries, want 1: %+v", len(got), got)
	}
	want := domain.PointsExpired{EarningID: earningOf(t, s, amelie), Points: 60}
	if got[0].event != want || got[0].customer != amelie || !got[0].md.OccurredAt.Equal(base.Add(expiry)) {
		t.Errorf("expiry = %+v for %s at %s, want %+v for Amélie at %s", got[0].event, got[0].customer, got[0].md.OccurredAt, want, base.Add(expiry))
	}
	for _, c := range []uuid.UUID{amelie, jean} {
		agg, _, err := reactortest.Fold(context.Background(), s, c)
		if err != nil {
			t.Fatal(err)
		}
		if agg.Points() != 0 {
			t.Errorf("balance of %s = %d, want 0", c, agg.Points())
		}
	}
}

func earningOf(t *testing.T, s eventstore.Store, customer uuid.UUID) uuid.UUID {
	t.Helper()
	for _, e := range earned(t, s) {
		if e.customer == customer {
			return e.event.(domain.PointsEarned).EarningID
		}
	}
	t.Fatalf("no earning for %s", customer)
	return uuid.Nil
}

func TestExpiresTheRemainderAtExpiresAt(t *testing.T) {
	t.Parallel()
	s := memstore.New(memstore.Config{})
	clk := reactortest.NewClock(base.Add(2 * time.Hour))
	amelie, jean, r := expiryScenario(t, s, clk, projections.NewMemory())

	clk.Set(base.Add(expiry - time.Second))
	time.Sleep(80 * time.Millisecond)
	if n := len(expired(t, s)); n != 0 {
		t.Fatalf("%d expiries before ExpiresAt", n)
	}
	clk.Set(base.Add(expiry))
	waitFor(t, "no timer pending", func() bool { return status(t, r.e).Pending == 0 })
	settle(t, s, r.e)
	checkExpired(t, s, amelie, jean)
}

// TestReplayEmitsNothingTwice drops the reactor's namespace after the
// expiry and runs it again from position 0, twice: the store still holds
// each earning and the expiry once.
func TestReplayEmitsNothingTwice(t *testing.T) {
	t.Parallel()
	s := memstore.New(memstore.Config{})
	b := projections.NewMemory()
	clk := reactortest.NewClock(base.Add(2 * time.Hour))
	amelie, jean, r := expiryScenario(t, s, clk, b)
	clk.Set(base.Add(expiry))
	waitFor(t, "the expiry", func() bool { return len(expired(t, s)) == 1 })
	r.stop()
	for run := range 2 {
		if err := b.Drop(context.Background(), reactor.Namespace(loyalty.Name)); err != nil {
			t.Fatal(err)
		}
		r := start(t, s, b, clk, loyalty.Config{Rates: rates, Expiry: expiry})
		settle(t, s, r.e)
		waitFor(t, "no timer pending", func() bool { return status(t, r.e).Pending == 0 })
		settle(t, s, r.e)
		r.stop()
		if n := len(earned(t, s)); n != 2 {
			t.Fatalf("run %d: %d earnings, want 2", run, n)
		}
		checkExpired(t, s, amelie, jean)
	}
}

// TestRestartBeforeExpiry stops the engine with the timers pending; a new
// engine over the same stores fires them once, after ExpiresAt.
func TestRestartBeforeExpiry(t *testing.T) {
	t.Parallel()
	s := memstore.New(memstore.Config{})
	b := projections.NewMemory()
	clk := reactortest.NewClock(base.Add(2 * time.Hour))
	amelie, jean, r := expiryScenario(t, s, clk, b)
	if st := status(t, r.e); st.Pending != 2 {
		t.Fatalf("%d timers pending, want 2", st.Pending)
	}
	r.stop()
	clk.Set(base.Add(expiry + time.Hour))
	r2 := start(t, s, b, clk, loyalty.Config{Rates: rates, Expiry: expiry})
	waitFor(t, "no timer pending", func() bool { return status(t, r2.e).Pending == 0 })
	settle(t, s, r2.e)
	checkExpired(t, s, amelie, jean)
}

func TestPoints(t *testing.T) {
	r, err := loyalty.New(loyalty.Config{Rates: map[string]loyalty.Rate{
		"EUR": {Points: 1, Per: "1"},
		"JPY": {Points: 1, Per: "100"},
		"BHD": {Points: 3, Per: "2.000"},
		"USD": {Points: domain.MaxPoints, Per: "0.01"},
	}}, storeBalances{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		amount   int64
		currency string
		want     int64
	}{
		{12990, "EUR", 129},
		{100, "EUR", 1},
		{99, "EUR", 0},
		{0, "EUR", 0},
		{1500, "JPY", 15},
		{1599, "JPY", 15},
		{99, "JPY", 0},
		{3333, "BHD", 4}, // 3.333 BHD × 3/2 = 4.9995
		{domain.MaxAmount, "USD", domain.MaxPoints},
		{50000, "GBP", 0},
		{50000, "eur", 0},
	} {
		if got := r.Points(tt.amount, tt.currency); got != tt.want {
			t.Errorf("Points(%d, %s) = %d, want %d", tt.amount, tt.currency, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  loyalty.Config
		ok   bool
	}{
		{"zero", loyalty.Config{}, true},
		{"default", loyalty.Config{Rates: rates, Expiry: loyalty.DefaultExpiry}, true},
		{"negative expiry", loyalty.Config{Expiry: -time.Hour}, false},
		{"lower-case code", loyalty.Config{Rates: map[string]loyalty.Rate{"eur": {1, "1"}}}, false},
		{"no points", loyalty.Config{Rates: map[string]loyalty.Rate{"EUR": {0, "1"}}}, false},
		{"per zero", loyalty.Config{Rates: map[string]loyalty.Rate{"EUR": {1, "0.00"}}}, false},
		{"per too precise", loyalty.Config{Rates: map[string]loyalty.Rate{"JPY": {1, "0.5"}}}, false},
	} {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
		if _, err := loyalty.New(tt.cfg, storeBalances{}); (err == nil) != tt.ok {
			t.Errorf("%s: New error = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	if _, err := loyalty.New(loyalty.Config{}, nil); err == nil {
		t.Error("New accepted nil Balances")
	}
	if got := loyalty.ExpiryKey(uuid.Nil); got != "expire/00000000-0000-0000-0000-000000000000" {
		t.Errorf("ExpiryKey = %q", got)
	}
}

func refundOrder(t *testing.T, s eventstore.Store, customer, order uuid.UUID, at time.Time, amount int64) uuid.UUID {
	t.Helper()
	id := uuid.New()
	appendEvent(t, s, customer, at, domain.RefundIssued{RefundID: id, OrderID: order, Amount: amount, Currency: "EUR", Reason: "returned"})
	return id
}

// TestRefundsClawBack, by hand: 200.00 € earns 200 points; 180 are
// redeemed (balance 20). Refunding 50.00 (a quarter) claws back 50: the
// 20 left are taken and 30 become debt (balance 0). Refunding the other
// 150.00 claws back the remaining 150 (debt 180): 200 in all, never more.
// A 100.00 € purchase then earns 100, which pays 100 of the debt: balance
// 0, debt 80. A refund of an order that earned nothing (in a currency
// without a rate) claws back nothing. Replaying the reactor from position
// 0 emits nothing twice.
func TestRefundsClawBack(t *testing.T) {
	t.Parallel()
	s := memstore.New(memstore.Config{})
	b := projections.NewMemory()
	clk := reactortest.NewClock(base.Add(24 * time.Hour))
	zoe := register(t, s, "Zoë Ångström")
	r := start(t, s, b, clk, loyalty.Config{Rates: rates})
	bike := purchase(t, s, zoe, base, 20_000, "EUR")
	waitFor(t, "the earning", func() bool { return len(earned(t, s)) == 1 })
	redeem(t, s, zoe, base.Add(time.Hour), 180)
	r1 := refundOrder(t, s, zoe, bike, base.Add(2*time.Hour), 5_000)
	settle(t, s, r.e)
	r2 := refundOrder(t, s, zoe, bike, base.Add(3*time.Hour), 15_000)
	settle(t, s, r.e)
	usd := uuid.New()
	appendEvent(t, s, zoe, base.Add(4*time.Hour), domain.PurchaseCompleted{OrderID: usd, Amount: 5_000, Currency: "USD", Lines: []domain.OrderLine{{SKU: "MUG", Quantity: 1, UnitAmount: 5_000}}})
	appendEvent(t, s, zoe, base.Add(5*time.Hour), domain.RefundIssued{RefundID: uuid.New(), OrderID: usd, Amount: 5_000, Currency: "USD"})
	purchase(t, s, zoe, base.Add(6*time.Hour), 10_000, "EUR")
	settle(t, s, r.e)
	waitFor(t, "the second earning", func() bool { return len(earned(t, s)) == 2 })

	check := func(run string) {
		t.Helper()
		claws := loyaltyEvents(t, s, domain.TypePointsClawedBack)
		want := []domain.PointsClawedBack{
			{EarningID: loyalty.PurchaseEarningID(bike), RefundID: r1, OrderID: bike, Points: 50},
			{EarningID: loyalty.PurchaseEarningID(bike), RefundID: r2, OrderID: bike, Points: 150},
		}
		if len(claws) != len(want) {
			t.Fatalf("%s: %d claw-backs, want %d: %+v", run, len(claws), len(want), claws)
		}
		for i, w := range want {
			if claws[i].event != w || claws[i].customer != zoe || claws[i].md.Actor != "system:reactor/"+loyalty.Name {
				t.Errorf("%s: claw-back %d = %+v by %s, want %+v", run, i, claws[i].event, claws[i].md.Actor, w)
			}
		}
		c, _, err := reactortest.Fold(context.Background(), s, zoe)
		if err != nil {
			t.Fatal(err)
		}
		if c.Points() != 0 || c.Debt() != 80 {
			t.Errorf("%s: balance %d, debt %d; want 0, 80", run, c.Points(), c.Debt())
		}
	}
	check("first run")
	r.stop()
	if err := b.Drop(context.Background(), reactor.Namespace(loyalty.Name)); err != nil {
		t.Fatal(err)
	}
	r = start(t, s, b, clk, loyalty.Config{Rates: rates})
	settle(t, s, r.e)
	check("replay")
}
