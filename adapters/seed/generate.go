// Package seed generates a realistic, deterministic CRM history for demos,
// tests and benchmarks, and writes it to an event store: by appends (Seed)
// or through the store's bulk import path (Import).
//
// A Generator turns (seed, customer index) into that customer's whole
// ordered stream: registration, identifiers and consents, purchases on the
// customer's rhythm (weekly, monthly, quarterly, once, never) until some
// churn, refunds, support tickets with priority-dependent response and
// resolution times, B2B opportunities through the pipeline, newsletter
// campaigns, NPS surveys, calls, e-mails and chats. Each customer has its own
// random source derived from the seed and its index, so histories can be
// generated in any order, concurrently, and come out byte-identical every
// time. Every event is validated and decided by the domain's Customer
// aggregate as it is generated: a generated history is one the ledger's
// write path would have accepted.
package seed

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
)

// DefaultReference is the end of generated history when Config.Reference is
// zero: a fixed date, so that the same seed gives the same events whatever
// the day it runs.
var DefaultReference = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultSpan is how far before the reference date history starts.
const DefaultSpan = 730 * 24 * time.Hour

// MaxEventsPerCustomer bounds one customer's history: event ids keep the
// event's index in 20 bits (see eventID).
const MaxEventsPerCustomer = 1<<20 - 1

// Config says what to generate. The zero Config generates nothing; set
// Customers or MaxEvents.
type Config struct {
	// Customers is the number of customers, the heavy one included. 0 with
	// MaxEvents set means as many as MaxEvents needs.
	Customers int
	// Seed selects the history; the same Seed (and Config) always gives
	// the same events, ids included.
	Seed uint64
	// Reference is the end of history: no event occurs after it.
	// DefaultReference when zero.
	Reference time.Time
	// Span is how long before Reference history starts; DefaultSpan when 0.
	Span time.Duration
	// HeavyEvents, when positive, makes customer 0 a key account whose
	// history has exactly this many events (benchmarks read a long
	// timeline from it).
	HeavyEvents int
	// MaxEvents, when positive, stops generation after this many events in
	// total; the last customer's history is cut short (a prefix of a valid
	// history is valid).
	MaxEvents int
	// Concurrency is the number of concurrent appenders of Seed; 0 means 8.
	// Import writes one batch at a time and ignores it.
	Concurrency int
	// ChunkEvents caps the events of one append of Seed; 0 means 1000. A
	// customer with more events is appended in several appends at exact
	// versions.
	ChunkEvents int
	// ImportEvents caps the records of one Import call; 0 means 20,000.
	// A batch holds whole customers, as many as fit; only a customer
	// longer than the cap is split over several calls.
	ImportEvents int
	// Generators is the number of goroutines generating histories for Seed,
	// Import and SpanFor; 0 means GOMAXPROCS. Histories are delivered in
	// customer order whatever their number, so it changes the speed, never
	// the events.
	Generators int
	// ProgressEvery is how often Seed and Import report progress; 0 means
	// a second.
	ProgressEvery time.Duration
}

// DefaultImportEvents is Config.ImportEvents when zero: big enough that a
// batch's fixed cost (a transaction, a commit, an fsync) is spread over many
// events, small enough that the next batch is generated while the store
// writes this one without holding much memory, and that the store's own
// transaction stays cheap (boltstore took twice as long with batches of
// 100,000).
const DefaultImportEvents = 20_000

