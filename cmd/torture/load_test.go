package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cxledger/cxledger/adapters/client"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
)

// ackTimeout bounds how long one request is retried before the test gives
// up on it: far above a restart, so only a server that stays down hits it.
const ackTimeout = 90 * time.Second

// attemptTimeout bounds one attempt of a request.
const attemptTimeout = 10 * time.Second

// ack is an acknowledged request: the events it carried, in stream order,
// and where the server said they landed.
type ack struct {
	appender int
	seq      int // the appender's request number
	customer uuid.UUID
	ids      []uuid.UUID
	types    []string
	// firstVersion is the version the first event must have: the stream's
	// length before the request, as the appender, sole writer of the
	// stream, knows it.
	firstVersion uint64
	expected     eventstore.ExpectedVersion
	// version and position are the acknowledgement's.
	version, position uint64
	attempts          int
	lastAttempt       time.Time // when the acknowledged attempt started
}

// loadStats counts what the appenders did.
type loadStats struct {
	requests, events, retried, attempts int
}

// customerState is an appender's knowledge of one of its customers: the
// appender is the only writer of the stream, so the aggregate folded from
// its acknowledged events is the stream's.
type customerState struct {
	id      uuid.UUID
	n       int // events acknowledged (the stream's length)
	agg     *domain.Customer
	tickets []uuid.UUID
	opps    []uuid.UUID
	orders  []uuid.UUID
}

// appender owns a few customers and appends to them, one request at a
// time, each retried with the same ids until acknowledged.
type appender struct {
	n         int
	srv       *server
	rng       *rand.Rand
	customers []*customerState
	// shared identifiers, the same for every appender, so that the identity
	// read model sees links claimed by several customers.
	sharedPhones, sharedExternals []string

	acks  []ack
	stats loadStats
}

func newAppender(n int, seed uint64, srv *server, customers int) *appender {
	a := &appender{
		n: n, srv: srv, rng: rand.New(rand.NewPCG(seed, uint64(n)+1)),
		sharedPhones:    []string{"+33 6 12 34 56 78", "+351 912 345 678", "+49 151 2345 6789"},
		sharedExternals: []string{"shopify:81723", "zendesk:A-1", "salesforce:0031x000"},
	}
	for range customers {
		id := a.newID()
		a.customers = append(a.customers, &customerState{id: id, agg: domain.NewCustomer(id)})
	}
	return a
}

// newID draws a version 4 uuid from the appender's seeded generator, so
// that a seed replays the same ids.
func (a *appender) newID() uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(a.rng.UintN(256))
	}
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	return u
}

// run appends until stop is closed, then returns after its request in
// flight is acknowledged. A request the server refuses for good (4xx) or
// never acknowledges ends the appender with the error.
func (a *appender) run(ctx context.Context, stop <-chan struct{}) error {
	for seq := 1; ; seq++ {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		c := a.customers[a.rng.IntN(len(a.customers))]
		var err error
		if c.n == 0 {
			err = a.register(ctx, seq, c)
		} else {
			err = a.appendEvents(ctx, seq, c)
		}
		if err != nil {
			return fmt.Errorf("appender %d, request %d (customer %s): %w", a.n, seq, c.id, err)
		}
	}
}

// occurredAt is a moment in the last 60 days, in whole milliseconds: set
// once per event, so that a retry sends the very same event.
func (a *appender) occurredAt() time.Time {
	return time.Now().UTC().Add(-time.Duration(a.rng.Int64N(int64(60 * 24 * time.Hour)))).Truncate(time.Millisecond)
}

func (a *appender) metadata() httpapi.Metadata {
	channels := []string{"", "web", "zendesk", "store", "phone"}
	return httpapi.Metadata{
		OccurredAt: a.occurredAt(),
		Actor:      fmt.Sprintf("service:torture-%d", a.n),
		Channel:    channels[a.rng.IntN(len(channels))],
	}
}

// register registers c with an identifier of its own and, sometimes, a
// shared one.
func (a *appender) register(ctx context.Context, seq int, c *customerState) error {
	req := httpapi.RegisterRequest{
		CustomerID: c.id, EventID: a.newID(),
		Name: "Zoë Ñúñez " + c.id.String()[:8], Locale: "fr-FR", Country: "FR",
		Identifiers: []httpapi.Identifier{{Kind: domain.IdentifierEmail, Value: "c-" + c.id.String() + "@torture.example"}},
		Metadata:    a.metadata(),
	}
	if a.rng.IntN(2) == 0 {
		req.Identifiers = append(req.Identifiers, httpapi.Identifier{Kind: domain.IdentifierPhone, Value: a.sharedPhones[a.rng.IntN(len(a.sharedPhones))]})
	}
	// The server derives the identifiers' event ids from EventID; decoding
	// the request as it will tells which ids (and events) to expect.
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	_, tps, err := httpapi.DecodeRegisterRequest(bytes.NewReader(body), time.Now(), uuid.New)
	if err != nil {
		return fmt.Errorf("decode own register request: %w", err)
	}
	events := make([]domain.Event, len(tps))
	ids := make([]uuid.UUID, len(tps))
	for i, tp := range tps {
		events[i], ids[i] = tp.Event, tp.ID
	}
	return a.send(ctx, seq, c, eventstore.NoStream, ids, events, func(ctx context.Context, cl *client.Client) (httpapi.AppendResponse, error) {
		return cl.Register(ctx, req)
	})
}

