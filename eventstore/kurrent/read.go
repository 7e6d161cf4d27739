package kurrent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/cxledger/cxledger/eventstore"
)

// collect hands each event of a read to each, until the read ends, limit
// events were received or each says stop; it returns how many events were
// received. Link events are read as the links themselves (ResolveLinkTos is
// never set).
func collect(rs *esdb.ReadStream, limit int, each func(ev *esdb.RecordedEvent) (stop bool, err error)) (received int, err error) {
	defer rs.Close()
	for {
		r, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return received, nil
		}
		if err != nil {
			return received, err
		}
		ev := r.OriginalEvent()
		if ev == nil {
			continue
		}
		received++
		stop, err := each(ev)
		if err != nil || stop {
			return received, err
		}
		if limit > 0 && received >= limit {
			return received, nil
		}
	}
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error) {
	op := fmt.Sprintf("read stream %q from %d", stream, opts.From)
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	if !opts.Backwards && opts.From > math.MaxInt64 {
		// The server takes revisions as int64: nothing is stored that far,
		// so the answer is "no events", or ErrNotFound without a stream.
		v, err := s.streamVersion(ctx, stream)
		if err != nil {
			return nil, err
		}
		if v < 0 {
			return nil, fmt.Errorf("kurrent: %s: %w", op, eventstore.ErrNotFound)
		}
		return nil, nil
	}
	recs, err := s.readStream(ctx, stream, opts.From, opts.Backwards, limit)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	if len(recs) == 0 && opts.Backwards && opts.From <= math.MaxInt64 {
		// The server reads a backward page as the revisions [From-Limit+1,
		// From]; past the end that range can be empty although the stream
		// is not. The contract starts such a read at the last event.
		if recs, err = s.readStream(ctx, stream, eventstore.FromEnd, true, limit); err != nil {
			return nil, s.fail(ctx, op, err)
		}
	}
	return recs, nil
}

func (s *Store) readStream(ctx context.Context, stream string, from uint64, backwards bool, limit int) ([]eventstore.Record, error) {
	ro := esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from)}
	if backwards {
		ro.Direction = esdb.Backwards
		if from > math.MaxInt64 {
			ro.From = esdb.End{}
		}
	}
	rs, err := s.client.ReadStream(ctx, s.serverStream(stream), ro, uint64(limit))
	if err != nil {
		return nil, err
	}
	var recs []eventstore.Record
	_, err = collect(rs, limit, func(ev *esdb.RecordedEvent) (bool, error) {
		r, err := toRecord(ev, s.opts.StreamPrefix)
		if err != nil {
			return true, err
		}
		recs = append(recs, r)
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// allChunk is how many events of $all one request reads. Filtering runs
// here (see the package documentation), so a chunk is larger than most
// pages to keep round trips few when other streams' events are skipped.
const allChunk = 512

// ReadAll implements eventstore.Store: up to opts.Limit events of the
// ledger after opts.After, in position order. After must be 0 or a position
// this store returned (a record's start in the server's log); a position
// past the last record returns no events.
//
// The server only returns committed events and positions grow in commit
// order, so nothing smaller than a position read can appear later. ReadAll
// checks that positions strictly increase, and fails rather than reorder
// if a log (written by explicit transactions of the old TCP protocol)
// interleaves them.
func (s *Store) ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error) {
	op := fmt.Sprintf("read all after %d", opts.After)
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	if opts.After > 0 {
		last, err := s.lastLogPosition(ctx)
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		if opts.After >= last {
			return nil, nil
		}
	}
	var recs []eventstore.Record
	cursor := opts.After
	chunk := max(allChunk, min(limit+1, 4*allChunk))
	for {
		rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: allPosition(cursor)}, uint64(chunk))
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		start := cursor
		var prev uint64
		received, err := collect(rs, chunk, func(ev *esdb.RecordedEvent) (bool, error) {
			g := globalPosition(ev.Position)
			if prev != 0 && g <= prev {
				return true, fmt.Errorf("$all is not ordered by prepare position: %d after %d (a log with interleaved explicit transactions cannot be read as one ordered ledger)", g, prev)
			}
			prev = g
			if g <= cursor {
				return false, nil // the inclusive start, or an earlier part of its transaction
			}
			cursor = g
			if !s.ours(ev) {
				return false, nil
			}
			r, err := toRecord(ev, s.opts.StreamPrefix)
			if err != nil {
				return true, err
			}
			if !opts.Filter.Match(r) {
				return false, nil
			}
			recs = append(recs, r)
			return len(recs) == limit, nil
		})
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		switch {
		case len(recs) == limit || received < chunk:
			return recs, nil
		case cursor == start:
			chunk *= 2 // a transaction larger than the chunk: read more of it at once
		}
	}
}

