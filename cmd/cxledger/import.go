package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cxledger/cxledger/adapters/importer"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/identity"
	"github.com/google/uuid"
	"github.com/spf13/pflag"
)

func init() {
	register(command{name: "import", args: "FILE|-", short: "import touchpoints from NDJSON or CSV (idempotent: re-run to resume)", flags: importCommand, creates: true})
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }
func (l *listFlag) Type() string       { return "list" }

func importCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	format := fs.String("format", "", "input format: ndjson or csv (default: from the file name, .csv is csv)")
	batch := fs.String("batch", "", "batch name: event ids derive from it and the line numbers (default: a hash of the file's content; required for standard input)")
	actor := fs.String("actor", "", "actor of rows without one (default import:<batch>)")
	channel := fs.String("channel", "", "channel of rows without one")
	rejects := fs.String("rejects", "", "also write rejected rows to this NDJSON file ({line, field, error, input})")
	strict := fs.Bool("strict", false, "stop at the first bad row (rows are then appended one by one, in file order)")
	window := fs.Int("window", importer.DefaultWindow, "rows read before appending; one customer's rows in a window become one append")
	lookup := fs.Bool("lookup", true, "resolve identifiers through the identity read model before deriving a new customer id")
	progress := fs.Duration("progress-every", 5*time.Second, "how often to report progress when standard error is not a terminal (0: never)")

	mappingFile := fs.String("mapping", "", "CSV: JSON mapping file (see adapters/importer.Mapping); the flags below override it")
	customerCol := fs.String("customer-column", "", "CSV: column holding the customer id")
	identifierCol := fs.String("identifier", "", "CSV: KIND=COLUMN, the identifier column (kind email, phone or external)")
	nameCol := fs.String("name-column", "", "CSV: column naming customers registered for unknown identifiers")
	typ := fs.String("type", "", "CSV: event type of every row")
	typeCol := fs.String("type-column", "", "CSV: column holding each row's event type")
	idCol := fs.String("id-column", "", "CSV: column holding explicit event ids")
	occurredCol := fs.String("occurred-at-column", "", "CSV: column holding when the touchpoint happened")
	layout := fs.String("time-layout", "", "CSV: Go time layout of the occurred-at column (default RFC 3339)")
	comma := fs.String("comma", "", "CSV: field separator (default ,)")
	var fields, sets listFlag
	fs.Var(&fields, "field", "CSV: FIELD=COLUMN[:AS] maps a column to an event field, AS one of string, int, number, bool, amount, json (repeatable)")
	fs.Var(&sets, "set", "CSV: FIELD=VALUE gives an event field a constant (a JSON value, else a string) (repeatable)")

	return func(ctx context.Context, e *env) error {
		if len(e.args) != 1 {
			return usageErr("name one input file (or - for standard input)")
		}
		path := e.args[0]
		if *format == "" {
			*format = "ndjson"
			if strings.EqualFold(filepath.Ext(path), ".csv") {
				*format = "csv"
			}
		}
		if *format != "ndjson" && *format != "csv" {
			return usageErr("--format must be ndjson or csv")
		}
		if *window <= 0 {
			return usageErr("--window must be positive")
		}
		var mapping importer.Mapping
		if *format == "csv" {
			m, err := csvMapping(*mappingFile, mappingFlags{
				customer: *customerCol, identifier: *identifierCol, name: *nameCol, typ: *typ, typeColumn: *typeCol,
				id: *idCol, occurredAt: *occurredCol, layout: *layout, comma: *comma, fields: fields, sets: sets,
			})
			if err != nil {
				return err
			}
			mapping = m
		}

		in, size, err := openInput(path, e.stdin)
		if err != nil {
			return err
		}
		defer in.Close()
		if *batch == "" {
			if path == "-" {
				return usageErr("--batch is required when reading standard input (ids derive from it)")
			}
			if *batch, err = contentHash(in); err != nil {
				return err
			}
		}
		if *actor == "" {
			*actor = "import:" + *batch
		}
		defaults := importer.Defaults{Actor: *actor, Channel: *channel}
		counted := &countingReader{r: in}
		var src importer.Source
		if *format == "csv" {
			if src, err = importer.NewCSV(counted, mapping, defaults); err != nil {
				return usageErr("%v", err)
			}
		} else {
			src = importer.NewNDJSON(counted, defaults)
		}

		if err := e.open(ctx); err != nil {
			return err
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		rep, err := newRejectReport(*rejects, e)
		if err != nil {
			return err
		}
		defer rep.close()
		bar := newProgress(e, counted, size, *progress)
		cfg := importer.Config{
			Batch: *batch, Window: *window, Strict: *strict,
			OnReject: rep.report, OnProgress: bar.update,
			// Ids of new customers are keyed, generational: a forgotten
			// customer's address registers a new customer.
			Keys: kr,
		}
		if *lookup {
			lf, closeRM := identityLookup(ctx, e, kr)
			defer closeRM()
			cfg.Lookup = lf
		}
		l := ledger.New(e.store)
		l.Keys = kr
		im, err := importer.New(l, e.store, cfg)
		if err != nil {
			return err
		}
		e.log.Info("importing", "file", path, "format", *format, "batch", *batch, "actor", *actor)
		sum, runErr := im.Run(ctx, src)
		bar.done(sum)
		if sum.Forgotten > 0 {
			e.log.Info("rows an earlier run of this batch imported for customers forgotten since: not imported again, they stay erased", "rows", sum.Forgotten)
		}
		if err := rep.close(); err != nil && runErr == nil {
			runErr = err
		}
		if err := json.NewEncoder(e.stdout).Encode(map[string]any{
			"batch": *batch, "rows": sum.Rows, "imported": sum.Imported, "rejected": sum.Rejected, "registered": sum.Registered,
			"forgotten": sum.Forgotten,
		}); err != nil && runErr == nil {
			runErr = err
		}
		if runErr != nil && !errors.Is(runErr, importer.ErrRejectedRows) {
			return fmt.Errorf("%w (run the same command again to resume)", runErr)
		}
		return runErr
	}
}

