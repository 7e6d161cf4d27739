package boltstore

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

func sampleRecord() eventstore.Record {
	return eventstore.Record{
		ID:         uuid.MustParse("0195a7d2-5c3e-7b41-9a0f-3c2d1e4f5a6b"),
		Stream:     "customer-0195a7d2-0000-7000-8000-000000000001",
		Type:       "PurchaseCompleted",
		Version:    41,
		Position:   1 << 40,
		RecordedAt: time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC),
		Data:       []byte(`{"orderId":"ord-1","lines":[{"sku":"ÉTÉ-2025","qty":2}],"emoji":"🧾"}`),
		Metadata: eventstore.Metadata{
			OccurredAt:    time.Date(2025, 3, 14, 9, 20, 0, 1000, time.UTC),
			Actor:         "user:ada",
			Channel:       "pos",
			CorrelationID: "corr-1",
			CausationID:   "cmd-7",
			SchemaVersion: -3,
		},
	}
}

func roundTrip(t *testing.T, r eventstore.Record) {
	t.Helper()
	enc := encodeRecord(nil, &r)
	v, err := decodeRecord(enc)
	if err != nil {
		t.Fatalf("decode(encode(%+v)): %v", r, err)
	}
	got := v.record(r.Position)
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip changed the record:\n got %+v\nwant %+v", got, r)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	roundTrip(t, sampleRecord())

	zero := sampleRecord()
	zero.Metadata = eventstore.Metadata{}
	zero.Version = 0
	roundTrip(t, zero) // zero OccurredAt stays the zero time

	far := sampleRecord()
	far.RecordedAt = time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC)
	far.Metadata.OccurredAt = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC) // past int64 Unix microseconds
	far.Metadata.SchemaVersion = math.MaxInt
	far.Stream = "a\x00b"
	roundTrip(t, far)
}

func TestDecodeRejectsDamage(t *testing.T) {
	r := sampleRecord()
	enc := encodeRecord(nil, &r)
	for i := range len(enc) {
		if _, err := decodeRecord(enc[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: err = %v, want ErrCorrupt", i, len(enc), err)
		}
	}
	if _, err := decodeRecord(append(bytes.Clone(enc), 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: err = %v, want ErrCorrupt", err)
	}
	bad := bytes.Clone(enc)
	bad[0] = 2
	if _, err := decodeRecord(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown format: err = %v, want ErrCorrupt", err)
	}
}

// FuzzDecodeRecord: arbitrary bytes never panic the decoder, and whatever it
// accepts re-encodes to something that decodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	r := sampleRecord()
	f.Add(encodeRecord(nil, &r))
	r.Metadata = eventstore.Metadata{}
	f.Add(encodeRecord(nil, &r))
	f.Add([]byte{recordFormatV1})
	f.Add([]byte{recordFormatV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		rec := v.record(7)
		again, err := decodeRecord(encodeRecord(nil, &rec))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if got := again.record(7); !reflect.DeepEqual(got, rec) {
			t.Fatalf("re-encoding changed the record:\n got %+v\nwant %+v", got, rec)
		}
	})
}

// FuzzRecordRoundTrip: every record the store can be asked to write comes
// back equal.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), "customer-1", "PurchaseCompleted", uint64(3), int64(1741944413), int64(589793), int64(0), int64(0), "user:a", "web", "c", 2, []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, id []byte, stream, typ string, version uint64, recSec, recUS, occSec, occUS int64, actor, channel, corr string, schema int, data []byte) {
		var u uuid.UUID
		copy(u[:], id)
		at := func(sec, us int64) time.Time {
			// Keep within the years a time.Time formats; beyond, Unix()
			// itself wraps and no encoding can help.
			sec %= 1 << 40
			us %= 1e6
			if us < 0 {
				us = -us
			}
			return time.Unix(sec, us*1000).UTC()
		}
		roundTrip(t, eventstore.Record{
			ID: u, Stream: stream, Type: typ, Version: version, Position: 9,
			RecordedAt: at(recSec, recUS), Data: append([]byte{}, data...),
			Metadata: eventstore.Metadata{OccurredAt: at(occSec, occUS), Actor: actor, Channel: channel, CorrelationID: corr, SchemaVersion: schema},
		})
	})
}
