package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// Source yields the rows of one input file.
type Source interface {
	// Next returns the next row; a *RowError for a row that cannot be
	// decoded (reading goes on after it); io.EOF after the last row; any
	// other error when the input cannot be read further.
	Next() (Row, error)
}

// Appender is the write path: adapters/ledger's Service.
type Appender interface {
	Append(ctx context.Context, customer uuid.UUID, expected eventstore.ExpectedVersion, tps ...ledger.Touchpoint) (eventstore.AppendResult, error)
}

// StreamReader tells whether a customer's stream exists.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
}

// LookupFunc finds the customer holding a normalised identifier, reporting
// false when nobody does. The identity read model answers it; it may lag
// the log, which is why unknown identifiers get derived customer ids.
type LookupFunc func(ctx context.Context, kind domain.IdentifierKind, normalized string) (uuid.UUID, bool, error)

// DefaultWindow is how many rows an import reads before appending them.
const DefaultWindow = 2000

// DefaultConcurrency is how many customers' appends run at once. The
// stores commit concurrent appends together (one fsync for many), which
// is where an import's speed comes from when rows spread over many
// customers.
const DefaultConcurrency = 16

// Config configures an import.
type Config struct {
	// Batch names the import (required): event ids are derived from it and
	// the line numbers, so the same batch over the same file is the same
	// import. `cxledger import` uses a hash of the file unless --batch is
	// given.
	Batch string
	// Window is how many rows are read before their appends; rows of one
	// customer within a window become one append (default DefaultWindow).
	Window int
	// Concurrency is how many customers' appends run at once (default
	// DefaultConcurrency). One customer's rows are always appended by one
	// goroutine, in file order.
	Concurrency int
	// Strict stops the import at the first bad row: rows are then appended
	// one at a time in file order, so everything before the bad row is
	// written and nothing after it.
	Strict bool
	// Lookup resolves identifiers to existing customers (optional).
	Lookup LookupFunc
	// OnReject is called for every rejected row, in line order within a
	// window (optional).
	OnReject func(*RowError)
	// OnProgress is called after every window with the running totals
	// (optional).
	OnProgress func(Summary)
}

// Summary counts what an import did.
type Summary struct {
	// Rows is the number of non-blank rows read.
	Rows int
	// Imported is the number of rows now in the store: appended by this
	// run or already there from an earlier run of the same batch.
	Imported int
	// Rejected is the number of rows reported and not written.
	Rejected int
	// Registered is the number of customers this run registered for
	// identifiers no customer held.
	Registered int
}

// ErrRejectedRows is returned by Run when some rows were rejected; the
// rows themselves went to Config.OnReject.
var ErrRejectedRows = errors.New("rows were rejected")

// Importer imports sources through the ledger. It is not safe for
// concurrent use: run one import at a time.
type Importer struct {
	ledger Appender
	store  StreamReader
	cfg    Config

	resolved  map[string]uuid.UUID // used by Run's goroutine only
	stopFirst bool

	mu      sync.Mutex // guards what the append goroutines share:
	sum     Summary
	exists  map[uuid.UUID]bool
	rejects []*RowError
}

// maxCache bounds the resolution caches; past it they start over, which
// costs a few reads, not correctness.
const maxCache = 1 << 20

