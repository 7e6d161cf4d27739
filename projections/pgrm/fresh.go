package pgrm

import (
	"sync"

	"github.com/bits-and-blooms/bloom/v3"
)

// A namespace's table is filled by COPY where that is certain to insert
// only new rows: COPY takes about half the server time of the upsert for
// the same rows (measured: 204,533 timeline rows into an empty table, COPY
// 440 ms, INSERT … ON CONFLICT 763 ms), and a rebuild into a fresh
// generation writes mostly keys its table has never held (483k inserts
// against 63k updates and 35k deletes over the eleven read models of a
// 200k-event replay).
//
// Which keys are new is known only to the Backend that created the table,
// empty, and has been its only writer since: it remembers, in a Bloom
// filter, every key its commits wrote there. A key the filter has never
// seen is not in the table, unless someone else wrote it; a key it may
// have seen (or a false positive) takes the upsert. The filter is trusted
// only while the namespace's checkpoint is the one its last commit left
// (every engine commit moves the checkpoint, so another writer shows); a
// COPY that meets an existing key anyway (another Backend's Update that
// left the checkpoint alone) is rolled back to its savepoint and sent as an
// upsert, and the filter is forgotten. Correctness never rests on the
// filter.
//
// The filter costs 1.5 bytes per key at its 1.1 % false positives, in
// layers that double: the first holds 2^20 keys (1.5 MiB, taken at a
// namespace's first key), so up to about three times that per key just
// after a new layer, and a key is mistaken for a present one in up to
// 1.1 % per full layer. Against the tens of bytes each row takes in the
// table, it grows with the read model's keys, not with the writes. A
// false positive only sends that key by upsert.

// copyMinRows is the fewest new keys a flush sends by COPY: below it the
// savepoint and the COPY's own round trips cost more than they save.
const copyMinRows = 64

// keySet holds the keys a namespace's table may contain.
type keySet struct {
	// at is the checkpoint the last commit through the set left.
	at int64
	// epoch is the namespace's count of Drops when the set was made.
	epoch uint64
	// layers grow as keys are added, each twice the size of the one
	// before at the same false-positive rate, so the set needs no size in
	// advance.
	layers []*bloom.BloomFilter
	n, cap uint // keys in the last layer, and what it was sized for
}

const (
	// The first layer (1.5 MiB) holds most read models whole: fewer
	// layers, fewer lookups per key.
	firstLayerKeys = 1 << 20
	// 12 bits a key and 3 hashes: 1.1 % false positives, like the 7
	// hashes of the optimum for 1 % at 9.6 bits, but 3 cache misses a key
	// where that takes 7. Adding to the set was 3.4 % of a PostgreSQL
	// replay's client CPU with 7 (profile of a 200k-event replay).
	bitsPerKey = 12
	hashes     = 3
)

func newKeySet(at int64) *keySet { return &keySet{at: at} }

// addNew adds key unless the set may hold it already: keys sent twice
// must not fill the layers twice.
func (s *keySet) addNew(key string) {
	if !s.mayHold(key) {
		s.add(key)
	}
}

func (s *keySet) add(key string) {
	if len(s.layers) == 0 || s.n >= s.cap {
		s.cap = max(firstLayerKeys, 2*s.cap)
		s.layers = append(s.layers, bloom.New(bitsPerKey*s.cap, hashes))
		s.n = 0
	}
	s.layers[len(s.layers)-1].AddString(key)
	s.n++
}

// mayHold reports whether key may be in the table.
func (s *keySet) mayHold(key string) bool {
	for _, l := range s.layers {
		if l.TestString(key) {
			return true
		}
	}
	return false
}

// freshKeys is a Backend's key sets, by namespace.
type freshKeys struct {
	mu   sync.Mutex
	sets map[string]*keySet
	// drops counts each namespace's Drops: a set claimed before a Drop
	// is not given back after it (the transaction holding it may end
	// after the Drop, and the namespace is gone or another table now).
	drops map[string]uint64
}

// newSet returns a set for a namespace whose table the caller's
// transaction is creating empty, to be given back with release.
func (f *freshKeys) newSet(ns string) *keySet {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := newKeySet(0)
	s.epoch = f.drops[ns]
	return s
}

// forget drops namespace ns's set, and any set claimed of it now, for
// good: the namespace is being dropped.
func (f *freshKeys) forget(ns string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sets, ns)
	if f.drops == nil {
		f.drops = map[string]uint64{}
	}
	f.drops[ns]++
}

// claim returns ns's set for a transaction that holds the namespace's row
// and read its checkpoint cp, or nil when there is none or it cannot be
// trusted (it is then forgotten). Only the namespace's row lock orders two
// transactions of one namespace, so the set stays claimed, and other
// transactions of ns in this Backend find none, until release.
func (f *freshKeys) claim(ns string, cp int64) *keySet {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sets[ns]
	if s == nil {
		return nil
	}
	delete(f.sets, ns)
	if s.at != cp || s.epoch != f.drops[ns] {
		return nil
	}
	return s
}

// release gives back a set claimed (or made by newSet) by a transaction
// that ended leaving checkpoint at, unless the namespace was dropped since.
func (f *freshKeys) release(ns string, s *keySet, at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.epoch != f.drops[ns] {
		return
	}
	s.at = at
	if f.sets == nil {
		f.sets = map[string]*keySet{}
	}
	f.sets[ns] = s
}
