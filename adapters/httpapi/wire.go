package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/strictjson"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
)

// The wire types of the API, shared with adapters/client so that both ends
// agree by construction. The OpenAPI document (openapi.yaml) describes the
// same shapes.

// ExpectedVersion is an eventstore.ExpectedVersion on the wire: the strings
// "any", "no-stream", "exists", or a version number (0-based). Absent means
// "any".
type ExpectedVersion eventstore.ExpectedVersion

// MarshalJSON writes a number for an exact version, else the keyword.
func (e ExpectedVersion) MarshalJSON() ([]byte, error) {
	if v, ok := eventstore.ExpectedVersion(e).IsExact(); ok {
		return strconv.AppendUint(nil, v, 10), nil
	}
	return json.Marshal(FormatExpected(eventstore.ExpectedVersion(e)))
}

// UnmarshalJSON reads a number or one of the keywords.
func (e *ExpectedVersion) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	v, err := ParseExpected(s)
	if err != nil {
		return err
	}
	*e = ExpectedVersion(v)
	return nil
}

// ParseExpected reads "any", "no-stream", "exists" or a version number.
func ParseExpected(s string) (eventstore.ExpectedVersion, error) {
	switch s {
	case "any", "":
		return eventstore.Any, nil
	case "no-stream":
		return eventstore.NoStream, nil
	case "exists":
		return eventstore.StreamExists, nil
	}
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, &domain.ValidationError{Field: "expectedVersion", Rule: `must be "any", "no-stream", "exists" or a version number`}
	}
	return eventstore.Exact(v), nil
}

// FormatExpected is ParseExpected's inverse.
func FormatExpected(e eventstore.ExpectedVersion) string {
	switch e {
	case eventstore.Any:
		return "any"
	case eventstore.NoStream:
		return "no-stream"
	case eventstore.StreamExists:
		return "exists"
	}
	return e.String()
}

// Metadata is an event's metadata as a client sends it. OccurredAt and
// Actor are required: the server does not default them, because a default
// taken from the server clock would make a retried request differ from the
// original and turn an idempotent retry into a duplicate.
type Metadata struct {
	OccurredAt    time.Time `json:"occurredAt,omitzero"`
	Actor         string    `json:"actor,omitempty"`
	Channel       string    `json:"channel,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
	CausationID   string    `json:"causationId,omitempty"`
}

// UnmarshalJSON reads metadata strictly, like the rest of a request, and
// reports a malformed occurredAt as a validation error naming the field:
// time.Time's own error names none.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	type plain Metadata
	var raw struct {
		plain
		OccurredAt json.RawMessage `json:"occurredAt"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	*m = Metadata(raw.plain)
	if len(raw.OccurredAt) > 0 && !bytes.Equal(raw.OccurredAt, []byte("null")) {
		if err := json.Unmarshal(raw.OccurredAt, &m.OccurredAt); err != nil {
			return &domain.ValidationError{Field: "metadata.occurredAt", Rule: "must be an RFC 3339 time string such as 2026-01-02T10:00:00Z"}
		}
	}
	return nil
}

