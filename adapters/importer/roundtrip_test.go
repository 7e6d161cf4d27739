package importer_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/cxledger/cxledger/adapters/exporter"
	"github.com/cxledger/cxledger/adapters/importer"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/google/uuid"
)

// TestExportImportRoundTrip: the global log exported as NDJSON and
// imported into a fresh store gives the same events: ids, order within
// each stream, data bytes and metadata. Importing the export a second
// time writes nothing.
func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := memstore.New(memstore.Config{})
	// Touchpoints by different actors and channels, interleaved across
	// customers, with unicode and HTML-looking text that must survive
	// byte for byte.
	html := `{"customerId":"` + anaID + `","type":"NoteAdded","event":{"body":"<b>VIP</b> & \"friends\" 🚚"},"occurredAt":"2025-03-14T09:27:00.123456Z","actor":"user:marta","channel":"zendesk","correlationId":"c-1","causationId":"d-2"}`
	if _, rej, err := run(t, src, "seed", lines(register, purchase, call, note, html, call)); err != nil || len(rej) > 0 {
		t.Fatalf("seed: %v %v", err, rej)
	}
	want := all(t, src)

	var out bytes.Buffer
	w := exporter.NewNDJSON(&out)
	n, err := exporter.Export(ctx, src, w, exporter.Options{PageSize: 2})
	if err != nil || w.Close() != nil || n != len(want) {
		t.Fatalf("export: %d events, %v", n, err)
	}

	dst := memstore.New(memstore.Config{})
	for range 2 {
		im, err := importer.New(ledger.New(dst), dst, importer.Config{Batch: "restore", Window: 3})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := im.Run(ctx, importer.NewNDJSON(bytes.NewReader(out.Bytes()), importer.Defaults{Actor: "import:restore"})); err != nil {
			t.Fatalf("import the export: %v", err)
		}
	}
	got := all(t, dst)
	if len(got) != len(want) {
		t.Fatalf("%d events after the round trip, want %d", len(got), len(want))
	}
	gotBy, wantBy := byStream(got), byStream(want)
	for stream, ws := range wantBy {
		gs := gotBy[stream]
		if len(gs) != len(ws) {
			t.Fatalf("%s: %d events, want %d", stream, len(gs), len(ws))
		}
		for i, w := range ws {
			g := gs[i]
			if g.ID != w.ID || g.Type != w.Type || g.Version != w.Version || !bytes.Equal(g.Data, w.Data) || g.Metadata != w.Metadata {
				t.Errorf("%s event %d:\n got %+v %s\nwant %+v %s", stream, i, g, g.Data, w, w.Data)
			}
		}
	}
}

// TestExportOneCustomer pages through one stream with a type filter.
func TestExportOneCustomer(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	if _, _, err := run(t, store, "seed", lines(register, call, purchase, call, call, note)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := exporter.NewNDJSON(&out)
	opts := exporter.Options{Customer: mustUUID(t, anaID), Types: []string{"CallLogged"}, PageSize: 2}
	n, err := exporter.Export(ctx, store, w, opts)
	if err != nil || w.Close() != nil {
		t.Fatal(err)
	}
	if n != 3 || bytes.Count(out.Bytes(), []byte("\n")) != 3 || bytes.Contains(out.Bytes(), []byte("PurchaseCompleted")) {
		t.Fatalf("exported %d:\n%s", n, out.Bytes())
	}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
