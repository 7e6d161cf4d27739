package delivery_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/delivery"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/pgrm"
)

// TestTwoWorkersOnePostgresSchema: two workers, as two processes would,
// share one PostgreSQL schema (store, read models, leases): one owns the
// delivery lease, the other stands by, and every message reaches the
// webhook exactly once with exactly one outcome.
func TestTwoWorkersOnePostgresSchema(t *testing.T) {
	ctx := context.Background()
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	w := newWorld(t)
	r := newReceiver(t)
	wh, err := delivery.NewWebhook(delivery.WebhookConfig{URL: r.srv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for i := range 2 {
		st, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		rm, err := pgrm.Open(ctx, url, pgrm.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rm.Close(); _ = st.Close() })
		l := ledger.New(st)
		l.Keys = w.keys
		if i == 0 {
			w.store, w.ledger = st, l
			for range 5 {
				c := w.customer(uuid.NewString()[:8] + "@example.com")
				for range 4 {
					ids = append(ids, w.queue(c, domain.ConsentEmail, domain.PurposeMarketing))
				}
			}
		}
		wk, err := delivery.New(delivery.Config{Store: st, Recorder: l, Keys: w.keys, Email: wh, Backend: rm, Leases: rm,
			Lease:      projections.LeaseConfig{Owner: "worker-" + string(rune('a'+i)), TTL: 2 * time.Second},
			MinBackoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- wk.Run(wctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		})
	}
	out := w.waitOutcomes(ids...)
	for _, id := range ids {
		if n := len(r.received(id)); n != 1 {
			t.Errorf("message %s received %d times, want 1", id, n)
		}
		if len(out[id]) != 1 {
			t.Errorf("message %s: %d outcomes", id, len(out[id]))
		} else if _, ok := out[id][0].(domain.MessageDelivered); !ok {
			t.Errorf("message %s: %+v", id, out[id][0])
		}
	}
	if n := r.total(); n != len(ids) {
		t.Errorf("%d sends for %d messages", n, len(ids))
	}
}