// mappingFlags are the CSV mapping given on the command line.
type mappingFlags struct {
	customer, identifier, name, typ, typeColumn, id, occurredAt, layout, comma string
	fields, sets                                                               []string
}

// csvMapping reads the mapping file (if any) and lays the flags over it.
func csvMapping(file string, f mappingFlags) (importer.Mapping, error) {
	var m importer.Mapping
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return m, fmt.Errorf("read mapping: %w", err)
		}
		if m, err = importer.ParseMapping(data); err != nil {
			return m, usageErr("%s: %v", file, err)
		}
	}
	override := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	override(&m.CustomerID, f.customer)
	override(&m.CustomerName, f.name)
	override(&m.Type, f.typ)
	override(&m.TypeColumn, f.typeColumn)
	override(&m.ID, f.id)
	override(&m.OccurredAt, f.occurredAt)
	override(&m.TimeLayout, f.layout)
	override(&m.Comma, f.comma)
	if f.typ != "" {
		m.TypeColumn = ""
	}
	if f.typeColumn != "" {
		m.Type = ""
	}
	if f.identifier != "" {
		kind, col, ok := strings.Cut(f.identifier, "=")
		if !ok {
			return m, usageErr("--identifier must be KIND=COLUMN, e.g. email=Email")
		}
		m.Identifier = &importer.IdentifierColumn{Kind: domain.IdentifierKind(kind), Column: col}
		m.CustomerID = ""
	}
	if f.customer != "" {
		m.Identifier = nil
	}
	for _, s := range f.fields {
		field, rest, ok := strings.Cut(s, "=")
		if !ok {
			return m, usageErr("--field must be FIELD=COLUMN[:AS], got %q", s)
		}
		col, as, _ := strings.Cut(rest, ":")
		m.Fields = append(m.Fields, importer.FieldMapping{Field: field, Column: col, As: as})
	}
	for _, s := range f.sets {
		field, v, ok := strings.Cut(s, "=")
		if !ok {
			return m, usageErr("--set must be FIELD=VALUE, got %q", s)
		}
		raw := json.RawMessage(v)
		if !json.Valid(raw) {
			raw, _ = json.Marshal(v)
		}
		if m.Set == nil {
			m.Set = map[string]json.RawMessage{}
		}
		m.Set[field] = raw
	}
	return m, nil
}

// openInput opens the input file ("-": standard input) and returns its
// size when known (0 otherwise), for the progress bar.
func openInput(path string, stdin io.Reader) (io.ReadSeekCloser, int64, error) {
	if path == "-" {
		return nopSeekCloser{stdin}, 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("open input: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open input: %w", err)
	}
	return f, st.Size(), nil
}

type nopSeekCloser struct{ io.Reader }

func (nopSeekCloser) Close() error { return nil }
func (nopSeekCloser) Seek(int64, int) (int64, error) {
	return 0, errors.New("standard input cannot be read twice")
}

// contentHash names a batch after the file's content (first 16 hex digits
// of its SHA-256), so that importing the same file again is the same
// batch, and rewinds the file.
func contentHash(f io.ReadSeeker) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash input: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("rewind input: %w", err)
	}
	return "sha256-" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// identityLookup resolves identifiers through the identity read model. A