// EventInput is one touchpoint to append.
type EventInput struct {
	// ID is the event id and idempotency key; omitted, the server makes
	// one (and a retry of the request is then not recognised). The nil
	// uuid is refused (422), not taken for an omitted id.
	ID       uuid.UUID       `json:"id,omitzero"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata Metadata        `json:"metadata"`
}

// AppendRequest is the body of POST /v1/customers/{id}/events.
type AppendRequest struct {
	ExpectedVersion ExpectedVersion `json:"expectedVersion"`
	Events          []EventInput    `json:"events"`
}

// AppendResponse says where an append (or registration) landed.
type AppendResponse struct {
	CustomerID uuid.UUID `json:"customerId"`
	Stream     string    `json:"stream"`
	// Version is the stream's version after the append; Position the
	// global position of its last event (pass it as minPosition to read
	// your write from the read models).
	Version  uint64 `json:"version"`
	Position uint64 `json:"position"`
}

// Identifier is an e-mail address, phone number or external id.
type Identifier struct {
	Kind  domain.IdentifierKind `json:"kind"`
	Value string                `json:"value"`
}

// RegisterRequest is the body of POST /v1/customers: the registration and
// the customer's first identifiers, appended atomically.
type RegisterRequest struct {
	// CustomerID is the new customer's id; omitted, the server makes one.
	// Set it (with EventID) to make a retry idempotent. The nil uuid is
	// refused (422), here and as EventID.
	CustomerID uuid.UUID `json:"customerId,omitzero"`
	// EventID is the CustomerRegistered event's id; the identifiers' event
	// ids are derived from it, so one EventID makes the whole request
	// idempotent.
	EventID     uuid.UUID    `json:"eventId,omitzero"`
	Name        string       `json:"name"`
	Locale      string       `json:"locale,omitempty"`
	Country     string       `json:"country,omitempty"`
	Company     string       `json:"company,omitempty"`
	Identifiers []Identifier `json:"identifiers,omitempty"`
	Metadata    Metadata     `json:"metadata"`
}

// EventsPage is a page of a stream or of the global log.
type EventsPage struct {
	Events []eventstore.Record `json:"events"`
	// Next continues the read: the global position to pass as after, or
	// the stream version to pass as from; absent when the page was short.
	Next *uint64 `json:"next,omitempty"`
}

// maxEvents bounds the events of one append request.
const maxEvents = 1000

// decodeJSON reads exactly one JSON value into v, strictly: unknown fields
// and trailing data are errors, so that a misspelt field is reported
// instead of silently ignored.
//
// Before decoding, the body is held to strictjson.Check: valid UTF-8
// (RFC 8259; encoding/json would otherwise replace invalid bytes with
// U+FFFD and store text the client never sent), no lone surrogate escape
// (which it turns into U+FFFD alike), and no key twice in an object, nor
// two keys differing only in case (encoding/json keeps the last and
// matches fields case-insensitively, so a proxy reading the first key
// would see another request than the one executed). Reading the body whole
// costs nothing more: it is bounded by Config.MaxBodyBytes and decoded in
// full anyway.
func decodeJSON(r io.Reader, v any) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return jsonProblem(err)
	}
	if err := strictBody(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return malformed("trailing data after the JSON body")
	}
	return nil
}

// strictBody reports what strictjson.Check finds in a body as a 400 naming
// the member (`duplicate key "expectedVersion"`), with its path as the
// problem's field. Syntax errors are left to the decoder, whose messages
// say more.
func strictBody(body []byte) error {
	err := strictjson.Check(body)
	var se *strictjson.Error
	if err == nil || errors.Is(err, strictjson.ErrSyntax) || !errors.As(err, &se) {
		return nil
	}
	if errors.Is(err, strictjson.ErrInvalidUTF8) && se.Path == "" {
		return malformed("body is not valid UTF-8 (at byte %d)", se.Offset)
	}
	rule := se.Err.Error()
	if errors.Is(err, strictjson.ErrDuplicateKey) {
		rule = "appears twice in its object (keys may not repeat, nor differ only in case)"
	}
	return fmt.Errorf("%w: %w", ErrMalformed, &fieldError{msg: err.Error(), ve: &domain.ValidationError{Field: se.Path, Rule: rule}})
}

// fieldError carries a message of its own and a validation error naming
// the field, so that a 400 also fills the problem's field and errors.
type fieldError struct {
	msg string
	ve  *domain.ValidationError
}

func (e *fieldError) Error() string { return e.msg }
func (e *fieldError) Unwrap() error { return e.ve }

// jsonProblem turns a decoding error into ErrMalformed, ErrTooLarge, or a
// validation error naming the field when the JSON is well formed but a
// value has the wrong type.
func jsonProblem(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, tooBig.Limit)
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &domain.ValidationError{Field: typeErr.Field, Rule: "wrong type: got a JSON " + typeErr.Value}
	}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		return ve
	}
	if errors.Is(err, io.EOF) {
		return malformed("empty body: a JSON object is required")
	}
	return malformed("body is not valid JSON: %v", err)
}

// DecodeAppendRequest reads and checks an append request body: strict JSON,
// 1 to 1000 events, each of a known type whose data parses strictly
// (domain.Parse) and whose metadata validates at now. It returns the
// expected version and the touchpoints for ledger.Service.Append. Invalid
// fields are reported as *domain.ValidationError with their full JSON path
// in the request ("events[1].data.amount").
func DecodeAppendRequest(body io.Reader, now time.Time) (eventstore.ExpectedVersion, []ledger.Touchpoint, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return 0, nil, jsonProblem(err)
	}
	// Absent means "any"; the zero value would mean version 0.
	req := AppendRequest{ExpectedVersion: ExpectedVersion(eventstore.Any)}
	if err := decodeJSON(bytes.NewReader(raw), &req); err != nil {
		return 0, nil, err
	}
	if err := rejectNilEventIDs(raw, req.Events); err != nil {
		return 0, nil, err
	}
	switch {
	case len(req.Events) == 0:
		return 0, nil, &domain.ValidationError{Field: "events", Rule: "at least one event is required"}
	case len(req.Events) > maxEvents:
		return 0, nil, &domain.ValidationError{Field: "events", Rule: fmt.Sprintf("at most %d events per request", maxEvents)}
	}
	tps := make([]ledger.Touchpoint, len(req.Events))
	seen := make(map[uuid.UUID]int, len(req.Events))
	for i, in := range req.Events {
		tp, err := touchpoint(fmt.Sprintf("events[%d]", i), in, now)
		if err != nil {
			return 0, nil, err
		}
		if in.ID != uuid.Nil {
			if j, dup := seen[in.ID]; dup {
				return 0, nil, &domain.ValidationError{Field: fmt.Sprintf("events[%d].id", i), Rule: fmt.Sprintf("repeats events[%d].id", j)}
			}
			seen[in.ID] = i
		}
		tps[i] = tp
	}
	return eventstore.ExpectedVersion(req.ExpectedVersion), tps, nil
}

// nilIDRule is the rule a nil uuid sent as an id breaks: the nil uuid is
// "no id", and taking it as absent would give every retry a fresh id (or
// customer), the very duplicates an explicit id is there to prevent.
const nilIDRule = "must not be the nil uuid: send a real id, or leave the field out for the server to make one"

// rejectNilEventIDs reports an event whose id was sent as the nil uuid
// (in any of its spellings), which decodes like an absent id. Only a
// request with some event lacking an id is read again to tell them apart.
func rejectNilEventIDs(body []byte, events []EventInput) error {
	if !slices.ContainsFunc(events, func(e EventInput) bool { return e.ID == uuid.Nil }) {
		return nil
	}
	var ids struct {
		Events []struct {
			ID *uuid.UUID `json:"id"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &ids); err != nil {
		return jsonProblem(err) // not reached: the body decoded strictly
	}
	for i, e := range ids.Events {
		if e.ID != nil && *e.ID == uuid.Nil {
			return &domain.ValidationError{Field: fmt.Sprintf("events[%d].id", i), Rule: nilIDRule}
		}
	}
	return nil
}

