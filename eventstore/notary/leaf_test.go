package notary_test

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
)

// golden is a fixed record whose encoding and leaf hash are pinned below.
func golden() eventstore.Record {
	return eventstore.Record{
		ID:         uuid.MustParse("0b9d2f6e-3c1a-4f5e-9a7b-2d8c4e6f1a3b"),
		Stream:     "customer-7f1c2a9e-5b3d-4e8f-a1c6-9d2b7e4f0a18",
		Type:       "CallLogged",
		Version:    3,
		Position:   42,
		RecordedAt: time.Date(2026, 3, 1, 9, 30, 12, 345678000, time.UTC),
		Data:       []byte(`{"direction":"inbound","durationSeconds":754,"agent":"user:marta","note":"Zoë ✓"}`),
		Metadata: eventstore.Metadata{
			OccurredAt:    time.Date(2026, 3, 1, 9, 17, 0, 0, time.UTC),
			Actor:         "service:callcenter",
			Channel:       "phone",
			CorrelationID: "case-77",
			CausationID:   "",
			SchemaVersion: 2,
		},
	}
}

// TestGoldenLeaf pins the canonical encoding and the leaf hash of one
// record: a change to either breaks every stored tree and every auditor's
// tool, so it must never happen silently.
func TestGoldenLeaf(t *testing.T) {
	r := golden()
	// Field by field, as the package documentation describes them.
	want := concat(
		"0000000000000011", hex.EncodeToString([]byte("cxledger/event/v1")),
		"0b9d2f6e3c1a4f5e9a7b2d8c4e6f1a3b",
		"000000000000002d", hex.EncodeToString([]byte(r.Stream)),
		"0000000000000003",
		"000000000000000a", hex.EncodeToString([]byte("CallLogged")),
		"0000000069a40724", "000000000005464e", // recorded at: 2026-03-01T09:30:12Z, 345678 µs
		"0000000069a4040c", "0000000000000000", // occurred at: 2026-03-01T09:17:00Z
		"0000000000000012", hex.EncodeToString([]byte("service:callcenter")),
		"0000000000000005", hex.EncodeToString([]byte("phone")),
		"0000000000000007", hex.EncodeToString([]byte("case-77")),
		"0000000000000000",
		"0000000000000002",
		"0000000000000054", hex.EncodeToString(r.Data),
	)
	if got := hex.EncodeToString(notary.Encode(nil, r)); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	// Computed by an independent implementation of the documented format
	// (Python's struct and hashlib), not by this package.
	const wantLeaf = "7d962b852de8af5e315160963218a6b5eee990c3d27bd60ee39ab39d4dbdcf23"
	leaf := notary.LeafHash(r)
	if got := hex.EncodeToString(leaf[:]); got != wantLeaf {
		t.Fatalf("leaf hash = %s, want %s", got, wantLeaf)
	}
}

func concat(parts ...string) string {
	var b bytes.Buffer
	for _, p := range parts {
		b.WriteString(p)
	}
	return b.String()
}

// TestEncodingDistinguishes: every field counts, bytes moved from one
// field to the next change the encoding, and what is not part of it (the
// position, the time zone) does not.
func TestEncodingDistinguishes(t *testing.T) {
	base := golden()
	edits := []struct {
		name string
		edit func(r *eventstore.Record)
		same bool
	}{
		{"position", func(r *eventstore.Record) { r.Position = 7 }, true},
		{"time zone", func(r *eventstore.Record) {
			r.RecordedAt = r.RecordedAt.In(time.FixedZone("JST", 9*3600))
			r.Metadata.OccurredAt = r.Metadata.OccurredAt.In(time.FixedZone("EST", -5*3600))
		}, true},
		{"id", func(r *eventstore.Record) { r.ID[15]++ }, false},
		{"stream", func(r *eventstore.Record) { r.Stream += "x" }, false},
		{"version", func(r *eventstore.Record) { r.Version++ }, false},
		{"type", func(r *eventstore.Record) { r.Type = "CallLogge" }, false},
		{"recorded at, one microsecond", func(r *eventstore.Record) { r.RecordedAt = r.RecordedAt.Add(time.Microsecond) }, false},
		{"occurred at, zero", func(r *eventstore.Record) { r.Metadata.OccurredAt = time.Time{} }, false},
		{"actor", func(r *eventstore.Record) { r.Metadata.Actor = "service:callcentre" }, false},
		{"channel", func(r *eventstore.Record) { r.Metadata.Channel = "" }, false},
		{"correlation id", func(r *eventstore.Record) { r.Metadata.CorrelationID = "case-78" }, false},
		{"causation id", func(r *eventstore.Record) { r.Metadata.CausationID = "x" }, false},
		{"schema version", func(r *eventstore.Record) { r.Metadata.SchemaVersion = -2 }, false},
		{"data, one byte", func(r *eventstore.Record) { r.Data = bytes.Replace(r.Data, []byte("754"), []byte("755"), 1) }, false},
		{"data, white space", func(r *eventstore.Record) { r.Data = append([]byte(" "), r.Data...) }, false},
		{"a byte moved from channel to actor", func(r *eventstore.Record) {
			r.Metadata.Actor += "p"
			r.Metadata.Channel = r.Metadata.Channel[1:]
		}, false},
		{"a byte moved from stream to type", func(r *eventstore.Record) {
			r.Type = r.Stream[len(r.Stream)-1:] + r.Type
			r.Stream = r.Stream[:len(r.Stream)-1]
		}, false},
		{"correlation and causation swapped", func(r *eventstore.Record) {
			r.Metadata.CausationID, r.Metadata.CorrelationID = r.Metadata.CorrelationID, r.Metadata.CausationID
		}, false},
	}
	leaf := notary.LeafHash(base)
	for _, tc := range edits {
		t.Run(tc.name, func(t *testing.T) {
			r := golden()
			tc.edit(&r)
			if same := notary.LeafHash(r) == leaf; same != tc.same {
				t.Fatalf("leaf unchanged = %t, want %t", same, tc.same)
			}
		})
	}
}
