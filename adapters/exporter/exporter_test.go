package exporter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/exporter"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"
)

var (
	zoe     = uuid.MustParse("15cf8f44-2ec6-441c-9f2e-229a8d221eaf")
	bruno   = uuid.MustParse("b700c11a-ec2a-4426-aec1-5da2f454f7d6")
	orderID = uuid.MustParse("44de0bb8-b9b6-42cb-b699-a1d767a2699c")
	at      = time.Date(2025, 3, 14, 9, 26, 53, 589_793_000, time.UTC)
)

// seed appends a realistic history for two customers through the ledger.
func seed(t *testing.T) eventstore.Store {
	t.Helper()
	ctx := context.Background()
	s := memstore.New(memstore.Config{})
	l := ledger.New(s)
	md := domain.Metadata{OccurredAt: at, Actor: "service:shop", Channel: "web", CorrelationID: "order-10472"}
	for _, c := range []struct {
		id uuid.UUID
		tp []domain.Event
	}{
		{zoe, []domain.Event{domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë Ångström-Nguyễn", Country: "FR"}}},
		{bruno, []domain.Event{domain.CustomerRegistered{CustomerID: bruno, Name: "Bruno Díaz"}}},
		{zoe, []domain.Event{domain.PurchaseCompleted{OrderID: orderID, Amount: 12_990, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SNK-42", Quantity: 1, UnitAmount: 12_990}}}}},
		{bruno, []domain.Event{domain.NoteAdded{Body: "Prefers <email> & calls after 17:00 ☎"}}},
		{zoe, []domain.Event{domain.NoteAdded{Body: "VIP"}}},
	} {
		for _, e := range c.tp {
			if _, err := l.Append(ctx, domain.RoleSystem, c.id, eventstore.Any, ledger.Touchpoint{Event: e, Metadata: md}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

func readAll(t *testing.T, s eventstore.Store) []eventstore.Record {
	t.Helper()
	recs, err := s.ReadAll(context.Background(), eventstore.ReadAllOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestNDJSONIsTheRecordShape(t *testing.T) {
	s := seed(t)
	want := readAll(t, s)
	var out bytes.Buffer
	w := exporter.NewNDJSON(&out)
	n, err := exporter.Export(context.Background(), s, w, exporter.Options{After: 1, PageSize: 2})
	if err != nil || w.Close() != nil || n != len(want)-1 {
		t.Fatalf("export after 1: %d events, %v", n, err)
	}
	text := out.String()
	dec := json.NewDecoder(&out)
	for i := 1; ; i++ {
		var r eventstore.Record
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		w := want[i]
		if r.ID != w.ID || r.Position != w.Position || r.Stream != w.Stream || !bytes.Equal(r.Data, w.Data) || r.Metadata != w.Metadata || !r.RecordedAt.Equal(w.RecordedAt) {
			t.Fatalf("line %d: %+v, want %+v", i, r, w)
		}
	}
	if !strings.Contains(text, `"data":`+string(want[3].Data)+`,`) {
		t.Fatalf("data %s was not written byte for byte:\n%s", want[3].Data, text)
	}
}

func TestExportTypesFilter(t *testing.T) {
	var out bytes.Buffer
	w := exporter.NewNDJSON(&out)
	n, err := exporter.Export(context.Background(), seed(t), w, exporter.Options{Types: []string{domain.TypeNoteAdded}, PageSize: 1})
	if err != nil || w.Close() != nil || n != 2 || strings.Count(out.String(), `"type":"NoteAdded"`) != 2 {
		t.Fatalf("%d events, %v:\n%s", n, err, out.String())
	}
}

func TestExportUnknownCustomer(t *testing.T) {
	_, err := exporter.Export(context.Background(), seed(t), exporter.NewNDJSON(io.Discard), exporter.Options{Customer: uuid.New()})
	if err == nil {
		t.Fatal("exporting a customer without events succeeded")
	}
}

// TestParquet writes the log as Parquet, reads it back with parquet-go and
// checks every row and the column types analysts' tools rely on.
func TestParquet(t *testing.T) {
	s := seed(t)
	want := readAll(t, s)
	var buf bytes.Buffer
	w := exporter.NewParquet(&buf)
	n, err := exporter.Export(context.Background(), s, w, exporter.Options{PageSize: 2})
	if err != nil || n != len(want) {
		t.Fatalf("export: %d, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]string{
		"position":    "INT(64,true)",
		"version":     "INT(64,true)",
		"event_id":    "STRING",
		"recorded_at": "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"occurred_at": "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"data":        "JSON",
		"type":        "STRING",
		"customer_id": "STRING",
	} {
		leaf, ok := f.Schema().Lookup(col)
		if !ok {
			t.Fatalf("no column %s in %s", col, f.Schema())
		}
		got := leaf.Node.Type().String()
		if lt := leaf.Node.Type().LogicalType(); lt != nil {
			got = lt.String()
		}
		if got != want {
			t.Errorf("column %s is %s, want %s", col, got, want)
		}
		if kind := leaf.Node.Type().Kind(); (strings.HasPrefix(want, "INT") || strings.HasPrefix(want, "TIMESTAMP")) && kind != parquet.Int64 {
			t.Errorf("column %s is stored as %s, want INT64", col, kind)
		}
	}

	r := parquet.NewGenericReader[exporter.Row](bytes.NewReader(buf.Bytes()))
	defer r.Close()
	rows := make([]exporter.Row, len(want)+1)
	got, err := r.Read(rows)
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if got != len(want) {
		t.Fatalf("read %d rows, want %d", got, len(want))
	}
	for i, w := range want {
		row := rows[i]
		customer, _ := domain.ParseStreamID(w.Stream)
		if row.Position != int64(w.Position) || row.EventID != w.ID.String() || row.Stream != w.Stream || row.CustomerID != customer.String() ||
			row.Type != w.Type || row.Version != int64(w.Version) || !row.RecordedAt.Equal(w.RecordedAt) || !row.OccurredAt.Equal(w.Metadata.OccurredAt) ||
			row.Actor != w.Metadata.Actor || row.Channel != w.Metadata.Channel || row.CorrelationID != w.Metadata.CorrelationID ||
			row.SchemaVersion != int32(w.Metadata.SchemaVersion) || row.Data != string(w.Data) {
			t.Errorf("row %d:\n got %+v\nwant %+v %s", i, row, w, w.Data)
		}
	}
}
