package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/storetest/backends"
	"github.com/cxledger/cxledger/projections/reactor"
)

// A reactor's emission goes through the ledger: appended once whatever the
// retries, refused (as domain.ErrRejected) when the history forbids it.
func TestReactorAppender(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		l := ledger.New(s)
		app := ledger.ReactorAppender{Service: l}
		id := uuid.New()
		md := domain.Metadata{OccurredAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Actor: "system:reactor/test"}
		if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.NoStream, ledger.Touchpoint{Event: domain.CustomerRegistered{CustomerID: id, Name: "Zoé"}, Metadata: md}); err != nil {
			t.Fatal(err)
		}
		note := reactor.Emitted{ID: uuid.NewSHA1(id, []byte("note")), Event: domain.NoteAdded{Body: "SLA breached"}, Metadata: md}
		for range 3 {
			if err := app.Append(ctx, id, note); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := s.ReadStream(ctx, domain.StreamID(id), eventstore.ReadStreamOptions{})
		if err != nil || len(recs) != 2 {
			t.Fatalf("stream holds %d events (%v), want the registration and one note", len(recs), err)
		}
		send := reactor.Emitted{ID: uuid.New(), Event: domain.CampaignTouched{Campaign: "spring", Channel: domain.CampaignEmail, Action: domain.ActionSent}, Metadata: md}
		if err := app.Append(ctx, id, send); !errors.Is(err, domain.ErrRejected) {
			t.Errorf("a marketing emission without consent: %v, want ErrRejected", err)
		}
	})
}

// Earning reads an earning's remainder off the folded history: what the
// loyalty expiry reactor expires.
func TestEarningRemainder(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		l := ledger.New(s)
		id, order, earning := uuid.New(), uuid.New(), uuid.New()
		md := domain.Metadata{OccurredAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Actor: "service:shop"}
		tp := func(e domain.Event) ledger.Touchpoint { return ledger.Touchpoint{Event: e, Metadata: md} }
		if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.NoStream,
			tp(domain.CustomerRegistered{CustomerID: id, Name: "Zoé"}),
			tp(domain.PurchaseCompleted{OrderID: order, Amount: 12990, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "BEANS", Quantity: 1, UnitAmount: 12990}}}),
			tp(domain.PointsEarned{EarningID: earning, Points: 100, Reason: domain.EarnPurchase, OrderID: &order, ExpiresAt: md.OccurredAt.AddDate(1, 0, 0)}),
			tp(domain.PointsRedeemed{RedemptionID: uuid.New(), Points: 40, Reward: "free-mug"}),
		); err != nil {
			t.Fatal(err)
		}
		if rem, ok, err := l.Earning(ctx, id, earning); err != nil || !ok || rem != 60 {
			t.Errorf("Earning = %d, %v, %v; want 60 of 100 left", rem, ok, err)
		}
		if _, ok, err := l.Earning(ctx, id, uuid.New()); err != nil || ok {
			t.Errorf("unknown earning: %v, %v", ok, err)
		}
		if _, _, err := l.Earning(ctx, uuid.New(), earning); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("unknown customer: %v", err)
		}
	})
}
