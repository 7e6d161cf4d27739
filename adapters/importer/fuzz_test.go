package importer_test

import (
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/importer"
	"github.com/cxledger/cxledger/adapters/strictjson"
	"github.com/cxledger/cxledger/domain"
	"github.com/google/uuid"
)

var fuzzNow = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// checkRow is what every accepted row must satisfy: a customer, a valid
// event that encodes, and valid, complete metadata.
func checkRow(t *testing.T, row importer.Row, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, domain.ErrInvalid) && !errors.Is(err, domain.ErrUnknownType) {
			t.Fatalf("error %v is neither ErrInvalid nor ErrUnknownType", err)
		}
		return
	}
	if (row.CustomerID == uuid.Nil) == (row.Identifier == nil) {
		t.Fatalf("accepted row names no customer, or two: %+v", row)
	}
	if row.Identifier != nil {
		if n, err := domain.NormalizeIdentifier(row.Identifier.Kind, row.Identifier.Value); err != nil || n != row.Identifier.Normalized {
			t.Fatalf("identifier %+v does not normalise: %v", row.Identifier, err)
		}
	}
	if err := row.Event.Validate(); err != nil {
		t.Fatalf("accepted an invalid event: %v", err)
	}
	if _, _, _, err := domain.Encode(row.Event); err != nil {
		t.Fatalf("accepted event does not encode: %v", err)
	}
	if err := row.Metadata.Validate(fuzzNow); err != nil {
		t.Fatalf("accepted invalid metadata: %v", err)
	}
}