// touchpoint parses one event of a request; path is its JSON path.
func touchpoint(path string, in EventInput, now time.Time) (ledger.Touchpoint, error) {
	if in.Type == "" {
		return ledger.Touchpoint{}, &domain.ValidationError{Field: path + ".type", Rule: "required"}
	}
	if len(bytes.TrimSpace(in.Data)) == 0 {
		return ledger.Touchpoint{}, &domain.ValidationError{Field: path + ".data", Rule: "required"}
	}
	ev, err := domain.Parse(in.Type, in.Data)
	if err != nil {
		return ledger.Touchpoint{}, prefixFields(path+".data", err)
	}
	md := domain.Metadata{
		OccurredAt: in.Metadata.OccurredAt, Actor: in.Metadata.Actor, Channel: in.Metadata.Channel,
		CorrelationID: in.Metadata.CorrelationID, CausationID: in.Metadata.CausationID,
	}
	if err := md.Validate(now); err != nil {
		return ledger.Touchpoint{}, prefixFields(path, err)
	}
	return ledger.Touchpoint{ID: in.ID, Event: ev, Metadata: md}, nil
}

// prefixFields rewrites the validation errors in err with field paths
// relative to the request body; other errors (an unknown type) pass
// through.
func prefixFields(prefix string, err error) error {
	ves := validationErrors(err)
	if len(ves) == 0 {
		return err
	}
	out := make(domain.ValidationErrors, len(ves))
	for i, ve := range ves {
		f := prefix
		switch {
		case ve.Field == "":
		case strings.HasPrefix(ve.Field, "["):
			f += ve.Field
		default:
			f += "." + ve.Field
		}
		out[i] = &domain.ValidationError{Field: f, Rule: ve.Rule}
	}
	return out
}