// lastLogPosition returns the global position of the last record of $all,
// system events included (0 for an empty log): a bound that needs one
// event's read.
func (s *Store) lastLogPosition(ctx context.Context) (uint64, error) {
	rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return 0, err
	}
	var last uint64
	_, err = collect(rs, 1, func(ev *esdb.RecordedEvent) (bool, error) {
		last = globalPosition(ev.Position)
		return true, nil
	})
	return last, err
}

// Head implements eventstore.Store: the position of the ledger's last event,
// found by reading $all backwards past system events and other prefixes'
// streams. On a server shared with much else, that walk is long; the
// projection engine calls Head only to report lag.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.begin(ctx, "head"); err != nil {
		return 0, err
	}
	var from esdb.AllPosition = esdb.End{}
	seen := uint64(math.MaxUint64)
	for {
		rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, allChunk)
		if err != nil {
			return 0, s.fail(ctx, "head", err)
		}
		var head uint64
		var lastPos esdb.Position
		received, err := collect(rs, allChunk, func(ev *esdb.RecordedEvent) (bool, error) {
			g := globalPosition(ev.Position)
			if g >= seen {
				return false, nil
			}
			seen, lastPos = g, ev.Position
			if s.ours(ev) {
				head = g
				return true, nil
			}
			return false, nil
		})
		switch {
		case err != nil:
			return 0, s.fail(ctx, "head", err)
		case head > 0:
			return head, nil
		case received < allChunk:
			return 0, nil
		}
		from = lastPos
	}
}

// Subscribe implements eventstore.Store with eventstore.Follow over
// ReadAll, woken by this store's appends and by a live subscription to $all
// with a server-side filter (so other processes' appends wake it too).
func (s *Store) Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error {
	if err := s.begin(ctx, "subscribe"); err != nil {
		return err
	}
	s.wakerOnce.Do(s.startWaker)
	return eventstore.Follow(ctx, eventstore.FollowConfig{
		Read:   s.ReadAll,
		Wake:   &s.wake,
		Closed: s.closed,
		Poll:   s.opts.Poll,
	}, opts, handle)
}

// subscriptionFilter is the server-side filter of the live subscription:
// the store's prefix, or every non-system event.
func subscriptionFilter(prefix string) *esdb.SubscriptionFilter {
	if prefix != "" {
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix}}
	}
	return esdb.ExcludeSystemEventsFilter()
}

// startWaker runs the live subscription until Close, reconnecting after a
// drop; while it is down, Options.Poll keeps subscribers moving.
func (s *Store) startWaker() {
	ctx, cancel := context.WithCancel(context.Background())
	s.wakerStop = cancel
	go func() {
		defer close(s.wakerDone)
		filter := subscriptionFilter(s.opts.StreamPrefix)
		for ctx.Err() == nil {
			sub, err := s.client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.End{}, Filter: filter})
			if err == nil {
				s.wake.Notify() // anything committed while it was down
				for {
					ev := sub.Recv()
					if ev.SubscriptionDropped != nil {
						break
					}
					if ev.EventAppeared != nil {
						s.wake.Notify()
					}
				}
				_ = sub.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
}
