package script

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

// DefaultPartitionPage is ListPartitions' page size when limit is 0 or less.
const DefaultPartitionPage = 100

// ReadState returns the state of one partition of a script's read model
// ("" for an unpartitioned program), or its result when the program
// transforms or filters its state (a filtered-out result is JSON null).
// The bytes are as stored: sealed personal data is still tokens, which the
// caller reveals (adapters) before showing them.
func ReadState(ctx context.Context, r projections.Reader, partition string) (json.RawMessage, bool, error) {
	out, state := resultKey, stateKey
	if partition != "" {
		out, state = resultPrefix+partition, partPrefix+partition
	}
	for _, k := range []string{out, state} {
		b, ok, err := r.Get(ctx, k)
		if err != nil {
			return nil, false, fmt.Errorf("read state %q: %w", k, err)
		}
		if ok {
			return json.RawMessage(b), true, nil
		}
	}
	return nil, false, nil
}

// ListPartitions returns up to limit partitions (DefaultPartitionPage when
// limit ≤ 0) whose key sorts after after, in key order, with their states
// or results (as ReadState), and the cursor for the next page: "" at the
// end.
func ListPartitions(ctx context.Context, r projections.Reader, after string, limit int) ([]Partition, string, error) {
	if limit <= 0 {
		limit = DefaultPartitionPage
	}
	prefix := partPrefix
	if m, ok, err := projections.Read[meta](ctx, r, metaKey); err != nil {
		return nil, "", fmt.Errorf("list partitions: %w", err)
	} else if ok && m.Output {
		prefix = resultPrefix
	}
	start := ""
	if after != "" {
		start = prefix + after
	}
	var out []Partition
	more := false
	err := r.Scan(ctx, prefix, start, func(key string, value []byte) (bool, error) {
		if len(out) == limit {
			more = true
			return false, nil
		}
		out = append(out, Partition{Key: key[len(prefix):], State: append(json.RawMessage(nil), value...)})
		return true, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list partitions: %w", err)
	}
	next := ""
	if more {
		next = out[len(out)-1].Key
	}
	return out, next, nil
}

// errQueryDone stops a Query's subscription once it has read through to.
var errQueryDone = errors.New("query reached its end")

// queryNamespace is the in-memory namespace a Query folds into.
const queryNamespace = "query"

// Query runs p once over the events at positions from through to, both
// inclusive (to = 0: the head when the query starts), in memory: nothing
// is written to any store or read model. progress, when not nil, is
// called after every page read and once at the end. A failing handler
// gives a *ScriptError (wrapped in a *projections.ProjectionError).
func Query(ctx context.Context, src Source, p *Program, from, to uint64, progress func(Progress)) (Result, error) {
	res := Result{Partitioned: p.Partitioned()}
	head, err := src.Head(ctx)
	if err != nil {
		return res, fmt.Errorf("query %s: head: %w", p.Name(), err)
	}
	if to == 0 || to > head {
		to = head
	}
	after := uint64(0)
	if from > 0 {
		after = from - 1
	}
	mem := projections.NewMemory()
	defer mem.Close()
	proj := p.Projection(1)
	start := time.Now()
	var events int64
	applied := false
	report := func(pos uint64) {
		if progress == nil {
			return
		}
		rate := 0.0
		if s := time.Since(start).Seconds(); s > 0 {
			rate = float64(events) / s
		}
		progress(Progress{Position: pos, Head: to, Events: events, EventsPerSecond: rate})
	}
	if after < to {
		// No type filter: the subscription must deliver a record past the
		// last handled one, or it would wait live for one.
		err = src.Subscribe(ctx, eventstore.SubscribeOptions{After: after}, func(ctx context.Context, recs []eventstore.Record) error {
			batch := make([]domain.Envelope, 0, len(recs))
			done := false
			var last uint64
			for _, r := range recs {
				if r.Position > to {
					done = true
					break
				}
				last = r.Position
				if !p.Handles(r.Type) || !p.reads(r.Stream) {
					continue
				}
				env, err := projections.Envelope(r)
				if err != nil {
					return err
				}
				batch = append(batch, env)
			}
			if len(batch) > 0 {
				if err := projections.ApplyBatch(ctx, mem, queryNamespace, proj, batch); err != nil {
					return err
				}
				applied = true
			}
			events += int64(len(batch))
			if last > 0 {
				report(last)
			}
			if done || last >= to {
				return errQueryDone
			}
			return nil
		})
		if err != nil && !errors.Is(err, errQueryDone) {
			return res, fmt.Errorf("query %s: %w", p.Name(), err)
		}
	}
	report(to)
	if !applied {
		return res, nil
	}
	err = mem.View(ctx, queryNamespace, func(r projections.Reader) error {
		if !res.Partitioned {
			s, ok, err := ReadState(ctx, r, "")
			if ok {
				res.State = s
			}
			return err
		}
		after := ""
		for {
			page, next, err := ListPartitions(ctx, r, after, 1000)
			if err != nil {
				return err
			}
			res.Partitions = append(res.Partitions, page...)
			if next == "" {
				return nil
			}
			after = next
		}
	})
	if err != nil {
		return res, fmt.Errorf("query %s: %w", p.Name(), err)
	}
	return res, nil
}