func (c *Config) setDefaults() {
	if c.Reference.IsZero() {
		c.Reference = DefaultReference
	}
	c.Reference = c.Reference.UTC()
	if c.Span == 0 {
		c.Span = DefaultSpan
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.ChunkEvents == 0 {
		c.ChunkEvents = 1000
	}
	if c.ImportEvents == 0 {
		c.ImportEvents = DefaultImportEvents
	}
	if c.Generators == 0 {
		c.Generators = runtime.GOMAXPROCS(0)
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Customers < 0 || c.MaxEvents < 0 || c.HeavyEvents < 0:
		return errors.New("seed: customers, events and heavy events must not be negative")
	case c.Customers == 0 && c.MaxEvents == 0:
		return errors.New("seed: set the number of customers or of events")
	case c.HeavyEvents > MaxEventsPerCustomer:
		return fmt.Errorf("seed: heavy customer of %d events: at most %d", c.HeavyEvents, MaxEventsPerCustomer)
	case c.Span < 0 || c.Concurrency < 0 || c.ChunkEvents < 0 || c.ImportEvents < 0 || c.Generators < 0:
		return errors.New("seed: span, concurrency, chunk and import sizes and generators must not be negative")
	}
	return nil
}

// Rhythm is how often a customer buys.
type Rhythm string

// Purchase rhythms.
const (
	Weekly    Rhythm = "weekly"
	Monthly   Rhythm = "monthly"
	Quarterly Rhythm = "quarterly"
	OneOff    Rhythm = "one-off"
	NoBuyer   Rhythm = "none"
)

// Traits are the hidden parameters a customer's history was drawn from,
// for tests and for picking sample customers.
type Traits struct {
	Rhythm   Rhythm
	Currency string
	Country  string
	// Churned: the customer stopped buying (and mostly engaging) at ChurnAt.
	Churned bool
	ChurnAt time.Time
	// B2B customers have a company and sales opportunities.
	B2B bool
	// Forgotten customers end with CustomerForgotten.
	Forgotten bool
	// Heavy marks the key account of Config.HeavyEvents.
	Heavy bool
}

// History is one customer's generated stream, in version order.
type History struct {
	Index    int
	Customer uuid.UUID
	Stream   string
	Traits   Traits
	Events   []eventstore.EventData
}

// Generator makes customer histories. It is safe for concurrent use.
type Generator struct {
	cfg Config
}

// NewGenerator returns a generator for cfg.
func NewGenerator(cfg Config) (*Generator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Generator{cfg: cfg}, nil
}

// Config returns the generator's configuration, defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// rngFor is customer i's random source: PCG seeded from the seed and the
// index, so that each history depends on nothing else.
func (g *Generator) rngFor(i int, salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.cfg.Seed^0x9E3779B97F4A7C15, uint64(i)*0xBF58476D1CE4E5B9+salt))
}

// Customer generates the history of customer i (0-based). Customer 0 is the
// heavy key account when Config.HeavyEvents is set. An error means the
// generator produced an event the domain refuses: a bug in the generator.
func (g *Generator) Customer(i int) (History, error) {
	if g.cfg.HeavyEvents > 0 && i == 0 {
		return g.heavy()
	}
	return g.build(i, 1, false)
}

// heavy grows the key account's activity until its history reaches
// HeavyEvents, then cuts it there.
func (g *Generator) heavy() (History, error) {
	want := g.cfg.HeavyEvents
	factor := max(1, float64(want)/60)
	for {
		h, err := g.build(0, factor, true)
		if err != nil {
			return History{}, err
		}
		if len(h.Events) >= want {
			h.Events = h.Events[:want]
			return h, nil
		}
		factor *= 1.3 * float64(want) / float64(max(len(h.Events), 1))
	}
}

// pending is an event waiting to be ordered: flows are generated one at a
// time (an order and its refund, a ticket's life) and merged by time.
type pending struct {
	at      time.Time
	seq     int
	event   domain.Event
	actor   string
	channel string
	corr    string
	cause   *pending // its id becomes CausationID
	id      uuid.UUID
}

// customer is the state of one history being drawn.
type customer struct {
	r       *rand.Rand
	idx     int
	id      uuid.UUID
	t       Traits
	mk      market
	start   time.Time // registration
	end     time.Time // Reference
	active  time.Time // end of buying: churn or Reference
	factor  float64   // activity multiplier (the heavy account)
	events  []*pending
	email   string
	phone   string
	mailbox int // message-id counter
}

func (c *customer) add(at time.Time, e domain.Event, actor, channel, corr string, cause *pending) *pending {
	p := &pending{at: at.Truncate(time.Millisecond), seq: len(c.events), event: e, actor: actor, channel: channel, corr: corr, cause: cause}
	c.events = append(c.events, p)
	return p
}

func (g *Generator) build(i int, factor float64, heavy bool) (History, error) {
	r := g.rngFor(i, 0)
	c := &customer{r: r, idx: i, factor: factor, end: g.cfg.Reference}
	c.id = v8(r.Uint64(), r.Uint64())
	c.mk = pickMarket(r)
	c.t.Currency, c.t.Country, c.t.Heavy = c.mk.currency, c.mk.country, heavy
	c.t.Rhythm = pickWeighted(r, []Rhythm{Weekly, Monthly, Quarterly, OneOff, NoBuyer}, []int{8, 22, 25, 30, 15})
	c.t.B2B = r.IntN(100) < 15
	span := g.cfg.Span
	// Registrations spread over the whole window: early customers have long
	// histories, recent ones short.
	c.start = g.cfg.Reference.Add(-time.Duration(float64(span) * (0.02 + 0.98*r.Float64())))
	c.active = c.end
	if heavy {
		c.t.Rhythm, c.t.B2B = Weekly, true
		c.start = g.cfg.Reference.Add(-span)
	} else {
		if (c.t.Rhythm == Weekly || c.t.Rhythm == Monthly || c.t.Rhythm == Quarterly) && r.IntN(100) < 25 {
			life := c.end.Sub(c.start)
			c.t.Churned = true
			c.t.ChurnAt = c.start.Add(time.Duration(float64(life) * (0.2 + 0.6*r.Float64()))).Truncate(time.Millisecond)
			c.active = c.t.ChurnAt
		}
		c.t.Forgotten = r.IntN(1000) < 3
	}

	c.profile()
	c.purchases()
	c.tickets()
	if c.t.B2B {
		c.opportunities()
	}
	c.engagement()

	return c.finish()
}