// appendEvents appends one to three touchpoints that the customer's
// history allows, under an exact expected version, Any or StreamExists.
func (a *appender) appendEvents(ctx context.Context, seq int, c *customerState) error {
	next := c.agg.Clone()
	var events []domain.Event
	for want := 1 + a.rng.IntN(3); len(events) < want; {
		ev := a.touchpoint(c)
		if ev == nil || next.Check(ev) != nil {
			continue
		}
		next.Apply(ev)
		events = append(events, ev)
	}
	req := httpapi.AppendRequest{}
	var expected eventstore.ExpectedVersion
	switch r := a.rng.IntN(10); {
	case r < 5:
		expected = eventstore.Exact(uint64(c.n - 1))
	case r < 9:
		expected = eventstore.Any
	default:
		expected = eventstore.StreamExists
	}
	req.ExpectedVersion = httpapi.ExpectedVersion(expected)
	ids := make([]uuid.UUID, len(events))
	for i, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		ids[i] = a.newID()
		req.Events = append(req.Events, httpapi.EventInput{ID: ids[i], Type: ev.EventType(), Data: data, Metadata: a.metadata()})
	}
	return a.send(ctx, seq, c, expected, ids, events, func(ctx context.Context, cl *client.Client) (httpapi.AppendResponse, error) {
		return cl.AppendRequest(ctx, c.id, req)
	})
}

