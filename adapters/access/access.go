// Package access keeps the access log: who read which customer's personal
// data (view, timeline, stream, as-of view), when, how and with which
// query. Auditors query it to answer "who looked at this customer?".
//
// Entries are events in the ledger's own log, in one stream per customer
// ("access-<customer id>", type AccessRecorded), so they are as durable and
// as tamper-evident as the customer's history: they are leaves of the same
// Merkle tree. They are not customer touchpoints: no read model folds them
// and the customer's stream, version and aggregate are untouched.
package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

// Type is the event type of an access entry.
const Type = domain.TypeAccessRecorded

// StreamPrefix starts every access stream's name.
const StreamPrefix = "access-"

// Stream returns the access stream of a customer.
func Stream(customer uuid.UUID) string { return StreamPrefix + customer.String() }

// Entry is one read of a customer's data.
type Entry struct {
	// Customer is whose data was read.
	Customer uuid.UUID `json:"customerId"`
	// Reader names who read: the API token's name, or the operating-system
	// user of a CLI command.
	Reader string `json:"reader"`
	// Role is the reader's role (auditor, analyst, admin; "operator" for the
	// CLI).
	Role string `json:"role"`
	// Resource is what was read: view, view-as-of, timeline,
	// audit-timeline, events.
	Resource string `json:"resource"`
	// Query is the request's query string or the command's flags: which
	// slice of the data was read.
	Query string `json:"query,omitempty"`
	// Via is http or cli.
	Via string `json:"via"`
	// RequestID ties an HTTP read to the server's request log.
	RequestID string `json:"requestId,omitempty"`

	// At, Position and EventID are the entry's record in the log, filled
	// when read back.
	At       time.Time `json:"at,omitzero"`
	Position uint64    `json:"position,omitempty"`
	EventID  uuid.UUID `json:"eventId,omitzero"`
}

// Store is what the access log needs of the event store.
type Store interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
}

// Log records and queries access entries.
type Log struct {
	store Store
	// Now stamps entries' occurred-at; the store stamps recorded-at.
	Now func() time.Time
}

// New returns the access log kept in store.
func New(store Store) *Log { return &Log{store: store, Now: time.Now} }

// maxField bounds the free-form fields so that a huge query string cannot
// make an entry too large to store (the read would then be refused).
const maxField = 2048

// Record appends e to the customer's access stream. Callers refuse the read
// when it fails: a read that cannot be logged is not served.
func (l *Log) Record(ctx context.Context, e Entry) error {
	_, err := l.record(ctx, e)
	return err
}

// record is Record, returning the entry's event id.
func (l *Log) record(ctx context.Context, e Entry) (uuid.UUID, error) {
	switch {
	case e.Customer == uuid.Nil:
		return uuid.Nil, errors.New("access: customer is required")
	case e.Reader == "" || e.Role == "" || e.Resource == "" || e.Via == "":
		return uuid.Nil, errors.New("access: reader, role, resource and via are required")
	}
	e.Query = clip(e.Query)
	e.Reader = clip(e.Reader)
	e.At, e.Position, e.EventID = time.Time{}, 0, uuid.Nil
	data, err := json.Marshal(e)
	if err != nil {
		return uuid.Nil, fmt.Errorf("access: encode: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, fmt.Errorf("access: event id: %w", err)
	}
	_, err = l.store.Append(ctx, Stream(e.Customer), eventstore.Any, eventstore.EventData{
		ID: id, Type: Type, Data: data,
		Metadata: eventstore.Metadata{OccurredAt: l.Now().UTC(), Actor: e.Role + ":" + e.Reader, Channel: e.Via, CorrelationID: e.RequestID},
	})
	if err != nil {
		return uuid.Nil, fmt.Errorf("access: record read of %s by %s: %w", e.Customer, e.Reader, err)
	}
	return id, nil
}

func clip(s string) string {
	if len(s) <= maxField {
		return s
	}
	s = s[:maxField]
	// Cut at a rune boundary: the store refuses invalid UTF-8.
	return strings.ToValidUTF8(s, "")
}

// Query selects entries. Customer, when set, reads that customer's stream;
// otherwise the whole log is scanned (filtered by type), which an auditor
// does to see everything one reader looked at.
type Query struct {
	Customer uuid.UUID
	// Reader keeps only this reader's entries.
	Reader string
	// From and To bound the recorded time: [From, To); zero is open.
	From, To time.Time
	// After is a cursor: the position of the last entry already seen.
	After uint64
	// Limit caps the entries returned; 0 means 100.
	Limit int
}

// Page is a page of entries in log order and the cursor of the next page
// (0 when there is none).
type Page struct {
	Entries []Entry `json:"entries"`
	Next    uint64  `json:"next,omitempty"`
}

// Search returns the entries matching q, oldest first.
func (l *Log) Search(ctx context.Context, q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	var page Page
	after := q.After
	for {
		recs, err := l.read(ctx, q.Customer, after)
		if err != nil {
			return Page{}, err
		}
		for _, r := range recs {
			after = r.Position
			if r.Type != Type || (q.Customer != uuid.Nil && r.Position <= q.After) {
				continue
			}
			e, err := decode(r)
			if err != nil {
				return Page{}, err
			}
			if (q.Reader != "" && e.Reader != q.Reader) || (!q.From.IsZero() && e.At.Before(q.From)) || (!q.To.IsZero() && !e.At.Before(q.To)) {
				continue
			}
			if len(page.Entries) == limit {
				page.Next = page.Entries[limit-1].Position
				return page, nil
			}
			page.Entries = append(page.Entries, e)
		}
		if len(recs) < eventstore.DefaultReadLimit {
			return page, nil
		}
	}
}

// read returns the next records after position after: from the customer's
// access stream, or from the global log filtered by type.
func (l *Log) read(ctx context.Context, customer uuid.UUID, after uint64) ([]eventstore.Record, error) {
	if customer == uuid.Nil {
		recs, err := l.store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: eventstore.DefaultReadLimit, Filter: eventstore.Filter{Types: []string{Type}}})
		if err != nil {
			return nil, fmt.Errorf("access: read log: %w", err)
		}
		return recs, nil
	}
	// A stream read goes by version; skip versions whose positions are at or
	// before the cursor (Search drops them).
	var all []eventstore.Record
	for from := uint64(0); ; {
		recs, err := l.store.ReadStream(ctx, Stream(customer), eventstore.ReadStreamOptions{From: from, Limit: eventstore.DefaultReadLimit})
		if errors.Is(err, eventstore.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("access: read %s: %w", Stream(customer), err)
		}
		for _, r := range recs {
			if r.Position > after {
				all = append(all, r)
			}
		}
		if len(recs) < eventstore.DefaultReadLimit || len(all) >= eventstore.DefaultReadLimit {
			return all, nil
		}
		from = recs[len(recs)-1].Version + 1
	}
}

