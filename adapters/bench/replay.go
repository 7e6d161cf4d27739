package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// SingleReadModel is the read model whose rebuild alone the bench times:
// the customer 360 view, the analyst's usual case (one read model changed,
// rebuilt beside the live one).
const SingleReadModel = customer360.Name

// Rebuild is a build of one read model from position 0.
type Rebuild struct {
	ReadModel       string  `json:"readModel"`
	Events          int     `json:"events"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"eventsPerSecond"`
	PeakRSSBytes    int64   `json:"peakRssBytes"`
}

// ceilinger is a backend with a plain read of its whole log: the ceiling a
// replay is compared with in the same run.
type ceilinger interface {
	// readCeiling reads every event of the seeded log once, in position
	// order, and says how.
	readCeiling(ctx context.Context, store eventstore.Store) (events int, kind string, err error)
}

// ceiling times the backend's plain read of the log.
func ceiling(ctx context.Context, sut system, store eventstore.Store) (Throughput, string, error) {
	c, ok := sut.(ceilinger)
	if !ok {
		return Throughput{}, "", nil
	}
	start := time.Now()
	n, kind, err := c.readCeiling(ctx, store)
	el := time.Since(start)
	if err != nil {
		return Throughput{}, "", fmt.Errorf("read ceiling: %w", err)
	}
	return Throughput{Operations: 1, Events: n, Seconds: el.Seconds(), EventsPerSecond: float64(n) / el.Seconds()}, kind, nil
}

// scanAndDecode reads the log through the store's subscription in the
// engine's page size and decodes every event once: what a replay cannot
// avoid doing.
func scanAndDecode(ctx context.Context, store eventstore.Store) (int, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	stop := fmt.Errorf("done")
	err = store.Subscribe(ctx, eventstore.SubscribeOptions{BatchSize: eventstore.DefaultReadLimit}, func(_ context.Context, recs []eventstore.Record) error {
		for _, r := range recs {
			if _, err := domain.Decode(r.Type, r.Metadata.SchemaVersion, r.Data); err != nil {
				return fmt.Errorf("decode %d: %w", r.Position, err)
			}
		}
		n += len(recs)
		if recs[len(recs)-1].Position >= head {
			return stop
		}
		return nil
	})
	if err != nil && err != stop {
		return n, err
	}
	return n, nil
}

// pgxSequentialRead reads every column of every event of table in one
// query, in position order, scanning each row into Go values: the fastest
// read of the log a client can make, without decoding the payloads.
func pgxSequentialRead(ctx context.Context, url, table string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `select position, event_id, stream, version, type, recorded_at, occurred_at, actor, channel,
		correlation_id, causation_id, schema_version, data from `+table+` order by position`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		pos, version, schemaVersion             int64
		id                                      uuid.UUID
		stream, typ, actor, channel, corr, caus string
		recorded                                time.Time
		occurred                                *time.Time
		data                                    []byte
		n                                       int
	)
	for rows.Next() {
		if err := rows.Scan(&pos, &id, &stream, &version, &typ, &recorded, &occurred, &actor, &channel, &corr, &caus, &schemaVersion, &data); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// single rebuilds SingleReadModel alone from position 0.
func single(ctx context.Context, store eventstore.Store, rm projections.Backend) (Rebuild, error) {
	ps := readModelsNamed(SingleReadModel)
	r, err := timedReplay(ctx, store, rm, ps, nil)
	if err != nil {
		return Rebuild{}, err
	}
	return Rebuild{ReadModel: SingleReadModel, Events: r.Events, Seconds: r.Seconds, EventsPerSecond: r.EventsPerSecond, PeakRSSBytes: r.PeakRSSBytes}, nil
}
