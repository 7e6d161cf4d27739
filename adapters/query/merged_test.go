package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/storetest/backends"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/attribution"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/recommend"
	"github.com/cxledger/cxledger/projections/timeline"
)

// buildAll folds every event of log into every read model of the catalog,
// each in a fresh namespace of generation gen, and activates them: what
// the engine would hold once caught up. It returns each read model's
// digest.
func buildAll(t *testing.T, log eventstore.Store, b projections.Backend, gen int, keep func(domain.Envelope) bool) map[string]string {
	t.Helper()
	ctx := context.Background()
	recs, err := log.ReadAll(ctx, eventstore.ReadAllOptions{Limit: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	var envs []domain.Envelope
	for _, r := range recs {
		e, err := projections.Envelope(r)
		if err != nil {
			t.Fatal(err)
		}
		if keep == nil || keep(e) {
			envs = append(envs, e)
		}
	}
	digests := map[string]string{}
	for _, p := range catalog.All(catalog.Deps{}) {
		ns := projections.NamespaceFor(p.Name(), p.Version(), gen)
		handles := projections.Handles(p)
		var mine []domain.Envelope
		for _, e := range envs {
			if handles(e.Type) {
				mine = append(mine, e)
			}
		}
		if len(mine) > 0 {
			if err := projections.ApplyBatch(ctx, b, ns, p, mine); err != nil {
				t.Fatalf("fold %s: %v", p.Name(), err)
			}
		}
		digests[p.Name()] = projectiontest.DigestOf(t, b, p.Name(), ns)
	}
	return digests
}

// scenario writes the histories of a survivor S and an absorbed A, and of
// a control customer C who had had all their events (but A's
// registration) from the start, in the same order and at the same times.
type scenario struct {
	t       *testing.T
	l       *ledger.Service
	s, a, c uuid.UUID
	clock   time.Time
	orders  map[uuid.UUID]uuid.UUID // S's or A's order id → C's
}

func newScenario(t *testing.T, store eventstore.Store) *scenario {
	sc := &scenario{t: t, l: ledger.New(store), s: uuid.New(), a: uuid.New(), c: uuid.New(),
		clock: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), orders: map[uuid.UUID]uuid.UUID{}}
	sc.l.Now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	return sc
}

func (sc *scenario) append(id uuid.UUID, e domain.Event) {
	sc.t.Helper()
	if _, err := sc.l.Append(context.Background(), domain.RoleSystem, id, eventstore.Any,
		ledger.Touchpoint{Event: e, Metadata: domain.Metadata{OccurredAt: sc.clock, Actor: "user:ana", Channel: "web"}}); err != nil {
		sc.t.Fatalf("append %T to %s: %v", e, id, err)
	}
}

// both appends e to id (S or A) and its copy to C, one day later each
// time; cp maps e to C's copy (fresh entity ids).
func (sc *scenario) both(id uuid.UUID, e, cp domain.Event) {
	sc.t.Helper()
	sc.clock = sc.clock.Add(24 * time.Hour)
	sc.append(id, e)
	sc.append(sc.c, cp)
}

func (sc *scenario) history() {
	zoe := domain.CustomerRegistered{Name: "Zoé Nguyen", Company: "Acme", Locale: "fr-FR", Country: "FR"}
	s, a, c := zoe, zoe, zoe
	s.CustomerID, a.CustomerID, c.CustomerID = sc.s, sc.a, sc.c
	a.Name = "Zoe Nguyen"
	sc.append(sc.s, s)
	sc.append(sc.a, a)
	sc.append(sc.c, c)
	o1, o2, o1c, o2c := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	opp, oppc, tk, tkc := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	buy := func(o uuid.UUID, amount int64, sku string) domain.PurchaseCompleted {
		return domain.PurchaseCompleted{OrderID: o, Amount: amount, Currency: "EUR", Lines: []domain.OrderLine{{SKU: sku, Quantity: 1, UnitAmount: amount}}}
	}
	sc.both(sc.s, domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "zoe.nguyen@gmail.com"}, domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "zoe.nguyen@gmail.com"})
	sc.both(sc.a, domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: "+33 6 12 34 56 78"}, domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: "+33 6 12 34 56 78"})
	sc.both(sc.a, domain.CampaignTouched{Campaign: "spring", Channel: domain.CampaignEmail, Action: domain.ActionClicked}, domain.CampaignTouched{Campaign: "spring", Channel: domain.CampaignEmail, Action: domain.ActionClicked})
	sc.both(sc.s, buy(o1, 4_000, "BEANS"), buy(o1c, 4_000, "BEANS"))
	sc.both(sc.a, buy(o2, 2_500, "MUG"), buy(o2c, 2_500, "MUG"))
	sc.both(sc.a, domain.OpportunityOpened{OpportunityID: opp, Name: "Office", Amount: 500_000, Currency: "EUR", Stage: domain.StageQualification, ExpectedClose: "2026-06-30"},
		domain.OpportunityOpened{OpportunityID: oppc, Name: "Office", Amount: 500_000, Currency: "EUR", Stage: domain.StageQualification, ExpectedClose: "2026-06-30"})
	sc.both(sc.s, domain.TicketOpened{TicketID: tk, Subject: "Grinder noise", Priority: domain.PriorityHigh, Channel: domain.TicketEmail},
		domain.TicketOpened{TicketID: tkc, Subject: "Grinder noise", Priority: domain.PriorityHigh, Channel: domain.TicketEmail})
	sc.both(sc.a, domain.RefundIssued{RefundID: uuid.New(), OrderID: o2, Amount: 500, Currency: "EUR"}, domain.RefundIssued{RefundID: uuid.New(), OrderID: o2c, Amount: 500, Currency: "EUR"})
	sc.both(sc.s, domain.NoteAdded{Body: "VIP"}, domain.NoteAdded{Body: "VIP"})
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// normal returns v as JSON without its log coordinates (positions, event
// ids, recorded-at times) and with every id replaced by its rank of first
// appearance: two views of different customers with the same history
// compare equal.
func normal(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var strip func(any)
	strip = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for _, k := range []string{"position", "recordedAt", "eventId"} {
				delete(x, k)
			}
			for _, v := range x {
				strip(v)
			}
		case []any:
			for _, v := range x {
				strip(v)
			}
		}
	}
	strip(doc)
	raw, _ = json.Marshal(doc) // map keys sorted: deterministic
	seen := map[string]string{}
	rank := func(id string) string {
		if n, ok := seen[id]; ok {
			return n
		}
		seen[id] = "#" + strconv.Itoa(len(seen))
		return seen[id]
	}
	out := uuidRE.ReplaceAllStringFunc(string(raw), rank)
	// Summaries show ids clipped to their first 8 digits.
	return shortRE.ReplaceAllStringFunc(out, func(s string) string { return rank(s[:8]) })
}