// finish orders the flows, cuts them at the reference date (and at an
// erasure), assigns ids, and folds every event through the aggregate.
func (c *customer) finish() (History, error) {
	slices.SortStableFunc(c.events, func(a, b *pending) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.seq, b.seq))
	})
	cut := c.end
	if c.t.Forgotten {
		first := c.events[0].at
		cut = first.Add(time.Duration(float64(c.end.Sub(first)) * (0.5 + 0.5*c.r.Float64()))).Truncate(time.Millisecond)
	}
	kept := c.events[:0]
	for _, p := range c.events {
		if !p.at.After(cut) {
			kept = append(kept, p)
		}
	}
	if c.t.Forgotten {
		kept = append(kept, &pending{at: cut, event: domain.CustomerForgotten{Request: "DSR-" + strconv.Itoa(100000+c.r.IntN(900000)), Reason: "GDPR art. 17 request"}, actor: "user:privacy.officer", channel: "email"})
	}
	if len(kept) > MaxEventsPerCustomer {
		kept = kept[:MaxEventsPerCustomer]
	}
	h := History{Index: c.idx, Customer: c.id, Stream: domain.StreamID(c.id), Traits: c.t, Events: make([]eventstore.EventData, 0, len(kept))}
	agg := domain.NewCustomer(c.id)
	for n, p := range kept {
		p.id = eventID(c.idx, n, c.r.Uint64())
		md := domain.Metadata{OccurredAt: p.at, Actor: p.actor, Channel: p.channel, CorrelationID: p.corr}
		if p.cause != nil && p.cause.id != uuid.Nil {
			md.CausationID = p.cause.id.String()
		}
		if err := md.Validate(c.end); err != nil {
			return History{}, fmt.Errorf("seed: customer %d event %d (%s): %w", c.idx, n, p.event.EventType(), err)
		}
		if err := agg.Check(p.event); err != nil {
			return History{}, fmt.Errorf("seed: customer %d event %d (%s): %w", c.idx, n, p.event.EventType(), err)
		}
		agg.Apply(p.event)
		typ, version, data, err := domain.Encode(p.event)
		if err != nil {
			return History{}, fmt.Errorf("seed: customer %d event %d: %w", c.idx, n, err)
		}
		md.SchemaVersion = version
		h.Events = append(h.Events, eventstore.EventData{ID: p.id, Type: typ, Data: data, Metadata: eventstore.Metadata(md)})
	}
	return h, nil
}

