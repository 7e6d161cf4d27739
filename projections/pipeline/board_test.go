package pipeline_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/pipeline"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

// allCards pages through a stage of the board limit cards at a time.
func allCards(t *testing.T, r projections.Reader, stage domain.OpportunityStage, limit int) []pipeline.Card {
	t.Helper()
	var all []pipeline.Card
	for cursor := ""; ; {
		page, next, err := pipeline.Board(context.Background(), r, stage, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d cards, limit %d", len(page), limit)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// The board holds exactly the open opportunities, each under its current
// stage with its amount: wins, losses and stage changes move or remove the
// cards; pages cover a stage once, in order.
func TestBoard(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, pipeline.New(pipeline.Config{}), scenario())
		want := map[domain.OpportunityStage][]uuid.UUID{
			domain.StageProspecting:   {oppD},
			domain.StageQualification: nil,
			domain.StageProposal:      {oppE},
			domain.StageNegotiation:   {oppF},
		}
		for stage, ids := range want {
			cards := allCards(t, r, stage, 1)
			if len(cards) != len(ids) {
				t.Errorf("%s: %+v, want %v", stage, cards, ids)
				continue
			}
			for i, c := range cards {
				if c.OpportunityID != ids[i] || c.Stage != stage {
					t.Errorf("%s: card %+v, want %s", stage, c, ids[i])
				}
			}
		}
		if c := allCards(t, r, domain.StageProposal, 5); len(c) != 1 || c[0].CustomerID != globex || c[0].Amount != 400_000 || c[0].Currency != "EUR" || c[0].ExpectedClose != "2025-03-15" {
			t.Errorf("proposal card %+v", c)
		}
		if _, _, err := pipeline.Board(context.Background(), r, "won", "", 10); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("board of stage won: %v, want ErrInvalid", err)
		}
		if _, _, err := pipeline.Board(context.Background(), r, domain.StageProposal, "nonsense", 10); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("board with a bad cursor: %v, want ErrInvalid", err)
		}
	})
}

// Over a random history the board agrees with the summary's open count of
// every stage, and pages cover each stage once in key order.
func TestBoardAgreesWithSummary(t *testing.T) {
	b := projectiontest.Memory(t)
	r := projectiontest.Fold(t, b, pipeline.New(pipeline.Config{}), projectiontest.RandomHistory(t, 11, 2000))
	sum, err := pipeline.Summary(context.Background(), r, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, st := range sum.Stages {
		cards := allCards(t, r, st.Stage, 3)
		total += len(cards)
		if len(cards) != st.Open {
			t.Errorf("%s: %d cards, summary %d open", st.Stage, len(cards), st.Open)
		}
		seen := map[uuid.UUID]bool{}
		for _, c := range cards {
			if seen[c.OpportunityID] || c.Stage != st.Stage {
				t.Errorf("%s: card %+v repeated or misplaced", st.Stage, c)
			}
			seen[c.OpportunityID] = true
		}
	}
	if total != sum.Open || total == 0 {
		t.Errorf("%d cards, summary %d open", total, sum.Open)
	}
}
