package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cxledger/cxledger/adapters/strictjson"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
)

// DefaultMaxLineBytes bounds one NDJSON line: the store's event limit plus
// room for the envelope. A longer line is rejected without being held in
// memory.
const DefaultMaxLineBytes = eventstore.DefaultMaxEventSize + 64<<10

// wireRow is every field an NDJSON line may have. A line is either a
// touchpoint:
//
//	{"customerId":"<uuid>" | "identifier":{"kind":"email","value":"ana@example.com"},
//	 "customerName":"Ana", "type":"CallLogged", "event":{…},
//	 "occurredAt":"2024-05-01T10:00:00Z", "actor":"…", "channel":"…",
//	 "correlationId":"…", "causationId":"…", "id":"<uuid>"}
//
// or a record as `cxledger export` writes it (eventstore.Record's JSON),
// which imports the event with its own id and metadata:
//
//	{"id":…, "stream":"customer-<uuid>", "type":…, "version":…, "position":…,
//	 "recordedAt":…, "data":{…}, "metadata":{…}}
type wireRow struct {
	ID            string          `json:"id"`
	CustomerID    string          `json:"customerId"`
	Identifier    *wireIdentifier `json:"identifier"`
	CustomerName  string          `json:"customerName"`
	Type          string          `json:"type"`
	Event         json.RawMessage `json:"event"`
	OccurredAt    string          `json:"occurredAt"`
	Actor         string          `json:"actor"`
	Channel       string          `json:"channel"`
	CorrelationID string          `json:"correlationId"`
	CausationID   string          `json:"causationId"`

	// The record shape. Version, position and recordedAt are where the
	// exporting store put the event; the importing store decides anew.
	Stream     string           `json:"stream"`
	Version    *uint64          `json:"version"`
	Position   *uint64          `json:"position"`
	RecordedAt *time.Time       `json:"recordedAt"`
	Data       json.RawMessage  `json:"data"`
	Metadata   *domain.Metadata `json:"metadata"`
}

type wireIdentifier struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// DecodeLine decodes one NDJSON line (without its newline) into a Row
// whose event and metadata are valid. Unknown fields, a second JSON value
// on the line, invalid UTF-8, a key repeated in an object (or repeated in
// another case), a lone surrogate escape, and every invalid field are
// errors wrapping domain.ErrInvalid (or domain.ErrUnknownType), naming the
// field.
func DecodeLine(line []byte, d Defaults) (Row, error) {
	if !utf8.Valid(line) {
		return Row{}, invalid("", "not valid UTF-8 (at byte %d)", invalidUTF8At(line))
	}
	if err := strictJSON(line); err != nil {
		return Row{}, err
	}
	var w wireRow
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Row{}, wireError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Row{}, invalid("", "more than one JSON value on the line")
	}
	if w.Stream != "" || w.Data != nil || w.Metadata != nil {
		return w.record(d)
	}
	return w.touchpoint(d)
}

// touchpoint turns the touchpoint shape into a Row.
func (w wireRow) touchpoint(d Defaults) (Row, error) {
	var r Row
	var err error
	if w.ID != "" {
		if r.ID, err = parseID("id", w.ID); err != nil {
			return Row{}, err
		}
	}
	switch {
	case w.CustomerID != "" && w.Identifier != nil:
		return Row{}, invalid("customerId", "give customerId or identifier, not both")
	case w.CustomerID != "":
		if r.CustomerID, err = parseID("customerId", w.CustomerID); err != nil {
			return Row{}, err
		}
	case w.Identifier != nil:
		if r.Identifier, err = newIdentifier("identifier", domain.IdentifierKind(w.Identifier.Kind), w.Identifier.Value); err != nil {
			return Row{}, err
		}
	default:
		return Row{}, invalid("customerId", "required (or identifier)")
	}
	if w.Type == "" {
		return Row{}, invalid("type", "required")
	}
	if len(bytes.TrimSpace(w.Event)) == 0 {
		return Row{}, invalid("event", "required (a JSON object)")
	}
	if w.OccurredAt == "" {
		return Row{}, invalid("occurredAt", "required (RFC 3339, e.g. 2024-05-01T10:00:00Z)")
	}
	occurred, err := time.Parse(time.RFC3339Nano, w.OccurredAt)
	if err != nil {
		return Row{}, invalid("occurredAt", "must be RFC 3339 such as 2024-05-01T10:00:00Z, got %q", w.OccurredAt)
	}
	if err := checkName("customerName", w.CustomerName); err != nil {
		return Row{}, err
	}
	r.CustomerName = w.CustomerName
	data := w.Event
	if w.Type == domain.TypeCustomerRegistered {
		var added bool
		if data, added, err = withCustomerID(data, r.registrationID()); err != nil {
			return Row{}, err
		}
		r.derivedRegistration = added && r.Identifier != nil
	}
	if r.Event, err = domain.Parse(w.Type, data); err != nil {
		return Row{}, prefixed("event", err)
	}
	md := domain.Metadata{
		OccurredAt: occurred, Actor: w.Actor, Channel: w.Channel,
		CorrelationID: w.CorrelationID, CausationID: w.CausationID,
	}
	if r.Metadata, err = d.complete(md); err != nil {
		return Row{}, err
	}
	return r, nil
}