// DecodeRegisterRequest reads a registration and returns the customer id
// and its touchpoints: CustomerRegistered, then one IdentifierLinked per
// identifier, with ids derived from the registration's event id.
func DecodeRegisterRequest(body io.Reader, now time.Time, newID func() uuid.UUID) (uuid.UUID, []ledger.Touchpoint, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return uuid.Nil, nil, jsonProblem(err)
	}
	var req RegisterRequest
	if err := decodeJSON(bytes.NewReader(raw), &req); err != nil {
		return uuid.Nil, nil, err
	}
	if req.CustomerID == uuid.Nil || req.EventID == uuid.Nil {
		// Sent as the nil uuid, or absent? Absent gets a new id; the nil
		// uuid would too, so that each retry registered a new customer.
		var ids struct {
			CustomerID *uuid.UUID `json:"customerId"`
			EventID    *uuid.UUID `json:"eventId"`
		}
		if err := json.Unmarshal(raw, &ids); err != nil {
			return uuid.Nil, nil, jsonProblem(err) // not reached: decoded strictly above
		}
		if ids.CustomerID != nil && *ids.CustomerID == uuid.Nil {
			return uuid.Nil, nil, &domain.ValidationError{Field: "customerId", Rule: nilIDRule}
		}
		if ids.EventID != nil && *ids.EventID == uuid.Nil {
			return uuid.Nil, nil, &domain.ValidationError{Field: "eventId", Rule: nilIDRule}
		}
	}
	if len(req.Identifiers) > 100 {
		return uuid.Nil, nil, &domain.ValidationError{Field: "identifiers", Rule: "at most 100"}
	}
	id := req.CustomerID
	if id == uuid.Nil {
		id = newID()
	}
	eventID := req.EventID
	if eventID == uuid.Nil {
		eventID = newID()
	}
	md := domain.Metadata{
		OccurredAt: req.Metadata.OccurredAt, Actor: req.Metadata.Actor, Channel: req.Metadata.Channel,
		CorrelationID: req.Metadata.CorrelationID, CausationID: req.Metadata.CausationID,
	}
	var errs domain.ValidationErrors
	reg := domain.CustomerRegistered{CustomerID: id, Name: req.Name, Locale: req.Locale, Country: req.Country, Company: req.Company}
	if err := reg.Validate(); err != nil {
		errs = append(errs, validationErrors(prefixFields("", err))...)
	}
	tps := []ledger.Touchpoint{{ID: eventID, Event: reg, Metadata: md}}
	for i, ident := range req.Identifiers {
		link := domain.IdentifierLinked{Kind: ident.Kind, Value: ident.Value}
		if err := link.Validate(); err != nil {
			errs = append(errs, validationErrors(prefixFields(fmt.Sprintf("identifiers[%d]", i), err))...)
		}
		// Derived ids: a retry of the same request carries the same ids.
		linkID := uuid.NewSHA1(eventID, []byte("identifier/"+strconv.Itoa(i)))
		tps = append(tps, ledger.Touchpoint{ID: linkID, Event: link, Metadata: md})
	}
	if err := md.Validate(now); err != nil {
		errs = append(errs, validationErrors(err)...)
	}
	if len(errs) > 0 {
		for _, e := range errs {
			e.Field = strings.TrimPrefix(e.Field, ".")
		}
		return uuid.Nil, nil, errs
	}
	return id, tps, nil
}
