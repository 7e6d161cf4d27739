package query

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/duplicates"
	"github.com/cxledger/cxledger/projections/identity"
	"github.com/cxledger/cxledger/projections/pipeline"
)

// SearchHit is one customer found by name.
type SearchHit struct {
	CustomerID uuid.UUID `json:"customerId"`
	Name       string    `json:"name"`
	Company    string    `json:"company,omitempty"`
}

// SearchPage is one page of customers found by name.
type SearchPage struct {
	Results []SearchHit `json:"results"`
	// Next is the cursor of the next page (a customer id); empty on the
	// last.
	Next string `json:"next,omitempty"`
}

// SearchNames finds customers whose name has, for every word of q, a word
// starting with it (see duplicates.Search): one range read of the name
// index and one view per hit. Absorbed customers answer as their
// survivor, once. after is a Next of a previous page (uuid.Nil: first).
func (s *Service) SearchNames(ctx context.Context, q string, after uuid.UUID, limit int) (SearchPage, error) {
	var (
		ids  []uuid.UUID
		more bool
	)
	// A nil interface, not a nil Keys inside one, without a keyring.
	var keys identity.Keys
	if s.Keys != nil {
		keys = s.Keys
	}
	err := projections.View(ctx, s.b, duplicates.Name, func(r projections.Reader) error {
		var err error
		ids, more, err = duplicates.Search(ctx, r, keys, q, after, limit)
		return err
	})
	if err != nil {
		return SearchPage{}, err
	}
	page := SearchPage{Results: []SearchHit{}}
	seen := map[uuid.UUID]bool{}
	for _, id := range ids {
		survivor, err := s.Resolve(ctx, id)
		if err != nil {
			return SearchPage{}, fmt.Errorf("search: resolve %s: %w", id, err)
		}
		if seen[survivor] {
			continue
		}
		seen[survivor] = true
		v, err := s.Customer(ctx, survivor)
		if err != nil {
			return SearchPage{}, fmt.Errorf("search: view of %s: %w", survivor, err)
		}
		page.Results = append(page.Results, SearchHit{CustomerID: survivor, Name: v.Profile.Name, Company: v.Profile.Company})
	}
	if more && len(ids) > 0 {
		page.Next = ids[len(ids)-1].String()
	}
	return page, nil
}

// BoardPage is one page of a stage's open opportunities.
type BoardPage struct {
	Stage domain.OpportunityStage `json:"stage"`
	Cards []pipeline.Card         `json:"cards"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// Board returns up to limit open opportunities of a stage (see
// pipeline.Board): one range read of the stage. A card of an absorbed
// customer names the survivor.
func (s *Service) Board(ctx context.Context, stage domain.OpportunityStage, cursor string, limit int) (BoardPage, error) {
	page := BoardPage{Stage: stage}
	err := projections.View(ctx, s.b, pipeline.DefaultName, func(r projections.Reader) error {
		var err error
		page.Cards, page.Next, err = pipeline.Board(ctx, r, stage, cursor, limit)
		return err
	})
	if err != nil {
		return BoardPage{}, err
	}
	for i, c := range page.Cards {
		if page.Cards[i].CustomerID, err = s.Resolve(ctx, c.CustomerID); err != nil {
			return BoardPage{}, fmt.Errorf("board: resolve %s: %w", c.CustomerID, err)
		}
	}
	return page, nil
}