// profile: registration, identifiers, consents, a lead, profile changes.
func (c *customer) profile() {
	r := c.r
	first, last := c.mk.first[r.IntN(len(c.mk.first))], c.mk.last[r.IntN(len(c.mk.last))]
	reg := domain.CustomerRegistered{CustomerID: c.id, Name: first.display + " " + last.display, Locale: c.mk.locale, Country: c.mk.country}
	if c.t.B2B {
		reg.Company = companies[r.IntN(len(companies))]
	}
	actor, channel := "service:shop", "web"
	if r.IntN(100) < 20 {
		actor, channel = "import:crm-migration-2024", "legacy-crm"
	}
	regEv := c.add(c.start, reg, actor, channel, "signup-"+c.id.String()[:8], nil)
	// Unique per customer, so the identity index sees no false conflicts.
	c.email = fmt.Sprintf("%s.%s%d@%s", first.handle, last.handle, c.idx, mailDomains[r.IntN(len(mailDomains))])
	shown := c.email
	if r.IntN(10) == 0 {
		shown = "  " + strings.ToUpper(c.email[:1]) + c.email[1:] + " " // as typed into a form
	}
	c.add(c.start.Add(time.Second), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: shown}, actor, channel, "", regEv)
	if r.IntN(100) < 70 {
		c.phone = c.mk.phonePrefix + " " + digits(r, c.mk.phoneFormat)
		c.add(c.start.Add(c.days(0, 60)), domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: c.phone}, "service:shop", "web", "", nil)
	}
	if r.IntN(100) < 30 {
		c.add(c.start.Add(2*time.Second), domain.IdentifierLinked{Kind: domain.IdentifierExternal, Value: "shopify:" + strconv.Itoa(1_000_000+c.idx)}, "service:shopify-sync", "shopify", "", regEv)
	}
	if r.IntN(100) < 35 {
		src := pickWeighted(r, []domain.LeadSource{domain.LeadWebForm, domain.LeadAds, domain.LeadReferral, domain.LeadEvent, domain.LeadPartner}, []int{40, 30, 15, 10, 5})
		c.add(c.start.Add(3*time.Second), domain.LeadCaptured{Source: src, Campaign: c.campaignName(c.start), Interest: "coffee subscription"}, "service:marketing", "web", "", regEv)
	}
	at := c.start.Add(time.Minute)
	c.add(at, domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeService, Source: "checkout-form", Wording: "terms-v3"}, actor, channel, "", regEv)
	if r.IntN(100) < 40 {
		c.add(at, domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeAnalytics, Source: "cookie-banner", Wording: "cookies-v2"}, actor, channel, "", regEv)
	}
	if r.IntN(100) < 60 {
		c.add(at, domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "checkout-form", Wording: "newsletter-v2"}, actor, channel, "", regEv)
		newsletter := c.end
		if r.IntN(100) < 8 {
			newsletter = c.start.Add(c.days(30, 600))
			c.add(newsletter, domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Reason: "too many e-mails"}, "service:preference-center", "web", "", nil)
		}
		c.newsletters(newsletter)
	}
	if c.phone != "" && r.IntN(100) < 25 {
		c.add(at, domain.ConsentGranted{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing, Source: "checkout-form", Wording: "sms-v1"}, actor, channel, "", regEv)
		c.smsCampaigns()
	}
	if r.IntN(100) < 8 {
		name := first.display + " " + last.display + "-" + c.mk.last[r.IntN(len(c.mk.last))].display
		c.add(c.start.Add(c.days(10, 500)), domain.ProfileUpdated{Name: &name}, agents[r.IntN(len(agents))], "zendesk", "", nil)
	}
}

// purchases follow the customer's rhythm until churn; each is confirmed by
// e-mail, some ship with an SMS, a few are refunded.
func (c *customer) purchases() {
	r := c.r
	var mean float64 // days between purchases
	switch c.t.Rhythm {
	case Weekly:
		mean = 7
	case Monthly:
		mean = 30
	case Quarterly:
		mean = 91
	case OneOff:
		c.purchase(c.start.Add(c.days(0, 30)))
		return
	default:
		return
	}
	mean /= c.factor
	for at := c.start.Add(c.days(0, mean)); at.Before(c.active); at = at.Add(time.Duration(mean * (0.6 + 0.8*r.Float64()) * float64(24*time.Hour))) {
		c.purchase(at)
	}
}

// contractSKU is the one product of B2B orders.
const contractSKU = "B2B-CONTRACT"

// categories gives every SKU the generator sells its category
// (OrderLine.Category): what category recommendations group products by.
// A lookup draws nothing from the random source, so histories stay those
// of earlier versions but for the categories.
var categories = map[string]string{
	"TEA-GREEN-100":  "tea",
	"TEA-BLACK-250":  "tea",
	"COF-ESP-1K":     "coffee",
	"COF-FILTER-500": "coffee",
	"MUG-STONE":      "tableware",
	"KETTLE-GOOSE":   "brewing",
	"GRINDER-BURR":   "grinders",
	"SUB-MONTHLY":    "subscriptions",
	"GIFT-CARD-50":   "gift-cards",
	"FILTER-PAPER":   "brewing",
	contractSKU:      "contracts",
}

