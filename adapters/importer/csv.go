package importer

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cxledger/cxledger/domain"
)

// Mapping says how the columns of a CSV file become touchpoints. It is
// usually read from a small JSON file:
//
//	{
//	  "identifier": {"kind": "email", "column": "email"},
//	  "customerName": "name",
//	  "type": "PurchaseCompleted",
//	  "occurredAt": "paid_at", "timeLayout": "2006-01-02 15:04:05",
//	  "fields": [
//	    {"field": "orderId", "column": "order_id"},
//	    {"field": "amount", "column": "total", "as": "amount"},
//	    {"field": "currency", "column": "currency"},
//	    {"field": "lines[0].sku", "column": "sku"},
//	    {"field": "lines[0].quantity", "column": "qty", "as": "int"},
//	    {"field": "lines[0].unitAmount", "column": "unit_price", "as": "amount"}
//	  ],
//	  "set": {"channel": "web"}
//	}
//
// Column names are matched against the header row exactly (after trimming
// spaces and a BOM). An empty cell leaves its field out of the event, so
// optional fields work and required ones are reported as missing.
type Mapping struct {
	// CustomerID is the column holding the customer's uuid; or use
	// Identifier.
	CustomerID string `json:"customerId,omitempty"`
	// Identifier finds the customer by an identifier column.
	Identifier *IdentifierColumn `json:"identifier,omitempty"`
	// CustomerName is the column naming a customer the import registers
	// for an unknown identifier (optional).
	CustomerName string `json:"customerName,omitempty"`
	// Type is the event type of every row; or use TypeColumn.
	Type string `json:"type,omitempty"`
	// TypeColumn is the column holding each row's event type.
	TypeColumn string `json:"typeColumn,omitempty"`
	// ID is the column holding an explicit event id (optional; default
	// ids derive from the batch and line).
	ID string `json:"id,omitempty"`
	// OccurredAt is the column holding when the touchpoint happened.
	OccurredAt string `json:"occurredAt"`
	// TimeLayout is the Go layout of OccurredAt (default RFC 3339); a
	// layout without a zone reads UTC.
	TimeLayout string `json:"timeLayout,omitempty"`
	// Actor, Channel, CorrelationID and CausationID are metadata columns
	// (optional).
	Actor         string `json:"actor,omitempty"`
	Channel       string `json:"channel,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
	// Fields map columns to event fields.
	Fields []FieldMapping `json:"fields"`
	// Set gives event fields a constant value in every row (JSON values),
	// e.g. {"currency": "EUR"}; a mapped column wins when not empty.
	Set map[string]json.RawMessage `json:"set,omitempty"`
	// Comma is the field separator (default ",").
	Comma string `json:"comma,omitempty"`
}

// IdentifierColumn names the identifier column and its kind.
type IdentifierColumn struct {
	// Kind is "email", "phone" or "external"; or use KindColumn.
	Kind domain.IdentifierKind `json:"kind,omitempty"`
	// KindColumn holds each row's identifier kind.
	KindColumn string `json:"kindColumn,omitempty"`
	// Column holds the identifier's value.
	Column string `json:"column"`
}

// FieldMapping maps one column to one event field.
type FieldMapping struct {
	// Field is the event field's JSON path: "amount", "lines[0].sku".
	Field string `json:"field"`
	// Column is the CSV column.
	Column string `json:"column"`
	// As converts the cell: "string" (default), "int", "number", "bool",
	// "amount" (a decimal such as 12.50 in the currency's minor units, via
	// domain.ParseAmount) or "json" (the cell is a JSON value).
	As string `json:"as,omitempty"`
	// Currency is the event field holding the currency of an "amount"
	// (default "currency").
	Currency string `json:"currency,omitempty"`
}

// Conversions a FieldMapping accepts.
var conversions = []string{"string", "int", "number", "bool", "amount", "json"}

// ParseMapping reads a mapping from its JSON form, strictly.
func ParseMapping(data []byte) (Mapping, error) {
	var m Mapping
	if err := strictJSON(data); err != nil {
		return Mapping{}, fmt.Errorf("mapping: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Mapping{}, fmt.Errorf("mapping: %w", err)
	}
	return m, nil
}

// RecordDecoder decodes the records of one CSV file: a Mapping bound to
// the file's header.
type RecordDecoder struct {
	m       Mapping
	header  []string
	col     map[string]int
	fields  []boundField
	amounts []boundField // converted last: they need the currency
	set     []setField
	layout  string
}

type boundField struct {
	FieldMapping
	path   []step
	cur    []step
	column int
}

type setField struct {
	path  []step
	value any
}

// Compile checks m against a CSV header and returns its decoder.
func (m Mapping) Compile(header []string) (*RecordDecoder, error) {
	d := &RecordDecoder{m: m, header: header, col: map[string]int{}, layout: m.TimeLayout}
	if d.layout == "" {
		d.layout = time.RFC3339Nano
	}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))
		if _, dup := d.col[h]; dup {
			return nil, fmt.Errorf("mapping: header names column %q twice", h)
		}
		d.col[h] = i
	}
	need := func(what, column string) error {
		if column == "" {
			return nil
		}
		if _, ok := d.col[column]; !ok {
			return fmt.Errorf("mapping: %s column %q is not in the header %q", what, column, header)
		}
		return nil
	}
	switch {
	case (m.CustomerID == "") == (m.Identifier == nil):
		return nil, errors.New("mapping: give exactly one of customerId and identifier")
	case (m.Type == "") == (m.TypeColumn == ""):
		return nil, errors.New("mapping: give exactly one of type and typeColumn")
	case m.OccurredAt == "":
		return nil, errors.New("mapping: occurredAt (a column) is required")
	case m.Comma != "" && utf8.RuneCountInString(m.Comma) != 1:
		return nil, errors.New("mapping: comma must be one character")
	}
	if m.Type != "" {
		if _, err := domain.SchemaVersion(m.Type); err != nil {
			return nil, fmt.Errorf("mapping: %w", err)
		}
	}
	if id := m.Identifier; id != nil {
		if (id.Kind == "") == (id.KindColumn == "") || id.Column == "" {
			return nil, errors.New("mapping: identifier needs a column and exactly one of kind and kindColumn")
		}
		switch id.Kind {
		case "", domain.IdentifierEmail, domain.IdentifierPhone, domain.IdentifierExternal:
		default:
			return nil, fmt.Errorf("mapping: identifier kind %q is not email, phone or external", id.Kind)
		}
		for what, c := range map[string]string{"identifier": id.Column, "identifier kind": id.KindColumn} {
			if err := need(what, c); err != nil {
				return nil, err
			}
		}
	}
	for what, c := range map[string]string{
		"customerId": m.CustomerID, "customerName": m.CustomerName, "typeColumn": m.TypeColumn, "id": m.ID,
		"occurredAt": m.OccurredAt, "actor": m.Actor, "channel": m.Channel,
		"correlationId": m.CorrelationID, "causationId": m.CausationID,
	} {
		if err := need(what, c); err != nil {
			return nil, err
		}
	}
	for i, f := range m.Fields {
		if f.As == "" {
			f.As = "string"
		}
		if !contains(conversions, f.As) {
			return nil, fmt.Errorf("mapping: fields[%d]: as must be one of %s", i, strings.Join(conversions, ", "))
		}
		if err := need(fmt.Sprintf("fields[%d]", i), f.Column); err != nil {
			return nil, err
		}
		if f.Column == "" {
			return nil, fmt.Errorf("mapping: fields[%d]: column is required", i)
		}
		path, err := parsePath(f.Field)
		if err != nil {
			return nil, fmt.Errorf("mapping: fields[%d]: %w", i, err)
		}
		b := boundField{FieldMapping: f, path: path, column: d.col[f.Column]}
		if f.As == "amount" {
			if f.Currency == "" {
				b.Currency = "currency"
			}
			if b.cur, err = parsePath(b.Currency); err != nil {
				return nil, fmt.Errorf("mapping: fields[%d].currency: %w", i, err)
			}
			d.amounts = append(d.amounts, b)
			continue
		}
		d.fields = append(d.fields, b)
	}
	for name, raw := range m.Set {
		path, err := parsePath(name)
		if err != nil {
			return nil, fmt.Errorf("mapping: set: %w", err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("mapping: set %s: %w", name, err)
		}
		d.set = append(d.set, setField{path: path, value: v})
	}
	return d, nil
}

// Decode turns one CSV record into a Row whose event and metadata are
// valid. Errors wrap domain.ErrInvalid or domain.ErrUnknownType and name
// the column or event field.
func (d *RecordDecoder) Decode(rec []string, defaults Defaults) (Row, error) {
	size := 0
	for i, cell := range rec {
		size += len(cell)
		if !utf8.ValidString(cell) {
			return Row{}, invalid(d.name(i), "not valid UTF-8 (at byte %d)", invalidUTF8At([]byte(cell)))
		}
	}
	if size > DefaultMaxLineBytes {
		return Row{}, invalid("", "row longer than %d bytes", DefaultMaxLineBytes)
	}
	if len(rec) != len(d.header) {
		return Row{}, invalid("", "%d columns, the header has %d", len(rec), len(d.header))
	}
	cell := func(column string) string {
		if column == "" {
			return ""
		}
		return strings.TrimSpace(rec[d.col[column]])
	}
	var r Row
	var err error
	if s := cell(d.m.ID); s != "" {
		if r.ID, err = parseID(d.m.ID, s); err != nil {
			return Row{}, err
		}
	}
	if d.m.CustomerID != "" {
		if r.CustomerID, err = parseID(d.m.CustomerID, cell(d.m.CustomerID)); err != nil {
			return Row{}, err
		}
	} else {
		id := d.m.Identifier
		kind := id.Kind
		if id.KindColumn != "" {
			kind = domain.IdentifierKind(strings.ToLower(cell(id.KindColumn)))
		}
		if r.Identifier, err = newIdentifier(id.Column, kind, cell(id.Column)); err != nil {
			return Row{}, err
		}
	}
	r.CustomerName = cell(d.m.CustomerName)
	if err := checkName(d.m.CustomerName, r.CustomerName); err != nil {
		return Row{}, err
	}
	typ := d.m.Type
	if d.m.TypeColumn != "" {
		if typ = cell(d.m.TypeColumn); typ == "" {
			return Row{}, invalid(d.m.TypeColumn, "required (an event type)")
		}
	}
	occurred := cell(d.m.OccurredAt)
	if occurred == "" {
		return Row{}, invalid(d.m.OccurredAt, "required (when it happened)")
	}
	at, err := time.Parse(d.layout, occurred)
	if err != nil {
		return Row{}, invalid(d.m.OccurredAt, "must be a time like %q, got %q", d.layout, truncate(occurred, 64))
	}

	var event any = map[string]any{}
	for _, s := range d.set {
		if event, err = setPath(event, s.path, s.value); err != nil {
			return Row{}, invalid("event", "%v", err)
		}
	}
	for _, f := range d.fields {
		if err := d.convert(&event, f, rec[f.column]); err != nil {
			return Row{}, err
		}
	}
	for _, f := range d.amounts {
		if err := d.convert(&event, f, rec[f.column]); err != nil {
			return Row{}, err
		}
	}
	if typ == domain.TypeCustomerRegistered {
		if _, ok := event.(map[string]any)["customerId"]; !ok {
			event.(map[string]any)["customerId"] = r.registrationID().String()
			r.derivedRegistration = r.Identifier != nil
		}
	}
	data, err := json.Marshal(event)
	if err != nil {
		return Row{}, fmt.Errorf("encode the event of a row: %w", err)
	}
	if r.Event, err = domain.Parse(typ, data); err != nil {
		return Row{}, prefixed("event", err)
	}
	md := domain.Metadata{
		OccurredAt: at, Actor: cell(d.m.Actor), Channel: cell(d.m.Channel),
		CorrelationID: cell(d.m.CorrelationID), CausationID: cell(d.m.CausationID),
	}
	if r.Metadata, err = defaults.complete(md); err != nil {
		return Row{}, err
	}
	return r, nil
}

// convert sets one mapped field of event from its cell.
func (d *RecordDecoder) convert(event *any, f boundField, raw string) error {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil
	}
	bad := func(format string, args ...any) error {
		return invalid("event."+f.Field, "column %s: "+format, append([]any{f.Column}, args...)...)
	}
	var v any
	switch f.As {
	case "string":
		v = raw // as written: spaces may matter in free text
	case "int":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return bad("must be an integer, got %q", truncate(s, 64))
		}
		v = n
	case "number":
		if !json.Valid([]byte(s)) || s[0] == '"' || s[0] == '{' || s[0] == '[' || s == "true" || s == "false" || s == "null" {
			return bad("must be a number, got %q", truncate(s, 64))
		}
		v = json.Number(s)
	case "bool":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad("must be true or false, got %q", truncate(s, 64))
		}
		v = b
	case "json":
		if !json.Valid([]byte(s)) {
			return bad("must be a JSON value")
		}
		if err := strictJSON([]byte(s)); err != nil {
			return bad("%s", domain.ForDisplay(err.Error()))
		}
		v = json.RawMessage(s)
	case "amount":
		code, _ := getPath(*event, f.cur).(string)
		if code == "" {
			return bad("an amount needs the currency in event field %s", f.Currency)
		}
		n, err := domain.ParseAmount(s, code)
		if err != nil {
			var ve *domain.ValidationError
			if errors.As(err, &ve) {
				return bad("%s", ve.Rule)
			}
			return bad("%v", err)
		}
		v = n
	}
	var err error
	if *event, err = setPath(*event, f.path, v); err != nil {
		return bad("%v", err)
	}
	return nil
}

// name is the header name of column i, for reports.
func (d *RecordDecoder) name(i int) string {
	if i < len(d.header) {
		return d.header[i]
	}
	return "column " + strconv.Itoa(i+1)
}

// step is one element of a field path: a key, or an index when key is "".
type step struct {
	key   string
	index int
}

// maxIndex bounds array indexes in field paths (order lines number at
// most a few hundred), so that a typo cannot allocate a huge array.
const maxIndex = 1000

// parsePath splits "lines[0].sku" into steps.
func parsePath(p string) ([]step, error) {
	if p == "" {
		return nil, errors.New("empty field path")
	}
	var steps []step
	for part := range strings.SplitSeq(p, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" {
			return nil, fmt.Errorf("field path %q: empty name", p)
		}
		steps = append(steps, step{key: key})
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			n, err := strconv.Atoi(num)
			if !ok || err != nil || n < 0 || n >= maxIndex || (after != "" && after[0] != '[') {
				return nil, fmt.Errorf("field path %q: bad index", p)
			}
			steps = append(steps, step{index: n})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return steps, nil
}

// setPath stores v at path in the JSON-like value cur (nil, a
// map[string]any or a []any), creating containers on the way, and returns
// the updated value.
func setPath(cur any, path []step, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	s := path[0]
	if s.key != "" {
		m, ok := cur.(map[string]any)
		if cur == nil {
			m, ok = map[string]any{}, true
		}
		if !ok {
			return nil, fmt.Errorf("%s: not an object", s.key)
		}
		child, err := setPath(m[s.key], path[1:], v)
		if err != nil {
			return nil, err
		}
		m[s.key] = child
		return m, nil
	}
	a, ok := cur.([]any)
	if cur != nil && !ok {
		return nil, fmt.Errorf("[%d]: not an array", s.index)
	}
	for len(a) <= s.index {
		a = append(a, nil)
	}
	child, err := setPath(a[s.index], path[1:], v)
	if err != nil {
		return nil, err
	}
	a[s.index] = child
	return a, nil
}

// getPath returns the value at path in cur, or nil.
func getPath(cur any, path []step) any {
	for _, s := range path {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[s.key]
		case []any:
			if s.key != "" || s.index >= len(c) {
				return nil
			}
			cur = c[s.index]
		default:
			return nil
		}
	}
	return cur
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CSV reads rows from a CSV file with a header row, through a Mapping.
type CSV struct {
	r        *csv.Reader
	dec      *RecordDecoder
	defaults Defaults
}

// NewCSV reads the header of r and binds m to it.
func NewCSV(r io.Reader, m Mapping, d Defaults) (*CSV, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked per row, so that a short row is a bad row
	if m.Comma != "" {
		cr.Comma, _ = utf8.DecodeRuneInString(m.Comma)
	}
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read the CSV header: %w", err)
	}
	dec, err := m.Compile(header)
	if err != nil {
		return nil, err
	}
	return &CSV{r: cr, dec: dec, defaults: d}, nil
}

// Next returns the next row, a *RowError for a record that is malformed
// or cannot be decoded, io.EOF at the end, or the reader's error.
func (s *CSV) Next() (Row, error) {
	for {
		rec, err := s.r.Read()
		var perr *csv.ParseError
		switch {
		case err == io.EOF:
			return Row{}, io.EOF
		case errors.As(err, &perr) && perr.Err != nil && !isIOError(perr.Err):
			return Row{}, rowError(perr.StartLine, nil, invalid("", "malformed CSV: %v", perr.Err))
		case err != nil:
			return Row{}, fmt.Errorf("read CSV: %w", err)
		}
		line, _ := s.r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		row, derr := s.dec.Decode(rec, s.defaults)
		if derr != nil {
			return Row{}, rowError(line, csvLine(rec), derr)
		}
		row.Line = line
		row.input = echo(csvLine(rec))
		return row, nil
	}
}

func isIOError(err error) bool {
	return !errors.Is(err, csv.ErrBareQuote) && !errors.Is(err, csv.ErrQuote) && !errors.Is(err, csv.ErrFieldCount)
}

// csvLine writes a record back as CSV, for reports.
func csvLine(rec []string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(rec) // a bytes.Buffer does not fail
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