// record turns the record shape (an export) into a Row that re-imports
// the event with its id, type, payload and metadata.
func (w wireRow) record(d Defaults) (Row, error) {
	mixed := w.CustomerID != "" || w.Identifier != nil || w.CustomerName != "" || w.Event != nil ||
		w.OccurredAt != "" || w.Actor != "" || w.Channel != "" || w.CorrelationID != "" || w.CausationID != ""
	switch {
	case mixed:
		return Row{}, invalid("", "mixes the record shape (stream, data, metadata) with touchpoint fields")
	case w.ID == "":
		return Row{}, invalid("id", "required in a record")
	case w.Stream == "":
		return Row{}, invalid("stream", "required in a record")
	case w.Type == "":
		return Row{}, invalid("type", "required")
	case w.Metadata == nil:
		return Row{}, invalid("metadata", "required in a record")
	}
	var r Row
	var err error
	if r.ID, err = parseID("id", w.ID); err != nil {
		return Row{}, err
	}
	if r.CustomerID, err = domain.ParseStreamID(w.Stream); err != nil {
		return Row{}, err
	}
	current, err := domain.SchemaVersion(w.Type)
	if err != nil {
		return Row{}, err
	}
	md := *w.Metadata
	v := md.SchemaVersion
	if v == 0 {
		v = 1 // not recorded: the first schema
	}
	switch {
	case v == current:
		r.Event, err = domain.Parse(w.Type, w.Data)
	case v < current:
		// Older schema: upcast as history is read, then hold the result
		// to today's rules like any outside input.
		if r.Event, err = domain.Decode(w.Type, v, w.Data); err != nil {
			// An upcaster's complaint is about this row's data.
			return Row{}, invalid("data", "schema %d: %v", v, err)
		}
		err = r.Event.Validate()
	default:
		return Row{}, invalid("metadata.schemaVersion", "%d is newer than this build knows (%d)", v, current)
	}
	if err != nil {
		return Row{}, prefixed("data", err)
	}
	md.SchemaVersion = 0 // the ledger sets the version it encodes
	if md.Actor == "" {
		md.Actor = d.Actor
	}
	if err := md.Validate(d.now()); err != nil {
		return Row{}, err
	}
	r.Metadata = md
	return r, nil
}

// registrationID is the customer id a CustomerRegistered row without one
// registers: the named customer, or, for a row naming an identifier, the
// unkeyed CustomerIDFor — a stand-in that lets the row be validated; the
// import replaces it by the customer the identifier resolves to
// (Row.derivedRegistration).
func (r Row) registrationID() uuid.UUID {
	if r.CustomerID != uuid.Nil {
		return r.CustomerID
	}
	return CustomerIDFor(r.Identifier.Kind, r.Identifier.Normalized)
}

// withCustomerID adds customerId to a registration payload without one,
// so that a row need not repeat the id it already names; added reports
// that it did.
func withCustomerID(data json.RawMessage, id uuid.UUID) (_ json.RawMessage, added bool, _ error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return data, false, nil // not an object: domain.Parse says why
	}
	if _, ok := fields["customerId"]; ok {
		return data, false, nil
	}
	fields["customerId"], _ = json.Marshal(id)
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, false, fmt.Errorf("add customerId to the registration: %w", err)
	}
	return out, true, nil
}

