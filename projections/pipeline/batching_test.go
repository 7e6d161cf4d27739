package pipeline_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/pipeline"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

// randomPipeline returns a seeded random, valid interleaving of sales
// histories (every event passes the customer aggregate's Check), dated
// at random within a year.
func randomPipeline(seed uint64, customers, events int) []domain.Envelope {
	rng := rand.New(rand.NewPCG(seed, 3))
	newID := func() uuid.UUID {
		id, _ := uuid.NewRandomFromReader(rngReader{rng})
		return id
	}
	type cust struct {
		id   uuid.UUID
		agg  *domain.Customer
		opps []uuid.UUID
	}
	cs := make([]*cust, customers)
	for i := range cs {
		id := newID()
		cs[i] = &cust{id: id, agg: domain.NewCustomer(id)}
	}
	stages := []domain.OpportunityStage{domain.StageProspecting, domain.StageQualification, domain.StageProposal, domain.StageNegotiation}
	currencies := []string{"EUR", "USD", "JPY"}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var s projectiontest.Log
	var out []domain.Envelope
	for len(out) < events {
		c := cs[rng.IntN(len(cs))]
		pick := func() uuid.UUID {
			if len(c.opps) == 0 {
				return newID()
			}
			return c.opps[rng.IntN(len(c.opps))]
		}
		var e domain.Event
		switch k := rng.IntN(10); {
		case !c.agg.Registered():
			e = domain.CustomerRegistered{CustomerID: c.id, Name: "Société " + c.id.String()[:4]}
		case k < 3:
			id := newID()
			c.opps = append(c.opps, id)
			e = domain.OpportunityOpened{OpportunityID: id, Name: "Deal", Amount: int64(rng.IntN(1_000_000)),
				Currency: currencies[rng.IntN(3)], Stage: stages[rng.IntN(4)], ExpectedClose: fmt.Sprintf("2025-%02d-15", 1+rng.IntN(12))}
		case k < 7:
			e = domain.OpportunityStageChanged{OpportunityID: pick(), Stage: stages[rng.IntN(4)]}
		case k < 9:
			e = domain.OpportunityWon{OpportunityID: pick()}
		default:
			e = domain.OpportunityLost{OpportunityID: pick(), Reason: domain.LossPrice}
		}
		if c.agg.Check(e) != nil {
			continue
		}
		c.agg.Apply(e)
		out = append(out, s.Add(c.id, start.Add(time.Duration(rng.Int64N(int64(365*day)))), e))
	}
	return out
}

type rngReader struct{ rng *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.rng.UintN(256))
	}
	return len(p), nil
}

// Folding one batch or many small ones must store the same bytes.
func TestBatchingIsInvisible(t *testing.T) {
	p := pipeline.New(pipeline.Config{})
	for seed := range uint64(5) {
		history := randomPipeline(seed, 8, 400)
		projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
			projectiontest.BatchingIsInvisible(t, b, p, history, seed)
		})
	}
}
