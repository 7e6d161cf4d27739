package seed_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cxledger/cxledger/adapters/seed"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/google/uuid"
)

func generate(t *testing.T, cfg seed.Config, n int) []seed.History {
	t.Helper()
	g, err := seed.NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := make([]seed.History, n)
	for i := range hs {
		if hs[i], err = g.Customer(i); err != nil {
			t.Fatal(err)
		}
	}
	return hs
}

func TestDeterministic(t *testing.T) {
	cfg := seed.Config{Customers: 300, Seed: 7, HeavyEvents: 3000}
	a, b := generate(t, cfg, 300), generate(t, cfg, 300)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with the same seed differ")
	}
	// Customers do not depend on generation order: customer 5 alone is
	// customer 5 of the whole run.
	g, _ := seed.NewGenerator(cfg)
	h5, err := g.Customer(5)
	if err != nil || !reflect.DeepEqual(h5, a[5]) {
		t.Fatalf("customer 5 generated alone differs (err %v)", err)
	}
	other := generate(t, seed.Config{Customers: 300, Seed: 8}, 2)
	if other[1].Customer == a[1].Customer || other[1].Events[0].ID == a[1].Events[0].ID {
		t.Fatal("another seed gives the same ids")
	}
	if len(a[0].Events) != 3000 || !a[0].Traits.Heavy {
		t.Fatalf("heavy customer has %d events, want 3000", len(a[0].Events))
	}
}

// TestValid decodes every event back through the codec, validates it and
// its metadata, and folds it through the aggregate: what the ledger's
// write path would do.
func TestValid(t *testing.T) {
	cfg := seed.Config{Customers: 500, Seed: 42, HeavyEvents: 5000}
	ref := seed.DefaultReference
	seen := map[uuid.UUID]bool{}
	var prev uuid.UUID
	for _, h := range generate(t, cfg, 500) {
		agg := domain.NewCustomer(h.Customer)
		for n, e := range h.Events {
			if seen[e.ID] {
				t.Fatalf("customer %d event %d: id %s repeated", h.Index, n, e.ID)
			}
			seen[e.ID] = true
			if e.ID.String() <= prev.String() {
				t.Fatalf("customer %d event %d: id %s not after %s (ids must be time-ordered)", h.Index, n, e.ID, prev)
			}
			prev = e.ID
			if err := eventstore.ValidateAppend(h.Stream, eventstore.Any, []eventstore.EventData{e}, 0); err != nil {
				t.Fatal(err)
			}
			ev, err := domain.Decode(e.Type, e.Metadata.SchemaVersion, e.Data)
			if err != nil {
				t.Fatalf("customer %d event %d: %v", h.Index, n, err)
			}
			if err := domain.Metadata(e.Metadata).Validate(ref); err != nil || e.Metadata.OccurredAt.After(ref) {
				t.Fatalf("customer %d event %d metadata %+v: %v", h.Index, n, e.Metadata, err)
			}
			if n > 0 && e.Metadata.OccurredAt.Before(h.Events[n-1].Metadata.OccurredAt) {
				t.Fatalf("customer %d event %d occurs before the previous one", h.Index, n)
			}
			if err := agg.Check(ev); err != nil {
				t.Fatalf("customer %d event %d (%s): %v", h.Index, n, e.Type, err)
			}
			agg.Apply(ev)
			if o, ok := ev.(domain.PurchaseCompleted); ok {
				for _, l := range o.Lines {
					if l.Category == "" {
						t.Fatalf("customer %d event %d: SKU %s has no category", h.Index, n, l.SKU)
					}
				}
			}
		}
	}
}

