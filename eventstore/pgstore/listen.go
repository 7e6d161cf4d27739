package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// listen keeps one connection LISTENing on the store's channel and turns
// every notification into a wake-up of the subscriptions. Appends by this
// Store wake them directly; this is how they learn of other processes'
// appends. The connection is outside the pool because it is held for the
// store's lifetime and must not be handed to a query.
//
// When the connection drops, listen reconnects with capped exponential
// backoff and wakes the subscriptions once it is back, since notifications
// sent in between are lost; Options.Poll covers the outage itself.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(s.listenDone)
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "cxledger-pgstore-listen"
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if err := s.listenOnce(ctx, cfg); err == nil || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenOnce runs one LISTEN connection until it fails or ctx ends.
func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "listen "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	// Whatever committed while no one was listening is read now.
	s.wake.Notify()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.wake.Notify()
	}
}