// FuzzDecodeLine: the NDJSON line decoder never panics, fails only with
// ErrInvalid or ErrUnknownType, and accepts only valid rows.
func FuzzDecodeLine(f *testing.F) {
	for _, s := range []string{
		register, call, purchase, note,
		`{"id":"0e3c38a0-6a5e-4f87-9bd4-55f2bb0e4c11","stream":"customer-` + anaID + `","type":"NoteAdded","version":3,"position":9,"recordedAt":"2025-03-14T09:30:00Z","data":{"body":"hi"},"metadata":{"occurredAt":"` + when + `","actor":"user:ana","schemaVersion":1}}`,
		`{"id":"0e3c38a0-6a5e-4f87-9bd4-55f2bb0e4c11","stream":"customer-` + anaID + `","type":"CallLogged","data":{"direction":"inbound","durationSeconds":3,"agent":"x","outcome":"connected"},"metadata":{"occurredAt":"` + when + `","actor":"user:ana","schemaVersion":1}}`,
		`{"customerId":"` + anaID + `","type":"CustomerRegistered","event":{"name":"x"},"occurredAt":"` + when + `"}`,
		`{"identifier":{"kind":"phone","value":"+33 6 12 34 56 78"},"type":"CustomerRegistered","event":{"name":"x"},"occurredAt":"` + when + `"}`,
		`{"customerId":"` + anaID + `","type":"NoteAdded","event":{"body":"x"},"occurredAt":"` + when + `","stream":"x"}`,
		`{"customerId":"` + anaID + `","type":"NoteAdded","event":null,"occurredAt":"` + when + `"}`,
		`{"customerId":"00000000-0000-0000-0000-000000000000","type":"NoteAdded","event":{"body":"x"},"occurredAt":"` + when + `"}`,
		"{\"customerId\":\"" + anaID + "\",\"type\":\"NoteAdded\",\"event\":{\"body\":\"\xff\"}}",
		`{"customerId":"` + anaID + `","type":"NoteAdded","event":{"body":"x","Body":"y"},"occurredAt":"` + when + `"}`,
		`{"customerId":"` + anaID + `","type":"NoteAdded","event":{"body":"\ud83d"},"occurredAt":"` + when + `"}`,
		`{"type":1}`, `[]`, `null`, `{}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		row, err := importer.DecodeLine(line, importer.Defaults{Actor: "import:fuzz", Now: func() time.Time { return fuzzNow }})
		checkRow(t, row, err)
		if err == nil {
			if serr := strictjson.Check(line); serr != nil {
				t.Fatalf("accepted a line strictjson refuses: %v", serr)
			}
		}
	})
}

// fuzzMapping maps every kind of conversion.
var fuzzMapping = importer.Mapping{
	Identifier: &importer.IdentifierColumn{KindColumn: "kind", Column: "id"},
	TypeColumn: "type", OccurredAt: "at", Channel: "channel",
	Fields: []importer.FieldMapping{
		{Field: "orderId", Column: "order"},
		{Field: "amount", Column: "amount", As: "amount"},
		{Field: "currency", Column: "currency"},
		{Field: "lines[0].sku", Column: "sku"},
		{Field: "lines[0].quantity", Column: "qty", As: "int"},
		{Field: "lines[0].unitAmount", Column: "amount", As: "amount"},
		{Field: "body", Column: "body"},
		{Field: "nps", Column: "nps", As: "number"},
		{Field: "firstResponse", Column: "flag", As: "bool"},
		{Field: "attendees", Column: "json", As: "json"},
	},
}

const fuzzHeader = "kind,id,type,at,channel,order,amount,currency,sku,qty,body,nps,flag,json"

// FuzzCSVRecord: the CSV row decoder never panics, fails only with
// ErrInvalid or ErrUnknownType, and accepts only valid rows.
func FuzzCSVRecord(f *testing.F) {
	for _, s := range []string{
		"email,zoe@example.fr,PurchaseCompleted,2025-03-14T09:26:53Z,web," + orderID + ",129.90,EUR,SNK,1,,,,",
		"phone,+33 6 12 34 56 78,NoteAdded,2025-03-14T09:26:53Z,,,,,,,\"Hello, world\",,,",
		"external,shopify:81723,SurveyAnswered,2025-03-14T09:26:53+01:00,,,,,,,,9,,",
		"email,zoe@example.fr,MeetingHeld,2025-03-14T09:26:53Z,,,,,,,,,,\"[\"\"a\"\"]\"",
		"email,zoe@example.fr,PurchaseCompleted,2025-03-14T09:26:53Z,web," + orderID + ",1e3,EUR,SNK,1,,,,",
		"email,zoe@example.fr,PurchaseCompleted,2025-03-14T09:26:53Z,web," + orderID + ",-1,XXX,SNK,x,,,,",
		"fax,1,NoteAdded,,,,,,,,,,,",
		"email,zoe@example.fr,NoteAdded,2025-03-14T09:26:53Z,,,,,,,\xff,,,",
		"email,zoe@example.fr,TicketUpdated,2025-03-14T09:26:53Z,,,,,,,,,maybe,",
		"a,b",
	} {
		f.Add(s)
	}
	header := strings.Split(fuzzHeader, ",")
	dec, err := fuzzMapping.Compile(header)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r := csv.NewReader(strings.NewReader(line))
		r.FieldsPerRecord = -1
		rec, err := r.Read()
		if err != nil {
			return // not one CSV record: the reader's business, not the decoder's
		}
		row, err := dec.Decode(rec, importer.Defaults{Actor: "import:fuzz", Now: func() time.Time { return fuzzNow }})
		checkRow(t, row, err)
	})
}

// TestCSVJSONCellIsStrict: a "json" cell is outside JSON like an NDJSON
// line: a lone surrogate escape or a repeated key is refused, naming the
// column, instead of being decoded into U+FFFD or a last-wins value.
func TestCSVJSONCellIsStrict(t *testing.T) {
	dec, err := fuzzMapping.Compile(strings.Split(fuzzHeader, ","))
	if err != nil {
		t.Fatal(err)
	}
	for cell, reason := range map[string]string{
		`["Ana\ud800"]`:         "unpaired surrogate",
		`[{"a":1,"a":2}]`:       "duplicate key",
		`{"name":"x","Name":1}`: "differ only in case",
	} {
		rec := strings.Split("email,zoe@example.fr,MeetingHeld,2025-03-14T09:26:53Z,,,,,,,,,,", ",")
		rec[len(rec)-1] = cell
		_, err := dec.Decode(rec, importer.Defaults{Actor: "import:test", Now: func() time.Time { return fuzzNow }})
		if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), reason) {
			t.Errorf("cell %s: error %v, want one mentioning %q", cell, err, reason)
		}
	}
}
