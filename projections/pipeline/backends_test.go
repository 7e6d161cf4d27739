package pipeline_test

import (
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

// fold applies events to p in a fresh namespace of b, in one batch.
func fold(t *testing.T, b projections.Backend, p projections.Projection, events []domain.Envelope) projections.Reader {
	t.Helper()
	return projectiontest.Fold(t, b, p, events)
}

// stream builds envelopes with increasing global positions.
type stream struct{ log projectiontest.Log }

func (s *stream) add(customer uuid.UUID, at string, e domain.Event) domain.Envelope {
	when, err := timeParse(at)
	if err != nil {
		panic(err)
	}
	return s.addAt(customer, when, e)
}

func (s *stream) addAt(customer uuid.UUID, when time.Time, e domain.Event) domain.Envelope {
	return s.log.Add(customer, when, e)
}
