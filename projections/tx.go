package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"reflect"
	"strings"

	// Decoding with encoding/json's semantics, several times faster: a
	// replay decodes read-model values on every batch. Encoding stays
	// with encoding/json, whose output (omitzero included) is what is
	// stored.
	storedjson "github.com/segmentio/encoding/json"
)

// Tx is a projection's unit of work for one batch of events. It reads and
// writes the read model through a cache of decoded objects: an object is
// decoded once, mutated in place by every event of the batch that touches
// it, and encoded once when the batch commits. A Tx is valid only during
// the Apply call it is passed to.
type Tx struct {
	ctx   context.Context
	w     Writer
	cache *objectCache
	dirty map[string]struct{}
	batch map[string]any // BatchState
}

// entry is one cached read-model object: a pointer to its decoded value,
// or absent (a miss or a delete, remembered so it is not read again), or,
// in a complete cache, stored but not held (val nil, absent false: read it
// from the backend).
type entry struct {
	val    any // *T
	absent bool
	// base is what the Tx's writer holds at the key, as far as the cache
	// knows (baseUnknown, baseAbsent, or basePresent with sum the hash of
	// the stored bytes). Load marks an object changed whether or not the
	// projection changes it, and a projection recomputing derived records
	// (the duplicates read model's pairs) deletes and puts them again
	// unchanged; base lets the batch skip storing what is already stored
	// (bbolt's write transaction, one at a time, was a third of a
	// replay's CPU; skipping took an eleven-model replay of 200,000 events
	// from 10.0 to 9.05 s of CPU).
	base uint8
	sum  [2]uint64
}

// States of entry.base.
const (
	baseUnknown = iota
	baseAbsent
	basePresent
)

// sumSeeds are two hash seeds: a value's sum is 128 bits, so that two
// different values share one by chance with probability 2^-128.
var sumSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func sumOf(b []byte) [2]uint64 {
	return [2]uint64{maphash.Bytes(sumSeeds[0], b), maphash.Bytes(sumSeeds[1], b)}
}

// objectCache holds decoded objects across batches. It is safe only because
// one runner is the sole writer of its namespace; it is dropped whenever a
// batch fails, since the objects may then hold uncommitted changes.
//
// A cache is complete when it knows every key of its namespace: the runner
// started it on an empty namespace (checkpoint 0) and it has never
// forgotten a key since. Then a key it does not know is absent without
// asking the backend. A build from position 0 looks up every object
// before creating it (about one miss per new object: 217,000 per million
// events for the customer 360 view alone), each a round trip on
// PostgreSQL. A complete cache that grows past its limit drops the values
// but keeps the keys, and gives up completeness only past
// completeKeysFactor times its limit. Its fenced commits guarantee nobody
// else writes the namespace meanwhile: a Commit fails unless the checkpoint
// is still the one the runner last committed.
type objectCache struct {
	m        map[string]*entry
	limit    int
	complete bool
	// touched lists the keys given a value or made absent since a
	// complete cache last dropped values: what the next drop visits, so
	// that its cost follows the batch's work, not the keys remembered.
	touchedKeys []string
}

// set stores e at key.
func (c *objectCache) set(key string, e *entry) {
	c.m[key] = e
	c.touched(key)
}

// touched notes that key's entry now holds a value or an absence.
func (c *objectCache) touched(key string) {
	if c.complete {
		c.touchedKeys = append(c.touchedKeys, key)
	}
}

// completeKeysFactor bounds the keys a complete cache remembers after
// dropping their values, as a multiple of its limit. The keys are live
// heap: at 25 (the first choice) an eleven-model replay of a million
// events kept up to 500,000 keys per read model, its heap reached the
// replay's memory limit and the collector ran without pause (74 s, 115 s
// of CPU); at 5, 58 s and 81 s. A cache past the bound forgets its keys
// and reads misses from the backend again.
const completeKeysFactor = 5

func newObjectCache(limit int) *objectCache {
	return &objectCache{m: make(map[string]*entry), limit: limit}
}

// reset forgets everything, completeness included.
func (c *objectCache) reset() {
	clear(c.m)
	c.complete = false
	c.touchedKeys = nil
}

// newTx starts a unit of work over w.
func newTx(ctx context.Context, w Writer, cache *objectCache) *Tx {
	if cache == nil {
		cache = newObjectCache(0)
	}
	return &Tx{ctx: ctx, w: w, cache: cache, dirty: make(map[string]struct{})}
}

// BatchState returns the projection's value of type T for this batch under
// key, a new zero value on first use: what an Apply leaves for the batch's
// Finish (BatchFinisher). It is never stored, and is gone with the batch.
func BatchState[T any](tx *Tx, key string) *T {
	if v, ok := tx.batch[key].(*T); ok {
		return v
	}
	if tx.batch == nil {
		tx.batch = map[string]any{}
	}
	v := new(T)
	tx.batch[key] = v
	return v
}

// Context returns the batch's context.
func (tx *Tx) Context() context.Context { return tx.ctx }

func (tx *Tx) lookup(key string, typ reflect.Type) (*entry, error) {
	e, ok := tx.cache.m[key]
	switch {
	case ok && (e.absent || e.val != nil):
		if !e.absent && reflect.TypeOf(e.val).Elem() != typ {
			return nil, fmt.Errorf("read model key %q holds %s, not %s", key, reflect.TypeOf(e.val).Elem(), typ)
		}
		return e, nil
	case !ok && tx.cache.complete:
		e = &entry{absent: true, base: baseAbsent}
		tx.cache.set(key, e)
		return e, nil
	}
	raw, ok, err := tx.w.Get(tx.ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", key, err)
	}
	e = &entry{absent: !ok, base: baseAbsent}
	if ok {
		e.base, e.sum = basePresent, sumOf(raw)
		v := reflect.New(typ)
		if err := storedjson.Unmarshal(raw, v.Interface()); err != nil {
			return nil, fmt.Errorf("decode %q as %s: %w", key, typ, err)
		}
		e.val = v.Interface()
	}
	tx.cache.set(key, e)
	return e, nil
}

