package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/pgrm"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgres is the PostgreSQL backend in scratch schemas named
// cxbench_<random>[_<n>], all dropped by close.
type postgres struct {
	url    string
	prefix string
	mu     sync.Mutex
	n      int
	made   []string
}

func newPostgres(ctx context.Context, url string) (*postgres, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.Ping(ctx); err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("scratch schema name: %w", err)
	}
	return &postgres{url: url, prefix: "cxbench_" + hex.EncodeToString(b[:])}, nil
}

func (p *postgres) name() string { return Postgres }

// schema names a new scratch schema (created by whoever opens it first).
func (p *postgres) schema(main bool) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.prefix
	if !main {
		p.n++
		s = fmt.Sprintf("%s_%d", p.prefix, p.n)
	}
	p.made = append(p.made, s)
	return s
}

func (p *postgres) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, p.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func (p *postgres) drop(ctx context.Context, schema string) error {
	if err := p.exec(ctx, "drop schema if exists "+schema+" cascade"); err != nil {
		return fmt.Errorf("drop scratch schema %s: %w", schema, err)
	}
	return nil
}

func (p *postgres) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var first error
	for _, s := range p.made {
		if err := p.drop(ctx, s); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// poolSize is the ledger store's pool: group commit makes more connections
// than writers pointless, and a server shared with tests has ~100.
func poolSize(writers int) int32 { return int32(min(writers, 16) + 2) }

func (p *postgres) freshStore(ctx context.Context, writers int) (eventstore.Store, func() error, error) {
	schema := p.schema(false)
	s, err := pgstore.Open(ctx, p.url, pgstore.Options{Schema: schema, MaxConns: poolSize(writers)})
	if err != nil {
		return nil, nil, fmt.Errorf("open PostgreSQL store: %w", err)
	}
	return s, func() error {
		if err := s.Close(); err != nil {
			return err
		}
		return p.drop(context.WithoutCancel(ctx), schema)
	}, nil
}

func (p *postgres) seedStore(ctx context.Context, _ bool) (eventstore.Store, error) {
	s, err := pgstore.Open(ctx, p.url, pgstore.Options{Schema: p.schema(true), MaxConns: 20})
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w", err)
	}
	return s, nil
}

func (p *postgres) readModels(ctx context.Context) (projections.Backend, error) {
	b, err := pgrm.Open(ctx, p.url, pgrm.Options{Schema: p.prefix, MaxConns: 8})
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL read models: %w", err)
	}
	return b, nil
}

// baseline writes into a table equivalent to the store's (LIKE events
// INCLUDING ALL: same columns, constraints and indexes) whose positions
// come from an identity column, from as many connections as writers: one
// autocommitted INSERT per event (INSERT+COMMIT in one round trip) for
// single events, one INSERT … SELECT FROM unnest of all rows for batches.
func (p *postgres) baseline(ctx context.Context, writers, size int, d time.Duration, rec []byte) (Throughput, string, error) {
	schema := p.schema(false)
	defer p.drop(context.WithoutCancel(ctx), schema)
	s, err := pgstore.Open(ctx, p.url, pgstore.Options{Schema: schema, MaxConns: 1}) // creates the events table
	if err != nil {
		return Throughput{}, "", fmt.Errorf("create baseline schema: %w", err)
	}
	_ = s.Close()
	table := schema + ".plain"
	if err := p.exec(ctx, `create table `+table+` (like `+schema+`.events including all);
		alter table `+table+` alter column position add generated always as identity`); err != nil {
		return Throughput{}, "", fmt.Errorf("create baseline table: %w", err)
	}
	pcfg, err := pgxpool.ParseConfig(p.url)
	if err != nil {
		return Throughput{}, "", fmt.Errorf("baseline pool: %w", err)
	}
	pcfg.MaxConns, pcfg.MinConns = int32(writers), int32(writers)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return Throughput{}, "", fmt.Errorf("baseline pool: %w", err)
	}
	defer pool.Close()
	streams := make([]string, writers)
	versions := make([]int64, writers)
	for w := range streams {
		streams[w] = newStream()
	}
	data := string(rec)
	const cols = `(event_id, stream, version, type, recorded_at, occurred_at, actor, channel, correlation_id, causation_id, schema_version, data)`
	if size == 1 {
		q := `insert into ` + table + ` ` + cols + ` values ($1, $2, $3, 'PurchaseCompleted', $4, $4, 'service:shop', 'web', '', '', 2, $5)`
		t, err := timed(ctx, writers, d, func(ctx context.Context, w int) (int, error) {
			_, err := pool.Exec(ctx, q, nextID(), streams[w], versions[w], time.Now(), data)
			versions[w]++
			return 1, err
		})
		return t, "plain INSERT+COMMIT per event", err
	}
	q := `insert into ` + table + ` ` + cols + ` select * from unnest($1::uuid[], $2::text[], $3::int8[], $4::text[],
		$5::timestamptz[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int8[], $12::json[])`
	t, err := timed(ctx, writers, d, func(ctx context.Context, w int) (int, error) {
		var a [12][]any
		now := time.Now()
		for range size {
			for c, v := range []any{nextID(), streams[w], versions[w], "PurchaseCompleted", now, now, "service:shop", "web", "", "", int64(2), data} {
				a[c] = append(a[c], v)
			}
			versions[w]++
		}
		args := make([]any, len(a))
		for c := range a {
			args[c] = a[c]
		}
		_, err := pool.Exec(ctx, q, args...)
		return size, err
	})
	return t, fmt.Sprintf("%d-row batch INSERT+COMMIT", size), err
}

// readCeiling is a plain sequential pgx read of the seeded log.
func (p *postgres) readCeiling(ctx context.Context, _ eventstore.Store) (int, string, error) {
	n, err := pgxSequentialRead(ctx, p.url, p.prefix+".events")
	return n, "plain sequential pgx read of the log", err
}