var shortRE = regexp.MustCompile(`[0-9a-f]{8}…`)

// views is what a customer looks like through every per-customer read:
// the unified view (customer 360 with its analytics score), the timeline,
// and the recommendations.
func views(t *testing.T, q *query.Service, id uuid.UUID) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	v, err := q.Customer(ctx, id)
	if err != nil {
		t.Fatalf("customer %s: %v", id, err)
	}
	out["customer360"] = normal(t, v)
	tl, err := q.Timeline(ctx, id, timeline.Query{})
	if err != nil {
		t.Fatalf("timeline %s: %v", id, err)
	}
	out["timeline"] = normal(t, tl)
	sc, err := q.Score(ctx, id)
	if err != nil {
		t.Fatalf("score %s: %v", id, err)
	}
	out["analytics"] = normal(t, sc)
	rec, err := q.Recommendations(ctx, id, recommend.Options{MinSupport: 1})
	if err != nil {
		t.Fatalf("recommendations %s: %v", id, err)
	}
	out["recommend"] = normal(t, rec)
	return out
}

func sameViews(t *testing.T, what string, got, want map[string]string, skip ...string) {
	t.Helper()
	for k := range want {
		if slices.Contains(skip, k) {
			continue
		}
		if got[k] != want[k] {
			t.Errorf("%s: %s\n got  %s\n want %s", what, k, got[k], want[k])
		}
	}
}

