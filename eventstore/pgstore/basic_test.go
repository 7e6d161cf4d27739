package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
)

func TestAppendReadRoundTrip(t *testing.T) {
	t.Parallel()
	s := openStore(t, "", pgstore.Options{})
	ctx := context.Background()
	stream := customerStream()
	in := events(3)
	in[1].Metadata.OccurredAt = time.Time{} // stored as NULL, read back as zero
	in[2].Data = []byte(`{ "b":1,  "a" : [1.50, "\u00e9"] }`)
	res, err := s.Append(ctx, stream, eventstore.NoStream, in...)
	if err != nil {
		t.Fatal(err)
	}
	if res != (eventstore.AppendResult{Version: 2, Position: 3}) {
		t.Fatalf("append result %+v, want version 2 position 3", res)
	}
	got, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	for i, r := range got {
		if !eventstore.SameEvent(r, in[i]) || r.Version != uint64(i) || r.Position != uint64(i+1) || r.Stream != stream {
			t.Errorf("event %d: got %+v, want %+v", i, r, in[i])
		}
		if r.RecordedAt.Location() != time.UTC || r.RecordedAt.Nanosecond()%1000 != 0 {
			t.Errorf("event %d: RecordedAt %v not UTC microseconds", i, r.RecordedAt)
		}
	}
	if string(got[2].Data) != string(in[2].Data) {
		t.Errorf("data not byte for byte: %q", got[2].Data)
	}
	if !got[1].Metadata.OccurredAt.IsZero() {
		t.Errorf("zero OccurredAt read back as %v", got[1].Metadata.OccurredAt)
	}

	// Idempotent retry, conflict, duplicate.
	again, err := s.Append(ctx, stream, eventstore.NoStream, in...)
	if err != nil || again != res {
		t.Fatalf("retry: %+v, %v; want %+v", again, err, res)
	}
	_, err = s.Append(ctx, stream, eventstore.Exact(0), touchpoint(9))
	var conflict *eventstore.VersionConflictError
	if !errors.As(err, &conflict) || conflict.Actual != 2 {
		t.Fatalf("conflict: %v", err)
	}
	_, err = s.Append(ctx, customerStream(), eventstore.Any, in[0])
	if !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.ReadStream(ctx, customerStream(), eventstore.ReadStreamOptions{}); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
	back, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true, Limit: 2})
	if err != nil || len(back) != 2 || back[0].Version != 2 || back[1].Version != 1 {
		t.Fatalf("backwards: %v %+v", err, back)
	}
	head, err := s.Head(ctx)
	if err != nil || head != 3 {
		t.Fatalf("head %d, %v", head, err)
	}
}
