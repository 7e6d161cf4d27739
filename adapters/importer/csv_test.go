package importer_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/adapters/importer"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
)

const purchasesMapping = `{
  "identifier": {"kind": "email", "column": "Email"},
  "customerName": "Name",
  "type": "PurchaseCompleted",
  "occurredAt": "Paid at", "timeLayout": "2006-01-02 15:04:05",
  "channel": "Shop",
  "fields": [
    {"field": "orderId", "column": "Order"},
    {"field": "amount", "column": "Total", "as": "amount"},
    {"field": "currency", "column": "Currency"},
    {"field": "lines[0].sku", "column": "SKU"},
    {"field": "lines[0].quantity", "column": "Qty", "as": "int"},
    {"field": "lines[0].unitAmount", "column": "Unit price", "as": "amount"}
  ],
  "set": {"lines[0].description": "imported"}
}`

const purchasesCSV = "Email,Name,Order,Total,Currency,SKU,Qty,Unit price,Paid at,Shop\n" +
	"zoe@example.fr,Zoë Nguyễn,44de0bb8-b9b6-42cb-b699-a1d767a2699c,129.90,EUR,SNK-42,1,129.90,2025-03-14 09:26:53,web\n" +
	"zoe@example.fr,,6b1d2f0e-3c4a-4e5f-8a9b-0c1d2e3f4a5b,1500,JPY,TEA,3,500,2025-03-15 10:00:00,store\n" +
	"bruno@example.es,Bruno Díaz,7c2e3a1f-4d5b-4f6a-9b0c-1d2e3f4a5b6c,12.345,EUR,A,1,1,2025-03-15 10:00:00,web\n" + // line 4: three decimals in EUR
	"bruno@example.es,Bruno Díaz,8d3f4b2a-5e6c-4a7b-8c1d-2e3f4a5b6c7d,10.00,EUR,A,1,10.00,2025-03-16 10:00:00\n" + // line 5: a column short
	"bruno@example.es,Bruno \"The\" Díaz,9e4a5c3b-6f7d-4b8c-9d2e-3f4a5b6c7d8e,10.00,EUR,A,1,10.00,2025-03-16 10:00:00,web\n" + // line 6: bare quote
	"bruno@example.es,Bruno Díaz,af5b6d4c-7a8e-4c9d-8e3f-4a5b6c7d8e9f,10.00,EUR,A,1,10.00,16/03/2025,web\n" + // line 7: bad date
	"bruno@example.es,Bru\xffno,b06c7e5d-8b9f-4d0e-9f4a-5b6c7d8e9fa0,10.00,EUR,A,1,10.00,2025-03-16 10:00:00,web\n" + // line 8: invalid UTF-8
	"\"bruno@example.es\",\"Bruno\nDíaz\",c17d8f6e-9c0a-4e1f-8a5b-6c7d8e9fa0b1,-5.00,EUR,A,1,10.00,2025-03-16 10:00:00,web\n" + // lines 9-10: a name on two lines
	"bruno@example.es,Bruno Díaz,d28e9a7f-0d1b-4f2a-9b6c-7d8e9fa0b1c2,20.00,EUR,B,2,10.00,2025-03-17 10:00:00,web\n" // line 11: fine

func TestImportCSV(t *testing.T) {
	m, err := importer.ParseMapping([]byte(purchasesMapping))
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New(memstore.Config{})
	importCSV := func() (importer.Summary, []*importer.RowError, error) {
		src, err := importer.NewCSV(strings.NewReader(purchasesCSV), m, importer.Defaults{Actor: "import:shop-export"})
		if err != nil {
			t.Fatal(err)
		}
		var rejected []*importer.RowError
		im, err := importer.New(ledger.New(store), store, importer.Config{Batch: "shop-export", OnReject: func(r *importer.RowError) { rejected = append(rejected, r) }})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := im.Run(context.Background(), src)
		return sum, rejected, err
	}
	sum, rejected, err := importCSV()
	if !errors.Is(err, importer.ErrRejectedRows) {
		t.Fatalf("Run: %v", err)
	}
	want := []struct {
		line  int
		field string
	}{{4, "event.amount"}, {5, ""}, {6, ""}, {7, "Paid at"}, {8, "Name"}, {9, "Name"}}
	if len(rejected) != len(want) {
		t.Fatalf("rejected %v", rejected)
	}
	for i, w := range want {
		if rejected[i].Line != w.line || rejected[i].Field() != w.field {
			t.Errorf("rejection %d: line %d field %q (%v), want line %d field %q", i, rejected[i].Line, rejected[i].Field(), rejected[i], w.line, w.field)
		}
	}
	if sum.Imported != 3 || sum.Registered != 2 {
		t.Fatalf("summary %+v", sum)
	}

	zoe := importer.CustomerIDFor(domain.IdentifierEmail, "zoe@example.fr")
	recs, err := store.ReadStream(context.Background(), domain.StreamID(zoe), eventstore.ReadStreamOptions{})
	if err != nil || len(recs) != 4 {
		t.Fatalf("zoe: %v %v", recs, err)
	}
	var p domain.PurchaseCompleted
	if err := json.Unmarshal(recs[2].Data, &p); err != nil {
		t.Fatal(err)
	}
	if p.Amount != 12990 || p.Currency != "EUR" || p.Lines[0].UnitAmount != 12990 || p.Lines[0].Description != "imported" {
		t.Fatalf("purchase %+v", p)
	}
	if err := json.Unmarshal(recs[3].Data, &p); err != nil || p.Amount != 1500 || p.Currency != "JPY" || p.Lines[0].Quantity != 3 {
		t.Fatalf("yen purchase %+v %v", p, err)
	}
	if recs[2].Metadata.Channel != "web" || recs[3].Metadata.Channel != "store" || recs[2].Metadata.OccurredAt.Format("2006-01-02T15:04:05Z") != "2025-03-14T09:26:53Z" {
		t.Fatalf("metadata %+v %+v", recs[2].Metadata, recs[3].Metadata)
	}

	before := len(all(t, store))
	if sum, _, _ := importCSV(); sum.Imported != 3 || len(all(t, store)) != before {
		t.Fatalf("second import: %+v, %d events (was %d)", sum, len(all(t, store)), before)
	}
}

func TestMappingErrors(t *testing.T) {
	header := []string{"Email", "Total"}
	for name, m := range map[string]importer.Mapping{
		"no customer":         {Type: "NoteAdded", OccurredAt: "Total"},
		"unknown type":        {CustomerID: "Email", Type: "CustomerUpdated", OccurredAt: "Total"},
		"missing column":      {CustomerID: "Email", Type: "NoteAdded", OccurredAt: "When"},
		"bad conversion":      {CustomerID: "Email", Type: "NoteAdded", OccurredAt: "Total", Fields: []importer.FieldMapping{{Field: "body", Column: "Total", As: "float"}}},
		"bad path":            {CustomerID: "Email", Type: "NoteAdded", OccurredAt: "Total", Fields: []importer.FieldMapping{{Field: "lines[x]", Column: "Total"}}},
		"bad identifier kind": {Identifier: &importer.IdentifierColumn{Kind: "fax", Column: "Email"}, Type: "NoteAdded", OccurredAt: "Total"},
	} {
		if _, err := m.Compile(header); err == nil {
			t.Errorf("%s: Compile accepted %+v", name, m)
		}
	}
	if _, err := importer.ParseMapping([]byte(`{"customer":"x"}`)); err == nil {
		t.Error("ParseMapping accepted an unknown key")
	}
}