// A merged pair reads as one customer who had had all the events from the
// start (the control C), through every per-customer read; the absorbed id
// redirects; an identifier of the absorbed finds the survivor; an event
// appended to the absorbed id while merged shows in the merged view, and
// stays the absorbed customer's after the unmerge.
func TestMergedViewsEqualOneCustomer(t *testing.T) {
	ctx := context.Background()
	store := backends.Open(t, "memory")
	b := projectiontest.Memory(t)
	sc := newScenario(t, store)
	sc.history()
	buildAll(t, store, b, 1, nil)
	q := query.New(b)
	q.Log = store
	q.Now = func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }
	// One stored model for every read below, so that the scores compare.
	if _, err := q.FitModel(ctx, analytics.FitOptions{}); err != nil {
		t.Fatalf("fit: %v", err)
	}
	beforeS := views(t, q, sc.s)

	res, err := sc.l.Merge(ctx, domain.RoleService, ledger.MergeRequest{Survivor: sc.s, Absorbed: sc.a, SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any, Reason: "same person", Metadata: domain.Metadata{OccurredAt: sc.clock, Actor: "user:ana"}})
	if err != nil {
		t.Fatal(err)
	}
	// After the merge, one more purchase, addressed to the absorbed id.
	sc.both(sc.a, domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 9_900, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "GRINDER", Quantity: 1, UnitAmount: 9_900}}},
		domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 9_900, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "GRINDER", Quantity: 1, UnitAmount: 9_900}}})
	buildAll(t, store, b, 2, nil)

	sameViews(t, "merged survivor vs one customer", views(t, q, sc.s), views(t, q, sc.c))
	// The shared co-purchase counts count the merged pair as one customer,
	// as C: two customers bought BEANS and MUG together (S+A and C), and
	// two customers bought products at all.
	err = projections.View(ctx, b, recommend.DefaultName, func(r projections.Reader) error {
		for key, want := range map[string]string{
			"pair/product/BEANS/MUG":   `{"anchor":"BEANS","item":"MUG","buyers":2}`,
			"pair/product/GRINDER/MUG": `{"anchor":"GRINDER","item":"MUG","buyers":2}`,
			"item/product/MUG":         `{"item":"MUG","buyers":2}`,
			"stats":                    `{"productBuyers":2,"categoryBuyers":0}`,
		} {
			if got, _, err := r.Get(ctx, key); err != nil || string(got) != want {
				t.Errorf("recommend %s = %s, %v; want %s", key, got, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The at-risk rule reads the merged customer's churn risk on the
	// group's lead (the survivor, who bought on its own record); the
	// absorbed record answers no score, so one person gets one offer.
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	wantRisk, wantOK, err := q.ChurnRisk(ctx, sc.c, at)
	if err != nil || !wantOK {
		t.Fatalf("control churn risk: %v, %v", wantOK, err)
	}
	if got, ok, err := q.ChurnRisk(ctx, sc.s, at); err != nil || !ok || got != wantRisk {
		t.Errorf("merged churn risk = %v, %v, %v; want %v as one customer", got, ok, err, wantRisk)
	}
	if got, ok, err := q.ChurnRisk(ctx, sc.a, at); err != nil || ok {
		t.Errorf("absorbed churn risk = %v, %v, %v; want no score while merged", got, ok, err)
	}
	rfm, err := q.RFM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries := map[uuid.UUID]string{}
	for _, c := range rfm.Customers {
		entries[c.CustomerID] = normal(t, c)
	}
	if _, ok := entries[sc.a]; ok || len(entries) != 2 || entries[sc.s] != entries[sc.c] {
		t.Errorf("RFM list: the merged customer must be listed once and score as one customer:\n%v", entries)
	}
	// Campaign attribution counts the merged customer once, as one
	// customer: the spring click (on the absorbed record) earns the
	// survivor's purchases too, exactly as C's click earns C's. Both
	// together: 2 customers reached, 2 × 3 purchases, 2 × 164.00 EUR gross,
	// 2 × 5.00 EUR refunded. Apart, the survivor's purchase would not count.
	rep, err := q.Campaigns(ctx, attribution.Options{Campaigns: []string{"spring"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Campaigns) != 1 {
		t.Fatalf("campaigns: %+v", rep)
	}
	spring := rep.Campaigns[0]
	for _, a := range []attribution.Attribution{spring.LastTouch, spring.FirstTouch} {
		if spring.Reached != 2 || a.Purchases != 6 || a.Customers != 2 || len(a.Revenue) != 1 || a.Revenue[0].Gross != 32_800 || a.Revenue[0].Refunded != 1_000 {
			t.Errorf("spring with the merge counted once: reached %d, %+v", spring.Reached, a)
		}
	}

	var me *query.MergedError
	if _, err := q.Customer(ctx, sc.a); !errors.As(err, &me) || me.Survivor != sc.s {
		t.Errorf("absorbed customer read: %v, want merged into %s", err, sc.s)
	}
	if _, err := q.Timeline(ctx, sc.a, timeline.Query{}); !errors.Is(err, query.ErrMerged) {
		t.Errorf("absorbed timeline read: %v, want ErrMerged", err)
	}
	sc.append(sc.a, domain.IdentifierLinked{Kind: domain.IdentifierExternal, Value: "crm:42"})
	buildAll(t, store, b, 3, nil)
	if got, err := q.Lookup(ctx, domain.IdentifierExternal, "crm:42"); err != nil || got != sc.s {
		t.Errorf("lookup of the absorbed's id = %s, %v; want the survivor %s", got, err, sc.s)
	}

	if _, err := sc.l.Unmerge(ctx, domain.RoleAdmin, ledger.MergeRequest{Survivor: sc.s, Absorbed: sc.a, MergeID: res.MergeID, SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any, Reason: "two people", Metadata: domain.Metadata{OccurredAt: sc.clock, Actor: "user:ana"}}); err != nil {
		t.Fatal(err)
	}
	buildAll(t, store, b, 4, nil)
	// The co-purchase counts moved with the purchase made while merged:
	// the survivor's recommendations are not expected to be as before.
	sameViews(t, "survivor after unmerge vs before merge", views(t, q, sc.s), beforeS, "recommend")
	av, err := q.Customer(ctx, sc.a)
	if err != nil {
		t.Fatalf("absorbed after unmerge: %v", err)
	}
	if got, err := q.Lookup(ctx, domain.IdentifierExternal, "crm:42"); err != nil || got != sc.a {
		t.Errorf("after unmerge lookup = %s, %v; want the absorbed %s", got, err, sc.a)
	}
	if _, ok, err := q.ChurnRisk(ctx, sc.a, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)); err != nil || !ok {
		t.Errorf("absorbed churn risk after unmerge: %v, %v; want its own", ok, err)
	}
	if len(av.Orders) != 2 || av.Orders[1].Amount != 9_900 {
		t.Errorf("absorbed after unmerge has orders %+v, want its own two, the one appended while merged last", av.Orders)
	}
}

// A merge and its unmerge leave every read model exactly as a replay of
// the same log without them: equal digests, on bbolt and on PostgreSQL
// (event store and read models alike).
func TestMergeUnmergeRoundTripDigests(t *testing.T) {
	for _, kind := range []string{"bolt", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var store eventstore.Store
			var b projections.Backend
			if kind == "bolt" {
				store, b = backends.Open(t, "embedded"), projectiontest.Bolt(t)
			} else {
				store, b = backends.Open(t, "postgres"), projectiontest.Postgres(t)
			}
			sc := newScenario(t, store)
			sc.history()
			res, err := sc.l.Merge(ctx, domain.RoleService, ledger.MergeRequest{Survivor: sc.s, Absorbed: sc.a, SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any, Reason: "same person", Metadata: domain.Metadata{OccurredAt: sc.clock, Actor: "user:ana"}})
			if err != nil {
				t.Fatal(err)
			}
			sc.both(sc.a, domain.NoteAdded{Body: "while merged"}, domain.NoteAdded{Body: "while merged"})
			if _, err := sc.l.Unmerge(ctx, domain.RoleAdmin, ledger.MergeRequest{Survivor: sc.s, Absorbed: sc.a, MergeID: res.MergeID, SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any, Reason: "two people", Metadata: domain.Metadata{OccurredAt: sc.clock, Actor: "user:ana"}}); err != nil {
				t.Fatal(err)
			}
			with := buildAll(t, store, b, 1, nil)
			without := buildAll(t, store, b, 2, func(e domain.Envelope) bool { return !domain.IsIdentityResolution(e.Type) })
			if len(with) < 10 {
				t.Fatalf("only %d read models compared", len(with))
			}
			for name, d := range without {
				if with[name] != d {
					t.Errorf("%s: digest after merge and unmerge %s, replay without them %s", name, with[name], d)
				}
			}
		})
	}
}