// New returns an Importer appending through l and reading streams from
// store (to tell new customers from known ones).
func New(l Appender, store StreamReader, cfg Config) (*Importer, error) {
	if cfg.Batch == "" {
		return nil, errors.New("importer: Config.Batch is required")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Strict {
		cfg.Window, cfg.Concurrency = 1, 1
	}
	return &Importer{ledger: l, store: store, cfg: cfg, resolved: map[string]uuid.UUID{}, exists: map[uuid.UUID]bool{}}, nil
}

// Run imports every row of src. Rows that cannot be decoded or appended
// are reported to Config.OnReject and skipped; Run then returns the
// summary and an error wrapping ErrRejectedRows. Any other error (the
// store failing, ctx ending) stops the import: what was appended stays,
// and running the same import again completes it.
func (im *Importer) Run(ctx context.Context, src Source) (Summary, error) {
	window := make([]Row, 0, im.cfg.Window)
	for {
		row, err := src.Next()
		if err == io.EOF {
			break
		}
		var rerr *RowError
		switch {
		case errors.As(err, &rerr):
			im.sum.Rows++
			im.rejects = append(im.rejects, rerr)
			if im.cfg.Strict {
				return im.finish(ctx, window)
			}
			continue
		case err != nil:
			return im.sum, fmt.Errorf("import %s: %w", im.cfg.Batch, err)
		}
		im.sum.Rows++
		window = append(window, row)
		if len(window) >= im.cfg.Window {
			if err := im.flush(ctx, window); err != nil {
				return im.sum, err
			}
			if im.stopFirst {
				return im.sum, fmt.Errorf("import %s: stopped at the first bad row: %w", im.cfg.Batch, ErrRejectedRows)
			}
			window = window[:0]
		}
	}
	return im.finish(ctx, window)
}

// finish appends the last window and reports the outcome.
func (im *Importer) finish(ctx context.Context, window []Row) (Summary, error) {
	if err := im.flush(ctx, window); err != nil {
		return im.sum, err
	}
	if im.sum.Rejected > 0 {
		return im.sum, fmt.Errorf("import %s: %d of %d rows: %w", im.cfg.Batch, im.sum.Rejected, im.sum.Rows, ErrRejectedRows)
	}
	return im.sum, nil
}

// flush appends a window: its rows grouped by customer, each group as one
// append (falling back to one append per row when the group fails), then
// reports the window's rejections in line order.
func (im *Importer) flush(ctx context.Context, window []Row) error {
	var order []uuid.UUID
	groups := map[uuid.UUID][]Row{}
	for _, r := range window {
		c, err := im.customer(ctx, r)
		if err != nil {
			return err
		}
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], r)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(im.cfg.Concurrency)
	for _, c := range order {
		g.Go(func() error { return im.appendGroup(gctx, c, groups[c]) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	slices.SortFunc(im.rejects, func(a, b *RowError) int { return a.Line - b.Line })
	for _, r := range im.rejects {
		im.sum.Rejected++
		if im.cfg.OnReject != nil {
			im.cfg.OnReject(r)
		}
	}
	if len(im.rejects) > 0 && im.cfg.Strict {
		im.stopFirst = true
	}
	im.rejects = im.rejects[:0]
	if im.cfg.OnProgress != nil {
		im.cfg.OnProgress(im.sum)
	}
	return nil
}

// appendGroup appends the rows of one customer. One append for the whole
// group is the fast path; when it fails (one bad row fails the group
// atomically), each row is appended on its own so that only the bad ones
// are rejected, in file order, each decided against the history its
// predecessors left.
func (im *Importer) appendGroup(ctx context.Context, c uuid.UUID, rows []Row) error {
	if len(rows) > 1 {
		tps, registers, err := im.touchpoints(ctx, c, rows)
		if err != nil {
			return err
		}
		_, err = im.ledger.Append(ctx, c, eventstore.Any, tps...)
		if err == nil {
			im.accepted(c, len(rows), registers)
			return nil
		}
		if !rowLevel(err) {
			return fmt.Errorf("import %s: append to customer %s: %w", im.cfg.Batch, c, err)
		}
		im.forget(c)
	}
	for _, r := range rows {
		tps, registers, err := im.touchpoints(ctx, c, []Row{r})
		if err != nil {
			return err
		}
		_, err = im.ledger.Append(ctx, c, eventstore.Any, tps...)
		switch {
		case err == nil:
			im.accepted(c, 1, registers)
		case rowLevel(err):
			im.mu.Lock()
			delete(im.exists, c)
			im.rejects = append(im.rejects, &RowError{Line: r.Line, Input: r.input, Err: err})
			im.mu.Unlock()
		default:
			return fmt.Errorf("import %s: line %d: append to customer %s: %w", im.cfg.Batch, r.Line, c, err)
		}
	}
	return nil
}

func (im *Importer) accepted(c uuid.UUID, rows int, registers bool) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.sum.Imported += rows
	if registers {
		im.sum.Registered++
	}
	im.rememberLocked(c, true)
}

// touchpoints turns one customer's rows into the events of one append.
// When the customer was found by an identifier and has no stream yet, the
// first row is preceded by CustomerRegistered and IdentifierLinked (or,
// when that row is itself the registration, followed by IdentifierLinked).
// Their ids derive from that row's line, so a re-run appends the same ones.
func (im *Importer) touchpoints(ctx context.Context, c uuid.UUID, rows []Row) (tps []ledger.Touchpoint, registers bool, err error) {
	exists, err := im.streamExists(ctx, c)
	if err != nil {
		return nil, false, err
	}
	for _, r := range rows {
		tp := ledger.Touchpoint{ID: r.ID, Event: r.Event, Metadata: r.Metadata}
		if tp.ID == uuid.Nil {
			tp.ID = EventID(im.cfg.Batch, r.Line, "")
		}
		_, isRegistration := r.Event.(domain.CustomerRegistered)
		if exists || r.Identifier == nil {
			tps = append(tps, tp)
			exists = exists || isRegistration
			continue
		}
		link := ledger.Touchpoint{
			ID:       EventID(im.cfg.Batch, r.Line, "linked"),
			Event:    domain.IdentifierLinked{Kind: r.Identifier.Kind, Value: r.Identifier.Value},
			Metadata: r.Metadata,
		}
		if isRegistration {
			tps = append(tps, tp, link)
		} else {
			name := r.CustomerName
			if name == "" {
				name = r.Identifier.Value
			}
			reg := ledger.Touchpoint{
				ID:       EventID(im.cfg.Batch, r.Line, "registered"),
				Event:    domain.CustomerRegistered{CustomerID: c, Name: name},
				Metadata: r.Metadata,
			}
			tps = append(tps, reg, link, tp)
		}
		exists, registers = true, true
	}
	return tps, registers, nil
}

// customer resolves the customer a row is for.
func (im *Importer) customer(ctx context.Context, r Row) (uuid.UUID, error) {
	if r.CustomerID != uuid.Nil {
		return r.CustomerID, nil
	}
	key := string(r.Identifier.Kind) + ":" + r.Identifier.Normalized
	if c, ok := im.resolved[key]; ok {
		return c, nil
	}
	c := uuid.Nil
	if im.cfg.Lookup != nil {
		found, ok, err := im.cfg.Lookup(ctx, r.Identifier.Kind, r.Identifier.Normalized)
		if err != nil {
			return uuid.Nil, fmt.Errorf("import %s: line %d: look up %s: %w", im.cfg.Batch, r.Line, r.Identifier.Kind, err)
		}
		if ok {
			c = found
		}
	}
	if c == uuid.Nil {
		c = CustomerIDFor(r.Identifier.Kind, r.Identifier.Normalized)
	}
	if len(im.resolved) >= maxCache {
		clear(im.resolved)
	}
	im.resolved[key] = c
	return c, nil
}

// streamExists reports whether customer c has any event.
func (im *Importer) streamExists(ctx context.Context, c uuid.UUID) (bool, error) {
	im.mu.Lock()
	ok, known := im.exists[c]
	im.mu.Unlock()
	if known {
		return ok, nil
	}
	recs, err := im.store.ReadStream(ctx, domain.StreamID(c), eventstore.ReadStreamOptions{Limit: 1})
	switch {
	case errors.Is(err, eventstore.ErrNotFound):
		im.remember(c, false)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("import %s: read customer %s: %w", im.cfg.Batch, c, err)
	}
	im.remember(c, len(recs) > 0)
	return len(recs) > 0, nil
}

func (im *Importer) remember(c uuid.UUID, exists bool) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.rememberLocked(c, exists)
}

func (im *Importer) forget(c uuid.UUID) {
	im.mu.Lock()
	defer im.mu.Unlock()
	delete(im.exists, c)
}

func (im *Importer) rememberLocked(c uuid.UUID, exists bool) {
	if len(im.exists) >= maxCache {
		clear(im.exists)
	}
	im.exists[c] = exists
}

// rowLevel reports whether err condemns the appended rows rather than the
// import: invalid or rejected events, reused ids, a concurrent writer that
// kept moving the stream. Anything else (I/O, a closed store, ctx) stops
// the import.
func rowLevel(err error) bool {
	for _, target := range []error{
		domain.ErrInvalid, domain.ErrRejected, domain.ErrUnknownType, domain.ErrUnsupportedSchemaVersion,
		eventstore.ErrInvalidEvent, eventstore.ErrEventTooLarge, eventstore.ErrDuplicateEvent, eventstore.ErrWrongExpectedVersion,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