func decode(r eventstore.Record) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(r.Data, &e); err != nil {
		return Entry{}, fmt.Errorf("access: decode entry at position %d: %w", r.Position, err)
	}
	e.At, e.Position, e.EventID = r.RecordedAt, r.Position, r.ID
	return e, nil
}

// Reads records the reads of a command that shows many customers' events
// (a read of the whole log, a tail, an export): one entry per customer, the
// first time the command shows one of their events, recorded before the
// events are shown. Its cost is one small append per distinct customer a
// run shows, however many of their events it shows; a page whose
// customers are all logged already costs nothing. An entry says which
// command and options read the log (Query), not which events: the auditor
// learns who saw the customer, and when, through which command.
//
// The entries a run writes land in the log it is reading: Own tells them
// apart, so that a command reading the log to its end (a tail, an export
// of the whole log) leaves out what its own reading wrote, and its output
// is the log as it found it.
//
// A Reads is used by one goroutine.
type Reads struct {
	log   *Log
	entry Entry
	seen  map[uuid.UUID]struct{}
	own   map[uuid.UUID]struct{} // ids of the entries this run wrote
}

// NewReads returns the recorder of one command run's reads: entry gives
// the reader, role, resource, query and channel; Customer is set per
// customer.
func (l *Log) NewReads(entry Entry) *Reads {
	return &Reads{log: l, entry: entry, seen: make(map[uuid.UUID]struct{}), own: make(map[uuid.UUID]struct{})}
}

// Records records the customers of recs not recorded yet, in the order of
// their first event. Records of other streams (access streams, foreign
// streams) are nobody's personal data and are skipped. On an error the
// caller must not show recs.
func (r *Reads) Records(ctx context.Context, recs []eventstore.Record) error {
	for _, rec := range recs {
		customer, err := domain.ParseStreamID(rec.Stream)
		if err != nil {
			continue
		}
		if _, ok := r.seen[customer]; ok {
			continue
		}
		e := r.entry
		e.Customer = customer
		id, err := r.log.record(ctx, e)
		if err != nil {
			return err
		}
		r.seen[customer] = struct{}{}
		r.own[id] = struct{}{}
	}
	return nil
}

// Others returns recs without the entries this run wrote (see Own).
func (r *Reads) Others(recs []eventstore.Record) []eventstore.Record {
	out := recs[:0:0]
	for _, rec := range recs {
		if !r.Own(rec) {
			out = append(out, rec)
		}
	}
	return out
}

// Own reports whether rec is an entry this run wrote.
func (r *Reads) Own(rec eventstore.Record) bool {
	if rec.Type != Type {
		return false
	}
	_, ok := r.own[rec.ID]
	return ok
}
