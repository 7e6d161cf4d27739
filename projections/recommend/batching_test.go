package recommend_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/recommend"
	"github.com/google/uuid"
)

// randomBaskets returns a seeded random history of purchases by a few
// customers from a catalogue of 70 products, some with awkward SKUs and
// some lines without a category; customer 0 buys big baskets, so that it
// passes MaxPaired. Refunds and registrations are mixed in, and some
// customers are forgotten and then buy again (imported history: the
// aggregate would refuse it, the read model must not count them twice).
func randomBaskets(t *testing.T, seed uint64, customers, events int) (history []domain.Envelope, heavy uuid.UUID) {
	rng := rand.New(rand.NewPCG(seed, 7))
	newID := func() uuid.UUID {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		id, _ := uuid.FromBytes(b[:])
		id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
		return id
	}
	cats := []string{"coffee", "tea", "brewing", "Küche/Bar", "100% cotton", ""}
	var catalogue []product
	for i := range 70 {
		sku := fmt.Sprintf("SKU-%02d", i)
		switch i % 10 {
		case 3:
			sku += "/XL"
		case 7:
			sku = "Kaffeemühle~" + sku + " 50%"
		}
		catalogue = append(catalogue, product{sku, fmt.Sprintf("Product %d, édition %d", i, i%3), cats[i%len(cats)]})
	}
	ids := make([]uuid.UUID, customers)
	orders := map[uuid.UUID][]domain.PurchaseCompleted{}
	for i := range ids {
		ids[i] = newID()
	}
	l := projectiontest.NewLog(t)
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := 0
	for len(l.Envelopes()) < events {
		i := rng.IntN(customers)
		c := ids[i]
		at = at.Add(time.Duration(rng.IntN(48)-12) * time.Hour)
		switch k := rng.IntN(20); {
		case k < 14:
			n := 1 + rng.IntN(4)
			if i == 0 {
				n = 5 + rng.IntN(10)
			}
			ps := make([]product, n)
			for j := range ps {
				ps[j] = catalogue[rng.IntN(len(catalogue))]
				if rng.IntN(5) == 0 { // the description changes, or is left out
					ps[j].description = ""
				}
			}
			seq++
			o := order(seq, ps...)
			orders[c] = append(orders[c], o)
			l.Add(c, at, o)
		case k < 16:
			if os := orders[c]; len(os) > 0 {
				o := os[rng.IntN(len(os))]
				l.Add(c, at, domain.RefundIssued{RefundID: newID(), OrderID: o.OrderID, Amount: 1 + rng.Int64N(o.Amount), Currency: "EUR"})
			}
		case k < 19:
			l.Add(c, at, domain.CustomerRegistered{CustomerID: c, Name: "Zoë " + c.String()[:4]})
		default:
			if rng.IntN(3) == 0 && i != 0 {
				l.Add(c, at, domain.CustomerForgotten{Request: "DSR-1"})
			}
		}
	}
	return l.Envelopes(), ids[0]
}

// Folding one batch or many small ones must store the same bytes.
func TestBatchingIsInvisible(t *testing.T) {
	p := recommend.New(recommend.Config{})
	for seed := range uint64(4) {
		history, _ := randomBaskets(t, seed, 10, 300)
		projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
			projectiontest.BatchingIsInvisible(t, b, p, history, seed)
		})
	}
}

// Every batch size gives the bytes and digest of one batch in memory, on
// every backend; and the histories exercised what they should.
func TestBatchSizesAgree(t *testing.T) {
	p := recommend.New(recommend.Config{})
	random, _ := randomBaskets(t, 42, 10, 300)
	for name, history := range map[string][]domain.Envelope{"baskets": baskets(t), "random": random} {
		t.Run(name, func(t *testing.T) {
			projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
				dump := projectiontest.BatchSizesAgree(t, b, p, history)
				for _, want := range []string{"pair/product/", "pair/category/", "item/category/", "stats = "} {
					if !strings.Contains(dump, want) {
						t.Errorf("no %q in the read model", want)
					}
				}
				if name == "random" && (!strings.Contains(dump, `"forgotten":true`) || !strings.Contains(dump, "%2FXL")) {
					t.Errorf("the random history did not forget anyone or escape a SKU")
				}
			})
		})
	}
}

// The random history's heavy customer passes the cap; their
// recommendations and everyone's still come out on every backend.
func TestRandomHistoryQueries(t *testing.T) {
	history, heavy := randomBaskets(t, 3, 10, 600)
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, recommend.New(recommend.Config{}), history)
		rec, ok, err := projections.Read[struct {
			Products int64    `json:"products"`
			Paired   []string `json:"pairedProducts"`
		}](context.Background(), r, "customer/"+heavy.String())
		if err != nil || !ok {
			t.Fatalf("heavy customer: %v %v", ok, err)
		}
		if rec.Products <= recommend.MaxPaired || len(rec.Paired) != recommend.MaxPaired {
			t.Errorf("heavy customer bought %d products and pairs %d, want more than %d and %[3]d", rec.Products, len(rec.Paired), recommend.MaxPaired)
		}
		seen := map[string]bool{}
		for _, e := range history {
			if seen[e.Stream] {
				continue
			}
			seen[e.Stream] = true
			id, _ := domain.ParseStreamID(e.Stream)
			for _, kind := range []recommend.Kind{recommend.KindProduct, recommend.KindCategory} {
				got, err := recommend.Recommend(context.Background(), r, id, recommend.Options{Kind: kind, MinSupport: 1, Limit: recommend.MaxLimit})
				if err != nil && !errors.Is(err, projections.ErrNotFound) {
					t.Fatalf("%s %s: %v", id, kind, err)
				}
				for i := 1; i < len(got); i++ {
					a, z := got[i-1], got[i]
					if a.Basis == recommend.BasisAffinity && a.Affinity.Confidence < z.Affinity.Confidence {
						t.Fatalf("%s: not ranked at %d: %+v", id, i, got)
					}
				}
			}
		}
	})
}
