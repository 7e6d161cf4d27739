package analyst

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/cxledger/cxledger/projections/script"
)

var exportParts = []script.Partition{
	{Key: "customer-0b8f…", State: json.RawMessage(`{"name":"Zoë Ångström-Nguyễn","total":129.9,"vip":true,"orders":["a","b"]}`)},
	{Key: "customer-1c2d…", State: json.RawMessage(`{"name":"Łukasz, \"Żółć\"","total":3,"vip":false}`)},
	{Key: "customer-2e3f…", State: json.RawMessage(`{"total":null,"note":"multi\nline"}`)},
}

func TestCSVRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, exportParts); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"partition", "name", "note", "orders", "total", "vip"},
		{"customer-0b8f…", "Zoë Ångström-Nguyễn", "", `["a","b"]`, "129.9", "true"},
		{"customer-1c2d…", `Łukasz, "Żółć"`, "", "", "3", "false"},
		{"customer-2e3f…", "", "multi\nline", "", "", ""},
	}
	if len(recs) != len(want) {
		t.Fatalf("rows %q", recs)
	}
	for i := range want {
		for j := range want[i] {
			if recs[i][j] != want[i][j] {
				t.Errorf("row %d col %d = %q, want %q", i, j, recs[i][j], want[i][j])
			}
		}
	}
}

func TestParquetRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteParquet(&buf, exportParts); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != 3 {
		t.Fatalf("%d rows", f.NumRows())
	}
	r := parquet.NewGenericReader[map[string]any](f, f.Schema())
	rows := []map[string]any{{}, {}, {}}
	if n, _ := r.Read(rows); n != 3 {
		t.Fatalf("read %d rows", n)
	}
	if rows[0]["partition"] != "customer-0b8f…" || rows[0]["name"] != "Zoë Ångström-Nguyễn" || rows[0]["total"] != 129.9 || rows[0]["vip"] != true || rows[0]["orders"] != `["a","b"]` {
		t.Errorf("row 0 = %v", rows[0])
	}
	if rows[1]["total"] != 3.0 || rows[1]["vip"] != false {
		t.Errorf("row 1 = %v", rows[1])
	}
	if rows[2]["total"] != nil || rows[2]["note"] != "multi\nline" {
		t.Errorf("row 2 = %v", rows[2])
	}
	// Column types a spreadsheet or DuckDB reads as such.
	for name, kind := range map[string]parquet.Kind{"total": parquet.Double, "vip": parquet.Boolean, "name": parquet.ByteArray} {
		col, ok := f.Schema().Lookup(name)
		if !ok || col.Node.Type().Kind() != kind {
			t.Errorf("column %s: %v", name, col.Node)
		}
	}
}