func (c *customer) purchase(at time.Time) {
	r := c.r
	order := v8(r.Uint64(), r.Uint64())
	n := 1 + min(r.IntN(4), r.IntN(4))
	var lines []domain.OrderLine
	var total int64
	for range n {
		p := catalogue[r.IntN(len(catalogue))]
		l := domain.OrderLine{SKU: p.sku, Description: p.description, Category: categories[p.sku], Quantity: int64(1 + min(r.IntN(3), r.IntN(3))), UnitAmount: c.price(p.euroCents)}
		lines = append(lines, l)
		total += l.Quantity * l.UnitAmount
	}
	var shipping int64
	if total < c.price(4000) {
		shipping = c.price(490)
		total += shipping
	}
	channel := pickWeighted(r, []string{"web", "app", "store"}, []int{70, 20, 10})
	corr := "order-" + order.String()[:8]
	buy := c.add(at, domain.PurchaseCompleted{OrderID: order, Amount: total, Currency: c.t.Currency, Lines: lines, Shipping: shipping}, "service:shop", channel, corr, nil)
	msg := c.messageID()
	sent := c.add(at.Add(30*time.Second), domain.EmailSent{MessageID: msg, Subject: "Your order " + order.String()[:8], From: "orders@shop.example", To: c.email, Template: "order-confirmation"}, "service:mailer", "email", corr, buy)
	if r.IntN(100) < 65 {
		c.add(at.Add(c.minutes(2, 600)), domain.EmailOpened{MessageID: msg}, "service:mailer", "email", corr, sent)
	}
	if c.phone != "" && r.IntN(100) < 25 {
		c.add(at.Add(c.days(1, 3)), domain.SMSSent{To: c.phone, Body: "Your order " + order.String()[:8] + " has shipped."}, "service:logistics", "sms", corr, buy)
	}
	if r.IntN(100) < 4 {
		amount := total
		if r.IntN(100) < 40 {
			amount = max(1, total*int64(20+r.IntN(60))/100)
		}
		c.add(at.Add(c.days(3, 30)), domain.RefundIssued{RefundID: v8(r.Uint64(), r.Uint64()), OrderID: order, Amount: amount, Currency: c.t.Currency, Reason: refundReasons[r.IntN(len(refundReasons))]}, "service:billing", "web", corr, buy)
	}
}

// Response and resolution medians per priority, in hours: support answers
// an urgent ticket within the hour and a low one within a day or two.
var (
	priorities     = []domain.TicketPriority{domain.PriorityLow, domain.PriorityNormal, domain.PriorityHigh, domain.PriorityUrgent}
	priorityWeight = []int{20, 55, 18, 7}
	firstResponseH = map[domain.TicketPriority]float64{domain.PriorityUrgent: 0.5, domain.PriorityHigh: 2, domain.PriorityNormal: 6, domain.PriorityLow: 20}
	resolutionH    = map[domain.TicketPriority]float64{domain.PriorityUrgent: 4, domain.PriorityHigh: 24, domain.PriorityNormal: 48, domain.PriorityLow: 96}
)

// tickets: a Poisson number over the customer's life, more for frequent
// buyers and for churners (who often leave after bad service).
func (c *customer) tickets() {
	r := c.r
	years := c.end.Sub(c.start).Hours() / (24 * 365)
	rate := 0.6
	switch c.t.Rhythm {
	case Weekly:
		rate = 2
	case Monthly:
		rate = 1.2
	}
	if c.t.Churned {
		rate *= 1.5
	}
	n := poisson(r, rate*years*c.factor)
	for range n {
		c.ticket(c.start.Add(time.Duration(r.Float64() * float64(c.active.Sub(c.start)))))
	}
}