func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, invalid(field, "must be a uuid, got %q", truncate(s, 64))
	}
	if id == uuid.Nil {
		return uuid.Nil, invalid(field, "must not be the nil uuid")
	}
	return id, nil
}

// checkName bounds the customer name given for new customers the way
// CustomerRegistered bounds names.
func checkName(field, s string) error {
	switch {
	case utf8.RuneCountInString(s) > 200:
		return invalid(field, "at most 200 characters")
	case strings.ContainsAny(s, "\x00\r\n"):
		return invalid(field, "must be a single line")
	}
	return nil
}

// strictJSON reports what strictjson.Check finds in outside JSON as a
// validation error naming the member; syntax errors are left to the
// decoder, whose messages say more.
func strictJSON(b []byte) error {
	err := strictjson.Check(b)
	var se *strictjson.Error
	if err == nil || errors.Is(err, strictjson.ErrSyntax) || !errors.As(err, &se) {
		return nil
	}
	if errors.Is(err, strictjson.ErrDuplicateKey) {
		return invalid(se.Path, "%v: keys may not repeat, nor differ only in case", err)
	}
	return invalid(se.Path, "%v", err)
}

// wireError turns an encoding/json failure into a *domain.ValidationError
// naming the field when encoding/json says which.
func wireError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var timeErr *time.ParseError
	switch {
	case errors.As(err, &typeErr):
		want := "value of another type"
		if typeErr.Type != nil {
			want = kindName(typeErr.Type.Kind())
		}
		return invalid(typeErr.Field, "must be a JSON %s, got %s", want, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return invalid("", "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.As(err, &timeErr):
		return invalid("metadata.occurredAt", "must be RFC 3339: %v", timeErr)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "truncated JSON")
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, uerr := strconv.Unquote(msg); uerr == nil {
			return invalid(name, "unknown field")
		}
	}
	return invalid("", "malformed JSON: %v", err)
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "boolean"
	}
	return "number"
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// NDJSON reads rows from newline-delimited JSON, one touchpoint or record
// per line. Blank lines are skipped (but counted, so that line numbers
// match an editor's).
type NDJSON struct {
	r        *bufio.Reader
	defaults Defaults
	line     int
	// MaxLineBytes bounds a line (default DefaultMaxLineBytes); a longer
	// one is rejected, read past and never held whole in memory.
	MaxLineBytes int
}

// NewNDJSON returns a Source reading NDJSON from r.
func NewNDJSON(r io.Reader, d Defaults) *NDJSON {
	return &NDJSON{r: bufio.NewReaderSize(r, 64<<10), defaults: d, MaxLineBytes: DefaultMaxLineBytes}
}

// Next returns the next row, a *RowError for a line that cannot be
// decoded, io.EOF at the end, or the reader's error.
func (s *NDJSON) Next() (Row, error) {
	for {
		line, tooLong, err := s.readLine()
		if err != nil && (err != io.EOF || (len(line) == 0 && !tooLong)) {
			return Row{}, err
		}
		s.line++
		if tooLong {
			return Row{}, rowError(s.line, line, invalid("", "line longer than %d bytes", s.maxLine()))
		}
		if s.line == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF")) // a BOM some editors write
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		row, derr := DecodeLine(line, s.defaults)
		if derr != nil {
			return Row{}, rowError(s.line, line, derr)
		}
		row.Line = s.line
		row.input = echo(line)
		return row, nil
	}
}

func (s *NDJSON) maxLine() int {
	if s.MaxLineBytes <= 0 {
		return DefaultMaxLineBytes
	}
	return s.MaxLineBytes
}

// readLine returns the next line without its line ending. A line over
// the limit is read to its end and dropped, keeping only its start.
func (s *NDJSON) readLine() (line []byte, tooLong bool, err error) {
	max := s.maxLine()
	for {
		chunk, rerr := s.r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+2 { // +2: the line ending
				tooLong = true
				line = append(line, chunk[:min(len(chunk), MaxEchoBytes)]...)
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case rerr == bufio.ErrBufferFull:
			continue
		case rerr != nil && rerr != io.EOF:
			return nil, false, fmt.Errorf("read line %d: %w", s.line+1, rerr)
		}
		if !tooLong {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) > max {
				tooLong = true
			}
		}
		return line, tooLong, rerr
	}
}
