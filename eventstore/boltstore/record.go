package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

// ErrCorrupt is wrapped by every error about stored bytes that cannot be
// decoded: a damaged data file, or one written by a newer, incompatible
// version of cxledger.
var ErrCorrupt = errors.New("corrupt data file")

// recordFormatV1 is the leading byte of every stored event value. A new
// encoding gets a new byte, and the decoder keeps reading the old ones, so a
// data file never needs rewriting when the encoding evolves.
const recordFormatV1 = 1

// Stored event value, format 1 (the position is the key, not repeated here):
//
//	byte     format (1)
//	[16]byte event id
//	uvarint  stream version
//	varint   recorded at, Unix seconds
//	uvarint  recorded at, microseconds within the second
//	varint   occurred at, Unix seconds (the zero time.Time encodes as itself)
//	uvarint  occurred at, microseconds within the second
//	varint   schema version
//	7×uvarint lengths of stream, type, actor, channel, correlation id,
//	         causation id, data
//	bytes    the six strings back to back, then the data
//
// All lengths come before all string bytes so that decoding turns the strings
// into one Go string (one allocation) and slices the fields out of it: replay
// speed is bounded by allocations, not by parsing.
//
// Times are stored as seconds plus microseconds rather than as Unix
// microseconds because the latter overflows int64 for years a time.Time can
// hold; this way every time the store accepts comes back equal.

// numStrings is the number of string fields in a stored event.
const numStrings = 6

// encodeRecord appends the format-1 encoding of r (its Position excluded) to
// dst. r's times must already be UTC with microsecond precision.
func encodeRecord(dst []byte, r *eventstore.Record) []byte {
	m := &r.Metadata
	dst = append(dst, recordFormatV1)
	dst = append(dst, r.ID[:]...)
	dst = binary.AppendUvarint(dst, r.Version)
	dst = appendTime(dst, r.RecordedAt)
	dst = appendTime(dst, m.OccurredAt)
	dst = binary.AppendVarint(dst, int64(m.SchemaVersion))
	dst = binary.AppendUvarint(dst, uint64(len(r.Stream)))
	dst = binary.AppendUvarint(dst, uint64(len(r.Type)))
	dst = binary.AppendUvarint(dst, uint64(len(m.Actor)))
	dst = binary.AppendUvarint(dst, uint64(len(m.Channel)))
	dst = binary.AppendUvarint(dst, uint64(len(m.CorrelationID)))
	dst = binary.AppendUvarint(dst, uint64(len(m.CausationID)))
	dst = binary.AppendUvarint(dst, uint64(len(r.Data)))
	dst = append(dst, r.Stream...)
	dst = append(dst, r.Type...)
	dst = append(dst, m.Actor...)
	dst = append(dst, m.Channel...)
	dst = append(dst, m.CorrelationID...)
	dst = append(dst, m.CausationID...)
	dst = append(dst, r.Data...)
	return dst
}

// encodedSize is an upper bound of len(encodeRecord(nil, r)), used to size
// the writer's buffer once per batch.
func encodedSize(stream string, e *eventstore.EventData) int {
	const fixed = 1 + 16 + 10 + 2*(10+5) + 10 + 7*10
	return fixed + len(stream) + e.Size()
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()/1000))
}

// recordView is a decoded event value whose variable parts still point into
// the bytes it was decoded from: a read transaction can inspect it (the type,
// for a filter) without allocating, and copy out only what it returns.
type recordView struct {
	id          uuid.UUID
	version     uint64
	recordedSec int64
	recordedUS  int64
	occurredSec int64
	occurredUS  int64
	schema      int
	lens        [numStrings]int
	strs        []byte // the six strings back to back
	data        []byte
}

// decodeRecord parses a stored event value. It never panics: any malformed
// input, including trailing bytes, is an error wrapping ErrCorrupt.
func decodeRecord(b []byte) (recordView, error) {
	var v recordView
	if len(b) == 0 {
		return v, fmt.Errorf("%w: empty event record", ErrCorrupt)
	}
	if b[0] != recordFormatV1 {
		return v, fmt.Errorf("%w: unknown event record format %d", ErrCorrupt, b[0])
	}
	d := decoder{b: b[1:]}
	copy(v.id[:], d.bytes(16))
	v.version = d.uvarint()
	v.recordedSec, v.recordedUS = d.time()
	v.occurredSec, v.occurredUS = d.time()
	schema := d.varint()
	if schema < math.MinInt || schema > math.MaxInt {
		d.fail("schema version out of range")
	}
	v.schema = int(schema)
	total := uint64(0)
	for i := range v.lens {
		n := d.uvarint()
		total += n // each n is checked against len(b) below, so no overflow
		if n > uint64(len(b)) || total > uint64(len(b)) {
			d.fail("string length past the end")
		}
		v.lens[i] = int(n)
	}
	n := d.uvarint()
	if n > uint64(len(b)) || total+n > uint64(len(b)) {
		d.fail("data length past the end")
	}
	v.strs = d.bytes(int(total))
	v.data = d.bytes(int(n))
	if d.err == "" && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != "" {
		return recordView{}, fmt.Errorf("%w: event record: %s", ErrCorrupt, d.err)
	}
	return v, nil
}

// typeIs reports whether the view's event type is t, without allocating.
func (v *recordView) typeIs(t string) bool {
	start := v.lens[0]
	return string(v.strs[start:start+v.lens[1]]) == t
}

// matches is eventstore.Filter.Match on a view.
func (v *recordView) matches(f *eventstore.Filter) bool {
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if v.typeIs(t) {
			return true
		}
	}
	return false
}

// record copies the view out of the transaction's memory into a Record at
// position pos: one allocation for the strings, one for the data.
func (v *recordView) record(pos uint64) eventstore.Record {
	s := string(v.strs)
	var f [numStrings]string
	off := 0
	for i, n := range v.lens {
		f[i] = s[off : off+n]
		off += n
	}
	data := make([]byte, len(v.data))
	copy(data, v.data)
	return eventstore.Record{
		ID:         v.id,
		Stream:     f[0],
		Type:       f[1],
		Version:    v.version,
		Position:   pos,
		RecordedAt: time.Unix(v.recordedSec, v.recordedUS*1000).UTC(),
		Data:       data,
		Metadata: eventstore.Metadata{
			OccurredAt:    time.Unix(v.occurredSec, v.occurredUS*1000).UTC(),
			Actor:         f[2],
			Channel:       f[3],
			CorrelationID: f[4],
			CausationID:   f[5],
			SchemaVersion: v.schema,
		},
	}
}

// decoder reads the fields of an event value; the first error sticks and
// later reads return zero values, so decodeRecord checks once at the end.
type decoder struct {
	b   []byte
	err string
}

func (d *decoder) fail(msg string) {
	if d.err == "" {
		d.err = msg
	}
	d.b = nil
}

func (d *decoder) bytes(n int) []byte {
	if d.err != "" {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) uvarint() uint64 {
	if d.err != "" {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	if d.err != "" {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) time() (sec, us int64) {
	sec = d.varint()
	u := d.uvarint()
	if u >= 1e6 {
		d.fail("microseconds out of range")
		return 0, 0
	}
	return sec, int64(u)
}
