// Package exporter writes the event log, or one customer's stream, to a
// file: NDJSON in the one JSON shape of a stored event (eventstore.Record,
// data inline), which `cxledger import` reads back, or Parquet with a flat
// schema for analysts' tools (DuckDB, pandas, Spark). It reads the store a
// page at a time, so memory stays bounded whatever the log's size.
package exporter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"
)

// Reader is what an export needs of an event store.
type Reader interface {
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
}

// Revealer turns stored records into what an export shows: their sealed
// personal data revealed, or marked erased for forgotten customers
// (adapters/keyring.Keyring.RevealRecords).
type Revealer interface {
	RevealRecords(ctx context.Context, recs []eventstore.Record) ([]eventstore.Record, error)
}

// Writer writes exported records in one format. Close completes the file
// (Parquet writes its footer then) but does not close the underlying
// io.Writer.
type Writer interface {
	Write(recs []eventstore.Record) error
	Close() error
}

// Options selects what to export.
type Options struct {
	// Customer, when set, exports that customer's stream in version order;
	// otherwise the global log is exported in position order.
	Customer uuid.UUID
	// After exports the global log after this position (not with
	// Customer).
	After uint64
	// Types keeps only events of these types (empty: all).
	Types []string
	// PageSize is how many events are read from the store at once
	// (default eventstore.DefaultReadLimit).
	PageSize int
	// OnPage is called after each page is written with the running count
	// and the last position written (optional).
	OnPage func(events int, lastPosition uint64)
	// Reveal reveals each page before it is written; nil exports the data
	// as stored (sealed values stay tokens).
	Reveal Revealer
}

// Export writes the selected events to w, page by page, and returns how
// many it wrote. It does not close w. The log is read up to its end when
// the export started reading its last page: events appended during an
// export may or may not be included.
func Export(ctx context.Context, src Reader, w Writer, opts Options) (int, error) {
	if opts.Customer != uuid.Nil && opts.After != 0 {
		return 0, errors.New("export: After applies to the global log, not to one customer")
	}
	limit := opts.PageSize
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	filter := eventstore.Filter{Types: opts.Types}
	stream := domain.StreamID(opts.Customer)
	after, from := opts.After, uint64(0)
	n := 0
	for {
		var page []eventstore.Record
		var err error
		if opts.Customer == uuid.Nil {
			page, err = src.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: limit, Filter: filter})
		} else {
			page, err = src.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: from, Limit: limit})
			if errors.Is(err, eventstore.ErrNotFound) {
				return 0, fmt.Errorf("export customer %s: %w", opts.Customer, err)
			}
		}
		if err != nil {
			return n, fmt.Errorf("export: read after %d events: %w", n, err)
		}
		if len(page) == 0 {
			return n, nil
		}
		full := len(page) == limit
		last := page[len(page)-1]
		after, from = last.Position, last.Version+1
		if opts.Customer != uuid.Nil && len(opts.Types) > 0 {
			kept := page[:0:0]
			for _, r := range page {
				if filter.Match(r) {
					kept = append(kept, r)
				}
			}
			page = kept
		}
		if len(page) > 0 && opts.Reveal != nil {
			if page, err = opts.Reveal.RevealRecords(ctx, page); err != nil {
				return n, fmt.Errorf("export: reveal after %d events: %w", n, err)
			}
		}
		if len(page) > 0 {
			if err := w.Write(page); err != nil {
				return n, fmt.Errorf("export: write after %d events: %w", n, err)
			}
			n += len(page)
		}
		if opts.OnPage != nil {
			opts.OnPage(n, last.Position)
		}
		if !full {
			return n, nil
		}
	}
}

// NDJSON writes one eventstore.Record JSON object per line.
type NDJSON struct {
	buf *bufio.Writer
	enc *json.Encoder
}

// NewNDJSON returns a Writer of NDJSON to w.
func NewNDJSON(w io.Writer) *NDJSON {
	buf := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false) // data stays byte for byte
	// Event data is written byte for byte as stored; escaping <, > and &
	// would change it.
	enc.SetEscapeHTML(false)
	return &NDJSON{buf: buf, enc: enc}
}

// Write encodes recs, one per line.
func (n *NDJSON) Write(recs []eventstore.Record) error {
	for _, r := range recs {
		if err := n.enc.Encode(r); err != nil {
			return fmt.Errorf("encode event %s: %w", r.ID, err)
		}
	}
	return nil
}

// Close flushes what is buffered.
func (n *NDJSON) Close() error { return n.buf.Flush() }

// Row is one event as a Parquet row: flat, one column per field, times as
// Parquet timestamps (microseconds, UTC) and the payload as a JSON string,
// which DuckDB, Spark and pandas query with their JSON functions.
type Row struct {
	Position      int64     `parquet:"position,delta"`
	EventID       string    `parquet:"event_id"`
	Stream        string    `parquet:"stream,dict"`
	CustomerID    string    `parquet:"customer_id,dict"`
	Type          string    `parquet:"type,dict"`
	Version       int64     `parquet:"version,delta"`
	RecordedAt    time.Time `parquet:"recorded_at,timestamp(microsecond)"`
	OccurredAt    time.Time `parquet:"occurred_at,timestamp(microsecond)"`
	Actor         string    `parquet:"actor,dict"`
	Channel       string    `parquet:"channel,dict"`
	CorrelationID string    `parquet:"correlation_id"`
	CausationID   string    `parquet:"causation_id"`
	SchemaVersion int32     `parquet:"schema_version"`
	Data          string    `parquet:"data,json"`
}

// ParquetRow flattens a record. Positions and versions fit an int64 (the
// stores never get near 2^63); signed columns are what every tool reads
// without surprises.
func ParquetRow(r eventstore.Record) Row {
	customer := ""
	if id, err := domain.ParseStreamID(r.Stream); err == nil {
		customer = id.String()
	}
	m := r.Metadata
	return Row{
		Position: int64(r.Position), EventID: r.ID.String(), Stream: r.Stream, CustomerID: customer,
		Type: r.Type, Version: int64(r.Version), RecordedAt: r.RecordedAt.UTC(), OccurredAt: m.OccurredAt.UTC(),
		Actor: m.Actor, Channel: m.Channel, CorrelationID: m.CorrelationID, CausationID: m.CausationID,
		SchemaVersion: int32(m.SchemaVersion), Data: string(r.Data),
	}
}

// RowsPerRowGroup bounds a Parquet row group, which the writer holds in
// memory until it is complete: about 64 MiB at 1 KiB per event.
const RowsPerRowGroup = 64 << 10

// Parquet writes records as Parquet rows (see Row), zstd-compressed.
type Parquet struct {
	w    *parquet.GenericWriter[Row]
	rows []Row
}

// NewParquet returns a Writer of a Parquet file to w.
func NewParquet(w io.Writer) *Parquet {
	return &Parquet{w: parquet.NewGenericWriter[Row](w,
		parquet.Compression(&parquet.Zstd),
		parquet.MaxRowsPerRowGroup(RowsPerRowGroup),
		parquet.CreatedBy("cxledger", "export", ""),
	)}
}

// Write appends recs as rows.
func (p *Parquet) Write(recs []eventstore.Record) error {
	p.rows = p.rows[:0]
	for _, r := range recs {
		p.rows = append(p.rows, ParquetRow(r))
	}
	if _, err := p.w.Write(p.rows); err != nil {
		return fmt.Errorf("write parquet rows: %w", err)
	}
	return nil
}

// Close writes the last row group and the footer.
func (p *Parquet) Close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("close parquet file: %w", err)
	}
	return nil
}
