package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// The board: every open opportunity is also stored under its stage,
//
//	board/<stage>/<customer>/<opportunity>
//
// as a Card, so that a page of one stage's open opportunities is a range
// read of that stage, never a pass over every opportunity. A stage change
// moves the card; a win or a loss removes it.
const boardPrefix = "board/"

// Card is one open opportunity on the board. The opportunity's name is
// personal data (sealed with a keyring) and is not on the card: the
// customer's page shows it to those who may read it.
type Card struct {
	CustomerID    uuid.UUID               `json:"customerId"`
	OpportunityID uuid.UUID               `json:"opportunityId"`
	Stage         domain.OpportunityStage `json:"stage"`
	// Amount is in minor units of Currency.
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency,omitempty"`
	ExpectedClose string    `json:"expectedClose,omitempty"`
	OpenedAt      time.Time `json:"openedAt"`
	StageSince    time.Time `json:"stageSince"`
}

// boardKey is r's key on the board, "" when it is not open in a stage.
func boardKey(r *record) string {
	if r.Outcome != domain.OutcomeOpen || r.Stage == "" {
		return ""
	}
	return boardPrefix + string(r.Stage) + "/" + r.Customer + "/" + r.ID
}

// reindexBoard puts r's card under its stage and removes it from where it
// was (before).
func reindexBoard(tx *projections.Tx, before string, r *record) error {
	after := boardKey(r)
	if before != "" && before != after {
		tx.Delete(before)
	}
	if after == "" {
		return nil
	}
	c := Card{Stage: r.Stage, Amount: r.Amount, Currency: r.Currency, ExpectedClose: r.ExpectedClose, OpenedAt: r.OpenedAt, StageSince: r.StageSince}
	var err error
	if c.CustomerID, err = uuid.Parse(r.Customer); err != nil {
		return fmt.Errorf("pipeline: card of %q: %w", r.Customer, err)
	}
	if c.OpportunityID, err = uuid.Parse(r.ID); err != nil {
		return fmt.Errorf("pipeline: card of %q: %w", r.ID, err)
	}
	return projections.Put(tx, after, c)
}

// Board returns up to limit open opportunities of stage, in customer then
// opportunity id order, after cursor (a next of a previous page; "" for
// the first); next is "" on the last page. An unknown stage is
// domain.ErrInvalid.
func Board(ctx context.Context, r projections.Reader, stage domain.OpportunityStage, cursor string, limit int) (cards []Card, next string, err error) {
	if !slices.Contains(Stages, stage) {
		return nil, "", fmt.Errorf("pipeline: stage %q: %w", stage, domain.ErrInvalid)
	}
	prefix := boardPrefix + string(stage) + "/"
	after := ""
	if cursor != "" {
		after = prefix + cursor
		if strings.Count(cursor, "/") != 1 {
			return nil, "", fmt.Errorf("pipeline: cursor %q: %w", cursor, domain.ErrInvalid)
		}
	}
	cards = []Card{}
	var last string
	err = r.Scan(ctx, prefix, after, func(key string, value []byte) (bool, error) {
		if len(cards) == limit {
			next = strings.TrimPrefix(last, prefix)
			return false, nil
		}
		var c Card
		if err := json.Unmarshal(value, &c); err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		cards, last = append(cards, c), key
		return true, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("pipeline: board of %s: %w", stage, err)
	}
	return cards, next, nil
}
