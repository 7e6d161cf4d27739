package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

// ImportingStore is a store that also takes records as they are
// (eventstore.Importer), for migrations.
type ImportingStore interface {
	eventstore.Store
	eventstore.Importer
}

// RunImporter checks an Importer's promises on a fresh, empty store:
// records keep id, version, RecordedAt and metadata; a version gap, a
// stored id and a RecordedAt before the log's last are refused and write
// nothing; appends go on after imported events.
func RunImporter(t *testing.T, s ImportingStore) {
	t.Helper()
	ctx := t.Context()
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	rec := func(stream string, v uint64, at time.Time) eventstore.Record {
		return eventstore.Record{ID: uuid.New(), Stream: stream, Version: v, Type: "CallLogged", RecordedAt: at,
			Data: []byte(`{"note":"Zoë"}`), Metadata: eventstore.Metadata{Actor: "import:batch-1", OccurredAt: at.Add(-time.Hour)}}
	}
	a, b := "customer-"+uuid.NewString(), "customer-"+uuid.NewString()
	batch := []eventstore.Record{rec(a, 0, at), rec(b, 0, at), rec(a, 1, at.Add(time.Second))}
	if err := s.Import(ctx, batch); err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctx, eventstore.ReadAllOptions{})
	if err != nil || len(all) != 3 {
		t.Fatalf("ReadAll after import = %d records, %v", len(all), err)
	}
	for i, r := range all {
		w := batch[i]
		if r.ID != w.ID || r.Stream != w.Stream || r.Version != w.Version || !r.RecordedAt.Equal(w.RecordedAt) || r.Metadata != w.Metadata || r.Position != uint64(i+1) {
			t.Errorf("record %d = %+v, want %+v at position %d", i, r, w, i+1)
		}
	}
	for name, bad := range map[string]struct {
		recs []eventstore.Record
		want error
	}{
		"VersionGap":       {[]eventstore.Record{rec(a, 3, at.Add(time.Hour))}, eventstore.ErrWrongExpectedVersion},
		"StoredID":         {[]eventstore.Record{{ID: batch[0].ID, Stream: b, Version: 1, Type: "CallLogged", RecordedAt: at.Add(time.Hour), Data: []byte(`{}`)}}, eventstore.ErrDuplicateEvent},
		"RecordedAtBefore": {[]eventstore.Record{rec(b, 1, at.Add(-time.Hour))}, eventstore.ErrInvalidEvent},
		"NoRecordedAt":     {[]eventstore.Record{rec(b, 1, time.Time{})}, eventstore.ErrInvalidEvent},
		"LaterRecordBad":   {[]eventstore.Record{rec(b, 1, at.Add(time.Hour)), rec(b, 5, at.Add(time.Hour))}, eventstore.ErrWrongExpectedVersion},
	} {
		if err := s.Import(ctx, bad.recs); !errors.Is(err, bad.want) {
			t.Errorf("%s: Import = %v, want %v", name, err, bad.want)
		}
	}
	if h, _ := s.Head(ctx); h != 3 {
		t.Errorf("Head = %d after refused imports, want 3: a refused import wrote something", h)
	}
	// The store goes on with appends after imported events.
	res, err := s.Append(ctx, a, eventstore.Exact(1), eventstore.EventData{ID: uuid.New(), Type: "NoteAdded", Data: []byte(`{}`)})
	if err != nil || res.Version != 2 || res.Position != 4 {
		t.Errorf("append after import = %+v, %v", res, err)
	}
}
