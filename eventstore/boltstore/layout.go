package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// On-disk layout: one bbolt file with four top-level buckets.
//
//	events  8-byte big-endian global position → event record (record.go).
//	        Positions are gapless from 1, so the bucket's key order is the
//	        log order and ReadAll is one cursor walk.
//	streams stream key (below) → 8-byte big-endian global position: the
//	        per-stream index. One stream's keys are contiguous and ordered
//	        by version, so ReadStream is a cursor walk either way, and the
//	        stream's current version is its last key: one Seek and Prev.
//	ids     16-byte event id → 8-byte big-endian global position: the
//	        idempotency and duplicate check.
//	meta    "format" → one byte, the layout version, checked on Open.
//
// Three more buckets, tree_hashes, tree_leaves and tree_positions, hold the
// Merkle tree over the log kept by eventstore/notary (see merkle.go). They
// are created by the first AppendLeaves, so a file without them is of the
// same layout version, and the event buckets never depend on them.
//
// A stream key is the stream name's length (2 bytes, big-endian), the name,
// and the version (8 bytes, big-endian). The length prefix makes one
// stream's keys a contiguous range that no other stream's keys can enter,
// whatever bytes the names hold (a NUL separator would not: the contract
// allows NUL in names, and "a" + NUL would prefix the keys of stream "a\x00b").
// There is no separate stream-head bucket: deriving the head from the index
// costs a cursor step, while maintaining it would dirty one more B+tree page
// per stream per commit, and with fsync on, the pages a commit writes are its
// cost.
//
// A flat index beats a nested bucket per stream here: most customer streams
// are short, and a bucket per stream costs a bucket header and a page-tree
// root per stream and a bucket lookup per access.
var (
	bucketEvents  = []byte("events")
	bucketStreams = []byte("streams")
	bucketIDs     = []byte("ids")
	bucketMeta    = []byte("meta")

	keyFormat = []byte("format")
)

// layoutVersion is stored under meta/format. Open refuses files of another
// version instead of misreading them.
const layoutVersion = 1

// eventsFillPercent: positions only ever grow, so pages of the events bucket
// are never split by a later insert in their middle; packing them full keeps
// the file small and replay reading fewer pages.
const eventsFillPercent = 1.0

// maxContractStreamLen is the contract's cap on stream names
// (eventstore.ValidateAppend): no longer name has events.
const maxContractStreamLen = 512

// buckets are the top-level buckets of one transaction.
type buckets struct {
	events, streams, ids *bolt.Bucket
}

func openBuckets(tx *bolt.Tx) (buckets, error) {
	b := buckets{
		events:  tx.Bucket(bucketEvents),
		streams: tx.Bucket(bucketStreams),
		ids:     tx.Bucket(bucketIDs),
	}
	if b.events == nil || b.streams == nil || b.ids == nil {
		return buckets{}, fmt.Errorf("%w: missing bucket", ErrCorrupt)
	}
	if tx.Writable() {
		b.events.FillPercent = eventsFillPercent
	}
	return b, nil
}

// appendU64 appends v as 8 big-endian bytes: the key encoding whose byte
// order is numeric order.
func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// u64 decodes an 8-byte big-endian value.
func u64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %d-byte integer, want 8", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// appendStreamPrefix appends the part of a stream key shared by all of the
// stream's versions.
func appendStreamPrefix(dst []byte, stream string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(stream)))
	return append(dst, stream...)
}

// streamVersion returns the version of the last event of the stream whose
// key prefix is prefix, or -1 when it has none, using c, a cursor of the
// streams bucket.
func streamVersion(c *bolt.Cursor, prefix []byte) (int64, error) {
	var seek [2 + maxContractStreamLen + 8]byte
	end := append(append(seek[:0], prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	// No version reaches 2^64-1, so nothing sits at end: Seek stops at the
	// next stream's first key (or past the last key), one step after ours.
	k, _ := c.Seek(end)
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if k == nil || len(k) != len(prefix)+8 || !bytes.HasPrefix(k, prefix) {
		return -1, nil
	}
	v := binary.BigEndian.Uint64(k[len(prefix):])
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%w: stream version %d out of range", ErrCorrupt, v)
	}
	return int64(v), nil
}