// Load returns the object at key for reading and changing: a pointer to
// the stored value, or to a new zero value when there is none. Whatever the
// projection changes through the pointer is written when the batch commits.
func Load[T any](tx *Tx, key string) (*T, error) {
	e, err := tx.lookup(key, reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	if e.absent {
		e.val, e.absent = new(T), false
		tx.cache.touched(key)
	}
	tx.dirty[key] = struct{}{}
	return e.val.(*T), nil
}

// Get returns a copy of the object at key, and whether there is one,
// without marking it changed. The copy is shallow: do not modify maps or
// slices inside it.
func Get[T any](tx *Tx, key string) (T, bool, error) {
	var zero T
	e, err := tx.lookup(key, reflect.TypeFor[T]())
	if err != nil || e.absent {
		return zero, false, err
	}
	return *e.val.(*T), true, nil
}

// Put replaces the object at key with v.
func Put[T any](tx *Tx, key string, v T) error {
	p := new(T)
	*p = v
	if e, ok := tx.cache.m[key]; ok {
		if e.val == nil {
			tx.cache.touched(key)
		}
		e.val, e.absent = p, false
	} else {
		tx.cache.set(key, &entry{val: p, base: tx.newBase()})
	}
	tx.dirty[key] = struct{}{}
	return nil
}

// newBase is the base of a key the cache has no entry for: absent in a
// complete cache, unknown otherwise.
func (tx *Tx) newBase() uint8 {
	if tx.cache.complete {
		return baseAbsent
	}
	return baseUnknown
}

// Delete removes the object at key.
func (tx *Tx) Delete(key string) {
	if e, ok := tx.cache.m[key]; ok {
		e.val, e.absent = nil, true
		tx.cache.touched(key)
	} else {
		tx.cache.set(key, &entry{absent: true, base: tx.newBase()})
	}
	tx.dirty[key] = struct{}{}
}

// Scan reads the read model in key order (see Reader.Scan), including
// this batch's changes.
func (tx *Tx) Scan(prefix, after string, fn func(key string, value []byte) (bool, error)) error {
	// Write this batch's changes under prefix so the scan sees them, but
	// keep them marked: a pointer from Load may still be changed after the
	// scan, and the final flush must write that too.
	if err := tx.write(func(key string) bool { return strings.HasPrefix(key, prefix) }); err != nil {
		return err
	}
	return tx.w.Scan(tx.ctx, prefix, after, fn)
}

// flush writes every changed object to the backend transaction.
func (tx *Tx) flush() error {
	if err := tx.write(nil); err != nil {
		return err
	}
	clear(tx.dirty)
	return nil
}

// write writes the changed objects whose key passes keep (nil: all).
func (tx *Tx) write(keep func(string) bool) error {
	for key := range tx.dirty {
		if keep != nil && !keep(key) {
			continue
		}
		e := tx.cache.m[key]
		if e.absent {
			if e.base == baseAbsent {
				continue // nothing stored to delete
			}
			if err := tx.w.Delete(tx.ctx, key); err != nil {
				return fmt.Errorf("delete %q: %w", key, err)
			}
			e.base = baseAbsent
			continue
		}
		var raw []byte
		var err error
		if a, ok := e.val.(JSONAppender); ok {
			raw, err = a.AppendJSON(nil)
		} else {
			raw, err = json.Marshal(e.val)
		}
		if err != nil {
			return fmt.Errorf("encode %q: %w", key, err)
		}
		sum := sumOf(raw)
		if e.base == basePresent && e.sum == sum {
			continue // stored already, byte for byte
		}
		if err := tx.w.Put(tx.ctx, key, raw); err != nil {
			return fmt.Errorf("write %q: %w", key, err)
		}
		e.base, e.sum = basePresent, sum
	}
	return nil
}

// JSONAppender is a read-model value that encodes itself without
// reflection. Tx uses it instead of encoding/json when a batch commits; its
// output must be what encoding/json.Marshal gives for the value, so that
// reads (which decode with encoding/json) and stored bytes do not depend on
// which encoder wrote them. For values written once per event (the
// timeline's), where reflection dominated a replay's encoding.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// done ends the batch: a cache grown past its limit is emptied, so memory
// stays bounded during a replay of a large customer base; a complete one
// keeps the keys of stored objects (see objectCache).
func (c *objectCache) done() {
	switch {
	case c.limit <= 0:
	case !c.complete:
		if len(c.m) > c.limit {
			c.reset()
		}
	case len(c.m) > completeKeysFactor*c.limit:
		c.reset()
	case len(c.touchedKeys) > c.limit:
		for _, k := range c.touchedKeys {
			if e := c.m[k]; e == nil {
				continue
			} else if e.absent {
				delete(c.m, k) // a complete cache knows it is absent anyway
			} else {
				e.val = nil
			}
		}
		c.touchedKeys = c.touchedKeys[:0]
	}
}

// Read decodes the value at key from a Reader (the query side).
func Read[T any](ctx context.Context, r Reader, key string) (T, bool, error) {
	var v T
	raw, ok, err := r.Get(ctx, key)
	if err != nil || !ok {
		return v, false, err
	}
	if err := storedjson.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("decode %q: %w", key, err)
	}
	return v, true, nil
}
