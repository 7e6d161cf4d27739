package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
	storedjson "github.com/segmentio/encoding/json"
)

// descriptor is everything the codec knows about one event type.
type descriptor struct {
	// version is the current schema version, written by Encode.
	version int
	// decode unmarshals current-schema JSON; strict rejects unknown fields
	// and trailing data.
	decode func(data []byte, strict bool) (Event, error)
	// upcasters[n] turns schema n JSON into schema n+1 JSON.
	upcasters map[int]Upcaster
}

// registry lists every event type by its stored name. It is written out by
// hand, never derived from Go type names: the keys are stored forever.
var registry = map[string]descriptor{
	TypeCustomerRegistered: {version: 1, decode: decodeAs[CustomerRegistered]},
	TypeProfileUpdated:     {version: 1, decode: decodeAs[ProfileUpdated]},
	TypeIdentifierLinked:   {version: 1, decode: decodeAs[IdentifierLinked]},
	TypeConsentGranted:     {version: 1, decode: decodeAs[ConsentGranted]},
	TypeConsentWithdrawn:   {version: 1, decode: decodeAs[ConsentWithdrawn]},
	TypeCustomerForgotten:  {version: 1, decode: decodeAs[CustomerForgotten]},
	TypeCustomerMerged:     {version: 1, decode: decodeAs[CustomerMerged]},
	TypeCustomerUnmerged:   {version: 1, decode: decodeAs[CustomerUnmerged]},

	TypeCallLogged:           {version: 2, decode: decodeAs[CallLogged], upcasters: map[int]Upcaster{1: upcastCallLoggedV1}},
	TypeEmailSent:            {version: 1, decode: decodeAs[EmailSent]},
	TypeEmailReceived:        {version: 1, decode: decodeAs[EmailReceived]},
	TypeEmailOpened:          {version: 1, decode: decodeAs[EmailOpened]},
	TypeEmailClicked:         {version: 1, decode: decodeAs[EmailClicked]},
	TypeChatConversationHeld: {version: 1, decode: decodeAs[ChatConversationHeld]},
	TypeMeetingHeld:          {version: 1, decode: decodeAs[MeetingHeld]},
	TypeSMSSent:              {version: 1, decode: decodeAs[SMSSent]},
	TypeNoteAdded:            {version: 1, decode: decodeAs[NoteAdded]},

	TypePurchaseCompleted: {version: 2, decode: decodeAs[PurchaseCompleted], upcasters: map[int]Upcaster{1: upcastPurchaseCompletedV1}},
	TypeRefundIssued:      {version: 1, decode: decodeAs[RefundIssued]},

	TypeTicketOpened:   {version: 1, decode: decodeAs[TicketOpened]},
	TypeTicketUpdated:  {version: 1, decode: decodeAs[TicketUpdated]},
	TypeTicketResolved: {version: 1, decode: decodeAs[TicketResolved]},
	TypeTicketReopened: {version: 1, decode: decodeAs[TicketReopened]},
	TypeTicketClosed:   {version: 1, decode: decodeAs[TicketClosed]},

	TypeLeadCaptured:            {version: 1, decode: decodeAs[LeadCaptured]},
	TypeOpportunityOpened:       {version: 1, decode: decodeAs[OpportunityOpened]},
	TypeOpportunityStageChanged: {version: 1, decode: decodeAs[OpportunityStageChanged]},
	TypeOpportunityWon:          {version: 1, decode: decodeAs[OpportunityWon]},
	TypeOpportunityLost:         {version: 1, decode: decodeAs[OpportunityLost]},

	TypePointsEarned:     {version: 1, decode: decodeAs[PointsEarned]},
	TypePointsRedeemed:   {version: 1, decode: decodeAs[PointsRedeemed]},
	TypePointsExpired:    {version: 1, decode: decodeAs[PointsExpired]},
	TypePointsClawedBack: {version: 1, decode: decodeAs[PointsClawedBack]},

	TypeCampaignTouched: {version: 1, decode: decodeAs[CampaignTouched]},
	TypeSurveyAnswered:  {version: 1, decode: decodeAs[SurveyAnswered]},

	TypeTicketEscalated: {version: 1, decode: decodeAs[TicketEscalated]},
	TypeMessageQueued:   {version: 1, decode: decodeAs[MessageQueued]},
	TypeDiscountIssued:  {version: 1, decode: decodeAs[DiscountIssued]},

	TypeMessageDelivered: {version: 1, decode: decodeAs[MessageDelivered]},
	TypeMessageFailed:    {version: 1, decode: decodeAs[MessageFailed]},
}

// UnknownTypeError names an event type the codec does not know. It
// unwraps to ErrUnknownType.
type UnknownTypeError struct {
	Type string
}

// Error names the type, quoted.
func (e *UnknownTypeError) Error() string {
	return "unknown event type " + strconv.Quote(e.Type)
}

// Unwrap makes errors.Is(err, ErrUnknownType) true.
func (e *UnknownTypeError) Unwrap() error { return ErrUnknownType }

func lookup(typ string) (descriptor, error) {
	d, ok := registry[typ]
	if !ok {
		return descriptor{}, &UnknownTypeError{Type: typ}
	}
	return d, nil
}

