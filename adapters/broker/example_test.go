package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/broker"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
)

// emptyIdentity is an identity read model that knows nobody yet; a server
// passes adapters/query.Service.
type emptyIdentity struct{}

func (emptyIdentity) Lookup(context.Context, domain.IdentifierKind, string) (uuid.UUID, error) {
	return uuid.Nil, projections.ErrNotFound
}

// A server wires both directions: a router consuming touchpoints into the
// store, and a relay publishing the store's events.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := memstore.New(memstore.Config{})
	defer store.Close()
	// Any watermill Publisher and Subscriber will do: NATS JetStream,
	// RabbitMQ, Kafka, SQL. gochannel keeps the example in-process.
	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})

	// Ingest: touchpoints → ledger.
	in, err := broker.NewIngest(broker.Config{Store: store, Lookup: emptyIdentity{}})
	if err != nil {
		panic(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	_, err = in.AddHandler(router, broker.RouteConfig{
		Topic: "cxledger.touchpoints", Subscriber: pubsub,
		PoisonPublisher: pubsub, PoisonTopic: "cxledger.touchpoints.poison",
	})
	if err != nil {
		panic(err)
	}
	go func() { _ = router.Run(ctx) }()
	<-router.Running()

	// Publishing: ledger → broker, checkpointed in a read-model backend.
	events, err := pubsub.Subscribe(ctx, "cxledger.events")
	if err != nil {
		panic(err)
	}
	relay, err := broker.NewRelay(broker.RelayConfig{
		Log:        store,
		Checkpoint: broker.BackendCheckpoint{Backend: projections.NewMemory(), Namespace: "broker_relay"},
		Publisher:  pubsub,
		Topic:      broker.FixedTopic("cxledger.events"),
	})
	if err != nil {
		panic(err)
	}
	go func() { _ = relay.Run(ctx) }()

	// A producer sends a call for an e-mail address nobody holds yet.
	msg, err := broker.NewTouchpointMessage(uuid.MustParse("0195a3c4-6f00-7000-8000-000000000001"), broker.TouchpointMessage{
		Identifier: &broker.Identifier{Kind: domain.IdentifierEmail, Value: "Zoe@Example.com"},
		Name:       "Zoë",
		Type:       domain.TypeCallLogged,
		Event:      json.RawMessage(`{"direction":"inbound","durationSeconds":60,"agent":"user:marta","outcome":"connected"}`),
		OccurredAt: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
		Actor:      "service:pbx",
	})
	if err != nil {
		panic(err)
	}
	if err := pubsub.Publish("cxledger.touchpoints", msg); err != nil {
		panic(err)
	}

	// The customer is registered, linked, and the call appended; all three
	// events come out on the events topic.
	for range 3 {
		m := <-events
		var rec eventstore.Record
		if err := json.Unmarshal(m.Payload, &rec); err != nil {
			panic(err)
		}
		fmt.Println(m.Metadata.Get(broker.MetadataPosition), rec.Type)
		m.Ack()
	}
	// Output:
	// 1 CustomerRegistered
	// 2 IdentifierLinked
	// 3 CallLogged
}
