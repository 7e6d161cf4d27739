package query_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/storetest/backends"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/pipeline"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// waitPast returns once the clock is past t, so that events appended next
// are recorded strictly after it.
func waitPast(t time.Time) {
	for !time.Now().After(t.Add(time.Millisecond)) {
		time.Sleep(time.Millisecond)
	}
}

// TestAsOf folds a history written in two sessions, the second of which
// backdates a purchase, and asks for the customer and the pipeline on both
// clocks. Hand-computed:
//
//	session 1 (recorded before cut): registered 10 Jan; purchase 40.00 EUR
//	  20 Jan; opportunity 5,000 EUR in qualification 1 Feb; ticket 5 Feb.
//	session 2 (recorded after cut): purchase 25.00 EUR that occurred
//	  15 Feb (backdated); opportunity moved to proposal 10 Mar; ticket
//	  resolved 11 Mar.
//
// Recorded basis at cut: 4 events, spend 40.00, one open ticket, the
// opportunity in qualification. Occurred basis at 1 Mar: 5 events (the
// backdated purchase counts), spend 65.00, ticket open, qualification.
// Occurred basis at 31 Mar: everything: 7 events, no open ticket, proposal.
func TestAsOf(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		l := ledger.New(s)
		id := uuid.New()
		opp, ticket := uuid.New(), uuid.New()
		at := func(d string, e domain.Event) ledger.Touchpoint {
			return ledger.Touchpoint{Event: e, Metadata: domain.Metadata{OccurredAt: day(d), Actor: "user:ana"}}
		}
		res, err := l.Append(ctx, domain.RoleSystem, id, eventstore.NoStream,
			at("2026-01-10", domain.CustomerRegistered{CustomerID: id, Name: "Zoé Nguyen"}),
			at("2026-01-20", domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 4000, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "BEANS-1KG", Quantity: 2, UnitAmount: 2000}}}),
			at("2026-02-01", domain.OpportunityOpened{OpportunityID: opp, Name: "Office machines", Amount: 500000, Currency: "EUR", Stage: domain.StageQualification, ExpectedClose: "2026-06-30"}),
			at("2026-02-05", domain.TicketOpened{TicketID: ticket, Subject: "Grinder noise", Priority: domain.PriorityHigh, Channel: domain.TicketEmail}),
		)
		if err != nil {
			t.Fatal(err)
		}
		first, err := s.ReadStream(ctx, domain.StreamID(id), eventstore.ReadStreamOptions{From: res.Version, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		cut := first[0].RecordedAt
		waitPast(cut)
		if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.Exact(res.Version),
			at("2026-02-15", domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 2500, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "MUG", Quantity: 1, UnitAmount: 2500}}}),
			at("2026-03-10", domain.OpportunityStageChanged{OpportunityID: opp, Stage: domain.StageProposal}),
			at("2026-03-11", domain.TicketResolved{TicketID: ticket, Resolution: "Burr replaced"}),
		); err != nil {
			t.Fatal(err)
		}

		h := query.NewHistory(s)
		tests := []struct {
			name        string
			asOf        query.AsOf
			events      int
			spend       int64
			openTickets int
			stage       domain.OpportunityStage
		}{
			{"recorded at cut", query.AsOf{At: cut, Basis: query.Recorded}, 4, 4000, 1, domain.StageQualification},
			{"occurred 1 March", query.AsOf{At: day("2026-03-01"), Basis: query.Occurred}, 5, 6500, 1, domain.StageQualification},
			{"occurred 31 March", query.AsOf{At: day("2026-03-31"), Basis: query.Occurred}, 7, 6500, 0, domain.StageProposal},
			{"recorded now", query.AsOf{At: time.Now().Add(time.Minute), Basis: query.Recorded}, 7, 6500, 0, domain.StageProposal},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				v, err := h.Customer(ctx, id, tt.asOf, true)
				if err != nil {
					t.Fatal(err)
				}
				if v.Events != tt.events || v.View.Events != int64(tt.events) {
					t.Errorf("events = %d (view %d), want %d", v.Events, v.View.Events, tt.events)
				}
				if got := v.Spend["EUR"]; got != tt.spend {
					t.Errorf("spend = %d, want %d", got, tt.spend)
				}
				if len(v.OpenTickets) != tt.openTickets {
					t.Errorf("open tickets = %d, want %d", len(v.OpenTickets), tt.openTickets)
				}
				if len(v.OpenOpportunities) != 1 || v.OpenOpportunities[0].Stage != tt.stage {
					t.Errorf("opportunities = %+v, want one in %s", v.OpenOpportunities, tt.stage)
				}
				if v.Score == nil {
					t.Fatal("no score although the customer bought")
				}
				if v.Score.Model == nil || !v.Score.Model.AsOf.Equal(tt.asOf.At) || v.Score.Segment == "" {
					t.Errorf("score %+v: want ranked against the base as of the moment", v.Score)
				}
				if v.Basis != tt.asOf.Basis || !v.AsOf.Equal(tt.asOf.At) {
					t.Errorf("as of %v %s, want %v %s", v.AsOf, v.Basis, tt.asOf.At, tt.asOf.Basis)
				}

				p, err := h.Pipeline(ctx, tt.asOf, pipeline.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if p.Open != 1 {
					t.Fatalf("pipeline open = %d, want 1", p.Open)
				}
				for _, st := range p.Stages {
					want := 0
					if st.Stage == tt.stage {
						want = 1
					}
					if st.Open != want {
						t.Errorf("stage %s open = %d, want %d", st.Stage, st.Open, want)
					}
				}
			})
		}

		if _, err := h.Customer(ctx, id, query.AsOf{At: day("2026-01-01"), Basis: query.Occurred}, false); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("before registration: err = %v, want ErrNotFound", err)
		}
		if _, err := h.Customer(ctx, uuid.New(), query.AsOf{At: day("2026-03-01")}, false); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("unknown customer: err = %v, want ErrNotFound", err)
		}
		if _, err := h.Customer(ctx, id, query.AsOf{}, false); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("no time: err = %v, want ErrInvalid", err)
		}
	})
}