func (c *customer) ticket(at time.Time) {
	r := c.r
	id := v8(r.Uint64(), r.Uint64())
	corr := "ticket-" + id.String()[:8]
	prio := pickWeighted(r, priorities, priorityWeight)
	ch := pickWeighted(r, []domain.TicketChannel{domain.TicketEmail, domain.TicketChat, domain.TicketPhone, domain.TicketWeb, domain.TicketSocial, domain.TicketStore}, []int{40, 25, 20, 10, 3, 2})
	subject := ticketSubjects[r.IntN(len(ticketSubjects))]
	agent := agents[r.IntN(len(agents))]
	var contact *pending
	switch ch {
	case domain.TicketEmail:
		contact = c.add(at, domain.EmailReceived{MessageID: c.messageID(), Subject: subject, From: c.email, To: "support@shop.example"}, "service:mailer", "email", corr, nil)
	case domain.TicketChat:
		contact = c.add(at, domain.ChatConversationHeld{ConversationID: "chat-" + strconv.FormatUint(r.Uint64()%1e9, 10), Messages: int64(3 + r.IntN(20)), DurationSeconds: int64(60 + r.IntN(1200)), Summary: subject}, "service:support-bot", "chat", corr, nil)
	case domain.TicketPhone:
		contact = c.add(at, domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: int64(60 + r.IntN(900)), Agent: agent, Outcome: domain.CallConnected, Summary: subject}, agent, "phone", corr, nil)
	}
	opened := c.add(at.Add(time.Minute), domain.TicketOpened{TicketID: id, Subject: subject, Priority: prio, Channel: ch, Description: "Customer wrote: " + subject}, agent, "zendesk", corr, contact)
	inProgress, waiting := domain.StatusInProgress, domain.StatusWaitingCustomer
	t := at.Add(time.Minute).Add(c.lognormal(firstResponseH[prio], 0.9))
	last := c.add(t, domain.TicketUpdated{TicketID: id, Status: &inProgress, Assignee: &agent, Comment: "Thanks for reaching out, looking into it.", FirstResponse: true}, agent, "zendesk", corr, opened)
	if r.IntN(100) < 30 {
		t = t.Add(c.lognormal(3, 1))
		last = c.add(t, domain.TicketUpdated{TicketID: id, Status: &waiting, Comment: "Could you send a photo of the parcel?"}, agent, "zendesk", corr, last)
		t = t.Add(c.lognormal(12, 1))
		last = c.add(t, domain.TicketUpdated{TicketID: id, Status: &inProgress, Comment: "Customer replied."}, "service:zendesk", "zendesk", corr, last)
	}
	t = at.Add(max(c.lognormal(resolutionH[prio], 0.8), t.Sub(at)+time.Minute))
	resolved := c.add(t, domain.TicketResolved{TicketID: id, Resolution: resolutions[r.IntN(len(resolutions))]}, agent, "zendesk", corr, last)
	if r.IntN(100) < 8 {
		t = t.Add(c.days(1, 5))
		reopened := c.add(t, domain.TicketReopened{TicketID: id, Reason: "Problem came back"}, "service:zendesk", "zendesk", corr, resolved)
		t = t.Add(c.lognormal(24, 0.7))
		resolved = c.add(t, domain.TicketResolved{TicketID: id, Resolution: "Escalated and fixed"}, agent, "zendesk", corr, reopened)
	}
	if r.IntN(100) < 75 {
		c.add(t.Add(c.days(3, 7)), domain.TicketClosed{TicketID: id, Reason: "auto-closed after 3 days without reply"}, "system:zendesk-automation", "zendesk", corr, resolved)
	}
	if r.IntN(100) < 30 {
		slow := t.Sub(at).Hours() > 2*resolutionH[prio]
		c.add(t.Add(c.days(1, 2)), domain.SurveyAnswered{Survey: "support-nps", NPS: new(c.nps(slow)), Comment: npsComments[r.IntN(len(npsComments))]}, "service:surveys", "email", corr, resolved)
	}
}

// opportunities: B2B deals move through the pipeline and are won or lost
// (about a third are won), some still open at the reference date.
func (c *customer) opportunities() {
	r := c.r
	years := c.end.Sub(c.start).Hours() / (24 * 365)
	n := min(poisson(r, 1.2*years*c.factor), int(20*c.factor))
	for range n {
		at := c.start.Add(time.Duration(r.Float64() * float64(c.active.Sub(c.start))))
		id := v8(r.Uint64(), r.Uint64())
		corr := "opp-" + id.String()[:8]
		rep := salesReps[r.IntN(len(salesReps))]
		stage := domain.StageProspecting
		if r.IntN(2) == 0 {
			stage = domain.StageQualification
		}
		amount := c.price(int64(200_000 + r.IntN(8_000_000)))
		last := c.add(at, domain.OpportunityOpened{OpportunityID: id, Name: enterprise[r.IntN(len(enterprise))], Amount: amount, Currency: c.t.Currency, Stage: stage, ExpectedClose: at.AddDate(0, 2+r.IntN(4), 0).Format(time.DateOnly)}, rep, "salesforce", corr, nil)
		stages := []domain.OpportunityStage{domain.StageProspecting, domain.StageQualification, domain.StageProposal, domain.StageNegotiation}
		i := slices.Index(stages, stage)
		lost := false
		for i+1 < len(stages) {
			at = at.Add(c.days(5, 30))
			if r.IntN(100) < 25 {
				lost = true
				break
			}
			i++
			last = c.add(at, domain.OpportunityStageChanged{OpportunityID: id, Stage: stages[i]}, rep, "salesforce", corr, last)
			if stages[i] == domain.StageProposal {
				c.add(at.Add(-c.days(0, 3)), domain.MeetingHeld{Title: "Proposal review", DurationSeconds: int64(1800 + 900*r.IntN(4)), Location: "Video call", Attendees: []string{rep, c.email}}, rep, "calendar", corr, last)
			}
		}
		at = at.Add(c.days(3, 20))
		if !lost && r.IntN(100) < 55 {
			c.add(at, domain.OpportunityWon{OpportunityID: id, Comment: "Signed"}, rep, "salesforce", corr, last)
			order := v8(r.Uint64(), r.Uint64())
			c.add(at.Add(c.days(1, 10)), domain.PurchaseCompleted{OrderID: order, Amount: amount, Currency: c.t.Currency, Lines: []domain.OrderLine{{SKU: contractSKU, Description: "Contract", Category: categories[contractSKU], Quantity: 1, UnitAmount: amount}}}, "service:erp", "erp", corr, last)
			continue
		}
		reason := pickWeighted(r, []domain.LossReason{domain.LossPrice, domain.LossCompetitor, domain.LossNoBudget, domain.LossNoDecision, domain.LossTiming, domain.LossProductFit, domain.LossOther}, []int{25, 25, 15, 15, 10, 5, 5})
		c.add(at, domain.OpportunityLost{OpportunityID: id, Reason: reason, Detail: lossDetail[reason]}, rep, "salesforce", corr, last)
	}
}

