package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/migrate"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

type store interface {
	eventstore.Store
	eventstore.Importer
}

func openBolt(t *testing.T) store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "ledger.db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openPG(t *testing.T) store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, pgtest.URL(t), pgstore.Options{Schema: pgtest.Schema(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fill writes a realistic ledger: customers appended in turns, some appends
// of several events, unicode payloads, full metadata with a non-UTC
// occurred-at; it returns how many events it wrote.
func fill(t *testing.T, s eventstore.Store, customers, rounds int) int {
	t.Helper()
	ctx := t.Context()
	tokyo := time.FixedZone("JST", 9*3600)
	streams := make([]string, customers)
	for i := range streams {
		streams[i] = "customer-" + uuid.NewString()
	}
	n := 0
	for round := range rounds {
		for i, stream := range streams {
			var events []eventstore.EventData
			for k := range 1 + (round+i)%3 {
				events = append(events, eventstore.EventData{
					ID:   uuid.New(),
					Type: []string{"CallLogged", "PurchaseCompleted", "ConsentWithdrawn"}[k],
					Data: fmt.Appendf(nil, `{"note":"Zoë Ñúñez — 東京 #%d","amountMinor":%d}`, n, 1298000+n),
					Metadata: eventstore.Metadata{
						OccurredAt: time.Date(2025, 3, 14, 9, 26, 53, 589_793_238+n, tokyo), Actor: "user:marta",
						Channel: "phone", CorrelationID: uuid.NewString(), CausationID: uuid.NewString(), SchemaVersion: 1 + n%2,
					},
				})
				n++
			}
			if _, err := s.Append(ctx, stream, eventstore.Any, events...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n
}

func TestCopyAndVerify(t *testing.T) {
	for _, c := range []struct {
		name     string
		src, dst func(*testing.T) store
	}{
		{"EmbeddedToPostgres", openBolt, openPG},
		{"PostgresToEmbedded", openPG, openBolt},
		{"EmbeddedToEmbedded", openBolt, openBolt},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			src, dst := c.src(t), c.dst(t)
			n := fill(t, src, 7, 9)
			var reports []migrate.Progress
			res, err := migrate.Copy(ctx, src, dst, migrate.Options{BatchSize: 16, ProgressEvery: time.Nanosecond, Progress: func(p migrate.Progress) { reports = append(reports, p) }})
			if err != nil {
				t.Fatal(err)
			}
			if res.Copied != int64(n) || res.Skipped != 0 || !res.Imported {
				t.Errorf("Copy = %+v, want %d copied by import", res, n)
			}
			if len(reports) == 0 || reports[len(reports)-1].Done != int64(n) {
				t.Errorf("progress reports %v do not end at %d events", reports, n)
			}
			v, err := migrate.Verify(ctx, src, dst, migrate.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if v.Count != int64(n) {
				t.Errorf("Verify counted %d events, want %d", v.Count, n)
			}
			// Field by field, not only by digest: ids, order, times, metadata.
			a, _ := src.ReadAll(ctx, eventstore.ReadAllOptions{Limit: n + 1})
			b, _ := dst.ReadAll(ctx, eventstore.ReadAllOptions{Limit: n + 1})
			for i := range a {
				x, y := a[i], b[i]
				if x.ID != y.ID || x.Stream != y.Stream || x.Version != y.Version || !x.RecordedAt.Equal(y.RecordedAt) || x.Metadata != y.Metadata || string(x.Data) != string(y.Data) {
					t.Fatalf("event #%d differs:\n%+v\n%+v", i, x, y)
				}
			}
			// The target is a working ledger: appends continue the copied streams.
			if _, err := dst.Append(ctx, a[len(a)-1].Stream, eventstore.Exact(a[len(a)-1].Version), eventstore.EventData{ID: uuid.New(), Type: "NoteAdded", Data: []byte(`{}`)}); err != nil {
				t.Errorf("append after the copy: %v", err)
			}
			// A second copy finds nothing to do... except the new event,
			// which the source lacks: the target is no longer a prefix.
			_, err = migrate.Copy(ctx, src, dst, migrate.Options{})
			var mm *migrate.MismatchError
			if !errors.As(err, &mm) || mm.Index != int64(n) {
				t.Errorf("copy into a target with an extra event: %v, want a mismatch at #%d", err, n)
			}
		})
	}
}

// failingImporter fails its import number failAt, standing in for a copy
// killed half way.
type failingImporter struct {
	store
	calls, failAt int
}

func (f *failingImporter) Import(ctx context.Context, recs []eventstore.Record) error {
	f.calls++
	if f.calls == f.failAt {
		return errors.New("connection reset by peer")
	}
	return f.store.Import(ctx, recs)
}

func TestCopyResumes(t *testing.T) {
	ctx := t.Context()
	src, dst := openBolt(t), openPG(t)
	n := fill(t, src, 5, 8)
	_, err := migrate.Copy(ctx, src, &failingImporter{store: dst, failAt: 3}, migrate.Options{BatchSize: 10})
	if err == nil {
		t.Fatal("the interrupted copy reported success")
	}
	res, err := migrate.Copy(ctx, src, dst, migrate.Options{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 20 || res.Copied != int64(n-20) {
		t.Errorf("resumed copy = %+v, want 20 skipped and %d copied", res, n-20)
	}
	if v, err := migrate.Verify(ctx, src, dst, migrate.Options{}); err != nil || v.Count != int64(n) {
		t.Errorf("Verify after resume = %+v, %v", v, err)
	}
	// Nothing left: a third run copies nothing.
	if res, err := migrate.Copy(ctx, src, dst, migrate.Options{}); err != nil || res.Copied != 0 || res.Skipped != int64(n) {
		t.Errorf("copy of a complete target = %+v, %v", res, err)
	}
}

// appendOnly hides Import, as KurrentDB's store would have none.
type appendOnly struct{ eventstore.Store }

func TestCopyWithoutImporter(t *testing.T) {
	ctx := t.Context()
	src, dst := openPG(t), openBolt(t)
	n := fill(t, src, 4, 5)
	time.Sleep(2 * time.Millisecond) // the target's clock must differ from the source's
	res, err := migrate.Copy(ctx, src, appendOnly{dst}, migrate.Options{BatchSize: 7})
	if err != nil || res.Copied != int64(n) || res.Imported {
		t.Fatalf("Copy by append = %+v, %v", res, err)
	}
	if _, err := migrate.Verify(ctx, src, dst, migrate.Options{IgnoreRecordedAt: true}); err != nil {
		t.Errorf("Verify without RecordedAt: %v", err)
	}
	_, err = migrate.Verify(ctx, src, dst, migrate.Options{})
	var mm *migrate.MismatchError
	if !errors.As(err, &mm) || mm.Index != 0 {
		t.Errorf("strict Verify of an appended copy: %v, want a RecordedAt mismatch at #0", err)
	}
	// Resume works by append too.
	if res, err := migrate.Copy(ctx, src, appendOnly{dst}, migrate.Options{}); err != nil || res.Skipped != int64(n) {
		t.Errorf("second copy by append = %+v, %v", res, err)
	}
}

// tampered changes one stored event as it is read.
type tampered struct {
	eventstore.Store
	id uuid.UUID
}

func (s tampered) ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error) {
	recs, err := s.Store.ReadAll(ctx, opts)
	for i := range recs {
		if recs[i].ID == s.id {
			recs[i].Metadata.Actor = "user:mallory"
		}
	}
	return recs, err
}

func TestVerifyNamesFirstMismatch(t *testing.T) {
	ctx := t.Context()
	src, dst := openBolt(t), openBolt(t)
	n := fill(t, src, 3, 4)
	if _, err := migrate.Copy(ctx, src, dst, migrate.Options{}); err != nil {
		t.Fatal(err)
	}
	all, _ := dst.ReadAll(ctx, eventstore.ReadAllOptions{})
	_, err := migrate.Verify(ctx, src, tampered{dst, all[11].ID}, migrate.Options{BatchSize: 5})
	var mm *migrate.MismatchError
	if !errors.As(err, &mm) || mm.Index != 11 || mm.Reason != "different metadata" || mm.Source.ID != all[11].ID {
		t.Errorf("Verify = %v, want a metadata mismatch at #11", err)
	}
	// A shorter target.
	short := openBolt(t)
	if err := short.Import(ctx, all[:n-1]); err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.Verify(ctx, src, short, migrate.Options{}); !errors.As(err, &mm) || mm.Index != int64(n-1) || mm.Target != nil {
		t.Errorf("Verify of a shorter target = %v, want a mismatch at #%d with no target event", err, n-1)
	}
}

func TestDigest(t *testing.T) {
	r := eventstore.Record{ID: uuid.New(), Stream: "customer-1", Version: 3, Type: "CallLogged", Position: 9,
		RecordedAt: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC), Data: []byte(`{"a":1}`),
		Metadata: eventstore.Metadata{Actor: "user:ana", SchemaVersion: 1}}
	d := migrate.Digest(r, false)
	moved := r
	moved.Position = 12345
	if migrate.Digest(moved, false) != d {
		t.Error("the digest depends on the position, which each store numbers itself")
	}
	for name, change := range map[string]func(*eventstore.Record){
		"id":          func(r *eventstore.Record) { r.ID = uuid.New() },
		"stream":      func(r *eventstore.Record) { r.Stream = "customer-2" },
		"version":     func(r *eventstore.Record) { r.Version = 4 },
		"type":        func(r *eventstore.Record) { r.Type = "CallLogge" },
		"data":        func(r *eventstore.Record) { r.Data = []byte(`{"a":2}`) },
		"actor":       func(r *eventstore.Record) { r.Metadata.Actor = "user:an" },
		"recorded-at": func(r *eventstore.Record) { r.RecordedAt = r.RecordedAt.Add(time.Microsecond) },
		// Length prefixes: moving a byte from one field to the next changes it.
		"boundary": func(r *eventstore.Record) { r.Stream, r.Type = "customer-1C", "allLogged" },
	} {
		c := r
		change(&c)
		if migrate.Digest(c, false) == d {
			t.Errorf("changing the %s does not change the digest", name)
		}
	}
	later := r
	later.RecordedAt = later.RecordedAt.Add(time.Hour)
	if migrate.Digest(later, true) != migrate.Digest(r, true) {
		t.Error("ignoreRecordedAt still depends on RecordedAt")
	}
}
