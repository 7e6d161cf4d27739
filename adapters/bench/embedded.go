package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/boltrm"
	bolt "go.etcd.io/bbolt"
)

// embedded is the bbolt backend in a scratch directory, fsync on.
type embedded struct {
	dir   string
	files atomic.Int64
}

func newEmbedded(parent string) (*embedded, error) {
	dir, err := os.MkdirTemp(parent, "cxledger-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: scratch directory: %w", err)
	}
	return &embedded{dir: dir}, nil
}

func (e *embedded) name() string { return Embedded }

func (e *embedded) close() error { return os.RemoveAll(e.dir) }

func (e *embedded) path(kind string) string {
	return filepath.Join(e.dir, fmt.Sprintf("%s-%d.db", kind, e.files.Add(1)))
}

func (e *embedded) freshStore(_ context.Context, _ int) (eventstore.Store, func() error, error) {
	path := e.path("append")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("open embedded store: %w", err)
	}
	return s, func() error {
		if err := s.Close(); err != nil {
			return err
		}
		return os.Remove(path)
	}, nil
}

// seedStore: the seeded log is the same file in both configurations; fast
// seeding skips fsync, the read side reopens it with fsync on.
func (e *embedded) seedStore(_ context.Context, fast bool) (eventstore.Store, error) {
	s, err := boltstore.Open(filepath.Join(e.dir, "ledger.db"), boltstore.Options{NoSync: fast})
	if err != nil {
		return nil, fmt.Errorf("open embedded store: %w", err)
	}
	return s, nil
}

func (e *embedded) readModels(context.Context) (projections.Backend, error) {
	b, err := boltrm.Open(filepath.Join(e.dir, boltrm.FileName), boltrm.Options{})
	if err != nil {
		return nil, fmt.Errorf("open embedded read models: %w", err)
	}
	return b, nil
}

// rawReq is one append of the raw baseline.
type rawReq struct {
	writer, events int
	done           chan error
}

// baseline is raw bbolt with the store's batching: one goroutine drains
// the waiting appends into one transaction and one fsync (group commit, at
// most boltstore.DefaultMaxBatch appends), and each event makes the three
// puts the store's layout makes (the record by position, the stream index
// entry, the event-id index entry) with a pre-encoded record.
func (e *embedded) baseline(ctx context.Context, writers, size int, d time.Duration, rec []byte) (Throughput, string, error) {
	path := e.path("raw")
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, InitialMmapSize: boltstore.DefaultInitialMmapSize, NoStatistics: true})
	if err != nil {
		return Throughput{}, "", fmt.Errorf("open raw bbolt: %w", err)
	}
	defer os.Remove(path)
	defer db.Close()
	bEvents, bStreams, bIDs := []byte("events"), []byte("streams"), []byte("ids")
	err = db.Update(func(tx *bolt.Tx) error {
		for _, n := range [][]byte{bEvents, bStreams, bIDs} {
			if _, err := tx.CreateBucket(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Throughput{}, "", fmt.Errorf("raw bbolt buckets: %w", err)
	}
	prefixes := make([][]byte, writers)
	for w := range prefixes {
		prefixes[w] = []byte(newStream() + "\x00")
	}
	versions := make([]uint64, writers)
	queue := make(chan *rawReq, boltstore.DefaultMaxBatch)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		var pos uint64
		batch := make([]*rawReq, 0, boltstore.DefaultMaxBatch)
		prev := 0
		for r := range queue {
			batch = append(batch[:0], r)
			if prev > 1 { // let the writers queue up, as the store's writer does
				runtime.Gosched()
			}
		drain:
			for len(batch) < boltstore.DefaultMaxBatch {
				select {
				case r, ok := <-queue:
					if !ok {
						break drain
					}
					batch = append(batch, r)
				default:
					break drain
				}
			}
			prev = len(batch)
			err := db.Update(func(tx *bolt.Tx) error {
				events, streams, ids := tx.Bucket(bEvents), tx.Bucket(bStreams), tx.Bucket(bIDs)
				events.FillPercent = 1.0 // append-only keys, as the store sets
				for _, r := range batch {
					for range r.events {
						pos++
						p := binary.BigEndian.AppendUint64(nil, pos)
						if err := events.Put(p, rec); err != nil {
							return err
						}
						if err := streams.Put(binary.BigEndian.AppendUint64(prefixes[r.writer], versions[r.writer]), p); err != nil {
							return err
						}
						versions[r.writer]++
						id := nextID()
						if err := ids.Put(id[:], p); err != nil {
							return err
						}
					}
				}
				return nil
			})
			for _, r := range batch {
				r.done <- err
			}
		}
	}()
	t, err := timed(ctx, writers, d, func(ctx context.Context, w int) (int, error) {
		r := &rawReq{writer: w, events: size, done: make(chan error, 1)}
		queue <- r
		return size, <-r.done
	})
	close(queue)
	<-writerDone
	return t, "raw bbolt (group commit, fsync)", err
}

// readCeiling is a plain scan of the log with every event decoded once.
func (e *embedded) readCeiling(ctx context.Context, store eventstore.Store) (int, string, error) {
	n, err := scanAndDecode(ctx, store)
	return n, "scan and decode of the log", err
}
