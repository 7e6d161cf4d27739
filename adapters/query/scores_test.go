package query_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
)

// A customer buying every 10 days has a rhythm of 10 days: silent for 10
// days the risk is 1 − e^−1, for 20 days 1 − e^−2, whatever s.Now says.
func TestChurnRiskAt(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	l := ledger.New(store)
	c := uuid.New()
	first := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	events := []domain.Event{domain.CustomerRegistered{CustomerID: c, Name: "Zoë Nguyễn"}}
	for range 3 {
		events = append(events, domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 2500, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "CAFÉ-1KG", Quantity: 1, UnitAmount: 2500}}})
	}
	for i, e := range events {
		at := first.AddDate(0, 0, 10*max(i-1, 0))
		if _, err := l.Append(ctx, domain.RoleSystem, c, eventstore.Any, ledger.Touchpoint{Event: e, Metadata: domain.Metadata{OccurredAt: at, Actor: "user:marta"}}); err != nil {
			t.Fatal(err)
		}
	}
	rm := projections.NewMemory()
	if err := projections.Replay(ctx, store, rm, catalog.All(catalog.Deps{}), projections.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	q := query.New(rm)
	q.Now = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	last := first.AddDate(0, 0, 20)
	for _, tt := range []struct {
		days int
		want float64
	}{{10, 1 - math.Exp(-1)}, {20, 1 - math.Exp(-2)}} {
		risk, ok, err := q.ChurnRisk(ctx, c, last.AddDate(0, 0, tt.days))
		if err != nil || !ok || math.Abs(risk-tt.want) > 1e-9 {
			t.Errorf("after %d days: ChurnRisk = %v, %v, %v; want %v", tt.days, risk, ok, err, tt.want)
		}
	}
	if _, ok, err := q.ChurnRisk(ctx, uuid.New(), last); ok || err != nil {
		t.Errorf("unknown customer: ok %v, err %v", ok, err)
	}
}