// Encode turns an event into what the store keeps: its type name, the
// current schema version of that type (to put in Metadata.SchemaVersion)
// and its JSON. It validates first, so that nothing invalid is ever stored.
func Encode(e Event) (typ string, schemaVersion int, data []byte, err error) {
	e = deref(e)
	if e == nil {
		return "", 0, nil, &ValidationError{Rule: "event is nil"}
	}
	typ = e.EventType()
	d, err := lookup(typ)
	if err != nil {
		return "", 0, nil, err
	}
	if err := e.Validate(); err != nil {
		return "", 0, nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	data, err = json.Marshal(e)
	if err != nil {
		return "", 0, nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return typ, d.version, data, nil
}

// Decode reads an event from stored history. Data written under an older
// schema version is brought to the current struct by the registered
// upcasters, so history is never rewritten; version 0 (not recorded) means
// 1. Decode is lenient where history needs it: unknown fields (written by a
// newer release) are ignored and the event is not re-validated, because
// rules tighten over time and what was stored stays a fact.
func Decode(typ string, schemaVersion int, data []byte) (Event, error) {
	d, err := lookup(typ)
	if err != nil {
		return nil, err
	}
	if schemaVersion == 0 {
		schemaVersion = 1
	}
	if schemaVersion < 0 || schemaVersion > d.version {
		return nil, fmt.Errorf("decode %s: %w: %d (current is %d)", typ, ErrUnsupportedSchemaVersion, schemaVersion, d.version)
	}
	for v := schemaVersion; v < d.version; v++ {
		up, ok := d.upcasters[v]
		if !ok {
			return nil, fmt.Errorf("decode %s: %w: no upcaster from %d", typ, ErrUnsupportedSchemaVersion, v)
		}
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("decode %s: upcast v%d to v%d: %w", typ, v, v+1, err)
		}
	}
	e, err := d.decode(data, false)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return e, nil
}

// Parse reads an event from outside input (an API request, an import) in
// the current schema, strictly: the type must be known, data must be one
// JSON object with no unknown fields and nothing after it, and the event
// must pass Validate. Errors wrap ErrUnknownType or ErrInvalid.
func Parse(typ string, data []byte) (Event, error) {
	d, err := lookup(typ)
	if err != nil {
		return nil, err
	}
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &ValidationError{Rule: "body must be a JSON object"}
	}
	e, err := d.decode(data, true)
	if err != nil {
		return nil, jsonError(err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeAs unmarshals data into a T. Strict mode is Parse's: unknown
// fields and trailing data are errors.
func decodeAs[T Event](data []byte, strict bool) (Event, error) {
	var v T
	if !strict {
		// Stored events were checked strictly when appended: this is the
		// replay's hot path (decoding was 40% of rebuilding customer 360
		// alone with encoding/json), so it uses a decoder with the same
		// semantics, about three times faster (docs/replay-profile.md).
		if err := storedjson.Unmarshal(data, &v); err != nil {
			return nil, err
		}
		return canonical(v), nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, locateField[T](data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	return canonical(v), nil
}

// canonicalizer is implemented by events whose JSON has two spellings of
// one value (an empty list or no list), so that decoding either gives the
// same struct and Parse → Encode → Parse is the identity.
type canonicalizer interface {
	canonical() Event
}

func canonical(e Event) Event {
	if c, ok := e.(canonicalizer); ok {
		return c.canonical()
	}
	return e
}

// fieldError is a decoding error of one top-level field.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// locateField finds which top-level field made err when encoding/json does
// not say (a malformed uuid comes from uuid's UnmarshalText, without a
// field) by decoding the fields one at a time. It runs only on the error
// path.
func locateField[T Event](data []byte, err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	if errors.As(err, &typeErr) || errors.As(err, &syntaxErr) {
		return err
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return err
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		one, merr := json.Marshal(map[string]json.RawMessage{name: fields[name]})
		if merr != nil {
			continue
		}
		var v T
		if ferr := json.Unmarshal(one, &v); ferr != nil {
			return &fieldError{field: name, err: ferr}
		}
	}
	return err
}

var errTrailing = errors.New("trailing data after the JSON object")

// jsonError turns a decoding failure of outside input into a
// *ValidationError naming the field when encoding/json tells which.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var fieldErr *fieldError
	switch {
	case errors.As(err, &typeErr) && typeErr.Type != nil:
		if typeErr.Type == reflect.TypeFor[uuid.UUID]() {
			return &ValidationError{Field: typeErr.Field, Rule: "must be a uuid string"}
		}
		return &ValidationError{Field: typeErr.Field, Rule: "must be a JSON " + jsonKind(typeErr.Type.Kind().String())}
	case errors.As(err, &syntaxErr):
		return &ValidationError{Rule: "malformed JSON at byte " + strconv.FormatInt(syntaxErr.Offset, 10)}
	case errors.As(err, &fieldErr):
		return &ValidationError{Field: fieldErr.field, Rule: "malformed: " + fieldErr.err.Error()}
	case errors.Is(err, errTrailing):
		return &ValidationError{Rule: err.Error()}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &ValidationError{Rule: "truncated JSON"}
	}
	// Unknown fields: encoding/json reports `json: unknown field "x"`.
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, err := strconv.Unquote(msg); err == nil {
			return &ValidationError{Field: name, Rule: "unknown field"}
		}
	}
	return &ValidationError{Rule: "malformed JSON: " + err.Error()}
}

func jsonKind(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint64":
		return "integer"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	case "ptr":
		return "value of the right type"
	}
	return kind
}
