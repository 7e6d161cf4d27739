package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// TestGroupCommit holds one batch open so that appends pile up, then checks
// that they were committed together (fewer transactions than appends), and
// that the conflicting ones among them failed alone.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := pgtest.Schema(t)
	s := openStore(t, schema, pgstore.Options{})
	shared := customerStream()
	if _, err := s.Append(ctx, shared, eventstore.NoStream, touchpoint(0)); err != nil {
		t.Fatal(err)
	}
	inserted, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	pgstore.SetAfterInsertHook(s, func() {
		once.Do(func() {
			close(inserted)
			<-release
		})
	})
	go func() { _, _ = s.Append(ctx, customerStream(), eventstore.NoStream, touchpoint(1)) }()
	<-inserted

	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			expected := eventstore.Any
			if i%4 == 0 {
				expected = eventstore.NoStream // the shared stream exists: conflict
			}
			_, errs[i] = s.Append(ctx, shared, expected, touchpoint(i))
		})
	}
	time.Sleep(200 * time.Millisecond) // let all sixteen queue behind the held batch
	close(release)
	wg.Wait()
	for i, err := range errs {
		var conflict *eventstore.VersionConflictError
		switch {
		case i%4 == 0 && !errors.As(err, &conflict):
			t.Errorf("append %d: %v, want a version conflict", i, err)
		case i%4 != 0 && err != nil:
			t.Errorf("append %d: %v", i, err)
		}
	}
	var txs, rows int
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, "select count(distinct xmin::text), count(*) from "+schema+".events").Scan(&txs, &rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2+n*3/4 {
		t.Fatalf("%d rows, want %d", rows, 2+n*3/4)
	}
	if txs >= rows-1 {
		t.Fatalf("%d rows in %d transactions: concurrent appends were not grouped", rows, txs)
	}
	t.Logf("%d rows in %d transactions", rows, txs)
}

// TestListenReconnects kills the LISTEN connection of a store whose
// subscriptions poll only hourly; an append by another store must still
// reach its subscriber promptly, through the reconnected LISTEN.
func TestListenReconnects(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := pgtest.Schema(t)
	reader := openStore(t, schema, pgstore.Options{Poll: time.Hour})
	writer := openStore(t, schema, pgstore.Options{})
	sub := collect(t, ctx, reader)
	if _, err := writer.Append(ctx, customerStream(), eventstore.NoStream, touchpoint(0)); err != nil {
		t.Fatal(err)
	}
	sub.waitFor(t, 1, 10*time.Second)

	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var killed int
	if err := conn.QueryRow(ctx, `select count(pg_terminate_backend(pid)) from pg_stat_activity
		where datname = current_database() and query = $1`, `listen "cxledger_`+schema+`"`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 2 { // the reader's and the writer's
		t.Fatalf("terminated %d LISTEN connections, want 2", killed)
	}
	// Wait until the listener is back, then append from the other store.
	for {
		var n int
		if err := conn.QueryRow(ctx, `select count(*) from pg_stat_activity
			where datname = current_database() and query = $1`, `listen "cxledger_`+schema+`"`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("LISTEN connection never came back")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := writer.Append(ctx, customerStream(), eventstore.NoStream, touchpoint(1)); err != nil {
		t.Fatal(err)
	}
	sub.waitFor(t, 2, 5*time.Second)
}

// TestConcurrentOpen starts several stores at once on a schema that does
// not exist yet: schema creation and migrations must take turns, not fail.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := pgtest.Schema(t) + "_new"
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), pgtest.URL(t))
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "drop schema if exists "+schema+" cascade"); err != nil {
			t.Error(err)
		}
	})
	var g errgroup.Group
	for range 6 {
		g.Go(func() error {
			s, err := pgstore.Open(ctx, pgtest.URL(t), pgstore.Options{Schema: schema})
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.Append(ctx, customerStream(), eventstore.NoStream, touchpoint(0))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	// Reopening a migrated schema is a no-op.
	s := openStore(t, schema, pgstore.Options{})
	if head, err := s.Head(ctx); err != nil || head != 6 {
		t.Fatalf("head %d, %v; want 6", head, err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, schema := range []string{"Public", "a-b", "pg_mine", "x; drop table y", strings.Repeat("s", 55)} {
		_, err := pgstore.Open(context.Background(), pgtest.URL(t), pgstore.Options{Schema: schema})
		if err == nil {
			t.Errorf("Open accepted schema %q", schema)
		}
	}
}

// TestRejectsWhatPostgresCannotStore: valid UTF-8 with NUL characters and
// times outside timestamptz's range fail as invalid events before reaching
// the database, where they would fail a whole group-commit batch.
func TestRejectsWhatPostgresCannotStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, "", pgstore.Options{})
	nulType := touchpoint(0)
	nulType.Type = "Touch\x00point"
	farFuture := touchpoint(1)
	farFuture.Metadata.OccurredAt = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		stream string
		event  eventstore.EventData
	}{
		"NUL in stream": {"customer-\x00", touchpoint(2)},
		"NUL in type":   {customerStream(), nulType},
		"year 300000":   {customerStream(), farFuture},
	} {
		if _, err := s.Append(ctx, tc.stream, eventstore.Any, tc.event); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("%s: %v, want ErrInvalidEvent", name, err)
		}
	}
	if head, err := s.Head(ctx); err != nil || head != 0 {
		t.Fatalf("head %d, %v: something was written", head, err)
	}
}
