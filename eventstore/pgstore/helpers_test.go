package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/google/uuid"
)

// openStore opens a Store on schema (a fresh one when empty) and closes it
// at the end of the test.
func openStore(t testing.TB, schema string, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	if schema == "" {
		schema = pgtest.Schema(t)
	}
	opts.Schema = schema
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, pgtest.URL(t), opts)
	if err != nil {
		t.Fatalf("open store on schema %s: %v", schema, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// touchpoint returns a realistic event: a uuid id, a JSON payload with
// unicode, and full metadata.
func touchpoint(i int) eventstore.EventData {
	data, _ := json.Marshal(map[string]any{
		"customerId": uuid.NewString(),
		"channel":    "chat",
		"note":       fmt.Sprintf("réclamation n°%d — ✓ résolue", i),
		"amount":     12.5 * float64(i),
	})
	return eventstore.EventData{
		ID:   uuid.New(),
		Type: "TouchpointRecorded",
		Data: data,
		Metadata: eventstore.Metadata{
			OccurredAt:    time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC),
			Actor:         "service:ingest",
			Channel:       "chat",
			CorrelationID: uuid.NewString(),
			SchemaVersion: 1,
		},
	}
}

func events(n int) []eventstore.EventData {
	es := make([]eventstore.EventData, n)
	for i := range es {
		es[i] = touchpoint(i)
	}
	return es
}

func customerStream() string { return "customer-" + uuid.NewString() }
