package pipeline

import (
	"fmt"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// DefaultName is the read model's name when Config.Name is empty.
const DefaultName = "pipeline"

// version is the schema version of the stored records; bump it whenever
// Apply or the record layout changes.
// 2 adds the open-by-stage index (board.go).
const version = 2

// keyPrefix starts every opportunity key.
const keyPrefix = "opportunity/"

// Config configures the projection. Nothing in it changes what is stored:
// the forecast probabilities are a query-time Option.
type Config struct {
	// Name is the read model's name (default DefaultName), so that a
	// second instance can run beside the first, e.g. during a migration.
	Name string
}

// New returns the pipeline projection.
func New(cfg Config) projections.Projection {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	return projection{name: cfg.Name}
}

type projection struct{ name string }

// Name implements projections.Projection.
func (p projection) Name() string { return p.name }

// Version implements projections.Projection.
func (projection) Version() int { return version }

// Types implements projections.Projection.
func (projection) Types() []string {
	return []string{
		domain.TypeOpportunityOpened,
		domain.TypeOpportunityStageChanged,
		domain.TypeOpportunityWon,
		domain.TypeOpportunityLost,
	}
}

// record is one stored opportunity.
type record struct {
	Customer      string                    `json:"customer"`
	ID            string                    `json:"id"`
	Name          string                    `json:"name,omitempty"`
	Amount        int64                     `json:"amount"`
	Currency      string                    `json:"currency,omitempty"`
	Stage         domain.OpportunityStage   `json:"stage,omitempty"`
	Outcome       domain.OpportunityOutcome `json:"outcome"`
	ExpectedClose string                    `json:"expectedClose,omitempty"`
	OpenedAt      time.Time                 `json:"openedAt"`
	StageSince    time.Time                 `json:"stageSince"`
	ClosedAt      time.Time                 `json:"closedAt,omitzero"`
	// Visits and Seconds count completed stays per stage.
	Visits  map[domain.OpportunityStage]int64 `json:"visits,omitempty"`
	Seconds map[domain.OpportunityStage]int64 `json:"seconds,omitempty"`
}

func key(customer, opportunity string) string {
	return keyPrefix + customer + "/" + opportunity
}

// Apply implements projections.Projection.
func (p projection) Apply(tx *projections.Tx, e domain.Envelope) (err error) {
	customer, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	at := e.Metadata.OccurredAt.UTC()
	// Every opportunity event loads its one record: the board index
	// (board.go) follows it once the event is applied.
	var loaded *record
	var before string
	defer func() {
		if err == nil && loaded != nil {
			err = reindexBoard(tx, before, loaded)
		}
	}()
	load := func(id fmt.Stringer) (*record, error) {
		r, err := projections.Load[record](tx, key(customer.String(), id.String()))
		if err != nil {
			return nil, err
		}
		loaded, before = r, boardKey(r)
		if r.Outcome == "" { // first event of this opportunity
			r.Customer, r.ID = customer.String(), id.String()
			r.Outcome = domain.OutcomeOpen
			r.OpenedAt, r.StageSince = at, at
		}
		return r, nil
	}
	switch ev := e.Event.(type) {
	case domain.OpportunityOpened:
		r, err := load(ev.OpportunityID)
		if err != nil {
			return err
		}
		r.Name, r.Amount, r.Currency, r.ExpectedClose = ev.Name, ev.Amount, ev.Currency, ev.ExpectedClose
		if r.Stage == "" {
			r.Stage = ev.Stage
		}
		if at.Before(r.OpenedAt) {
			r.OpenedAt = at
		}
	case domain.OpportunityStageChanged:
		r, err := load(ev.OpportunityID)
		if err != nil {
			return err
		}
		if r.Outcome != domain.OutcomeOpen || r.Stage == ev.Stage {
			return nil
		}
		r.leave(at)
		r.Stage, r.StageSince = ev.Stage, at
	case domain.OpportunityWon:
		return p.close(load, ev.OpportunityID, domain.OutcomeWon, at)
	case domain.OpportunityLost:
		return p.close(load, ev.OpportunityID, domain.OutcomeLost, at)
	}
	return nil
}

func (projection) close(load func(fmt.Stringer) (*record, error), id fmt.Stringer, outcome domain.OpportunityOutcome, at time.Time) error {
	r, err := load(id)
	if err != nil {
		return err
	}
	if r.Outcome != domain.OutcomeOpen {
		return nil
	}
	r.leave(at)
	r.Outcome, r.ClosedAt = outcome, at
	return nil
}

// leave completes the visit of the current stage at time at.
func (r *record) leave(at time.Time) {
	if r.Stage == "" {
		return
	}
	if r.Visits == nil {
		r.Visits = map[domain.OpportunityStage]int64{}
		r.Seconds = map[domain.OpportunityStage]int64{}
	}
	r.Visits[r.Stage]++
	r.Seconds[r.Stage] += max(0, int64(at.Sub(r.StageSince)/time.Second))
}
