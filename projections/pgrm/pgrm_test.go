package pgrm_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/backendtest"
	"github.com/cxledger/cxledger/projections/pgrm"
)

// open returns a backend on a fresh schema of the test database.
func open(t testing.TB) *pgrm.Backend {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t)
	b, err := pgrm.Open(context.Background(), url, pgrm.Options{Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() }) // registered after Schema's: runs before the drop
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Features{Validates: true, FollowsDrop: true, ClosedEverywhere: true},
		func(t *testing.T) projections.Backend { return open(t) })
}

// analyst runs SQL as an analyst would, on a connection of its own.
func analyst(t *testing.T, sql string, args ...any) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func putDocs(t *testing.T, b projections.Backend, ns string, docs ...string) {
	t.Helper()
	ctx := t.Context()
	err := b.Update(ctx, ns, func(w projections.Writer) error {
		for i, d := range docs {
			if err := w.Put(ctx, fmt.Sprintf("customer:%d", i), []byte(d)); err != nil {
				return err
			}
		}
		return w.SetCheckpoint(ctx, uint64(len(docs)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Analysts query a read model by its name; Activate repoints the view.
func TestAnalystView(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	putDocs(t, b, "customer360_v1_g1", `{"name":"Zoë"}`)
	putDocs(t, b, "customer360_v1_g2", `{"name":"Zoë Ångström"}`, `{"name":"Chen"}`)
	if err := b.Activate(ctx, "customer360", "customer360_v1_g1"); err != nil {
		t.Fatal(err)
	}
	q := "select value->>'name' from " + b.Schema() + ".customer360 order by key"
	if got := analyst(t, q); !slices.Equal(got, []string{"Zoë"}) {
		t.Fatalf("view before switch: %v", got)
	}
	if err := b.Activate(ctx, "customer360", "customer360_v1_g2"); err != nil {
		t.Fatal(err)
	}
	if err := b.Drop(ctx, "customer360_v1_g1"); err != nil {
		t.Fatal(err)
	}
	if got := analyst(t, q); !slices.Equal(got, []string{"Zoë Ångström", "Chen"}) {
		t.Fatalf("view after switch: %v", got)
	}
	// The tables analysts see, and tern's table apart from pgstore's.
	tables := analyst(t, "select table_name::text from information_schema.tables where table_schema = $1 order by 1", b.Schema())
	want := []string{"customer360", "cxledger_rm_schema_version", "rm__active", "rm__leases", "rm__namespaces", "rm__served", "rm_customer360_v1_g2"}
	if !slices.Equal(tables, want) {
		t.Fatalf("schema holds %v, want %v", tables, want)
	}
}

func TestReservedViewNames(t *testing.T) {
	b := open(t)
	for _, name := range []string{"events", "schema_version", "rm_x", "cxledger_rm_schema_version"} {
		if err := b.Activate(t.Context(), name, "ns"); err == nil {
			t.Errorf("Activate accepted read-model name %q", name)
		}
	}
}

// A View that has begun reading holds Drop off until it ends, and reads the
// namespace whole meanwhile.
func TestDropWaitsForReader(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	putDocs(t, b, "timeline_v1_g1", `{"n":1}`, `{"n":2}`)
	reading, release := make(chan struct{}), make(chan struct{})
	viewErr := make(chan error, 1)
	go func() {
		viewErr <- b.View(ctx, "timeline_v1_g1", func(r projections.Reader) error {
			close(reading)
			<-release
			n := 0
			return r.Scan(ctx, "", "", func(string, []byte) (bool, error) { n++; return true, nil })
		})
	}()
	<-reading
	dropped := make(chan error, 1)
	go func() { dropped <- b.Drop(ctx, "timeline_v1_g1") }()
	select {
	case err := <-dropped:
		t.Fatalf("Drop returned (%v) while a View was reading", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-viewErr; err != nil {
		t.Fatalf("View during Drop: %v", err)
	}
	if err := <-dropped; err != nil {
		t.Fatalf("Drop: %v", err)
	}
}

func TestOpenTwiceAndConcurrently(t *testing.T) {
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	var g errgroup.Group
	for range 3 {
		g.Go(func() error {
			b, err := pgrm.Open(t.Context(), url, pgrm.Options{Schema: schema})
			if err != nil {
				return err
			}
			return b.Close()
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestListenDeliversCommits: a fenced commit in one process is pushed to
// the listeners of every process on the same schema (LISTEN/NOTIFY), and
// not to those of another schema.
func TestListenDeliversCommits(t *testing.T) {
	ctx := t.Context()
	writer, reader := open(t), open(t)
	type note struct {
		ns string
		cp uint64
	}
	got := make(chan note, 16)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	connected := make(chan struct{}, 4)
	go func() {
		_ = reader.Listen(lctx, func(ns string, cp uint64) {
			if ns == "" {
				connected <- struct{}{}
				return
			}
			got <- note{ns, cp}
		})
	}()
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatal("listener never connected")
	}
	if err := writer.Update(ctx, "orders_v1_g1", func(w projections.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// The reader's schema is another one (open makes one per call): a
	// commit there must not reach it. Then one on its own schema must.
	err := writer.Commit(ctx, "orders_v1_g1", projections.Claim{From: 0}, func(w projections.Writer) error {
		return w.SetCheckpoint(ctx, 7)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.Update(ctx, "orders_v1_g1", func(w projections.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	err = reader.Commit(ctx, "orders_v1_g1", projections.Claim{From: 0}, func(w projections.Writer) error {
		return w.SetCheckpoint(ctx, 42)
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != (note{"orders_v1_g1", 42}) {
			t.Fatalf("notified %+v, want orders_v1_g1 at 42 (and nothing of the other schema)", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no notification of the commit")
	}
}
