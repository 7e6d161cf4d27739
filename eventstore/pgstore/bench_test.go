package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Append throughput, compared with what PostgreSQL does without the store's
// protocol on an equivalent table (same columns, constraints and indexes):
// BenchmarkBaselineInsert (one autocommitted INSERT per event, i.e.
// INSERT+COMMIT in one round trip) and BenchmarkBaselineBatch (100 rows per
// statement, as COPY or as one INSERT ... SELECT FROM unnest). Run with
//
//	go test -run '^$' -bench . -benchtime 3s ./eventstore/pgstore/
//
// and compare the events/s metrics at equal concurrency.

var concurrency = []int{1, 8}

// parallel runs b.N operations spread over n goroutines, each given its
// index, and reports events per second.
func parallel(b *testing.B, n, eventsPerOp int, op func(worker int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	b.ResetTimer()
	for w := range n {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(w); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*eventsPerOp)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppend(b *testing.B) {
	for _, writers := range concurrency {
		for _, size := range []int{1, 100} {
			b.Run(fmt.Sprintf("writers=%d/events=%d", writers, size), func(b *testing.B) {
				s := openStore(b, "", pgstore.Options{MaxConns: int32(writers) + 2})
				ctx := context.Background()
				streams := make([]string, writers)
				for i := range streams {
					streams[i] = customerStream()
				}
				parallel(b, writers, size, func(w int) error {
					_, err := s.Append(ctx, streams[w], eventstore.Any, events(size)...)
					return err
				})
			})
		}
	}
}

// plainTable creates a table equivalent to the store's (LIKE ... INCLUDING
// ALL) whose positions come from an identity column, in a fresh schema.
func plainTable(b *testing.B) (table string) {
	b.Helper()
	schema := pgtest.Schema(b)
	s := openStore(b, schema, pgstore.Options{}) // runs the migrations
	_ = s.Close()
	conn := connect(b)
	table = schema + ".plain"
	if _, err := conn.Exec(context.Background(), `create table `+table+` (like `+schema+`.events including all);
		alter table `+table+` alter column position add generated always as identity`); err != nil {
		b.Fatal(err)
	}
	return table
}

func connect(b *testing.B) *pgx.Conn {
	b.Helper()
	conn, err := pgx.Connect(context.Background(), pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func BenchmarkBaselineInsert(b *testing.B) {
	for _, n := range concurrency {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			table := plainTable(b)
			conns := make([]*pgx.Conn, n)
			for i := range conns {
				conns[i] = connect(b)
			}
			q := `insert into ` + table + ` (event_id, stream, version, type, recorded_at, occurred_at,
				actor, channel, correlation_id, causation_id, schema_version, data)
				values ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
			ctx := context.Background()
			parallel(b, n, 1, func(w int) error {
				e := touchpoint(0)
				m := e.Metadata
				_, err := conns[w].Exec(ctx, q, e.ID, "customer-"+uuid.NewString(), e.Type, time.Now(), m.OccurredAt,
					m.Actor, m.Channel, m.CorrelationID, m.CausationID, m.SchemaVersion, string(e.Data))
				return err
			})
		})
	}
}

func BenchmarkBaselineBatch(b *testing.B) {
	const size = 100
	for _, n := range concurrency {
		for _, how := range []string{"copy", "unnest"} {
			b.Run(fmt.Sprintf("conns=%d/%s", n, how), func(b *testing.B) {
				table := plainTable(b)
				conns := make([]*pgx.Conn, n)
				for i := range conns {
					conns[i] = connect(b)
				}
				ctx := context.Background()
				insert := `insert into ` + table + ` (event_id, stream, version, type, recorded_at, occurred_at,
					actor, channel, correlation_id, causation_id, schema_version, data)
					select * from unnest($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::timestamptz[],
					$6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int8[], $12::json[])`
				parallel(b, n, size, func(w int) error {
					stream := customerStream()
					var cols [12][]any
					for i, e := range events(size) {
						m := e.Metadata
						for c, v := range []any{e.ID, stream, int64(i), e.Type, time.Now(), m.OccurredAt,
							m.Actor, m.Channel, m.CorrelationID, m.CausationID, int64(m.SchemaVersion), string(e.Data)} {
							cols[c] = append(cols[c], v)
						}
					}
					if how == "unnest" {
						args := make([]any, len(cols))
						for c := range cols {
							args[c] = cols[c]
						}
						_, err := conns[w].Exec(ctx, insert, args...)
						return err
					}
					rows := make([][]any, size)
					for i := range rows {
						rows[i] = make([]any, len(cols))
						for c := range cols {
							rows[i][c] = cols[c][i]
						}
					}
					_, err := conns[w].CopyFrom(ctx, pgx.Identifier(strings.Split(table, ".")),
						[]string{"event_id", "stream", "version", "type", "recorded_at", "occurred_at",
							"actor", "channel", "correlation_id", "causation_id", "schema_version", "data"},
						pgx.CopyFromRows(rows))
					return err
				})
			})
		}
	}
}

// BenchmarkReadAll pages through a 100,000-event log, 1,000 events a page,
// as a replaying projection does.
func BenchmarkReadAll(b *testing.B) {
	const total, page = 100_000, 1000
	s := openStore(b, "", pgstore.Options{})
	ctx := context.Background()
	for range total / page {
		if _, err := s.Append(ctx, customerStream(), eventstore.NoStream, events(page)...); err != nil {
			b.Fatal(err)
		}
	}
	b.Run(fmt.Sprintf("events=%d/page=%d", total, page), func(b *testing.B) {
		for b.Loop() {
			var after uint64
			for {
				recs, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: page})
				if err != nil {
					b.Fatal(err)
				}
				if len(recs) == 0 {
					break
				}
				after = recs[len(recs)-1].Position
			}
			if after != total {
				b.Fatalf("read up to %d, want %d", after, total)
			}
		}
		b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
	})
}
