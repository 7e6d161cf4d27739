package ledger

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/cxledger/cxledger/domain"
	"github.com/google/uuid"
)

// CacheConfig bounds the Service's cache of folded histories. With it, an
// append reads only the events its customer's stream gained since the
// Service last saw it, instead of the whole stream.
//
// Both limits count what the memory is made of: an entry per customer,
// and per cached event one event id (kept for the idempotent-retry check)
// plus at most one entry in the aggregate's maps and lists. The least
// recently used customers are evicted first; a customer with more than
// Events events is not cached at all.
type CacheConfig struct {
	// Streams is the most customers whose histories are kept. 0 (or less)
	// disables the cache.
	Streams int
	// Events is the most events kept, summed over all cached customers. 0
	// (or less) disables the cache.
	Events int
}

// DefaultCache is the cache New gives a Service: room for the hot customers
// of a busy node in at most about 60 MB. A cached event costs its id plus
// its share of the aggregate's state: measured 43 bytes for a realistic mix
// of tickets, orders, refunds and interactions, 113 when every event is a
// new order (the worst case: each one adds an aggregate entry).
var DefaultCache = CacheConfig{Streams: 10_000, Events: 500_000}

func (c CacheConfig) enabled() bool { return c.Streams > 0 && c.Events > 0 }

// CacheStats describes the cache of folded histories at one moment.
type CacheStats struct {
	// Streams and Events are what the cache holds now.
	Streams, Events int
	// Hits and Misses count appends that found their customer cached or
	// not (a miss folds the whole stream); Evictions counts customers
	// dropped to stay within the bounds.
	Hits, Misses, Evictions uint64
}

// cache is an LRU of folded histories, one entry per stream.
//
// Locking: mu guards the map, the list and every entry's elem and size,
// and is only ever held for a few map and list operations. Each entry's
// history is guarded by the entry's own lock, which an append holds across
// read, decide and append: appends to one customer queue behind each other
// (they would conflict anyway), appends to different customers never wait
// for each other's I/O. An entry's lock is never taken while holding mu.
type cache struct {
	cfg CacheConfig

	mu      sync.Mutex
	entries map[string]*list.Element // stream -> element holding *entry
	lru     list.List                // front: most recently used
	events  int                      // sum of the entries' sizes
	stats   CacheStats
}

// entry is the folded history of one stream: always a prefix of the
// stream as stored (versions 0 to version), never anything undecided.
type entry struct {
	stream string
	// lock is a one-slot semaphore rather than a sync.Mutex so that
	// waiting for it honours the append's context.
	lock chan struct{}

	// Guarded by lock.
	customer *domain.Customer
	version  int64                  // -1: no events
	ids      map[uuid.UUID]struct{} // every event id up to version

	// Guarded by cache.mu.
	elem *list.Element // nil once evicted (or never cached)
	size int           // events counted against cfg.Events
}

func newCache(cfg CacheConfig) *cache {
	if !cfg.enabled() {
		return nil
	}
	return &cache{cfg: cfg, entries: make(map[string]*list.Element)}
}

func newEntry(stream string, customer uuid.UUID) *entry {
	return &entry{stream: stream, lock: make(chan struct{}, 1), customer: domain.NewCustomer(customer), version: -1}
}

// acquire returns stream's entry, locked: the cached one, or an empty one
// (which the caller folds from the stream's first event). A nil cache
// hands out a fresh entry every time, which makes every append fold the
// whole stream, as without a cache.
func (c *cache) acquire(ctx context.Context, stream string, customer uuid.UUID) (*entry, error) {
	var e *entry
	if c == nil {
		e = newEntry(stream, customer)
	} else {
		c.mu.Lock()
		if el, ok := c.entries[stream]; ok {
			e = el.Value.(*entry)
			c.lru.MoveToFront(el)
			c.stats.Hits++
		} else {
			// Cached before it is folded, so that concurrent appends to
			// this customer wait for one fold instead of each doing one.
			e = newEntry(stream, customer)
			e.elem = c.lru.PushFront(e)
			c.entries[stream] = e.elem
			c.stats.Misses++
			c.evictLocked()
		}
		c.mu.Unlock()
	}
	select {
	case e.lock <- struct{}{}:
		return e, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for %s: %w", stream, ctx.Err())
	}
}

// release unlocks an entry taken with acquire.
func (c *cache) release(e *entry) { <-e.lock }

// history returns the entry's history for one append to decide on. The
// aggregate and the ids are shared read-only: the history copies the
// aggregate before folding anything into it, and keeps new ids apart in
// its tail (copying the ids would cost as much as the read the cache
// saves).
func (e *entry) history() *history {
	h := &history{customer: e.customer, version: e.version}
	if len(e.ids) > 0 {
		h.ids = e.ids
	}
	return h
}

// publish makes h, which extends e's history with events read from or
// accepted by the store, e's new history, and accounts for its size. The
// caller holds e's lock. Nothing in it can fail: the entry moves from one
// consistent state to the next.
func (c *cache) publish(e *entry, h *history) {
	if c == nil || h.version == e.version && h.ids != nil {
		return // not cached, or nothing new
	}
	if h.owned {
		e.customer = h.customer
	}
	for _, ev := range h.accepted {
		e.customer.ApplyAt(ev.Event, ev.At)
	}
	e.version = h.version
	if h.ids == nil { // folded from the first event: h.tail is every id
		e.ids = h.tail
	} else {
		for id := range h.tail {
			e.ids[id] = struct{}{}
		}
	}
	size := len(e.ids)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e.elem == nil {
		return // evicted while in use: dropped with its last user
	}
	if size > c.cfg.Events {
		// Too long to cache without evicting everything else; such a
		// customer is folded from the store on every append.
		c.removeLocked(e)
		return
	}
	c.events += size - e.size
	e.size = size
	c.lru.MoveToFront(e.elem)
	c.evictLocked()
}

// evictLocked drops least recently used entries until the cache is within
// its bounds.
func (c *cache) evictLocked() {
	for c.lru.Len() > c.cfg.Streams || c.events > c.cfg.Events {
		c.removeLocked(c.lru.Back().Value.(*entry))
		c.stats.Evictions++
	}
}

func (c *cache) removeLocked(e *entry) {
	c.lru.Remove(e.elem)
	delete(c.entries, e.stream)
	c.events -= e.size
	e.elem, e.size = nil, 0
}

func (c *cache) snapshot() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Streams, st.Events = c.lru.Len(), c.events
	return st
}
