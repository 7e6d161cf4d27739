package importer_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/importer"
)

var fuzzDefaults = importer.Defaults{Actor: "import:fuzz", Now: func() time.Time { return fuzzNow }}

// drain reads src to its end and checks what every Source promises: rows
// and row errors in increasing line order, each accepted row valid, and an
// end (io.EOF) within a bounded number of calls.
func drain(t *testing.T, src importer.Source, maxCalls int) {
	t.Helper()
	last := 0
	for range maxCalls {
		row, err := src.Next()
		if err == io.EOF {
			return
		}
		var rerr *importer.RowError
		switch {
		case errors.As(err, &rerr):
			if rerr.Line <= last {
				t.Fatalf("row error at line %d after line %d", rerr.Line, last)
			}
			if len(rerr.Input) > importer.MaxEchoBytes {
				t.Fatalf("row error echoes %d bytes", len(rerr.Input))
			}
			last = rerr.Line
			checkRow(t, importer.Row{}, rerr.Err)
		case err != nil:
			t.Fatalf("Next from memory failed: %v", err)
		default:
			if row.Line <= last {
				t.Fatalf("row at line %d after line %d", row.Line, last)
			}
			last = row.Line
			checkRow(t, row, nil)
		}
	}
	t.Fatalf("no end after %d calls", maxCalls)
}

// FuzzNDJSONSource: a whole NDJSON file, line splitting, long lines, BOM
// and line endings included. A small line limit lets the fuzzer reach
// the over-long path.
func FuzzNDJSONSource(f *testing.F) {
	f.Add([]byte(lines(register, call, "", purchase, note)), 512)
	f.Add([]byte("\uFEFF"+register+"\r\n"+call+"\r\n"), 64)
	f.Add([]byte(register+"\n"+strings.Repeat("x", 300)+"\n"+note), 100)
	f.Add([]byte("{\n}\n\xff\n[1]\n\n\n"), 0)
	f.Fuzz(func(t *testing.T, data []byte, maxLine int) {
		src := importer.NewNDJSON(bytes.NewReader(data), fuzzDefaults)
		src.MaxLineBytes = maxLine % 4096
		drain(t, src, bytes.Count(data, []byte("\n"))+2)
	})
}

// FuzzCSVSource: a whole CSV file, header included, through a mapping
// that the fuzzer also writes (the --mapping file is outside input too).
func FuzzCSVSource(f *testing.F) {
	f.Add([]byte(purchasesMapping), []byte(purchasesCSV))
	f.Add([]byte(`{"customerId":"Id","type":"NoteAdded","occurredAt":"At","fields":[{"field":"body","column":"Body"}]}`),
		[]byte("Id,At,Body\n"+anaID+",2025-03-14T09:26:53Z,\"Hello, \"\"world\"\"\"\n"+anaID+",,x\n"))
	f.Add([]byte(`{"identifier":{"kindColumn":"k","column":"v"},"typeColumn":"t","occurredAt":"a","comma":";","fields":[{"field":"lines[0].quantity","column":"q","as":"int"},{"field":"x[2].y","column":"v","as":"json"}],"set":{"lines[0].sku":"A"}}`),
		[]byte("k;v;t;a;q\nemail;zoe@example.fr;NoteAdded;2025-03-14T09:26:53Z;3\n"))
	f.Add([]byte(`{"customer":"x"}`), []byte("a\n"))
	f.Add([]byte(`null`), []byte(""))
	f.Fuzz(func(t *testing.T, mapping, data []byte) {
		m, err := importer.ParseMapping(mapping)
		if err != nil {
			return
		}
		src, err := importer.NewCSV(bytes.NewReader(data), m, fuzzDefaults)
		if err != nil {
			return // a bad header or mapping is reported before any row
		}
		drain(t, src, bytes.Count(data, []byte("\n"))+bytes.Count(data, []byte("\r"))+2)
	})
}
