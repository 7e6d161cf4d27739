package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// overlay is the Writer an engine runner's batch applies to: it reads a
// snapshot of the namespace (a Backend.View) with the batch's own writes on
// top, and buffers those writes for the fenced Commit that follows.
//
// Why: a backend's write transaction is one at a time across every
// namespace of a backend (bbolt has a single writer), so applying and
// encoding a batch inside it left every other read model waiting while one
// folded its events (profiled in docs/replay-profile.md: three quarters of
// a full replay ran inside bbolt's write transaction, on one core). With the
// overlay the projections fold in parallel and the write transaction only
// stores finished values. Reading outside the Commit is safe because the
// Commit is fenced: it fails unless the namespace's checkpoint is still the
// one the batch started from and the lease is still held, that is unless
// nobody else wrote the namespace since the snapshot was read.
type overlay struct {
	r          Reader
	pending    map[string][]byte // key → value; nil value: deleted
	checkpoint uint64
	sorted     []KV // pending in key order, once sealed
}

func newOverlay() *overlay { return &overlay{pending: map[string][]byte{}} }

var errOverlayClosed = errors.New("projections: batch writer used outside its batch")

// Get sees the batch's writes first.
func (o *overlay) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if v, ok := o.pending[key]; ok {
		return v, v != nil, nil
	}
	if o.r == nil {
		return nil, false, errOverlayClosed
	}
	return o.r.Get(ctx, key)
}

// Scan merges the batch's writes under prefix into the snapshot's keys, in
// byte order.
func (o *overlay) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	if o.r == nil {
		return errOverlayClosed
	}
	var mine []string
	for k := range o.pending {
		if strings.HasPrefix(k, prefix) && k > after {
			mine = append(mine, k)
		}
	}
	slices.Sort(mine)
	stopped := false
	// emit passes the batch's keys below limit ("" for all) to fn.
	emit := func(limit string) error {
		for len(mine) > 0 && (limit == "" || mine[0] < limit) {
			k := mine[0]
			mine = mine[1:]
			if v := o.pending[k]; v != nil {
				more, err := fn(k, v)
				if err != nil {
					return err
				}
				if !more {
					stopped = true
					return nil
				}
			}
		}
		return nil
	}
	err := o.r.Scan(ctx, prefix, after, func(k string, v []byte) (bool, error) {
		if err := emit(k); err != nil || stopped {
			return false, err
		}
		if len(mine) > 0 && mine[0] == k {
			mine = mine[1:]
			if v = o.pending[k]; v == nil {
				return true, nil // deleted in this batch
			}
		}
		more, err := fn(k, v)
		if !more {
			stopped = true
		}
		return more, err
	})
	if err != nil || stopped {
		return err
	}
	return emit("")
}

// Put buffers value, which the caller must not change afterwards. Its only
// caller is Tx, whose values are encoding/json output: JSON by construction
// (json.Marshal checks a MarshalJSON method's output too), so only their
// UTF-8 is checked, which a MarshalJSON method could break; and a backend
// offering PutChecked need not check them again inside its write
// transaction. The JSON check was 6% of a full replay's CPU.
func (o *overlay) Put(_ context.Context, key string, value []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if !utf8.Valid(value) {
		return fmt.Errorf("value at %q is not a UTF-8 JSON document", key)
	}
	o.pending[key] = value
	return nil
}

// CheckedPutter is a Writer that can store a value its caller has already
// checked to be a UTF-8 JSON document (and its key with CheckKey) without
// checking it again: the engine checks a batch's values while folding it,
// in parallel with other read models, rather than inside a backend's write
// transaction, which is one at a time.
type CheckedPutter interface {
	PutChecked(ctx context.Context, key string, value []byte) error
}

// Delete buffers a delete.
func (o *overlay) Delete(_ context.Context, key string) error {
	o.pending[key] = nil
	return nil
}

// SetCheckpoint records the position for the Commit.
func (o *overlay) SetCheckpoint(_ context.Context, position uint64) error {
	o.checkpoint = position
	return nil
}

// KV is one write of a batch: Value nil deletes Key.
type KV struct {
	Key   string
	Value []byte
}

// SortedWriter is a Writer that takes a batch's writes at once, each key
// once and in ascending byte order, keys checked with CheckKey and values
// checked as for CheckedPutter. The engine sorts a batch while folding it,
// in parallel with other read models, so that a backend whose write
// transaction is one at a time (bbolt) neither buffers nor sorts inside
// it: that buffering and sorting was a quarter of bbolt's write
// transaction in a full replay (docs/replay-profile.md).
type SortedWriter interface {
	WriteSorted(ctx context.Context, kvs []KV) error
}

// seal sorts the batch's writes for a SortedWriter; the overlay takes no
// more writes afterwards.
func (o *overlay) seal() {
	o.sorted = make([]KV, 0, len(o.pending))
	for k, v := range o.pending {
		o.sorted = append(o.sorted, KV{Key: k, Value: v})
	}
	slices.SortFunc(o.sorted, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
}

// writeTo stores the buffered writes and the checkpoint through w: sorted,
// to a SortedWriter, when sealed; otherwise in map order (the backends'
// writers buffer and order writes themselves: boltrm sorts them for its
// B+tree).
func (o *overlay) writeTo(ctx context.Context, w Writer) error {
	if sw, ok := w.(SortedWriter); ok && o.sorted != nil {
		if err := sw.WriteSorted(ctx, o.sorted); err != nil {
			return err
		}
		return w.SetCheckpoint(ctx, o.checkpoint)
	}
	put := w.Put
	if cp, ok := w.(CheckedPutter); ok {
		put = cp.PutChecked
	}
	for k, v := range o.pending {
		var err error
		if v == nil {
			err = w.Delete(ctx, k)
		} else {
			err = put(ctx, k, v)
		}
		if err != nil {
			return err
		}
	}
	return w.SetCheckpoint(ctx, o.checkpoint)
}