// TestDistributions keeps the generator realistic: the shares it was
// designed with, within generous bounds.
func TestDistributions(t *testing.T) {
	const n = 3000
	hs := generate(t, seed.Config{Customers: n, Seed: 1}, n)
	var churned, repeat, tickets, events int
	rhythms, currencies, types := map[seed.Rhythm]int{}, map[string]int{}, map[string]int{}
	prio := map[domain.TicketPriority]int{}
	for _, h := range hs {
		rhythms[h.Traits.Rhythm]++
		currencies[h.Traits.Currency]++
		if h.Traits.Rhythm == seed.Weekly || h.Traits.Rhythm == seed.Monthly || h.Traits.Rhythm == seed.Quarterly {
			repeat++
			if h.Traits.Churned {
				churned++
			}
		}
		for _, e := range h.Events {
			events++
			types[e.Type]++
			if e.Type == domain.TypeTicketOpened {
				var o domain.TicketOpened
				if err := json.Unmarshal(e.Data, &o); err != nil {
					t.Fatal(err)
				}
				prio[o.Priority]++
				tickets++
			}
		}
	}
	share := func(k, of int) float64 { return float64(k) / float64(of) }
	within := func(what string, got, lo, hi float64) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s: %.3f, want between %.3f and %.3f", what, got, lo, hi)
		}
	}
	within("churners among repeat buyers", share(churned, repeat), 0.18, 0.32)
	within("one-off buyers", share(rhythms[seed.OneOff], n), 0.25, 0.35)
	within("weekly buyers", share(rhythms[seed.Weekly], n), 0.05, 0.11)
	within("EUR customers", share(currencies["EUR"], n), 0.68, 0.82)
	for _, c := range []string{"USD", "GBP", "JPY"} {
		within(c+" customers", share(currencies[c], n), 0.02, 0.16)
	}
	within("urgent tickets", share(prio[domain.PriorityUrgent], tickets), 0.03, 0.12)
	within("normal tickets", share(prio[domain.PriorityNormal], tickets), 0.45, 0.65)
	within("refunds per purchase", share(types[domain.TypeRefundIssued], types[domain.TypePurchaseCompleted]), 0.02, 0.07)
	within("events per customer", share(events, n), 25, 80)
	if types[domain.TypeOpportunityWon] == 0 || types[domain.TypeOpportunityLost] <= types[domain.TypeOpportunityWon] {
		t.Errorf("opportunities: %d won, %d lost; want both, more lost", types[domain.TypeOpportunityWon], types[domain.TypeOpportunityLost])
	}
	for _, typ := range []string{domain.TypeCampaignTouched, domain.TypeSurveyAnswered, domain.TypeConsentGranted, domain.TypeCallLogged,
		domain.TypeEmailSent, domain.TypeChatConversationHeld, domain.TypeTicketReopened, domain.TypeSMSSent} {
		if types[typ] == 0 {
			t.Errorf("no %s generated", typ)
		}
	}
}

func TestSeedMemstore(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	cfg := seed.Config{Customers: 200, Seed: 3, HeavyEvents: 2500, ChunkEvents: 300, Concurrency: 4}
	var last seed.Progress
	sum, err := seed.Seed(ctx, store, cfg, func(p seed.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	head, _ := store.Head(ctx)
	if sum.Customers != 200 || uint64(sum.Events) != head || !last.Done || last.Events != sum.Events {
		t.Fatalf("summary %+v, last progress %+v, head %d", sum, last, head)
	}
	heavy, err := store.ReadStream(ctx, domain.StreamID(sum.Heavy), eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true, Limit: 1})
	if err != nil || len(heavy) != 1 || heavy[0].Version != 2499 || sum.HeavyEvents != 2500 {
		t.Fatalf("heavy stream ends at %+v (%v), want version 2499", heavy, err)
	}
	if _, err := store.ReadStream(ctx, domain.StreamID(sum.Sample), eventstore.ReadStreamOptions{}); err != nil {
		t.Fatalf("sample customer: %v", err)
	}
	// Seeding again is an idempotent retry.
	if _, err := seed.Seed(ctx, store, cfg, nil); err != nil {
		t.Fatalf("second seed: %v", err)
	}
	if h2, _ := store.Head(ctx); h2 != head {
		t.Fatalf("second seed moved the head from %d to %d", head, h2)
	}
	sum2, err := seed.Seed(ctx, memstore.New(memstore.Config{}), seed.Config{MaxEvents: 1234, Seed: 9}, nil)
	if err != nil || sum2.Events != 1234 {
		t.Fatalf("MaxEvents 1234: %+v, %v", sum2, err)
	}
	if _, err := seed.NewGenerator(seed.Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
}
