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
// The filter costs 1.5 bytes per key at its 1.1 % false positives
// (layers that double make it up to twice that), against the tens of
// bytes each row takes in the table: its memory is bounded by the read
// model's size. A false positive only sends that key by upsert.

// copyMinRows is the fewest new keys a flush sends by COPY: below it the
// savepoint and the COPY's own round trips cost more than they save.
const copyMinRows = 64

// keySet holds the keys a namespace's table may contain.
type keySet struct {
	// at is the checkpoint the last commit through the set left.
	at int64
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
}

// start begins the set of a namespace whose table a committed transaction
// created empty, at the checkpoint it committed.
func (f *freshKeys) start(ns string, at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sets == nil {
		f.sets = map[string]*keySet{}
	}
	f.sets[ns] = newKeySet(at)
}

// forget drops namespace ns's set: it can no longer be trusted.
func (f *freshKeys) forget(ns string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sets, ns)
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
	if s.at != cp {
		return nil
	}
	return s
}

// release gives back a set claimed by a transaction that committed and
// left checkpoint at.
func (f *freshKeys) release(ns string, s *keySet, at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.at = at
	if f.sets == nil {
		f.sets = map[string]*keySet{}
	}
	f.sets[ns] = s
}