func TestParseBasis(t *testing.T) {
	for in, want := range map[string]query.Basis{"": query.Recorded, "recorded": query.Recorded, "occurred": query.Occurred} {
		if got, err := query.ParseBasis(in); err != nil || got != want {
			t.Errorf("ParseBasis(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := query.ParseBasis("effective"); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("ParseBasis(effective) err = %v", err)
	}
}

// As-of views reveal sealed personal data like live views, and show it
// erased once the customer is forgotten, even as of a date before.
func TestAsOfRevealsAndErases(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		kr := keyringtest.Memory(t)
		l := ledger.New(s)
		l.Keys = kr
		id := uuid.New()
		md := domain.Metadata{OccurredAt: day("2026-01-10"), Actor: "user:ana"}
		if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.NoStream, ledger.Touchpoint{Event: domain.CustomerRegistered{CustomerID: id, Name: "Zoé Nguyen"}, Metadata: md}); err != nil {
			t.Fatal(err)
		}
		h := query.NewHistory(s)
		h.Keys = kr
		at := query.AsOf{At: day("2026-02-01"), Basis: query.Occurred}
		v, err := h.Customer(ctx, id, at, false)
		if err != nil || v.Profile.Name != "Zoé Nguyen" {
			t.Fatalf("as-of name %q, %v", v.Profile.Name, err)
		}
		if _, err := l.Forget(ctx, id, ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-1"}, Metadata: domain.Metadata{OccurredAt: day("2026-03-01"), Actor: "user:dpo"}}); err != nil {
			t.Fatal(err)
		}
		v, err = h.Customer(ctx, id, at, false)
		if err != nil || v.Profile.Name != keyring.Erased {
			t.Fatalf("as-of name after forget %q, %v", v.Profile.Name, err)
		}
	})
}
