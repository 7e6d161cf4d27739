package kurrent

// The mappings between cxledger's contract and KurrentDB's, kept free of any
// connection so that every one of them is unit-tested without a server.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/cxledger/cxledger/eventstore"
)

// Positions.
//
// KurrentDB places every event in its transaction log at a prepare position
// (the byte offset of the event's record) and orders $all by (commit,
// prepare). Every append made through gRPC is an implicit transaction: its
// events are written as consecutive prepare records, and a $all read reports
// each of them with commit == prepare == its own log position. Logs written
// by older servers (explicit commit records) report the commit record's
// position for every event of the append, so events of one append share a
// commit position and differ only by prepare position. In both cases the
// prepare position alone strictly increases along $all, and it is the one
// number that tells the events of one append apart, so it is the global
// position: position = prepare + 1 (the + 1 keeps positions starting at 1
// even for an event at log offset 0; the log in fact starts with an epoch
// record, so gaps are normal and allowed by the contract).
//
// Back: ReadAll(After: p) reads $all forward from Position{p-1, p-1}. A
// forward read is inclusive, and for a record of an explicit transaction the
// server finds the commit record after p-1 and returns the whole
// transaction, so the read always includes every event after p; ReadAll then
// drops what is at or before p. p-1 must be an event's log position (0, or a
// position this store returned): the server cannot start a read in the
// middle of a record, see Store.ReadAll.

// globalPosition maps a KurrentDB log position to the contract's global
// position.
func globalPosition(p esdb.Position) uint64 { return p.Prepare + 1 }

// allPosition maps a global position back to where a forward read of $all
// must start to return every event after it: esdb.Start for 0.
func allPosition(after uint64) esdb.AllPosition {
	if after == 0 {
		return esdb.Start{}
	}
	return esdb.Position{Commit: after - 1, Prepare: after - 1}
}

// expectedRevision maps the contract's expected version to the client's
// revision option; both count versions from 0, so Exact(v) is Revision(v).
func expectedRevision(e eventstore.ExpectedVersion) (esdb.ExpectedRevision, error) {
	switch e {
	case eventstore.Any:
		return esdb.Any{}, nil
	case eventstore.NoStream:
		return esdb.NoStream{}, nil
	case eventstore.StreamExists:
		return esdb.StreamExists{}, nil
	}
	if v, ok := e.IsExact(); ok {
		return esdb.Revision(v), nil
	}
	return nil, fmt.Errorf("%w: expected version %d", eventstore.ErrInvalidEvent, int64(e))
}

// Metadata.
//
// The event's user metadata is a JSON object that other KurrentDB tools can
// read: the server's own names where they exist ($correlationId and
// $causationId, which the by-correlation projections and the UI
// understand), plain names for the rest.

// metaJSON is the stored shape of eventstore.Metadata.
type metaJSON struct {
	CorrelationID string `json:"$correlationId,omitempty"`
	CausationID   string `json:"$causationId,omitempty"`
	Actor         string `json:"actor,omitempty"`
	Channel       string `json:"channel,omitempty"`
	// OccurredAt is RFC 3339 with microseconds, UTC; absent when unknown.
	OccurredAt    string `json:"occurredAt,omitempty"`
	SchemaVersion int    `json:"schemaVersion,omitempty"`
}

// occurredAtLayout writes exactly six fractional digits, so that every
// stored time has one spelling.
const occurredAtLayout = "2006-01-02T15:04:05.000000Z07:00"

// encodeMetadata returns the user metadata stored with an event.
func encodeMetadata(m eventstore.Metadata) ([]byte, error) {
	m = m.Normalize()
	j := metaJSON{
		CorrelationID: m.CorrelationID, CausationID: m.CausationID,
		Actor: m.Actor, Channel: m.Channel, SchemaVersion: m.SchemaVersion,
	}
	if !m.OccurredAt.IsZero() {
		j.OccurredAt = m.OccurredAt.Format(occurredAtLayout)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return b, nil
}

// decodeMetadata reads what encodeMetadata wrote. Empty metadata (an event
// written by another tool) is the zero Metadata; unknown keys are ignored;
// metadata that is not our shape is an error naming what is wrong, never
// silently dropped.
func decodeMetadata(b []byte) (eventstore.Metadata, error) {
	if len(b) == 0 {
		return eventstore.Metadata{}, nil
	}
	var j metaJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return eventstore.Metadata{}, fmt.Errorf("decode metadata: %w", err)
	}
	m := eventstore.Metadata{
		CorrelationID: j.CorrelationID, CausationID: j.CausationID,
		Actor: j.Actor, Channel: j.Channel, SchemaVersion: j.SchemaVersion,
	}
	if j.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, j.OccurredAt)
		if err != nil {
			return eventstore.Metadata{}, fmt.Errorf("decode metadata: occurredAt: %w", err)
		}
		m.OccurredAt = t
	}
	return m.Normalize(), nil
}