// engagement: relationship NPS surveys, account-manager calls, notes.
func (c *customer) engagement() {
	r := c.r
	for at := c.start.Add(c.days(60, 180)); at.Before(c.end); at = at.AddDate(0, 6, 0) {
		if r.IntN(100) < 12 {
			churned := c.t.Churned && at.After(c.active)
			c.add(at.Add(c.days(0, 5)), domain.SurveyAnswered{Survey: "relationship-nps-" + at.Format("2006-01"), NPS: new(c.nps(churned)), Comment: npsComments[r.IntN(len(npsComments))]}, "service:surveys", "email", "", nil)
		}
	}
	if c.t.B2B {
		rep := salesReps[r.IntN(len(salesReps))]
		for at := c.start.Add(c.days(20, 90)); at.Before(c.active); at = at.Add(c.days(60/c.factor, 120/c.factor)) {
			outcome := pickWeighted(r, []domain.CallOutcome{domain.CallConnected, domain.CallVoicemail, domain.CallNoAnswer, domain.CallBusy}, []int{60, 20, 15, 5})
			dur := int64(0)
			if outcome == domain.CallConnected {
				dur = int64(120 + r.IntN(1800))
			}
			call := c.add(at, domain.CallLogged{Direction: domain.CallOutbound, DurationSeconds: dur, Agent: rep, Outcome: outcome}, rep, "phone", "", nil)
			if outcome == domain.CallConnected && r.IntN(3) == 0 {
				c.add(at.Add(c.minutes(10, 60)), domain.NoteAdded{Body: "Account review: volumes stable, interested in the new espresso range.\nFollow up next quarter."}, rep, "salesforce", "", call)
			}
		}
	}
}

// newsletters: a monthly newsletter while the customer is subscribed.
// Churned customers keep receiving it but rarely open it.
func (c *customer) newsletters(until time.Time) {
	r := c.r
	y, m, _ := c.start.Date()
	for at := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC); ; at = at.AddDate(0, 1, 0) {
		send := firstTuesday(at).Add(9*time.Hour + c.minutes(0, 60))
		if !send.Before(until) || !send.Before(c.end) {
			return
		}
		name := c.campaignName(send)
		corr := "campaign-" + name
		c.add(send, domain.CampaignTouched{Campaign: name, Channel: domain.CampaignEmail, Action: domain.ActionSent}, "service:marketing", "mailchimp", corr, nil)
		if r.IntN(100) < 3 {
			c.add(send.Add(time.Minute), domain.CampaignTouched{Campaign: name, Channel: domain.CampaignEmail, Action: domain.ActionBounced}, "service:marketing", "mailchimp", corr, nil)
			continue
		}
		open := 38
		if c.t.Churned && send.After(c.active) {
			open = 8
		}
		if r.IntN(100) >= open {
			continue
		}
		c.add(send.Add(c.minutes(5, 48*60)), domain.CampaignTouched{Campaign: name, Channel: domain.CampaignEmail, Action: domain.ActionViewed}, "service:marketing", "mailchimp", corr, nil)
		if r.IntN(100) < 22 {
			c.add(send.Add(c.minutes(48*60, 49*60)), domain.CampaignTouched{Campaign: name, Channel: domain.CampaignEmail, Action: domain.ActionClicked}, "service:marketing", "mailchimp", corr, nil)
		}
		if r.IntN(1000) < 6 {
			at := send.Add(50 * time.Hour)
			c.add(at, domain.CampaignTouched{Campaign: name, Channel: domain.CampaignEmail, Action: domain.ActionUnsubscribed}, "service:marketing", "mailchimp", corr, nil)
			c.add(at, domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Reason: "unsubscribed from " + name}, "service:marketing", "mailchimp", corr, nil)
			return
		}
	}
}

