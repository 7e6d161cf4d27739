package ledger

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections/reactor"
)

// ReactorAppender appends reactors' emissions through the write path, so
// they are validated, decided against the customer's history (consent, the
// loyalty balance, a forgotten customer) and sealed like any touchpoint.
// They append as domain.RoleSystem: the reactors are the ledger's own
// automation, the only writer of its outputs (domain.MayAppend).
// An emission already stored under its id (a replay, a redone batch) is a
// success; a refusal stays wrapped in domain.ErrRejected, which the
// reactor engine logs and skips.
type ReactorAppender struct {
	Service *Service
}

// Append implements reactor.Appender.
func (a ReactorAppender) Append(ctx context.Context, customer uuid.UUID, events ...reactor.Emitted) error {
	tps := make([]Touchpoint, len(events))
	for i, e := range events {
		tps[i] = Touchpoint{ID: e.ID, Event: e.Event, Metadata: e.Metadata}
	}
	_, err := a.Service.Append(ctx, domain.RoleSystem, customer, eventstore.Any, tps...)
	if errors.Is(err, eventstore.ErrDuplicateEvent) {
		// The id is stored already: the emission happened before.
		return nil
	}
	return err
}
