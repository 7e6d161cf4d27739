package domain

import (
	"reflect"
	"sort"
	"time"

	"github.com/google/uuid"
)

// Event is the payload of one fact in a customer's history. Every event type
// is a plain struct with value methods; its type name is an explicit
// constant (TypeCustomerRegistered, …) that never changes once stored.
type Event interface {
	// EventType returns the stable stored type name, e.g. "ConsentWithdrawn".
	EventType() string
	// Validate checks the event on its own, without history: required
	// fields, enums, ranges, sizes. It returns nil or ValidationErrors.
	Validate() error
}

// Envelope is a stored event with everything the store knows about it. It
// mirrors eventstore.Record with a decoded Event instead of bytes.
type Envelope struct {
	ID         uuid.UUID // event id, the idempotency key
	Stream     string    // "customer-<uuid>", see StreamID
	Type       string    // Event.EventType()
	Version    uint64    // 0-based position in the stream
	Position   uint64    // global position, from 1
	RecordedAt time.Time // store clock
	Metadata   Metadata
	Event      Event
}

// Types returns every known event type name, sorted, for API documentation
// and store filters.
func Types() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// SchemaVersion returns the current schema version of an event type, the
// one Encode writes. Unknown types fail with ErrUnknownType.
func SchemaVersion(typ string) (int, error) {
	d, err := lookup(typ)
	if err != nil {
		return 0, err
	}
	return d.version, nil
}

// deref turns a pointer to an event struct into the struct, so that callers
// passing &TicketOpened{…} get the same treatment as TicketOpened{…}. A nil
// pointer becomes a nil Event instead of a panic in a value method.
func deref(e Event) Event {
	if e == nil {
		return nil
	}
	rv := reflect.ValueOf(e)
	if rv.Kind() != reflect.Pointer {
		return e
	}
	if rv.IsNil() {
		return nil
	}
	if inner, ok := rv.Elem().Interface().(Event); ok {
		return inner
	}
	return e
}
