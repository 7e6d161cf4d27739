package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/adapters/strictjson"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

// ErrInvalidMessage: a message cannot be ingested as sent — its payload is
// not the JSON object TouchpointMessage describes, or its uuid is not a
// uuid. Like domain.ErrInvalid it is permanent: redelivery cannot fix it.
var ErrInvalidMessage = errors.New("invalid touchpoint message")

// TouchpointMessage is the JSON payload of an ingested message: one event
// for one customer, addressed by customer id or by identifier. The
// message's uuid is the event id.
type TouchpointMessage struct {
	// CustomerID addresses a known customer directly.
	CustomerID *uuid.UUID `json:"customerId,omitempty"`
	// Identifier addresses the customer holding it, registering a new
	// customer when nobody does.
	Identifier *Identifier `json:"identifier,omitempty"`
	// Name is the name a customer registered for an unknown identifier
	// gets (default: the normalised identifier). Ignored otherwise.
	Name string `json:"name,omitempty"`
	// Type is the event type, e.g. "CallLogged" (domain.Types lists them).
	Type string `json:"type"`
	// Event is the event payload in the type's current schema, parsed
	// strictly (domain.Parse): unknown fields are errors.
	Event json.RawMessage `json:"event"`
	// OccurredAt is when the touchpoint happened; zero means when the
	// message is first handled.
	OccurredAt time.Time `json:"occurredAt,omitzero"`
	// Actor is "<kind>:<name>" (domain.ActorKinds); empty means
	// Config.DefaultActor.
	Actor         string `json:"actor,omitempty"`
	Channel       string `json:"channel,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
}

// Identifier is an e-mail address, phone number or external id, as in
// domain.IdentifierLinked.
type Identifier struct {
	Kind  domain.IdentifierKind `json:"kind"`
	Value string                `json:"value"`
}

// NewTouchpointMessage returns a watermill message carrying tp, with id as
// its uuid and so as the event id: a producer that publishes again after a
// timeout must reuse the id to keep the event single.
func NewTouchpointMessage(id uuid.UUID, tp TouchpointMessage) (*message.Message, error) {
	payload, err := json.Marshal(tp)
	if err != nil {
		return nil, fmt.Errorf("encode touchpoint message: %w", err)
	}
	return message.NewMessage(id.String(), payload), nil
}

// Lookup resolves an identifier to the customer holding it: the identity
// read model (adapters/query.Service.Lookup). It fails with an error
// wrapping projections.ErrNotFound when nobody holds the identifier. Being
// a read model it lags the log: see Config.Lookup.
type Lookup interface {
	Lookup(ctx context.Context, kind domain.IdentifierKind, value string) (uuid.UUID, error)
}

// Keys protects personal data and derives customer ids:
// adapters/keyring.Keyring.
type Keys interface {
	ledger.Keys
	query.Keys
	// IDKeys derive the id of a customer registered for an identifier
	// (keyring.DerivedCustomerIDs, shared with imports): a keyed hash of
	// the identifier and a generation that moves on when the previous
	// generation's customer was forgotten.
	keyring.IDKeys
}

// Config configures an Ingest.
type Config struct {
	// Store is where touchpoints are appended (through adapters/ledger) and
	// whose streams are read to recognise redeliveries. Required.
	Store ledger.Store
	// Keys seals personal data before it is stored and derives the ids of
	// customers registered for unknown identifiers; nil stores plaintext
	// and derives ids with CustomerIDFor. Lookup must use the same keys.
	Keys Keys
	// Lookup resolves identifiers. Required for messages addressed by
	// identifier. It is eventually consistent: an identifier linked a
	// moment ago to an existing customer and not yet projected is taken as
	// unknown and registers a second customer (the identity read model then
	// lists both, newest first).
	Lookup Lookup
	// DefaultActor is the actor of messages that name none (default
	// "service:broker").
	DefaultActor string
	// Role is who the messages are appended as (default
	// domain.RoleService): their event types must be ones it may append
	// (domain.MayAppend), else the message is refused with
	// domain.ErrForbidden, a permanent error (the poison queue). Only
	// service and admin are allowed: a broker carries outside messages,
	// never the ledger's own (domain.RoleSystem).
	Role domain.Role
	// Now is the clock defaulting occurredAt and validating metadata
	// (default time.Now).
	Now func() time.Time
	// Logger receives one debug line per ingested message (default
	// slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.DefaultActor == "" {
		c.DefaultActor = "service:broker"
	}
	if c.Role == "" {
		c.Role = domain.RoleService
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a missing dependency.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("broker: Config.Store is required")
	}
	if !slices.Contains([]domain.Role{domain.RoleService, domain.RoleAdmin}, c.Role) {
		return fmt.Errorf("broker: Config.Role %q: want service or admin", c.Role)
	}
	return nil
}

// Ingest appends touchpoints received as messages. It is safe for
// concurrent use: messages for one customer may be handled in parallel
// (the ledger serialises them with optimistic concurrency).
type Ingest struct {
	cfg    Config
	ledger *ledger.Service
}

// NewIngest returns an Ingest, or an error when cfg is incomplete.
func NewIngest(cfg Config) (*Ingest, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := ledger.New(cfg.Store)
	l.Now = cfg.Now
	if cfg.Keys != nil {
		l.Keys = cfg.Keys
	}
	return &Ingest{cfg: cfg, ledger: l}, nil
}

// Result says where an ingested touchpoint landed.
type Result struct {
	CustomerID uuid.UUID
	EventID    uuid.UUID
	eventstore.AppendResult
}

// Handle is the watermill handler (a message.NoPublishHandlerFunc): it
// ingests msg and returns nil only once the event is durable, so that the
// router acks only then. Errors for which IsPermanent holds belong in the
// poison queue; others are worth a redelivery. See AddHandler.
func (in *Ingest) Handle(msg *message.Message) error {
	ctx := msg.Context()
	res, err := in.Ingest(ctx, msg.UUID, msg.Payload)
	if err != nil {
		in.cfg.Logger.DebugContext(ctx, "broker: ingest failed", "message", msg.UUID, "permanent", IsPermanent(err), "err", err)
		return err
	}
	in.cfg.Logger.DebugContext(ctx, "broker: ingested", "message", msg.UUID, "customer", res.CustomerID, "position", res.Position)
	return nil
}

var _ message.NoPublishHandlerFunc = (*Ingest)(nil).Handle

// Ingest appends the touchpoint in payload with messageID (a uuid) as its
// event id. Ingesting the same message again appends nothing and returns
// the original result. Errors wrap ErrInvalidMessage, domain.ErrInvalid,
// domain.ErrUnknownType, domain.ErrForbidden (a type Config.Role may not
// append), domain.ErrRejected or the store's errors.
func (in *Ingest) Ingest(ctx context.Context, messageID string, payload []byte) (res Result, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("ingest message %s: %w", messageID, err)
		}
	}()
	id, err := uuid.Parse(messageID)
	if err != nil || id == uuid.Nil {
		return Result{}, fmt.Errorf("%w: the message uuid must be a uuid (it becomes the event id)", ErrInvalidMessage)
	}
	tp, err := decodeMessage(payload)
	if err != nil {
		return Result{}, err
	}
	event, err := domain.Parse(tp.Type, tp.Event)
	if err != nil {
		return Result{}, fmt.Errorf("event: %w", err)
	}
	md := domain.Metadata{
		OccurredAt:    tp.OccurredAt,
		Actor:         tp.Actor,
		Channel:       tp.Channel,
		CorrelationID: tp.CorrelationID,
	}
	if md.Actor == "" {
		md.Actor = in.cfg.DefaultActor
	}
	// A defaulted time differs on every delivery, so a redelivery is no
	// longer byte-identical to what was stored; lenient marks that the
	// store's ErrDuplicateEvent must then be checked against the stream.
	lenient := md.OccurredAt.IsZero()
	if lenient {
		md.OccurredAt = in.cfg.Now()
	}

	var customer uuid.UUID
	if tp.CustomerID != nil {
		customer = *tp.CustomerID
	} else if customer, err = in.resolve(ctx, id, tp, md, lenient); err != nil {
		return Result{}, err
	}
	fact := ledger.Touchpoint{ID: id, Event: event, Metadata: md}
	ar, err := in.appendOnce(ctx, customer, eventstore.Any, lenient, fact)
	if err != nil && tp.Identifier != nil && errors.Is(err, eventstore.ErrDuplicateEvent) {
		// The first delivery registered a customer for the identifier; the
		// read model now names another holder (linked elsewhere meanwhile).
		// The event is stored with the customer it first went to: one of
		// the identifier's derived customers, the newest most likely.
		derived, _ := in.derivedIDs(ctx, tp.Identifier.Kind, tp.Identifier.Value)
		for i := len(derived) - 1; i >= 0; i-- {
			if derived[i] == customer {
				continue
			}
			if res, ok, serr := in.storedAlready(ctx, derived[i], []ledger.Touchpoint{fact}); serr == nil && ok {
				customer, ar, err = derived[i], res, nil
				break
			}
		}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{CustomerID: customer, EventID: id, AppendResult: ar}, nil
}

// decodeMessage reads a TouchpointMessage strictly: outside input with an
// unknown field is more likely a producer bug than something to ignore,
// and it is held to strictjson.Check like every request body.
func decodeMessage(payload []byte) (TouchpointMessage, error) {
	var tp TouchpointMessage
	// Invalid UTF-8 and lone surrogates would be stored as U+FFFD; a
	// repeated key (or one repeated in another case) would be read as
	// its last value here and maybe as its first by another consumer.
	if err := strictjson.Check(payload); err != nil && !errors.Is(err, strictjson.ErrSyntax) {
		return TouchpointMessage{}, fmt.Errorf("%w: payload: %v", ErrInvalidMessage, err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tp); err != nil {
		return TouchpointMessage{}, fmt.Errorf("%w: payload: %v", ErrInvalidMessage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return TouchpointMessage{}, fmt.Errorf("%w: payload: data after the JSON object", ErrInvalidMessage)
	}
	switch {
	case (tp.CustomerID == nil) == (tp.Identifier == nil):
		return TouchpointMessage{}, fmt.Errorf("%w: exactly one of customerId and identifier is required", ErrInvalidMessage)
	case tp.CustomerID != nil && *tp.CustomerID == uuid.Nil:
		return TouchpointMessage{}, fmt.Errorf("%w: customerId must not be the nil uuid", ErrInvalidMessage)
	case tp.Type == "":
		return TouchpointMessage{}, fmt.Errorf("%w: type is required", ErrInvalidMessage)
	case len(tp.Event) == 0:
		return TouchpointMessage{}, fmt.Errorf("%w: event is required", ErrInvalidMessage)
	case tp.Identifier != nil && tp.Type == domain.TypeCustomerRegistered:
		// The ingest registers unknown identifiers itself; a second
		// registration would only be rejected.
		return TouchpointMessage{}, fmt.Errorf("%w: a CustomerRegistered message must be addressed by customerId", ErrInvalidMessage)
	}
	return tp, nil
}

// identifierNamespace is the uuid v5 namespace of customer ids derived
// from identifiers. It is fixed forever: changing it would give every
// identifier-registered customer a second id.
var identifierNamespace = uuid.MustParse("6f1c2b1e-5d0a-4f4e-9b7a-2c3d8e9f0a11")

// CustomerIDFor returns the id of the customer registered for an identifier
// nobody held: a uuid v5 of the kind and the normalised value, so that
// every consumer, delivery and racing message derives the same one.
func CustomerIDFor(kind domain.IdentifierKind, value string) (uuid.UUID, error) {
	norm, err := domain.NormalizeIdentifier(kind, value)
	if err != nil {
		return uuid.Nil, fmt.Errorf("identifier: %w", err)
	}
	return uuid.NewSHA1(identifierNamespace, []byte(string(kind)+":"+norm)), nil
}

// derivedIDs returns the ids derived for an identifier, by generation:
// without Keys the one CustomerIDFor gives; with Keys every generation up
// to the first whose customer is not forgotten, which is last.
func (in *Ingest) derivedIDs(ctx context.Context, kind domain.IdentifierKind, value string) ([]uuid.UUID, error) {
	if in.cfg.Keys == nil {
		id, err := CustomerIDFor(kind, value)
		if err != nil {
			return nil, err
		}
		return []uuid.UUID{id}, nil
	}
	norm, err := domain.NormalizeIdentifier(kind, value)
	if err != nil {
		return nil, fmt.Errorf("identifier: %w", err)
	}
	ids, err := keyring.DerivedCustomerIDs(ctx, in.cfg.Keys, kind, norm)
	if errors.Is(err, keyring.ErrTooManyGenerations) {
		return nil, fmt.Errorf("%w: identifier: %w", ErrInvalidMessage, err)
	}
	return ids, err
}

// resolve finds the customer an identifier addresses, registering one when
// the identity read model knows none.
func (in *Ingest) resolve(ctx context.Context, msgID uuid.UUID, tp TouchpointMessage, md domain.Metadata, lenient bool) (uuid.UUID, error) {
	ident := *tp.Identifier
	if _, err := domain.NormalizeIdentifier(ident.Kind, ident.Value); err != nil {
		return uuid.Nil, fmt.Errorf("identifier: %w", err)
	}
	if in.cfg.Lookup == nil {
		return uuid.Nil, fmt.Errorf("%w: identifier: this consumer resolves customerId only (no identity lookup configured)", ErrInvalidMessage)
	}
	found, err := in.cfg.Lookup.Lookup(ctx, ident.Kind, ident.Value)
	switch {
	case err == nil:
		return found, nil
	case !errors.Is(err, projections.ErrNotFound):
		return uuid.Nil, fmt.Errorf("look up %s identifier: %w", ident.Kind, err)
	}
	ids, err := in.derivedIDs(ctx, ident.Kind, ident.Value)
	if err != nil {
		return uuid.Nil, err
	}
	derived := ids[len(ids)-1]

	name := tp.Name
	if name == "" {
		norm, _ := domain.NormalizeIdentifier(ident.Kind, ident.Value)
		name = truncateRunes(norm, 200)
	}
	// The message caused the registration; its ids derive from the
	// message's so that a redelivery retries the very same append.
	md.CausationID = msgID.String()
	reg := []ledger.Touchpoint{
		{ID: uuid.NewSHA1(msgID, []byte(domain.TypeCustomerRegistered)), Event: domain.CustomerRegistered{CustomerID: derived, Name: name}, Metadata: md},
		{ID: uuid.NewSHA1(msgID, []byte(domain.TypeIdentifierLinked)), Event: domain.IdentifierLinked{Kind: ident.Kind, Value: ident.Value}, Metadata: md},
	}
	_, err = in.appendOnce(ctx, derived, eventstore.NoStream, lenient, reg...)
	switch {
	case err == nil:
		in.cfg.Logger.InfoContext(ctx, "broker: registered customer for unknown identifier", "customer", derived, "kind", ident.Kind, "message", msgID)
		return derived, nil
	case errors.Is(err, eventstore.ErrWrongExpectedVersion):
		// Another message for the same new identifier registered it first
		// (or the read model has not caught up with an earlier one).
		return derived, nil
	default:
		return uuid.Nil, fmt.Errorf("register customer %s: %w", derived, err)
	}
}

// appendOnce appends through the ledger and, when the touchpoints'
// occurredAt was defaulted, recognises a redelivery the store reports as
// ErrDuplicateEvent: the stored events then differ from these only in
// OccurredAt.
func (in *Ingest) appendOnce(ctx context.Context, customer uuid.UUID, expected eventstore.ExpectedVersion, lenient bool, tps ...ledger.Touchpoint) (eventstore.AppendResult, error) {
	res, err := in.ledger.Append(ctx, in.cfg.Role, customer, expected, tps...)
	if err == nil || !lenient || !errors.Is(err, eventstore.ErrDuplicateEvent) {
		return res, err
	}
	stored, ok, serr := in.storedAlready(ctx, customer, tps)
	switch {
	case serr != nil:
		// Not knowing is not permanent: %v keeps the duplicate out of the
		// error chain so that the message is retried, not poisoned.
		return eventstore.AppendResult{}, fmt.Errorf("check whether %v is a redelivery: %w", err, serr)
	case !ok:
		return eventstore.AppendResult{}, err
	}
	return stored, nil
}

// storedAlready reports whether every touchpoint is stored in customer's
// stream with the same type, data (sealed as the ledger seals it) and
// metadata apart from OccurredAt, and where the last one landed.
func (in *Ingest) storedAlready(ctx context.Context, customer uuid.UUID, tps []ledger.Touchpoint) (eventstore.AppendResult, bool, error) {
	stream := domain.StreamID(customer)
	want := make(map[uuid.UUID]eventstore.EventData, len(tps))
	for _, tp := range tps {
		typ, version, data, err := in.ledger.Encode(ctx, customer, tp.Event)
		if err != nil {
			return eventstore.AppendResult{}, false, err
		}
		md := eventstore.Metadata(tp.Metadata)
		md.SchemaVersion = version
		want[tp.ID] = eventstore.EventData{ID: tp.ID, Type: typ, Data: data, Metadata: md}
	}
	var res eventstore.AppendResult
	found := 0
	for from := uint64(0); ; {
		page, err := in.cfg.Store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: from})
		if errors.Is(err, eventstore.ErrNotFound) {
			return eventstore.AppendResult{}, false, nil
		}
		if err != nil {
			return eventstore.AppendResult{}, false, fmt.Errorf("read %s: %w", stream, err)
		}
		for _, r := range page {
			e, ok := want[r.ID]
			if !ok {
				continue
			}
			e.Metadata.OccurredAt = r.Metadata.OccurredAt
			if !eventstore.SameEvent(r, e) {
				return eventstore.AppendResult{}, false, nil
			}
			found++
			res = eventstore.AppendResult{Version: r.Version, Position: r.Position}
		}
		if found == len(want) {
			return res, true, nil
		}
		if len(page) < eventstore.DefaultReadLimit {
			return eventstore.AppendResult{}, false, nil
		}
		from = page[len(page)-1].Version + 1
	}
}

func truncateRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// IsPermanent reports whether an ingest error is a property of the message
// (redelivering it cannot succeed), so that it belongs in the poison queue,
// rather than of the moment (store down, concurrent writer), so that it is
// worth a retry.
func IsPermanent(err error) bool {
	for _, target := range []error{
		ErrInvalidMessage,
		domain.ErrInvalid,
		domain.ErrUnknownType,
		domain.ErrRejected,
		domain.ErrForbidden,
		eventstore.ErrDuplicateEvent,
		eventstore.ErrInvalidEvent,
		eventstore.ErrEventTooLarge,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
