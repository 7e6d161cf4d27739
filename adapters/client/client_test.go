package client_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/access"
	"github.com/cxledger/cxledger/adapters/client"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/cxledger/cxledger/projections/timeline"
	"github.com/google/uuid"
)

const token = "service-token-0123456789"

// serve runs the API over memory backends and returns its URL.
func serve(t *testing.T) string {
	t.Helper()
	store := memstore.New(memstore.Config{})
	rm := projections.NewMemory()
	eng, err := projections.NewEngine(store, rm, projections.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range catalog.All(catalog.Deps{}) {
		if err := eng.Register(p); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(ctx) }()
	var toks httpapi.Tokens
	if err := toks.Add(httpapi.RoleAdmin, token); err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{Store: store, ReadModels: rm, Projections: eng, Tokens: &toks, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		<-done
	})
	return "http://" + srv.Addr()
}

func md() httpapi.Metadata {
	return httpapi.Metadata{OccurredAt: time.Now().UTC().Add(-time.Minute), Actor: "service:test", Channel: "phone"}
}

func call() domain.CallLogged {
	return domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: 60, Agent: "user:marta", Outcome: domain.CallConnected}
}

func TestClientErrorsMapToSentinels(t *testing.T) {
	ctx := context.Background()
	c := client.New(serve(t), token)
	id := uuid.New()
	reg, err := c.Register(ctx, httpapi.RegisterRequest{CustomerID: id, Name: "Ana", Identifiers: []httpapi.Identifier{{Kind: domain.IdentifierEmail, Value: "ana@example.com"}}, Metadata: md()})
	if err != nil || reg.Version != 1 {
		t.Fatalf("register: %+v %v", reg, err)
	}

	_, err = c.Append(ctx, id, eventstore.Exact(0), client.Touchpoint{Event: call(), Metadata: md()})
	var conflict *eventstore.VersionConflictError
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) || !errors.As(err, &conflict) || conflict.Actual != 1 {
		t.Fatalf("conflict: %v (%+v)", err, conflict)
	}

	bad := call()
	bad.Direction = "sideways"
	_, err = c.Append(ctx, id, eventstore.Any, client.Touchpoint{Event: bad, Metadata: md()})
	var ve *domain.ValidationError
	if !errors.Is(err, domain.ErrInvalid) || !errors.As(err, &ve) || ve.Field != "events[0].data.direction" {
		t.Fatalf("invalid: %v (%+v)", err, ve)
	}

	_, err = c.Append(ctx, id, eventstore.Any, client.Touchpoint{Event: domain.CustomerRegistered{CustomerID: id, Name: "Again"}, Metadata: md()})
	var rej *domain.RejectionError
	if !errors.Is(err, domain.ErrRejected) || !errors.As(err, &rej) || rej.Entity != "customer" {
		t.Fatalf("rejected: %v (%+v)", err, rej)
	}

	tp := client.Touchpoint{ID: uuid.New(), Event: call(), Metadata: md()}
	if _, err := c.Append(ctx, id, eventstore.Any, tp); err != nil {
		t.Fatal(err)
	}
	tp.Metadata.Channel = "email" // same id, other content
	if _, err := c.Append(ctx, id, eventstore.Any, tp); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("duplicate: %v", err)
	}

	// Erasure goes through /forget only, even for admin.
	_, err = c.Append(ctx, id, eventstore.Any, client.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-1"}, Metadata: md()})
	var fe *domain.ForbiddenError
	if !errors.Is(err, client.ErrForbidden) || !errors.Is(err, domain.ErrForbidden) || !errors.As(err, &fe) ||
		fe.Type != domain.TypeCustomerForgotten || fe.Role != domain.RoleAdmin || len(fe.Allowed) != 1 || fe.Allowed[0] != domain.RoleSystem {
		t.Fatalf("forbidden: %v (%+v)", err, fe)
	}

	if _, err := c.Customer(ctx, uuid.New(), 0); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("not found: %v", err)
	}
	if _, err := client.New(c.BaseURL(), "wrong-token-0123456789").ReadAll(ctx, 0, 1); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("unauthorized: %v", err)
	}
}

func TestClientReadsAndSubscribes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := client.New(serve(t), token)
	id := uuid.New()
	reg, err := c.Register(ctx, httpapi.RegisterRequest{CustomerID: id, Name: "Zoë", Identifiers: []httpapi.Identifier{{Kind: domain.IdentifierPhone, Value: "+33 6 12 34 56 78"}}, Metadata: md()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Lookup(ctx, domain.IdentifierPhone, "0033612345678", reg.Position)
	if err != nil || v.CustomerID != id {
		t.Fatalf("lookup: %+v %v", v.CustomerID, err)
	}
	res, err := c.Append(ctx, id, eventstore.Exact(reg.Version), client.Touchpoint{Event: call(), Metadata: md()})
	if err != nil {
		t.Fatal(err)
	}
	if v, err = c.Customer(ctx, id, res.Position); err != nil || v.Events != 3 {
		t.Fatalf("view: events %d %v", v.Events, err)
	}
	tl, err := c.Timeline(ctx, id, timeline.Query{Types: []string{domain.TypeCallLogged}}, res.Position)
	if err != nil || len(tl.Entries) != 1 {
		t.Fatalf("timeline: %+v %v", tl, err)
	}
	page, err := c.ReadStream(ctx, id, 0, 2)
	if err != nil || len(page.Events) != 2 || page.Next == nil || *page.Next != 2 {
		t.Fatalf("stream: %+v %v", page, err)
	}

	// Catch-up (3 stored events), then live (one more). The admin's reads
	// above are in the access log, interleaved in the feed: skip them.
	got := make(chan eventstore.Record, 10)
	subCtx, stop := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- c.Subscribe(subCtx, 0, func(r eventstore.Record) error {
			if r.Type != access.Type {
				got <- r
			}
			return nil
		})
	}()
	// The customer's three events (the access entries in between skipped).
	for i, want := range []uint64{1, reg.Position, res.Position} {
		if r := <-got; r.Position != want {
			t.Fatalf("catch-up %d: position %d, want %d", i, r.Position, want)
		}
	}
	live, err := c.Append(ctx, id, eventstore.Any, client.Touchpoint{Event: domain.NoteAdded{Body: "live"}, Metadata: md()})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.Position != live.Position || r.Type != domain.TypeNoteAdded {
			t.Fatalf("live: %+v", r)
		}
	case <-ctx.Done():
		t.Fatal("live event not delivered")
	}
	stop()
	if err := <-subDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("subscribe ended with %v", err)
	}
}