// send retries do, with the same request, until the server acknowledges
// it, then records the acknowledgement and folds the events into c.
func (a *appender) send(ctx context.Context, seq int, c *customerState, expected eventstore.ExpectedVersion, ids []uuid.UUID, events []domain.Event, do func(context.Context, *client.Client) (httpapi.AppendResponse, error)) error {
	deadline := time.Now().Add(ackTimeout)
	var lastErr error
	attempts := 0
	for {
		if cl := a.srv.client(); cl != nil {
			attempts++
			// The server's clock is this machine's: an event recorded
			// before this moment was stored by an earlier attempt.
			at := time.Now()
			actx, cancel := context.WithTimeout(ctx, attemptTimeout)
			res, err := do(actx, cl)
			cancel()
			if err == nil {
				return a.acknowledged(seq, c, expected, ids, events, res, attempts, at)
			}
			if !retryable(err) {
				return fmt.Errorf("attempt %d refused for good (a retry with the same ids must succeed): %w", attempts, err)
			}
			lastErr = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not acknowledged within %s (%d attempts); last error: %v", ackTimeout, attempts, lastErr)
		}
		// Pace the retries while the server is down; this orders nothing.
		t := time.NewTimer(time.Duration(2+a.rng.IntN(10)) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// retryable reports whether a request may have failed because of the
// crash: no answer at all, or a server error. 4xx answers are final.
func retryable(err error) bool {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Problem.Status >= 500
	}
	return true
}

func (a *appender) acknowledged(seq int, c *customerState, expected eventstore.ExpectedVersion, ids []uuid.UUID, events []domain.Event, res httpapi.AppendResponse, attempts int, at time.Time) error {
	k := ack{
		appender: a.n, seq: seq, customer: c.id, ids: ids, firstVersion: uint64(c.n),
		expected: expected, version: res.Version, position: res.Position, attempts: attempts, lastAttempt: at,
	}
	for _, ev := range events {
		k.types = append(k.types, ev.EventType())
	}
	a.acks = append(a.acks, k)
	a.stats.requests++
	a.stats.events += len(ids)
	a.stats.attempts += attempts
	if attempts > 1 {
		a.stats.retried++
	}
	if want := uint64(c.n + len(ids) - 1); res.Version != want {
		return fmt.Errorf("acknowledged at version %d after %d attempts, want %d: the appender is the stream's only writer and had %d events acknowledged", res.Version, attempts, want, c.n)
	}
	for _, ev := range events {
		c.agg.Apply(ev)
		switch e := ev.(type) {
		case domain.TicketOpened:
			c.tickets = append(c.tickets, e.TicketID)
		case domain.OpportunityOpened:
			c.opps = append(c.opps, e.OpportunityID)
		case domain.PurchaseCompleted:
			c.orders = append(c.orders, e.OrderID)
		}
	}
	c.n += len(ids)
	return nil
}

// touchpoint draws a touchpoint for c, touching every read model; the
// caller drops those the customer's history forbids. It may return nil.
func (a *appender) touchpoint(c *customerState) domain.Event {
	rng := a.rng
	pick := func(ids []uuid.UUID) uuid.UUID {
		if len(ids) == 0 {
			return a.newID()
		}
		return ids[rng.IntN(len(ids))]
	}
	currencies := []string{"EUR", "USD", "JPY"}
	switch rng.IntN(18) {
	case 0:
		if rng.IntN(2) == 0 {
			return domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: a.sharedPhones[rng.IntN(len(a.sharedPhones))]}
		}
		return domain.IdentifierLinked{Kind: domain.IdentifierExternal, Value: a.sharedExternals[rng.IntN(len(a.sharedExternals))]}
	case 1:
		return domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "checkout-form"}
	case 2:
		return domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Reason: "Trop de messages"}
	case 3, 4:
		return domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: rng.Int64N(3600), Agent: "user:marta", Outcome: domain.CallConnected, Summary: "Asked about delivery — livraison prévue"}
	case 5:
		return domain.EmailSent{MessageID: "<" + a.newID().String() + "@torture.example>", Subject: "Votre commande", From: "support@shop.example", To: "zoe@example.fr"}
	case 6, 7:
		amount := 100 + rng.Int64N(100_000)
		currency := currencies[rng.IntN(len(currencies))]
		qty := 1 + rng.Int64N(3)
		// The amount reconciles with the lines: the remainder is shipping.
		return domain.PurchaseCompleted{OrderID: a.newID(), Amount: amount, Currency: currency, Shipping: amount % qty,
			Lines: []domain.OrderLine{{SKU: "EBIKE-40", Description: "Vélo électrique", Quantity: qty, UnitAmount: amount / qty}}}
	case 8:
		if len(c.orders) == 0 {
			return nil
		}
		id := pick(c.orders)
		st, ok := c.agg.Order(id)
		if !ok || st.Amount-st.Refunded <= 0 {
			return nil
		}
		return domain.RefundIssued{RefundID: a.newID(), OrderID: id, Amount: 1 + rng.Int64N(st.Amount-st.Refunded), Currency: st.Currency, Reason: "damaged"}
	case 9:
		return domain.TicketOpened{TicketID: a.newID(), Subject: "Login fails", Priority: domain.PriorityHigh, Channel: domain.TicketEmail}
	case 10:
		return domain.TicketUpdated{TicketID: pick(c.tickets), Status: new(domain.StatusInProgress), Assignee: new("user:jean"), FirstResponse: true}
	case 11:
		return domain.TicketResolved{TicketID: pick(c.tickets), Resolution: "Password reset"}
	case 12:
		return domain.TicketClosed{TicketID: pick(c.tickets)}
	case 13:
		return domain.OpportunityOpened{OpportunityID: a.newID(), Name: "40 e-bikes", Amount: 9_600_000, Currency: "EUR", Stage: domain.StageQualification, ExpectedClose: "2027-06-30"}
	case 14:
		stages := []domain.OpportunityStage{domain.StageProposal, domain.StageNegotiation, domain.StageQualification}
		return domain.OpportunityStageChanged{OpportunityID: pick(c.opps), Stage: stages[rng.IntN(len(stages))]}
	case 15:
		if rng.IntN(2) == 0 {
			return domain.OpportunityWon{OpportunityID: pick(c.opps)}
		}
		return domain.OpportunityLost{OpportunityID: pick(c.opps), Reason: domain.LossPrice}
	case 16:
		return domain.SurveyAnswered{Survey: "nps", NPS: new(rng.IntN(11)), Comment: "ok 👍"}
	default:
		return domain.CampaignTouched{Campaign: "spring-2027", Channel: domain.CampaignEmail, Action: domain.ActionClicked}
	}
}

// runLoad runs the appenders until stop is closed and they have each had
// their last request acknowledged, and returns every acknowledgement.
func runLoad(ctx context.Context, appenders []*appender, stop <-chan struct{}) ([]ack, loadStats, error) {
	var wg sync.WaitGroup
	errs := make([]error, len(appenders))
	for i, a := range appenders {
		wg.Go(func() { errs[i] = a.run(ctx, stop) })
	}
	wg.Wait()
	var acks []ack
	var st loadStats
	for _, a := range appenders {
		acks = append(acks, a.acks...)
		st.requests += a.stats.requests
		st.events += a.stats.events
		st.retried += a.stats.retried
		st.attempts += a.stats.attempts
	}
	return acks, st, errors.Join(errs...)
}