// smsCampaigns: four seasonal promotions a year.
func (c *customer) smsCampaigns() {
	r := c.r
	for at := c.start.AddDate(0, 1, 0); at.Before(c.end); at = at.AddDate(0, 3, 0) {
		name := "sms-promo-" + at.Format("2006-01")
		c.add(at, domain.CampaignTouched{Campaign: name, Channel: domain.CampaignSMS, Action: domain.ActionSent}, "service:marketing", "twilio", "campaign-"+name, nil)
		if r.IntN(100) < 6 {
			c.add(at.Add(c.minutes(1, 120)), domain.CampaignTouched{Campaign: name, Channel: domain.CampaignSMS, Action: domain.ActionClicked}, "service:marketing", "twilio", "campaign-"+name, nil)
		}
	}
}

func (c *customer) campaignName(at time.Time) string { return "newsletter-" + at.Format("2006-01") }

// price converts euro cents into the customer's currency's minor units at
// a fixed rate (JPY has no minor unit: 1.60 EUR cents per yen ×100).
func (c *customer) price(euroCents int64) int64 {
	switch c.t.Currency {
	case "USD":
		return euroCents * 108 / 100
	case "GBP":
		return euroCents * 86 / 100
	case "JPY":
		return euroCents * 160 / 100
	}
	return euroCents
}

// nps draws a score: mostly promoters, detractors when unhappy.
func (c *customer) nps(unhappy bool) int {
	w := []int{2, 1, 1, 2, 2, 3, 4, 8, 14, 25, 38}
	if unhappy {
		w = []int{12, 8, 10, 12, 12, 12, 10, 8, 7, 5, 4}
	}
	return pickWeighted(c.r, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, w)
}

func (c *customer) messageID() string {
	c.mailbox++
	return fmt.Sprintf("<%s.%d@mail.shop.example>", c.id.String()[:13], c.mailbox)
}

// days is a uniform random duration between lo and hi days.
func (c *customer) days(lo, hi float64) time.Duration {
	return time.Duration((lo + (hi-lo)*c.r.Float64()) * float64(24*time.Hour))
}

func (c *customer) minutes(lo, hi float64) time.Duration {
	return time.Duration((lo + (hi-lo)*c.r.Float64()) * float64(time.Minute))
}

// lognormal draws a duration with the given median (hours) and spread:
// service times have a long right tail.
func (c *customer) lognormal(medianHours, sigma float64) time.Duration {
	h := medianHours * math.Exp(sigma*c.r.NormFloat64())
	return time.Duration(min(h, 24*60) * float64(time.Hour))
}

func firstTuesday(monthStart time.Time) time.Time {
	d := (int(time.Tuesday) - int(monthStart.Weekday()) + 7) % 7
	return monthStart.AddDate(0, 0, d)
}

func pickMarket(r *rand.Rand) market {
	w := make([]int, len(markets))
	for i, m := range markets {
		w[i] = m.weight
	}
	return pickWeighted(r, markets, w)
}

func pickWeighted[T any](r *rand.Rand, items []T, weights []int) T {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range weights {
		if n < w {
			return items[i]
		}
		n -= w
	}
	return items[len(items)-1]
}

// poisson draws a Poisson variate (Knuth for small means, a rounded normal
// for large ones, where Knuth's product underflows).
func poisson(r *rand.Rand, mean float64) int {
	if mean > 50 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func digits(r *rand.Rand, format string) string {
	b := []byte(format)
	for i, ch := range b {
		if ch == 'x' {
			b[i] = byte('0' + r.IntN(10))
		}
	}
	return string(b)
}

// v8 makes a version-8 (custom) uuid from random bits of the seeded source:
// deterministic, unlike uuid.New.
func v8(hi, lo uint64) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	id[6] = id[6]&0x0f | 0x80
	id[8] = id[8]&0x3f | 0x80
	return id
}

// eventID is time-ordered like a uuid v7, in generation order: its first
// 48 bits are the customer index (28 bits) and the event's index (20 bits),
// so that seeding appends ids in nearly increasing order and the stores' id
// indexes grow at their right edge instead of splitting random pages. The
// rest is seeded randomness with the version-8 and variant bits.
func eventID(customer, n int, random uint64) uuid.UUID {
	seq := uint64(customer)<<20 | uint64(n)&(1<<20-1)
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], seq<<16|random>>48)
	binary.BigEndian.PutUint64(id[8:], random)
	id[6] = id[6]&0x0f | 0x80
	id[8] = id[8]&0x3f | 0x80
	return id
}