// read model that cannot be opened (another process holds the embedded
// file, or it was never built) only costs the lookup: unknown identifiers
// then get derived customer ids.
func identityLookup(ctx context.Context, e *env, keys identity.Keys) (importer.LookupFunc, func()) {
	b, err := openReadModels(ctx, e.cfg)
	if err != nil {
		e.log.Warn("identity read model unavailable: identifiers resolve only to customers this import (or an earlier one) registered", "error", err)
		return nil, func() {}
	}
	lookup := func(ctx context.Context, kind domain.IdentifierKind, value string) (uuid.UUID, bool, error) {
		var id uuid.UUID
		err := projections.View(ctx, b, identity.Name, func(r projections.Reader) error {
			var err error
			id, err = identity.Lookup(ctx, r, keys, kind, value)
			return err
		})
		switch {
		case errors.Is(err, projections.ErrNotFound), errors.Is(err, projections.ErrNotActive):
			return uuid.Nil, false, nil
		case err != nil:
			return uuid.Nil, false, err
		}
		return id, true, nil
	}
	return lookup, func() { b.Close() }
}

// rejectReport reports rejected rows to the log (standard error) and, with
// --rejects, to an NDJSON file that can be fixed and imported again.
type rejectReport struct {
	e    *env
	f    *os.File
	enc  *json.Encoder
	once sync.Once
	err  error
}

func newRejectReport(path string, e *env) (*rejectReport, error) {
	r := &rejectReport{e: e}
	if path == "" {
		return r, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create rejects file: %w", err)
	}
	r.f, r.enc = f, json.NewEncoder(f)
	r.enc.SetEscapeHTML(false)
	return r, nil
}

func (r *rejectReport) report(re *importer.RowError) {
	r.e.log.Warn("row rejected", "line", re.Line, "field", re.Field(), "reason", re.Err.Error())
	if r.enc != nil && r.err == nil {
		r.err = r.enc.Encode(struct {
			Line  int    `json:"line"`
			Field string `json:"field,omitempty"`
			Error string `json:"error"`
			Input string `json:"input,omitempty"`
		}{re.Line, re.Field(), re.Err.Error(), re.Input})
	}
}

func (r *rejectReport) close() error {
	r.once.Do(func() {
		if r.f != nil {
			if err := r.f.Close(); err != nil && r.err == nil {
				r.err = err
			}
		}
	})
	if r.err != nil {
		return fmt.Errorf("write rejects file: %w", r.err)
	}
	return nil
}

// countingReader counts the bytes read, for the progress bar.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// progress shows how far an import is: one line rewritten with \r when
// standard error is a terminal, a log line every interval otherwise (CI
// logs and files do not render \r).
type progress struct {
	e     *env
	in    *countingReader
	size  int64
	tty   bool
	every time.Duration
	start time.Time
	last  time.Time
}

func newProgress(e *env, in *countingReader, size int64, every time.Duration) *progress {
	now := time.Now()
	return &progress{e: e, in: in, size: size, tty: stderrIsTerminal(), every: every, start: now, last: now}
}

func stderrIsTerminal() bool {
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) line(s importer.Summary) string {
	rate := float64(s.Rows) / max(time.Since(p.start).Seconds(), 1e-3)
	pct := ""
	if p.size > 0 {
		pct = fmt.Sprintf("%3.0f%% ", 100*float64(p.in.n)/float64(p.size))
	}
	return fmt.Sprintf("import: %s%d rows, %d imported, %d rejected, %.0f rows/s", pct, s.Rows, s.Imported, s.Rejected, rate)
}

func (p *progress) update(s importer.Summary) {
	now := time.Now()
	switch {
	case p.tty && now.Sub(p.last) >= 100*time.Millisecond:
		fmt.Fprintf(os.Stderr, "\r\033[K%s", p.line(s))
		p.last = now
	case !p.tty && p.every > 0 && now.Sub(p.last) >= p.every:
		p.e.log.Info(p.line(s))
		p.last = now
	}
}

func (p *progress) done(s importer.Summary) {
	if p.tty {
		fmt.Fprintf(os.Stderr, "\r\033[K%s\n", p.line(s))
		return
	}
	p.e.log.Info("import finished", "rows", s.Rows, "imported", s.Imported, "rejected", s.Rejected, "registered", s.Registered, "forgotten", s.Forgotten,
		"seconds", time.Since(p.start).Round(time.Millisecond).Seconds())
}
