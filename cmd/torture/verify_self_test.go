package torture

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/google/uuid"
)

// The checks must catch what they claim to: these tests feed them a
// broken log and a drifted read model, which the real server never
// produced while they were written.

// fakeLog serves a fixed list of records, however wrong, as a store would.
type fakeLog struct {
	recs []eventstore.Record
	head uint64
}

func (l fakeLog) ReadAll(_ context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error) {
	if opts.After != 0 {
		return nil, nil // everything came in the first page
	}
	return l.recs, nil
}

func (l fakeLog) ReadStream(_ context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error) {
	var out []eventstore.Record
	for _, r := range l.recs {
		if r.Stream == stream && r.Version >= opts.From {
			out = append(out, r)
		}
	}
	return out, nil
}

func (l fakeLog) Head(context.Context) (uint64, error) { return l.head, nil }

func TestVerifyStoreCatchesBrokenLogs(t *testing.T) {
	cA, cB, cC, cD := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	a0, a1, a2, a3, b0, u0, d0, d1 := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	rec := func(id, customer uuid.UUID, version, position uint64) eventstore.Record {
		return eventstore.Record{ID: id, Stream: domain.StreamID(customer), Type: domain.TypeNoteAdded, Version: version, Position: position}
	}
	mkAck := func(customer uuid.UUID, first, position uint64, ids ...uuid.UUID) ack {
		types := make([]string, len(ids))
		for i := range types {
			types[i] = domain.TypeNoteAdded
		}
		return ack{customer: customer, ids: ids, types: types, firstVersion: first, version: first + uint64(len(ids)) - 1, position: position, attempts: 1}
	}
	acks := []ack{
		mkAck(cA, 0, 2, a0, a1),
		mkAck(cA, 2, 4, a2),
		mkAck(cA, 3, 9, a3), // never stored
		mkAck(cB, 0, 7, b0), // stored at 3, and again at 5
		mkAck(cD, 0, 7, d0, d1),
	}
	sound := fakeLog{head: 9, recs: []eventstore.Record{
		rec(a0, cA, 0, 1), rec(a1, cA, 1, 2), rec(b0, cB, 0, 3), rec(a2, cA, 2, 4), rec(a3, cA, 3, 9),
	}}
	_, _, f, err := verifyStore(t.Context(), sound, []ack{acks[0], acks[1], acks[2], mkAck(cB, 0, 3, b0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.kinds()) > 0 {
		f.report(t)
		t.Fatal("a sound log was reported broken")
	}

	broken := fakeLog{head: 6, recs: []eventstore.Record{
		rec(a0, cA, 0, 1), rec(a1, cA, 1, 2), rec(b0, cB, 0, 3), rec(a2, cA, 2, 4),
		rec(b0, cB, 1, 5),                    // stored twice
		rec(u0, cC, 0, 5),                    // never acknowledged, and its position repeats
		rec(d0, cD, 0, 6), rec(d1, cD, 2, 7), // a hole at version 1
	}}
	_, _, f, err = verifyStore(t.Context(), broken, acks)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"global positions not strictly increasing",
		"head differs from the log's last position",
		"unacknowledged events stored",
		"acknowledged events stored more than once",
		"acknowledged events stored elsewhere",
		"acknowledged events missing",
		"acknowledged positions differ from the store's",
		"stream versions with holes",
		"stream lengths differ from the acknowledgements",
		"log length differs from the acknowledgements",
	}
	got := f.kinds()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("violations found:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, item := range f.items["acknowledged events missing"] {
		if !strings.Contains(item, a3.String()) || !strings.Contains(item, domain.StreamID(cA)) {
			t.Errorf("missing event reported without its id and stream: %s", item)
		}
	}
}

func TestVerifyReadModelsCatchesDrift(t *testing.T) {
	ctx := t.Context()
	store := memstore.New(memstore.Config{})
	defer store.Close()
	customer := uuid.New()
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	for i, ev := range []domain.Event{
		domain.CustomerRegistered{CustomerID: customer, Name: "Zoë Ñúñez", Country: "FR"},
		domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: 754, Agent: "user:marta", Outcome: domain.CallConnected},
	} {
		typ, sv, data, err := domain.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		md := eventstore.Metadata{OccurredAt: at.Add(time.Duration(i) * time.Hour), Actor: "user:marta", SchemaVersion: sv}
		if _, err := store.Append(ctx, domain.StreamID(customer), eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live := projections.NewMemory()
	if err := projections.Replay(ctx, store, live, catalog.All(catalog.Deps{}), projections.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := verifyReadModels(ctx, store, live, head, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.kinds()) > 0 {
		f.report(t)
		t.Fatal("identical read models were reported different")
	}

	// Drift: one key too many in one read model.
	ns, err := live.Active(ctx, "customer360")
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Update(ctx, ns, func(w projections.Writer) error { return w.Put(ctx, "drifted", []byte(`{"lost":true}`)) }); err != nil {
		t.Fatal(err)
	}
	f, err = verifyReadModels(ctx, store, live, head, nil)
	if err != nil {
		t.Fatal(err)
	}
	items := f.items["read models differ from a rebuild from scratch"]
	if len(items) != 1 || !strings.Contains(items[0], "customer360") || !strings.Contains(items[0], `key "drifted" only live`) {
		t.Errorf("drift reported as %q, want one item naming customer360 and the key", items)
	}
}
