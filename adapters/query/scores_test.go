package query_test

import (
	"context"
	"errors"
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
	"github.com/cxledger/cxledger/projections/analytics"
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

// The unified view reads the stored model: before a fit it serves the
// customer's facts and says why the ranked figures are absent; after an
// analyst's fit as of a date, it shows the scores and which fit and date
// they are as of, and so does the RFM list.
func TestCustomerViewUsesTheStoredModel(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	l := ledger.New(store)
	c := uuid.New()
	at := time.Date(2014, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, e := range []domain.Event{
		domain.CustomerRegistered{CustomerID: c, Name: "Zoë Nguyễn"},
		domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 2500, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "CAFÉ-1KG", Quantity: 1, UnitAmount: 2500}}},
	} {
		if _, err := l.Append(ctx, domain.RoleSystem, c, eventstore.Any, ledger.Touchpoint{Event: e, Metadata: domain.Metadata{OccurredAt: at, Actor: "user:marta"}}); err != nil {
			t.Fatal(err)
		}
	}
	rm := projections.NewMemory()
	if err := projections.Replay(ctx, store, rm, catalog.All(catalog.Deps{}), projections.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	q := query.New(rm)
	q.Now = func() time.Time { return time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) }

	v, err := q.Customer(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if v.Score == nil || v.Score.Unscored == "" || v.Score.Model != nil || v.Score.Segment != "" || v.Score.Orders != 1 {
		t.Fatalf("before a fit: %+v", v.Score)
	}
	if _, err := q.RFM(ctx); !errors.Is(err, analytics.ErrNoModel) {
		t.Errorf("RFM before a fit: %v, want ErrNoModel", err)
	}

	asOf := time.Date(2014, 12, 31, 0, 0, 0, 0, time.UTC)
	fit, err := q.FitModel(ctx, analytics.FitOptions{AsOf: asOf})
	if err != nil {
		t.Fatal(err)
	}
	if !fit.Pinned || !fit.AsOf.Equal(asOf) || fit.Buyers != 1 || !fit.FittedAt.Equal(q.Now()) {
		t.Errorf("fit %+v", fit)
	}
	v, err = q.Customer(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	s := v.Score
	if s == nil || s.Unscored != "" || s.Model == nil || !s.Model.AsOf.Equal(asOf) || s.RecencyDays != 30 ||
		s.RFMScore != (analytics.RFMScore{Recency: 3, Frequency: 3, Monetary: 3}) || v.Segment != string(analytics.SegmentNeedsAttention) {
		t.Errorf("after the fit: %+v (view segment %q)", s, v.Segment)
	}
	rep, err := q.RFM(ctx)
	if err != nil || rep.Model == nil || !rep.Model.AsOf.Equal(asOf) || len(rep.Customers) != 1 || rep.Customers[0].RecencyDays != 30 {
		t.Errorf("RFM after the fit: %+v, %v", rep, err)
	}
}
