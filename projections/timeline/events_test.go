package timeline_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/timeline"
)

// countingLog counts the reads of the log and caps each at pageSize
// records, as a store's read limit does.
type countingLog struct {
	timeline.StreamReader
	reads, pageSize int
}

func (c *countingLog) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error) {
	c.reads++
	opts.Limit = min(opts.Limit, c.pageSize)
	return c.StreamReader.ReadStream(ctx, stream, opts)
}

// Pages read from the log of a real store are the pages made from the
// events in memory, entry for entry, whatever the page size, filter and
// the store's read limit, with events imported late (versions out of
// occurred-at order); a page in version order is one read; a version the
// stream does not hold is an error, not a shorter page.
func TestPagesFromTheLog(t *testing.T) {
	ctx := context.Background()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "ledger.db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stream := domain.StreamID(zoe)
	var data []eventstore.EventData
	add := func(at time.Time, ev domain.Event, channel string) {
		typ, schema, raw, err := domain.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, eventstore.EventData{ID: uuid.New(), Type: typ, Data: raw,
			Metadata: eventstore.Metadata{OccurredAt: at, Actor: "user:marta", Channel: channel, SchemaVersion: schema}})
	}
	add(at(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë"}, "web")
	for i := 1; i < 300; i++ {
		when := at(i)
		if i%37 == 0 {
			when = at(-i) // imported late: occurred before she registered
		}
		channel := "web"
		if i%3 == 0 {
			channel = "zendesk"
		}
		add(when, domain.NoteAdded{Body: fmt.Sprintf("note %d", i)}, channel)
	}
	if _, err := store.Append(ctx, stream, eventstore.Any, data...); err != nil {
		t.Fatal(err)
	}
	recs, err := store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var envs []domain.Envelope
	for _, r := range recs {
		e, err := projections.Envelope(r)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, e)
	}
	b := projections.NewMemory()
	projectiontest.FoldBatches(t, b, ns, timeline.New(), envs, 64)

	mem := timeline.History(envs)
	for _, pageSize := range []int{1, 7, 1000} {
		log := &countingLog{StreamReader: store, pageSize: pageSize}
		for _, q := range []timeline.Query{{Limit: 100}, {Limit: 13}, {Limit: 50, Channels: []string{"zendesk"}}, {Limit: 1000}} {
			want := all(t, b, mem, zoe, q)
			got := all(t, b, timeline.FromLog(log), zoe, q)
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("read limit %d, %+v: %d entries from the log, %d from memory, or they differ", pageSize, q, len(got), len(want))
			}
		}
	}

	// The second page of 100 is a run of versions with gaps where the
	// late imports were (they sort first): one read.
	log := &countingLog{StreamReader: store, pageSize: 1000}
	first, err := page(t, b, timeline.FromLog(log), zoe, timeline.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	log.reads = 0
	second, err := page(t, b, timeline.FromLog(log), zoe, timeline.Query{Limit: 100, Cursor: first.NextCursor})
	if err != nil || len(second.Entries) != 100 || log.reads != 1 {
		t.Errorf("second page: %d entries in %d reads (%v), want 100 in 1", len(second.Entries), log.reads, err)
	}

	if _, err := timeline.FromLog(store).Events(ctx, stream, []uint64{5, 300}); err == nil {
		t.Error("version 300 of a 300-event stream: no error")
	}
	if _, err := timeline.FromLog(store).Events(ctx, domain.StreamID(ana), []uint64{0}); err == nil {
		t.Error("a stream without events: no error")
	}
}
