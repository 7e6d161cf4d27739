// Package broker connects the ledger to message brokers through watermill,
// in both directions, and works with any watermill Publisher and Subscriber
// (NATS JetStream, RabbitMQ, Kafka, SQL, the in-process gochannel).
//
// # Ingest: touchpoints from a broker into the ledger
//
// Ingest is a watermill handler (Handle, a message.NoPublishHandlerFunc)
// that appends one touchpoint per message through the shared write path
// (adapters/ledger). The message payload is a JSON object:
//
//	{
//	  "identifier": {"kind": "email", "value": "Zoë.Núñez@Example.com"},
//	  "customerId": "0b0c…",                  // instead of identifier
//	  "name": "Zoë Núñez",                    // optional, for a new customer
//	  "type": "CallLogged",
//	  "event": {"direction": "inbound", …},   // the event, strictly parsed
//	  "occurredAt": "2025-03-01T10:04:05Z",   // optional
//	  "actor": "service:zendesk",             // optional
//	  "channel": "phone",                     // optional
//	  "correlationId": "case-81723"           // optional
//	}
//
// Exactly one of customerId and identifier addresses the customer. An
// identifier is looked up in the identity read model; one nobody holds yet
// registers a new customer (CustomerRegistered then IdentifierLinked, in
// one append) whose id is derived from the normalised identifier, so that
// redeliveries and racing messages for the same new identifier all
// converge on one customer: with a keyring (Config.Keys), a keyed hash
// that nobody without the master key can recompute from a guessed address
// (Keys.CustomerID), moving to the next generation when the customer of
// the previous one was forgotten, so that a forgotten customer's address
// registers a new customer instead of landing on the erased stream;
// without one, an unkeyed uuid v5 (CustomerIDFor). occurredAt defaults
// to the time the message is first handled, actor to Config.DefaultActor.
//
// The message uuid becomes the event id, which makes every redelivery an
// idempotent retry in the store: a message is appended once however often
// it arrives, and a redelivered message whose event is already stored is
// acknowledged. A message is acknowledged only after its event is durable
// (the handler returns nil only after the store's Append returned).
//
// Failures fall into two classes (see IsPermanent). Permanent ones — a
// payload that is not valid JSON of the shape above, a message uuid that is
// not a uuid, an unknown event type, an invalid event
// (domain.ErrInvalid), one the customer's history forbids
// (domain.ErrRejected), an event id already used for another event
// (eventstore.ErrDuplicateEvent) — go to the poison queue with the reason
// in the "reason_poisoned" metadata (watermill's PoisonQueue middleware),
// and nothing is written. Every other failure — the store unavailable, a
// version conflict with a concurrent writer, the identity read model
// unreachable — is retried in place with bounded exponential backoff
// (watermill's Retry middleware) and then nacked for redelivery by the
// broker. Ingest.AddHandler wires the handler with both middlewares.
//
// # Publishing: the ledger's events onto a broker
//
// Relay publishes every appended event to a watermill Publisher at least
// once, in log order, without a dual write: it follows the store's own log
// with a checkpointed subscription (Store.Subscribe from the checkpoint),
// publishes each batch, waiting for the publisher to confirm every message
// before sending the next, and only then commits the checkpoint. A broker
// outage delays publishing and never loses an event: a failed publish is
// retried with backoff and the checkpoint never passes an unpublished
// event. Appends never wait for it: the relay only reads the log.
//
// Each published message has the event id as its uuid and the record JSON
// (eventstore.Record's MarshalJSON) as its payload, with metadata
// MetadataEventID, MetadataPosition, MetadataStream, MetadataVersion and
// MetadataType. After a crash or a broker error the relay republishes at
// most the events after the last committed checkpoint; consumers
// de-duplicate by event id (or keep the last position or stream version
// seen).
package broker
