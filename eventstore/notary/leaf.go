package notary

import (
	"encoding/binary"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/eventstore"
)

// formatTag opens every canonical encoding; a future encoding gets another.
const formatTag = "cxledger/event/v1"

// Encode appends the canonical encoding of r (see the package documentation)
// to dst and returns the extended slice. r.Position is not encoded.
func Encode(dst []byte, r eventstore.Record) []byte {
	m := r.Metadata
	dst = appendBytes(dst, formatTag)
	dst = append(dst, r.ID[:]...)
	dst = appendBytes(dst, r.Stream)
	dst = binary.BigEndian.AppendUint64(dst, r.Version)
	dst = appendBytes(dst, r.Type)
	dst = appendTime(dst, r.RecordedAt)
	dst = appendTime(dst, m.OccurredAt)
	dst = appendBytes(dst, m.Actor)
	dst = appendBytes(dst, m.Channel)
	dst = appendBytes(dst, m.CorrelationID)
	dst = appendBytes(dst, m.CausationID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(int64(m.SchemaVersion)))
	dst = appendBytes(dst, r.Data)
	return dst
}

// LeafHash returns the Merkle leaf hash of r: SHA-256 of 0x00 and the
// canonical encoding (tlog.RecordHash of Encode).
func LeafHash(r eventstore.Record) tlog.Hash {
	return tlog.RecordHash(Encode(make([]byte, 0, encodedSize(r)), r))
}

func encodedSize(r eventstore.Record) int {
	m := r.Metadata
	// tag, id, nine 8-byte fields (lengths, version, schema), two times
	const fixed = 8 + len(formatTag) + 16 + 9*8 + 2*16
	return fixed + len(r.Stream) + len(r.Type) + len(m.Actor) + len(m.Channel) +
		len(m.CorrelationID) + len(m.CausationID) + len(r.Data)
}

func appendBytes[T string | []byte](dst []byte, b T) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Unix()))
	return binary.BigEndian.AppendUint64(dst, uint64(t.Nanosecond()/1000))
}
