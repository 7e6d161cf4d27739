package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/cxledger/cxledger/adapters/keyring"
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

// Appender is the write path: adapters/ledger's Service, which refuses a
// touchpoint whose type the role may not append (domain.MayAppend).
type Appender interface {
	Append(ctx context.Context, as domain.Role, customer uuid.UUID, expected eventstore.ExpectedVersion, tps ...ledger.Touchpoint) (eventstore.AppendResult, error)
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
	// Role is who the rows are appended as: domain.RoleService (the
	// default) or domain.RoleAdmin (`cxledger import --as admin`, which
	// may also grant points). A row of a type the role may not append is
	// rejected with domain.ErrForbidden; the ledger's own types
	// (domain.RoleSystem only) are never imported.
	Role domain.Role
	// Lookup resolves identifiers to existing customers (optional).
	Lookup LookupFunc
	// Keys derives the ids of customers registered for identifiers nobody
	// holds: adapters/keyring's Keyring, the one the ledger seals with. The
	// ids are then keyed hashes nobody can recompute from an address, the
	// same broker ingest derives (keyring.DerivedCustomerIDs), and move to
	// the next generation once the customer of the previous one was
	// forgotten, so that the address of a forgotten customer registers a
	// new customer. A customer Lookup finds who was forgotten counts as
	// nobody. nil (no keyring: plaintext ledgers, tests) derives the
	// unkeyed CustomerIDFor.
	Keys keyring.IDKeys
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
	// Forgotten is the number of rows an earlier run of the same batch
	// imported for a customer who was forgotten since: their events are
	// stored (and erased), and nothing is appended for them again — not
	// to the forgotten customer, and not to a new one. Needs Config.Keys.
	Forgotten int
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

	resolved  map[string]resolution // used by Run's goroutine only
	stopFirst bool

	mu      sync.Mutex // guards what the append goroutines share:
	sum     Summary
	exists  map[uuid.UUID]bool
	rejects []*RowError
	erased  map[uuid.UUID]map[uuid.UUID]string // forgotten customer -> event id -> type
}

// resolution is what an identifier resolved to.
type resolution struct {
	customer uuid.UUID
	// gone are forgotten customers who held the identifier before:
	// earlier generations of its derived id, or the holder Lookup found.
	gone []uuid.UUID
}

// maxCache bounds the resolution caches; past it they start over, which
// costs a few reads, not correctness.
const maxCache = 1 << 20

// maxErasedStreams bounds how many forgotten customers' event ids are
// kept in memory (importedBefore).
const maxErasedStreams = 1 << 10

