package timeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

// StreamReader reads a stream of the event log (eventstore.Store).
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
}

// FromLog reads a page's events from the log: one read per run of
// versions (gaps of up to readThrough versions are read through, since one
// read of a few more events costs less than another round trip), so a page
// of a history in occurred-at order, which is version order unless events
// were imported late, is one read.
func FromLog(log StreamReader) Events { return logEvents{log} }

// readThrough is the widest gap between two versions of a page read in
// one ReadStream call.
const readThrough = 16

type logEvents struct{ log StreamReader }

// Events implements Events.
func (l logEvents) Events(ctx context.Context, stream string, versions []uint64) ([]domain.Envelope, error) {
	out := make([]domain.Envelope, 0, len(versions))
	for i := 0; i < len(versions); {
		j := i + 1
		for j < len(versions) && versions[j]-versions[j-1] <= readThrough {
			j++
		}
		// versions[i:j] is one run, read from its first to its last
		// version, in as many reads as the store's page size needs.
		next, want := versions[i], versions[i:j]
		for len(want) > 0 {
			recs, err := l.log.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: next, Limit: int(want[len(want)-1] - next + 1)})
			if err != nil && !errors.Is(err, eventstore.ErrNotFound) {
				return nil, fmt.Errorf("read %s from version %d: %w", stream, next, err)
			}
			if len(recs) == 0 {
				return nil, fmt.Errorf("read %s: no event at version %d", stream, want[0])
			}
			for _, rec := range recs {
				if len(want) == 0 || rec.Version > want[len(want)-1] {
					break
				}
				if rec.Version != want[0] {
					continue // read through a gap
				}
				e, err := projections.Envelope(rec)
				if err != nil {
					return nil, err
				}
				out, want = append(out, e), want[1:]
			}
			if len(want) > 0 && recs[len(recs)-1].Version >= want[0] {
				return nil, fmt.Errorf("read %s: no event at version %d", stream, want[0])
			}
			next = recs[len(recs)-1].Version + 1
		}
		i = j
	}
	return out, nil
}

// History reads a page's events from events in memory (a customer's
// combined history after merges, a test's log), by stream and version.
func History(events []domain.Envelope) Events {
	h := history{}
	for _, e := range events {
		h[streamVersion{e.Stream, e.Version}] = e
	}
	return h
}

type streamVersion struct {
	stream  string
	version uint64
}

type history map[streamVersion]domain.Envelope

// Events implements Events.
func (h history) Events(_ context.Context, stream string, versions []uint64) ([]domain.Envelope, error) {
	out := make([]domain.Envelope, 0, len(versions))
	for _, v := range versions {
		e, ok := h[streamVersion{stream, v}]
		if !ok {
			return nil, fmt.Errorf("no event of %s at version %d", stream, v)
		}
		out = append(out, e)
	}
	return out, nil
}