// recordedAt maps the server's created time (100 ns ticks) to the
// contract's precision: UTC, truncated to microseconds.
func recordedAt(created time.Time) time.Time { return created.UTC().Truncate(time.Microsecond) }

// toEventData maps a proposed event to the client's. Data is sent as the
// caller's bytes with content type JSON, so that the server's projections
// and UI read it as JSON.
func toEventData(e eventstore.EventData) (esdb.EventData, error) {
	meta, err := encodeMetadata(e.Metadata)
	if err != nil {
		return esdb.EventData{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return esdb.EventData{
		EventID:     e.ID,
		EventType:   e.Type,
		ContentType: esdb.ContentTypeJson,
		Data:        e.Data,
		Metadata:    meta,
	}, nil
}

// toRecord maps a recorded event to the contract's record, stripping the
// store's stream prefix. Data and metadata are copied: the client's buffers
// are not ours to hand out.
func toRecord(ev *esdb.RecordedEvent, prefix string) (eventstore.Record, error) {
	m, err := decodeMetadata(ev.UserMetadata)
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("event %s in %q at revision %d: %w", ev.EventID, ev.StreamID, ev.EventNumber, err)
	}
	return eventstore.Record{
		ID:         ev.EventID,
		Stream:     strings.TrimPrefix(ev.StreamID, prefix),
		Type:       ev.EventType,
		Version:    ev.EventNumber,
		Position:   globalPosition(ev.Position),
		RecordedAt: recordedAt(ev.CreatedDate),
		Data:       append([]byte(nil), ev.Data...),
		Metadata:   m,
	}, nil
}

// isSystem reports whether an event of $all is KurrentDB's own: a system
// stream ($stats-…, $$metadata, $scavenges) or a system event type ($>,
// $metadata, $ProjectionUpdated). The ledger never writes those names (Append
// rejects them), so skipping them loses nothing of ours.
func isSystem(stream, typ string) bool {
	return strings.HasPrefix(stream, "$") || strings.HasPrefix(typ, "$")
}

// Errors.

// conflictPattern finds the stream's actual revision in the client's text
// for a wrong-expected-version error ("… expecting '3' but got '5'"): the
// client keeps the server's number only in that text.
var conflictPattern = regexp.MustCompile(`but got '([^']*)'`)

// actualFromConflict returns the actual version a wrong-expected-version
// error reports (-1: no stream), and whether the text held one.
func actualFromConflict(err error) (int64, bool) {
	m := conflictPattern.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	if m[1] == "no_stream" {
		return -1, true
	}
	v, perr := strconv.ParseInt(m[1], 10, 64)
	if perr != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// errorCode returns the code of the *esdb.Error inside err, however deeply
// wrapped (esdb.FromError looks only at err itself), and whether there was
// one.
func errorCode(err error) (esdb.ErrorCode, bool) {
	var esdbErr *esdb.Error
	if errors.As(err, &esdbErr) {
		return esdbErr.Code(), true
	}
	return esdb.ErrorCodeUnknown, false
}

// mapError translates a client error of op once, at the boundary: a done
// context as the context's error, a closed store or connection as
// ErrClosed, a missing or deleted stream as ErrNotFound (for reads), the
// server's append-size limit as ErrEventTooLarge; anything else wrapped
// with the operation. Conflicts are mapped by Append, which knows the
// expected version.
func mapError(ctx context.Context, closed bool, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("kurrent: %s: %w", op, ctxErr)
	}
	if closed {
		return fmt.Errorf("kurrent: %s: %w", op, eventstore.ErrClosed)
	}
	code, _ := errorCode(err)
	switch code {
	case esdb.ErrorCodeConnectionClosed:
		return fmt.Errorf("kurrent: %s: %w (%w)", op, eventstore.ErrClosed, err)
	case esdb.ErrorCodeResourceNotFound, esdb.ErrorCodeStreamDeleted:
		return fmt.Errorf("kurrent: %s: %w (%w)", op, eventstore.ErrNotFound, err)
	case esdb.ErrorCodeDeadlineExceeded:
		return fmt.Errorf("kurrent: %s: %w (%w)", op, context.DeadlineExceeded, err)
	}
	if strings.Contains(strings.ToLower(err.Error()), "maximum append size") {
		return fmt.Errorf("kurrent: %s: %w: the append exceeds the server's MaxAppendSize (%w)", op, eventstore.ErrEventTooLarge, err)
	}
	return fmt.Errorf("kurrent: %s: %w", op, err)
}