// New returns an Importer appending through l and reading streams from
// store (to tell new customers from known ones).
func New(l Appender, store StreamReader, cfg Config) (*Importer, error) {
	if cfg.Batch == "" {
		return nil, errors.New("importer: Config.Batch is required")
	}
	switch cfg.Role {
	case "":
		cfg.Role = domain.RoleService
	case domain.RoleService, domain.RoleAdmin:
	default:
		return nil, fmt.Errorf("importer: Config.Role %q: want service or admin", cfg.Role)
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
	if k, ok := cfg.Keys.(*keyring.Keyring); ok && k == nil {
		cfg.Keys = nil // a nil *Keyring is the plaintext mode
	}
	return &Importer{
		ledger: l, store: store, cfg: cfg,
		resolved: map[string]resolution{}, exists: map[uuid.UUID]bool{}, erased: map[uuid.UUID]map[uuid.UUID]string{},
	}, nil
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
		res, err := im.customer(ctx, r)
		var rerr *RowError
		switch {
		case errors.As(err, &rerr):
			im.rejects = append(im.rejects, rerr)
			continue
		case err != nil:
			return err
		}
		c := res.customer
		r.gone = res.gone
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
	rows, err := im.dropImportedBefore(ctx, rows)
	if err != nil {
		return err
	}
	if len(rows) > 1 {
		tps, registers, err := im.touchpoints(ctx, c, rows)
		if err != nil {
			return err
		}
		_, err = im.ledger.Append(ctx, im.cfg.Role, c, eventstore.Any, tps...)
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
		_, err = im.ledger.Append(ctx, im.cfg.Role, c, eventstore.Any, tps...)
		switch {
		case err == nil:
			im.accepted(c, 1, registers)
		case rowLevel(err):
			before, berr := im.importedBefore(ctx, c, r)
			if berr != nil {
				return berr
			}
			im.mu.Lock()
			delete(im.exists, c)
			if before {
				im.sum.Forgotten++
			} else {
				im.rejects = append(im.rejects, &RowError{Line: r.Line, Input: r.input, Err: err})
			}
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
		tp := ledger.Touchpoint{ID: im.eventID(r), Event: r.Event, Metadata: r.Metadata}
		reg, isRegistration := r.Event.(domain.CustomerRegistered)
		if isRegistration && r.derivedRegistration {
			reg.CustomerID = c // the customer the identifier resolved to
			tp.Event = reg
		}
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

// eventID is the id of a row's own event: the one it gave, or the one
// derived from the batch and its line.
func (im *Importer) eventID(r Row) uuid.UUID {
	if r.ID != uuid.Nil {
		return r.ID
	}
	return EventID(im.cfg.Batch, r.Line, "")
}

// customer resolves the customer a row is for: the one it names, the one
// Lookup finds for its identifier unless that one was forgotten, or the
// one derived from the identifier (keyed with Config.Keys). A row whose
// identifier can derive no more customers is a *RowError.
func (im *Importer) customer(ctx context.Context, r Row) (resolution, error) {
	if r.CustomerID != uuid.Nil {
		return resolution{customer: r.CustomerID}, nil
	}
	kind, norm := r.Identifier.Kind, r.Identifier.Normalized
	key := string(kind) + ":" + norm
	if res, ok := im.resolved[key]; ok {
		return res, nil
	}
	var res resolution
	if im.cfg.Lookup != nil {
		found, ok, err := im.cfg.Lookup(ctx, kind, norm)
		if err != nil {
			return resolution{}, fmt.Errorf("import %s: line %d: look up %s: %w", im.cfg.Batch, r.Line, kind, err)
		}
		if ok {
			// The identity read model lags the log: it may still name a
			// customer forgotten meanwhile, whose stream refuses every row.
			gone, err := im.forgotten(ctx, found)
			if err != nil {
				return resolution{}, fmt.Errorf("import %s: line %d: %w", im.cfg.Batch, r.Line, err)
			}
			if gone {
				res.gone = append(res.gone, found)
			} else {
				res.customer = found
			}
		}
	}
	if res.customer == uuid.Nil {
		if im.cfg.Keys == nil {
			res.customer = CustomerIDFor(kind, norm)
		} else {
			ids, err := keyring.DerivedCustomerIDs(ctx, im.cfg.Keys, kind, norm)
			switch {
			case errors.Is(err, keyring.ErrTooManyGenerations):
				return resolution{}, &RowError{Line: r.Line, Input: r.input, Err: err}
			case err != nil:
				return resolution{}, fmt.Errorf("import %s: line %d: %w", im.cfg.Batch, r.Line, err)
			}
			res.customer = ids[len(ids)-1]
			for _, id := range ids[:len(ids)-1] {
				if !slices.Contains(res.gone, id) {
					res.gone = append(res.gone, id)
				}
			}
		}
	}
	if len(im.resolved) >= maxCache {
		clear(im.resolved)
	}
	im.resolved[key] = res
	return res, nil
}

// forgotten reports whether customer c's key was destroyed (false without
// Config.Keys).
func (im *Importer) forgotten(ctx context.Context, c uuid.UUID) (bool, error) {
	if im.cfg.Keys == nil {
		return false, nil
	}
	gone, err := im.cfg.Keys.Forgotten(ctx, c)
	if err != nil {
		return false, fmt.Errorf("is customer %s forgotten: %w", c, err)
	}
	return gone, nil
}

// dropImportedBefore returns rows without those an earlier run imported
// for a forgotten holder of their identifier (see importedBefore),
// counting them, so that no append — not even a refused one — is tried
// for them.
func (im *Importer) dropImportedBefore(ctx context.Context, rows []Row) ([]Row, error) {
	if !slices.ContainsFunc(rows, func(r Row) bool { return len(r.gone) > 0 }) {
		return rows, nil
	}
	kept := make([]Row, 0, len(rows))
	for _, r := range rows {
		before, err := im.storedErased(ctx, r.gone, r)
		if err != nil {
			return nil, err
		}
		if !before {
			kept = append(kept, r)
			continue
		}
		im.mu.Lock()
		im.sum.Forgotten++
		im.mu.Unlock()
	}
	return kept, nil
}

// importedBefore reports whether row r, whose append to customer c was
// refused, is stored already in the stream of a forgotten customer: an
// earlier run of the batch imported it before the customer was forgotten
// — to c itself, when the row names its customer, or to a forgotten
// holder of its identifier: a previous generation of its derived id, or
// the holder Lookup found. Such a row is done, not rejected: the erasure
// keeps its events erased, and a re-run adds nothing, neither to the
// forgotten stream (which refuses it) nor to another customer (the
// row's event ids are taken). Without Config.Keys it is always false:
// the plaintext mode has no generations.
func (im *Importer) importedBefore(ctx context.Context, c uuid.UUID, r Row) (bool, error) {
	if im.cfg.Keys == nil {
		return false, nil
	}
	candidates := slices.Clip(r.gone)
	gone, err := im.forgotten(ctx, c)
	if err != nil {
		return false, fmt.Errorf("import %s: line %d: %w", im.cfg.Batch, r.Line, err)
	}
	if gone {
		candidates = append(candidates, c)
	}
	if r.Identifier != nil {
		// Lookup may have found a live customer — the next generation, a
		// customer an import after the erasure registered — while the row
		// went to a forgotten one the first time.
		ids, err := keyring.DerivedCustomerIDs(ctx, im.cfg.Keys, r.Identifier.Kind, r.Identifier.Normalized)
		if err != nil && !errors.Is(err, keyring.ErrTooManyGenerations) {
			return false, fmt.Errorf("import %s: line %d: %w", im.cfg.Batch, r.Line, err)
		}
		if len(ids) > 0 {
			for _, id := range ids[:len(ids)-1] {
				if !slices.Contains(candidates, id) {
					candidates = append(candidates, id)
				}
			}
		}
	}
	return im.storedErased(ctx, candidates, r)
}

// storedErased reports whether row r's own event is stored in the stream
// of one of the forgotten customers candidates.
func (im *Importer) storedErased(ctx context.Context, candidates []uuid.UUID, r Row) (bool, error) {
	if im.cfg.Keys == nil || len(candidates) == 0 {
		return false, nil
	}
	id, typ := im.eventID(r), r.Event.EventType()
	for _, g := range candidates {
		ids, err := im.erasedIDs(ctx, g)
		if err != nil {
			return false, fmt.Errorf("import %s: line %d: %w", im.cfg.Batch, r.Line, err)
		}
		if t, ok := ids[id]; ok && t == typ {
			return true, nil
		}
	}
	return false, nil
}

// erasedIDs returns the event ids (and types) of a forgotten customer's
// stream, read once per import: a forgotten stream never grows.
func (im *Importer) erasedIDs(ctx context.Context, c uuid.UUID) (map[uuid.UUID]string, error) {
	im.mu.Lock()
	ids, ok := im.erased[c]
	im.mu.Unlock()
	if ok {
		return ids, nil
	}
	ids = map[uuid.UUID]string{}
	stream := domain.StreamID(c)
	for from := uint64(0); ; {
		page, err := im.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: from})
		if errors.Is(err, eventstore.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read forgotten customer %s: %w", c, err)
		}
		for _, rec := range page {
			ids[rec.ID] = rec.Type
		}
		if len(page) < eventstore.DefaultReadLimit {
			break
		}
		from = page[len(page)-1].Version + 1
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	if len(im.erased) >= maxErasedStreams {
		clear(im.erased)
	}
	im.erased[c] = ids
	return ids, nil
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
		domain.ErrInvalid, domain.ErrRejected, domain.ErrForbidden, domain.ErrUnknownType, domain.ErrUnsupportedSchemaVersion,
		eventstore.ErrInvalidEvent, eventstore.ErrEventTooLarge, eventstore.ErrDuplicateEvent, eventstore.ErrWrongExpectedVersion,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
