// Package query answers the questions agents, analysts and auditors ask of
// the read models, composing several of them where one answer needs it
// (the unified customer view joins customer 360 with the analytics scores).
// Every edge that reads — HTTP, CLI — goes through it.
package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/identity"
	"github.com/google/uuid"
)

// Service reads the read models of one backend.
type Service struct {
	b projections.Backend
	// Now is the clock time-dependent figures (recency, churn) use.
	Now func() time.Time
}

// New returns a Service over the read models in b.
func New(b projections.Backend) *Service { return &Service{b: b, Now: time.Now} }

// CustomerView is the unified view of one customer: everything an agent
// needs so the customer never repeats themselves.
type CustomerView struct {
	customer360.View
	// Score holds the analytics figures (RFM, churn, P(alive)); nil for a
	// customer who never bought or answered a survey.
	Score *analytics.Score `json:"score,omitempty"`
}

// Customer returns the unified view of a customer, or an error wrapping
// projections.ErrNotFound.
func (s *Service) Customer(ctx context.Context, id uuid.UUID) (CustomerView, error) {
	var v CustomerView
	err := projections.View(ctx, s.b, customer360.Name, func(r projections.Reader) error {
		view, err := customer360.Get(ctx, r, id)
		v.View = view
		return err
	})
	if err != nil {
		return CustomerView{}, err
	}
	err = projections.View(ctx, s.b, analytics.CustomersName, func(r projections.Reader) error {
		score, err := analytics.CustomerScore(ctx, r, id, s.Now())
		switch {
		case errors.Is(err, projections.ErrNotFound):
			v.Score = nil
			return nil
		case err != nil:
			return err
		}
		v.Score = &score
		return nil
	})
	if err != nil {
		return CustomerView{}, fmt.Errorf("analytics of customer %s: %w", id, err)
	}
	if v.Score != nil {
		v.Segment = string(v.Score.Segment)
		v.ChurnRisk = v.Score.ChurnRisk
	}
	return v, nil
}

// Lookup finds the customer an identifier belongs to ("email",
// "ana@example.com"), or fails with an error wrapping
// projections.ErrNotFound.
func (s *Service) Lookup(ctx context.Context, kind domain.IdentifierKind, value string) (uuid.UUID, error) {
	var id uuid.UUID
	err := projections.View(ctx, s.b, identity.Name, func(r projections.Reader) error {
		var err error
		id, err = identity.Lookup(ctx, r, kind, value)
		return err
	})
	return id, err
}
