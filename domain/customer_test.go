package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// history builds a registered customer with one open ticket, one open
// opportunity and one paid order of 129.90 EUR.
func history() []Event {
	ev := validEvents()
	return []Event{
		ev[TypeCustomerRegistered],
		ev[TypeTicketOpened],
		ev[TypeOpportunityOpened],
		ev[TypePurchaseCompleted],
	}
}

func fold(events ...Event) *Customer {
	c := NewCustomer(customerID)
	for _, e := range events {
		c.Apply(e)
	}
	return c
}

func send(ch CampaignChannel) CampaignTouched {
	return CampaignTouched{Campaign: "spring", Channel: ch, Action: ActionSent}
}

func grant(ch ConsentChannel, p ConsentPurpose) ConsentGranted {
	return ConsentGranted{Channel: ch, Purpose: p, Source: "web"}
}

func withdraw(ch ConsentChannel, p ConsentPurpose) ConsentWithdrawn {
	return ConsentWithdrawn{Channel: ch, Purpose: p}
}

func queued(ch ConsentChannel, p ConsentPurpose) MessageQueued {
	return MessageQueued{MessageID: messageID, Channel: ch, Template: "purchase-follow-up", Purpose: p}
}

// The rejection of a marketing message names the consent it lacks and
// whether it was withdrawn or never given.
func TestConsentRejectionNamesConsent(t *testing.T) {
	c := fold(history()...)
	err := c.Check(send(CampaignSMS))
	if err == nil || !strings.Contains(err.Error(), "missing consent sms/marketing (never granted)") {
		t.Fatalf("err = %v", err)
	}
	c.Apply(grant(ConsentSMS, PurposeMarketing))
	c.Apply(withdraw(ConsentSMS, PurposeMarketing))
	if err := c.Check(send(CampaignSMS)); err == nil || !strings.Contains(err.Error(), "missing consent sms/marketing (withdrawn)") {
		t.Fatalf("err = %v", err)
	}
	if c.Consented(Consent{ConsentSMS, PurposeMarketing}) {
		t.Error("Consented after withdrawal")
	}
}

// day returns midnight UTC of a date.
func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// at dates an event.
func at(e Event, t time.Time) Timed { return Timed{Event: e, At: t} }

// Consent is decided by the world's clock: the decisions on a consent are
// ordered by occurred-at, then log order, and a marketing message that
// occurred at T needs the latest decision at or before T to be a grant.
func TestConsentByOccurredAt(t *testing.T) {
	reg := at(validEvents()[TypeCustomerRegistered], day(2018, 1, 1))
	g := func(d time.Time) Timed { return at(grant(ConsentEmail, PurposeMarketing), d) }
	w := func(d time.Time) Timed { return at(withdraw(ConsentEmail, PurposeMarketing), d) }
	noon := day(2026, 2, 1).Add(12 * time.Hour)

	tests := []struct {
		name    string
		history []Timed // in log order
		send    time.Time
		why     string // "" means allowed, else "never granted" or "withdrawn"
	}{
		{"send after grant", []Timed{g(day(2026, 6, 1))}, day(2026, 6, 2), ""},
		{"send at the grant's time", []Timed{g(day(2026, 6, 1))}, day(2026, 6, 1), ""},
		{"send before the grant's time", []Timed{g(day(2026, 6, 1))}, day(2026, 1, 1), "never granted"},
		{"send a nanosecond before the grant", []Timed{g(day(2026, 6, 1))}, day(2026, 6, 1).Add(-time.Nanosecond), "never granted"},
		{"backdated grant after a later withdrawal", []Timed{g(day(2024, 1, 1)), w(day(2026, 2, 1)), g(day(2019, 5, 1))}, day(2026, 3, 1), "withdrawn"},
		{"backdated grant alone after a withdrawal", []Timed{w(day(2026, 2, 1)), g(day(2019, 5, 1))}, day(2026, 3, 1), "withdrawn"},
		{"send while the backdated grant stood", []Timed{w(day(2026, 2, 1)), g(day(2019, 5, 1))}, day(2020, 1, 1), ""},
		{"send before the backdated grant", []Timed{w(day(2026, 2, 1)), g(day(2019, 5, 1))}, day(2019, 1, 1), "never granted"},
		{"withdrawal dated before the grant, recorded after", []Timed{g(day(2026, 2, 1)), w(day(2025, 12, 1))}, day(2026, 3, 1), ""},
		{"send between that withdrawal and the grant", []Timed{g(day(2026, 2, 1)), w(day(2025, 12, 1))}, day(2026, 1, 1), "withdrawn"},
		{"equal times: withdrawal logged last wins", []Timed{g(noon), w(noon)}, noon.Add(time.Hour), "withdrawn"},
		{"equal times: grant logged last wins", []Timed{w(noon), g(noon)}, noon.Add(time.Hour), ""},
		{"equal times, send at that time", []Timed{w(noon), g(noon)}, noon, ""},
		{"equal times in other zones", []Timed{g(noon), w(noon.In(time.FixedZone("CET", 3600)))}, noon, "withdrawn"},
		{"equal times among others", []Timed{g(day(2025, 1, 1)), w(noon), g(day(2026, 5, 1)), g(noon), w(noon)}, noon.Add(time.Hour), "withdrawn"},
		{"re-grant after withdrawal", []Timed{g(day(2025, 1, 1)), w(day(2025, 6, 1)), g(day(2026, 1, 1))}, day(2026, 2, 1), ""},
		{"send during the withdrawal", []Timed{g(day(2025, 1, 1)), w(day(2025, 6, 1)), g(day(2026, 1, 1))}, day(2025, 9, 1), "withdrawn"},
		{"other channel's grant does not count", []Timed{at(grant(ConsentSMS, PurposeMarketing), day(2025, 1, 1))}, day(2026, 1, 1), "never granted"},
		{"undated grant counts as at the zero time", []Timed{at(grant(ConsentEmail, PurposeMarketing), time.Time{}), w(day(2025, 1, 1))}, day(2026, 1, 1), "withdrawn"},
		{"undated grant stands until a dated withdrawal", []Timed{at(grant(ConsentEmail, PurposeMarketing), time.Time{}), w(day(2025, 1, 1))}, day(2024, 1, 1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCustomer(customerID)
			for _, e := range append([]Timed{reg}, tt.history...) {
				c.ApplyAt(e.Event, e.At)
			}
			err := c.CheckAt(send(CampaignEmail), tt.send)
			if ok := c.ConsentedAt(Consent{ConsentEmail, PurposeMarketing}, tt.send); ok != (tt.why == "") {
				t.Errorf("ConsentedAt = %v, want %v", ok, tt.why == "")
			}
			if tt.why == "" {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			var re *RejectionError
			if !errors.As(err, &re) || re.Entity != "consent" {
				t.Fatalf("want a consent rejection, got %v", err)
			}
			if want := "missing consent email/marketing (" + tt.why + ")"; !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to say %q", err, want)
			}
		})
	}
}

// Undated Check judges by the latest decision of all, by occurred-at: the
// backdated grant does not bring consent back.
func TestConsentCheckUndatedUsesLatestDecision(t *testing.T) {
	c := NewCustomer(customerID)
	c.ApplyAt(validEvents()[TypeCustomerRegistered], day(2018, 1, 1))
	c.ApplyAt(withdraw(ConsentEmail, PurposeMarketing), day(2026, 2, 1))
	c.ApplyAt(grant(ConsentEmail, PurposeMarketing), day(2019, 5, 1))
	if err := c.Check(send(CampaignEmail)); err == nil || !strings.Contains(err.Error(), "(withdrawn)") {
		t.Errorf("Check = %v, want withdrawn", err)
	}
	if c.Consented(Consent{ConsentEmail, PurposeMarketing}) {
		t.Error("Consented after a backdated grant")
	}
	c.ApplyAt(grant(ConsentEmail, PurposeMarketing), day(2026, 2, 2))
	if err := c.Check(send(CampaignEmail)); err != nil {
		t.Errorf("Check after a later grant = %v", err)
	}
}

// CheckAllAt dates each event of the batch: a grant in the batch allows
// only the sends that occur at or after it.
func TestCustomerCheckAllAt(t *testing.T) {
	c := NewCustomer(customerID)
	c.ApplyAt(validEvents()[TypeCustomerRegistered], day(2025, 1, 1))
	g := grant(ConsentEmail, PurposeMarketing)
	tests := []struct {
		name  string
		batch []Timed
		err   []string // nil means allowed, else what the error says
	}{
		{"grant then later send", []Timed{at(g, day(2026, 6, 1)), at(send(CampaignEmail), day(2026, 6, 2))}, nil},
		{"grant then earlier send", []Timed{at(g, day(2026, 6, 1)), at(send(CampaignEmail), day(2026, 1, 1))}, []string{"event 1: rejected CampaignTouched: consent", "(never granted)"}},
		{"send then earlier grant", []Timed{at(send(CampaignEmail), day(2026, 6, 2)), at(g, day(2026, 6, 1))}, []string{"event 0: rejected CampaignTouched", "(never granted)"}},
		{"backdated grant after withdrawal", []Timed{at(withdraw(ConsentEmail, PurposeMarketing), day(2026, 2, 1)), at(g, day(2019, 1, 1)), at(send(CampaignEmail), day(2026, 3, 1))}, []string{"event 2: rejected CampaignTouched", "(withdrawn)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.CheckAllAt(tt.batch)
			switch {
			case tt.err == nil && err != nil:
				t.Fatalf("want allowed, got %v", err)
			case tt.err != nil && !errors.Is(err, ErrRejected):
				t.Fatalf("err = %v, want a rejection", err)
			}
			for _, want := range tt.err {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
			}
			if c.Events() != 1 || c.Consented(Consent{ConsentEmail, PurposeMarketing}) {
				t.Error("CheckAllAt changed the aggregate")
			}
		})
	}
}

func TestCustomerCheck(t *testing.T) {
	ev := validEvents()
	base := history()
	then := func(more ...Event) []Event { return append(append([]Event(nil), base...), more...) }
	refund := func(amount int64, currency string) RefundIssued {
		return RefundIssued{RefundID: uuid.New(), OrderID: orderID, Amount: amount, Currency: currency}
	}
	closed := TicketClosed{TicketID: ticketID}
	resolved := TicketResolved{TicketID: ticketID, Resolution: "Colis retrouvé"}
	reopened := TicketReopened{TicketID: ticketID, Reason: "Colis abîmé"}
	won := OpportunityWon{OpportunityID: opportunityID}
	lost := OpportunityLost{OpportunityID: opportunityID, Reason: LossPrice}

	tests := []struct {
		name    string
		history []Event
		event   Event
		entity  string // "" means allowed
	}{
		// Registration.
		{"register first", nil, ev[TypeCustomerRegistered], ""},
		{"register twice", base, ev[TypeCustomerRegistered], "customer"},
		{"register other id", nil, CustomerRegistered{CustomerID: otherID, Name: "Ola Nordmann"}, "customer"},
		{"note before registration", nil, ev[TypeNoteAdded], "customer"},
		{"ticket before registration", nil, ev[TypeTicketOpened], "customer"},
		{"any event after registration", base, ev[TypeConsentWithdrawn], ""},

		// Forgotten.
		{"forget", base, ev[TypeCustomerForgotten], ""},
		{"note after forgotten", then(ev[TypeCustomerForgotten]), ev[TypeNoteAdded], "customer"},
		{"consent after forgotten", then(ev[TypeCustomerForgotten]), ev[TypeConsentGranted], "customer"},
		{"forget twice", then(ev[TypeCustomerForgotten]), ev[TypeCustomerForgotten], "customer"},
		{"register after forgotten", then(ev[TypeCustomerForgotten]), ev[TypeCustomerRegistered], "customer"},

		// Tickets.
		{"duplicate ticket", base, ev[TypeTicketOpened], "ticket"},
		{"second ticket", base, TicketOpened{TicketID: otherID, Subject: "Facture erronée", Priority: PriorityLow, Channel: TicketWeb}, ""},
		{"update unknown ticket", base, TicketUpdated{TicketID: otherID, Comment: "?"}, "ticket"},
		{"resolve unknown ticket", base, TicketResolved{TicketID: otherID, Resolution: "x"}, "ticket"},
		{"close unknown ticket", base, TicketClosed{TicketID: otherID}, "ticket"},
		{"reopen unknown ticket", base, TicketReopened{TicketID: otherID, Reason: "x"}, "ticket"},
		{"update open ticket", base, ev[TypeTicketUpdated], ""},
		{"resolve open ticket", base, resolved, ""},
		{"close open ticket", base, closed, ""},
		{"reopen open ticket", base, reopened, "ticket"},
		{"resolve twice", then(resolved), resolved, "ticket"},
		{"comment on resolved", then(resolved), TicketUpdated{TicketID: ticketID, Comment: "Merci !"}, ""},
		{"status change on resolved", then(resolved), TicketUpdated{TicketID: ticketID, Status: ptr(StatusInProgress)}, "ticket"},
		{"close resolved", then(resolved), closed, ""},
		{"reopen resolved", then(resolved), reopened, ""},
		{"update closed", then(closed), TicketUpdated{TicketID: ticketID, Comment: "Encore moi"}, "ticket"},
		{"resolve closed", then(closed), resolved, "ticket"},
		{"close closed", then(closed), closed, "ticket"},
		{"reopen closed", then(closed), reopened, ""},
		{"update reopened", then(closed, reopened), ev[TypeTicketUpdated], ""},

		// Opportunities.
		{"duplicate opportunity", base, ev[TypeOpportunityOpened], "opportunity"},
		{"stage change", base, OpportunityStageChanged{OpportunityID: opportunityID, Stage: StageProposal}, ""},
		{"same stage", base, OpportunityStageChanged{OpportunityID: opportunityID, Stage: StageQualification}, "opportunity"},
		{"stage unknown", base, OpportunityStageChanged{OpportunityID: otherID, Stage: StageProposal}, "opportunity"},
		{"win", base, won, ""},
		{"lose", base, lost, ""},
		{"win unknown", base, OpportunityWon{OpportunityID: otherID}, "opportunity"},
		{"lose unknown", base, OpportunityLost{OpportunityID: otherID, Reason: LossTiming}, "opportunity"},
		{"win won", then(won), won, "opportunity"},
		{"lose won", then(won), lost, "opportunity"},
		{"stage after lost", then(lost), OpportunityStageChanged{OpportunityID: opportunityID, Stage: StageNegotiation}, "opportunity"},
		{"win lost", then(lost), won, "opportunity"},

		// Orders and refunds.
		{"duplicate order", base, ev[TypePurchaseCompleted], "order"},
		{"partial refund", base, refund(1_500, "EUR"), ""},
		{"full refund", base, refund(12_990, "EUR"), ""},
		{"refund above paid", base, refund(12_991, "EUR"), "order"},
		{"refunds sum to paid", then(refund(10_000, "EUR")), refund(2_990, "EUR"), ""},
		{"refunds sum above paid", then(refund(10_000, "EUR")), refund(2_991, "EUR"), "order"},
		{"refund other currency", base, refund(1_500, "USD"), "order"},
		{"refund unknown order", base, RefundIssued{RefundID: refundID, OrderID: otherID, Amount: 100, Currency: "EUR"}, "order"},
		{"duplicate refund id", then(ev[TypeRefundIssued]), ev[TypeRefundIssued], "refund"},

		// Consent: marketing needs the matching standing consent.
		{"campaign email without consent", base, send(CampaignEmail), "consent"},
		{"campaign email with consent", then(grant(ConsentEmail, PurposeMarketing)), send(CampaignEmail), ""},
		{"campaign email after withdrawal", then(grant(ConsentEmail, PurposeMarketing), withdraw(ConsentEmail, PurposeMarketing)), send(CampaignEmail), "consent"},
		{"campaign email after re-grant", then(grant(ConsentEmail, PurposeMarketing), withdraw(ConsentEmail, PurposeMarketing), grant(ConsentEmail, PurposeMarketing)), send(CampaignEmail), ""},
		{"campaign email with service consent only", then(grant(ConsentEmail, PurposeService)), send(CampaignEmail), "consent"},
		{"campaign email with sms consent only", then(grant(ConsentSMS, PurposeMarketing)), send(CampaignEmail), "consent"},
		{"campaign sms without consent", then(grant(ConsentEmail, PurposeMarketing)), send(CampaignSMS), "consent"},
		{"campaign sms with consent", then(grant(ConsentSMS, PurposeMarketing)), send(CampaignSMS), ""},
		{"campaign push without consent", base, send(CampaignPush), "consent"},
		{"direct mail without post consent", then(grant(ConsentEmail, PurposeMarketing)), send(CampaignDirectMail), "consent"},
		{"direct mail with post consent", then(grant(ConsentPost, PurposeMarketing)), send(CampaignDirectMail), ""},
		{"social campaign needs none", base, send(CampaignSocial), ""},
		{"click without consent is a fact", base, CampaignTouched{Campaign: "spring", Channel: CampaignEmail, Action: ActionClicked}, ""},
		{"unsubscribe without consent is a fact", base, CampaignTouched{Campaign: "spring", Channel: CampaignEmail, Action: ActionUnsubscribed}, ""},
		{"campaign EmailSent without consent", base, EmailSent{MessageID: "<1@x>", Subject: "Soldes", From: "news@shop.example", To: "zoe@example.fr", Campaign: "spring"}, "consent"},
		{"campaign EmailSent with consent", then(grant(ConsentEmail, PurposeMarketing)), EmailSent{MessageID: "<1@x>", Subject: "Soldes", From: "news@shop.example", To: "zoe@example.fr", Campaign: "spring"}, ""},
		{"service EmailSent without consent", base, EmailSent{MessageID: "<1@x>", Subject: "Votre commande", From: "shop@shop.example", To: "zoe@example.fr"}, ""},
		{"campaign SMSSent without consent", base, SMSSent{To: "+33612345678", Body: "-20% ce week-end", Campaign: "weekend"}, "consent"},
		{"campaign SMSSent with consent", then(grant(ConsentSMS, PurposeMarketing)), SMSSent{To: "+33612345678", Body: "-20% ce week-end", Campaign: "weekend"}, ""},
		{"service SMSSent without consent", base, SMSSent{To: "+33612345678", Body: "Votre colis arrive demain"}, ""},
		{"marketing message without consent", base, queued(ConsentEmail, PurposeMarketing), "consent"},
		{"marketing message with consent", then(grant(ConsentEmail, PurposeMarketing)), queued(ConsentEmail, PurposeMarketing), ""},
		{"marketing sms message with email consent only", then(grant(ConsentEmail, PurposeMarketing)), queued(ConsentSMS, PurposeMarketing), "consent"},
		{"marketing message after withdrawal", then(grant(ConsentSMS, PurposeMarketing), withdraw(ConsentSMS, PurposeMarketing)), queued(ConsentSMS, PurposeMarketing), "consent"},
		{"service message without consent", base, queued(ConsentSMS, PurposeService), ""},

		// Escalation: only an open ticket.
		{"escalate open ticket", base, ev[TypeTicketEscalated], ""},
		{"escalate ticket in progress", then(ev[TypeTicketUpdated]), ev[TypeTicketEscalated], ""},
		{"escalate unknown ticket", base, TicketEscalated{TicketID: otherID, Priority: PriorityLow, Breach: "no first response within 72h", SLASeconds: 72 * 3600}, "ticket"},
		{"escalate resolved ticket", then(resolved), ev[TypeTicketEscalated], "ticket"},
		{"escalate closed ticket", then(closed), ev[TypeTicketEscalated], "ticket"},
		{"escalate reopened ticket", then(closed, reopened), ev[TypeTicketEscalated], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fold(tt.history...)
			before := *c
			err := c.Check(tt.event)
			if c.events != before.events || c.forgotten != before.forgotten || c.registered != before.registered {
				t.Error("Check changed the aggregate")
			}
			if tt.entity == "" {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			var re *RejectionError
			if !errors.Is(err, ErrRejected) || !errors.As(err, &re) {
				t.Fatalf("want rejection by %s, got %v", tt.entity, err)
			}
			if errors.Is(err, ErrInvalid) {
				t.Error("a rejection must not be ErrInvalid")
			}
			if re.Entity != tt.entity || re.Rule == "" || re.Type != tt.event.EventType() {
				t.Errorf("rejection %+v, want entity %s and a rule", re, tt.entity)
			}
			if !strings.Contains(err.Error(), tt.event.EventType()) {
				t.Errorf("message %q does not name the event type", err)
			}
		})
	}
}

func TestCustomerCheckValidatesFirst(t *testing.T) {
	c := fold(history()...)
	err := c.Check(NoteAdded{})
	if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrRejected) {
		t.Errorf("Check(invalid) = %v, want ErrInvalid", err)
	}
	if err := c.Check(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Check(nil) = %v, want ErrInvalid", err)
	}
	if err := c.Check(&NoteAdded{Body: "Pointer events are checked like values"}); err != nil {
		t.Errorf("Check(&NoteAdded) = %v", err)
	}
}

func TestCustomerApplyState(t *testing.T) {
	c := fold(history()...)
	if !c.Registered() || c.Forgotten() || c.ID() != customerID || c.Events() != 4 {
		t.Fatalf("state after history: %+v", c)
	}
	c.Apply(TicketUpdated{TicketID: ticketID, Status: ptr(StatusWaitingCustomer)})
	if s, ok := c.Ticket(ticketID); !ok || s != StatusWaitingCustomer {
		t.Errorf("ticket status %s %v", s, ok)
	}
	c.Apply(TicketUpdated{TicketID: ticketID, Comment: "no status change"})
	if s, _ := c.Ticket(ticketID); s != StatusWaitingCustomer {
		t.Errorf("comment changed status to %s", s)
	}
	c.Apply(&OpportunityStageChanged{OpportunityID: opportunityID, Stage: StageNegotiation})
	c.Apply(OpportunityWon{OpportunityID: opportunityID})
	if o, ok := c.Opportunity(opportunityID); !ok || o != (OpportunityState{Stage: StageNegotiation, Outcome: OutcomeWon}) {
		t.Errorf("opportunity %+v %v", o, ok)
	}
	c.Apply(RefundIssued{RefundID: refundID, OrderID: orderID, Amount: 1_500, Currency: "EUR"})
	if o, ok := c.Order(orderID); !ok || o != (OrderState{Amount: 12_990, Currency: "EUR", Refunded: 1_500}) {
		t.Errorf("order %+v %v", o, ok)
	}
	if _, ok := c.Ticket(otherID); ok {
		t.Error("unknown ticket exists")
	}
}

// The zero Customer takes its id from the registration.
func TestZeroCustomer(t *testing.T) {
	var c Customer
	if err := c.Check(validEvents()[TypeCustomerRegistered]); err != nil {
		t.Fatal(err)
	}
	c.Apply(validEvents()[TypeCustomerRegistered])
	if c.ID() != customerID {
		t.Errorf("id %s", c.ID())
	}
}

// Apply is total: history that Check would refuse still folds, without a
// panic and with sensible state.
func TestCustomerApplyIsTotal(t *testing.T) {
	var c Customer
	weird := []Event{
		nil,
		(*NoteAdded)(nil),
		foreignEvent{},
		TicketUpdated{TicketID: ticketID, Comment: "update before open"},
		TicketClosed{TicketID: ticketID},
		TicketClosed{TicketID: ticketID},
		RefundIssued{RefundID: refundID, OrderID: orderID, Amount: 100, Currency: "EUR"},
		PurchaseCompleted{OrderID: orderID, Amount: 100, Currency: "EUR"},
		RefundIssued{RefundID: refundID, OrderID: orderID, Amount: MaxAmount, Currency: "EUR"},
		RefundIssued{RefundID: otherID, OrderID: orderID, Amount: -5, Currency: "EUR"},
		OpportunityWon{OpportunityID: opportunityID},
		OpportunityStageChanged{OpportunityID: opportunityID, Stage: StageProposal},
		CustomerForgotten{},
		validEvents()[TypeCustomerRegistered],
		validEvents()[TypeCustomerRegistered],
	}
	for _, e := range weird {
		c.Apply(e)
	}
	if c.Events() != len(weird) {
		t.Errorf("Events() = %d, want %d", c.Events(), len(weird))
	}
	if s, _ := c.Ticket(ticketID); s != StatusClosed {
		t.Errorf("ticket %s", s)
	}
	if o, _ := c.Opportunity(opportunityID); o.Outcome != OutcomeWon {
		t.Errorf("opportunity %+v", o)
	}
	if o, _ := c.Order(orderID); o.Refunded != MaxAmount {
		t.Errorf("order %+v", o)
	}
	if !c.Forgotten() || !c.Registered() {
		t.Error("forgotten/registered lost")
	}
	if err := c.Check(validEvents()[TypeNoteAdded]); !errors.Is(err, ErrRejected) {
		t.Errorf("Check after forgotten = %v", err)
	}
}

func TestCustomerCheckAll(t *testing.T) {
	ev := validEvents()
	c := NewCustomer(customerID)
	batch := []Event{ev[TypeCustomerRegistered], ev[TypeIdentifierLinked], ev[TypeTicketOpened], ev[TypeTicketUpdated]}
	if err := c.CheckAll(batch...); err != nil {
		t.Fatal(err)
	}
	if c.Registered() || c.Events() != 0 {
		t.Error("CheckAll changed the aggregate")
	}
	err := c.CheckAll(ev[TypeCustomerRegistered], ev[TypeTicketOpened], ev[TypeTicketOpened])
	var re *RejectionError
	if !errors.As(err, &re) || re.Entity != "ticket" || !strings.Contains(err.Error(), "event 2") {
		t.Errorf("CheckAll duplicate = %v", err)
	}
	// CheckAll leaves the original maps alone.
	c = fold(history()...)
	if err := c.CheckAll(TicketClosed{TicketID: ticketID}); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Ticket(ticketID); s != StatusOpen {
		t.Errorf("CheckAll leaked state: ticket %s", s)
	}
}

// A clone and its original share nothing: every map of the state is
// copied, so folding into one never shows in the other.
func TestCustomerClone(t *testing.T) {
	c := fold(history()...)
	c.Apply(RefundIssued{RefundID: refundID, OrderID: orderID, Amount: 1_500, Currency: "EUR"})
	n := c.Clone()
	if n == c || n.ID() != c.ID() || n.Events() != c.Events() || !n.Registered() {
		t.Fatalf("clone %+v of %+v", n, c)
	}

	n.Apply(TicketClosed{TicketID: ticketID})
	n.Apply(OpportunityLost{OpportunityID: opportunityID, Reason: LossPrice})
	n.Apply(RefundIssued{RefundID: otherID, OrderID: orderID, Amount: 2_000, Currency: "EUR"})
	n.Apply(PurchaseCompleted{OrderID: otherID, Amount: 500, Currency: "EUR"})
	n.Apply(CustomerForgotten{Request: "DSR-2025-0042"})

	if s, _ := c.Ticket(ticketID); s != StatusOpen {
		t.Errorf("original ticket %s after the clone closed it", s)
	}
	if o, _ := c.Opportunity(opportunityID); o.Outcome != OutcomeOpen {
		t.Errorf("original opportunity %+v after the clone lost it", o)
	}
	if o, _ := c.Order(orderID); o.Refunded != 1_500 {
		t.Errorf("original order %+v after the clone refunded it", o)
	}
	if _, ok := c.Order(otherID); ok {
		t.Error("the clone's new order shows in the original")
	}
	if err := c.Check(RefundIssued{RefundID: otherID, OrderID: orderID, Amount: 100, Currency: "EUR"}); err != nil {
		t.Errorf("the clone's refund id is used in the original: %v", err)
	}
	if c.Forgotten() || c.Events() != 5 {
		t.Errorf("original forgotten=%v events=%d", c.Forgotten(), c.Events())
	}

	// The other direction: the original moves on, the clone does not.
	n = c.Clone()
	c.Apply(TicketResolved{TicketID: ticketID, Resolution: "Colis retrouvé"})
	if s, _ := n.Ticket(ticketID); s != StatusOpen {
		t.Errorf("clone ticket %s after the original resolved it", s)
	}

	// Consent decisions are copied too: a tie replaced in place or a
	// backdated decision inserted in the clone never shows in the original.
	k := Consent{ConsentEmail, PurposeMarketing}
	c.ApplyAt(grant(ConsentEmail, PurposeMarketing), day(2026, 1, 1))
	c.ApplyAt(grant(ConsentEmail, PurposeMarketing), day(2026, 3, 1))
	n = c.Clone()
	n.ApplyAt(withdraw(ConsentEmail, PurposeMarketing), day(2026, 3, 1))
	n.ApplyAt(withdraw(ConsentEmail, PurposeMarketing), day(2026, 2, 1))
	if !c.Consented(k) || !c.ConsentedAt(k, day(2026, 2, 15)) {
		t.Error("the clone's withdrawals show in the original")
	}
	if n.Consented(k) || n.ConsentedAt(k, day(2026, 2, 15)) || !n.ConsentedAt(k, day(2026, 1, 15)) {
		t.Error("the clone lost its own withdrawals")
	}

	// The empty aggregate clones too (its maps are nil until first use).
	e := NewCustomer(customerID).Clone()
	e.Apply(validEvents()[TypeCustomerRegistered])
	if !e.Registered() || e.ID() != customerID {
		t.Errorf("clone of the empty aggregate: %+v", e)
	}
}

// Loyalty: a balance that never goes negative, ids never reused, and
// expiry of exactly an earning's unexpired remainder. By hand, after
// loyaltyHistory: A 129 (expires 2026-03-14) + B 50 (expires 2025-06-01)
// + C 20 (never) = 199; redeeming 60 spends B first (earliest expiry),
// then 10 of A: balance 139, remainders A 119, B 0, C 20.
func loyaltyHistory() []Event {
	a, b, c := earningID, otherID, refundID
	return append(history(),
		PointsEarned{EarningID: a, Points: 129, Reason: EarnPurchase, OrderID: ptr(orderID), ExpiresAt: day(2026, 3, 14)},
		PointsEarned{EarningID: b, Points: 50, Reason: EarnBonus, Rule: "spring-double", ExpiresAt: day(2025, 6, 1)},
		PointsEarned{EarningID: c, Points: 20, Reason: EarnAdjustment},
		PointsRedeemed{RedemptionID: redemptionID, Points: 60, Reward: "COFFEE-FREE"},
	)
}

func TestCustomerLoyaltyState(t *testing.T) {
	c := fold(loyaltyHistory()...)
	if c.Points() != 139 {
		t.Errorf("Points() = %d, want 139", c.Points())
	}
	for id, want := range map[uuid.UUID]EarningState{
		earningID: {Points: 129, Remaining: 119, ExpiresAt: day(2026, 3, 14), OrderID: orderID},
		otherID:   {Points: 50, Remaining: 0, ExpiresAt: day(2025, 6, 1)},
		refundID:  {Points: 20, Remaining: 20},
	} {
		if got, ok := c.Earning(id); !ok || got != want {
			t.Errorf("Earning(%s) = %+v, %v; want %+v", id, got, ok, want)
		}
	}
	c.ApplyAt(PointsExpired{EarningID: earningID, Points: 119}, day(2026, 3, 14))
	if s, _ := c.Earning(earningID); c.Points() != 20 || s.Remaining != 0 {
		t.Errorf("after expiry: Points() = %d, remaining %d; want 20, 0", c.Points(), s.Remaining)
	}
	if _, ok := c.Earning(ticketID); ok {
		t.Error("Earning of an unknown id found")
	}
}

func TestCustomerCheckLoyalty(t *testing.T) {
	base := loyaltyHistory()
	then := func(more ...Event) []Event { return append(append([]Event(nil), base...), more...) }
	redeem := func(n int64) PointsRedeemed {
		return PointsRedeemed{RedemptionID: uuid.New(), Points: n, Reward: "TOTE-BAG"}
	}
	expire := func(id uuid.UUID, n int64) PointsExpired { return PointsExpired{EarningID: id, Points: n} }
	secondOrder := PurchaseCompleted{OrderID: ticketID, Amount: 500, Currency: "EUR", Lines: []OrderLine{{SKU: "SOCK-3P", Quantity: 1, UnitAmount: 500}}}
	expiry := day(2026, 3, 14)

	tests := []struct {
		name    string
		history []Event
		event   Event
		at      time.Time // zero: undated Check
		entity  string    // "" means allowed
		rule    string    // a substring of the rule
	}{
		{"redeem the whole balance", base, redeem(139), time.Time{}, "", ""},
		{"redeem above the balance", base, redeem(140), time.Time{}, "loyalty", "redeeming 140 points exceeds the balance of 139"},
		{"redeem with nothing earned", history(), redeem(1), time.Time{}, "loyalty", "exceeds the balance of 0"},
		{"redemption id reused", base, PointsRedeemed{RedemptionID: redemptionID, Points: 1, Reward: "COFFEE-FREE"}, time.Time{}, "loyalty", "redemption id already used"},
		{"earning id reused", base, PointsEarned{EarningID: otherID, Points: 5, Reason: EarnAdjustment}, time.Time{}, "loyalty", "earning id already used"},
		{"purchase points for an unknown order", base, PointsEarned{EarningID: uuid.New(), Points: 5, Reason: EarnPurchase, OrderID: ptr(ticketID)}, time.Time{}, "order", "unknown order"},
		{"purchase points twice for an order", base, PointsEarned{EarningID: uuid.New(), Points: 5, Reason: EarnPurchase, OrderID: ptr(orderID)}, time.Time{}, "order", "already earned"},
		{"purchase points for a second order", then(secondOrder), PointsEarned{EarningID: uuid.New(), Points: 5, Reason: EarnPurchase, OrderID: ptr(ticketID)}, time.Time{}, "", ""},
		{"bonus on an earned order", base, PointsEarned{EarningID: uuid.New(), Points: 5, Reason: EarnBonus, Rule: "x2", OrderID: ptr(orderID)}, time.Time{}, "", ""},
		{"expire the remainder at expiry", base, expire(earningID, 119), expiry, "", ""},
		{"expire the remainder after expiry", base, expire(earningID, 119), expiry.AddDate(0, 0, 3), "", ""},
		{"expire before expiry", base, expire(earningID, 119), expiry.Add(-time.Nanosecond), "loyalty", "expires at 2026-03-14T00:00:00Z"},
		{"expire above the remainder", base, expire(earningID, 120), expiry, "loyalty", "exceeds the earning's unexpired remainder of 119"},
		{"expire above the balance", base, expire(earningID, 140), expiry, "loyalty", "expiring 140 points exceeds the balance of 139"},
		{"expire a spent earning", base, expire(otherID, 1), expiry, "loyalty", "remainder of 0"},
		{"expire twice", then(expire(earningID, 119)), expire(earningID, 1), expiry, "loyalty", "remainder of 0"},
		{"expire an earning that never expires", base, expire(refundID, 20), expiry, "loyalty", "never expires"},
		{"expire an unknown earning", base, expire(ticketID, 1), expiry, "loyalty", "unknown earning"},
		{"redeem after expiry", then(expire(earningID, 119)), redeem(21), time.Time{}, "loyalty", "redeeming 21 points exceeds the balance of 20"},
		{"loyalty after forgotten", then(validEvents()[TypeCustomerForgotten]), redeem(1), time.Time{}, "customer", "forgotten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fold(tt.history...)
			points := c.Points()
			var err error
			if tt.at.IsZero() {
				err = c.Check(tt.event)
			} else {
				err = c.CheckAt(tt.event, tt.at)
			}
			if c.Points() != points {
				t.Error("Check changed the balance")
			}
			if tt.entity == "" {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			var re *RejectionError
			if !errors.As(err, &re) || re.Entity != tt.entity || !strings.Contains(re.Rule, tt.rule) {
				t.Fatalf("got %v, want a rejection by %s saying %q", err, tt.entity, tt.rule)
			}
		})
	}
}

// CheckAll folds the batch: two redemptions that each fit the balance but
// not together are refused at the second; a clone keeps its own loyalty.
func TestCustomerLoyaltyBatchAndClone(t *testing.T) {
	c := fold(loyaltyHistory()...)
	r := func(n int64) PointsRedeemed {
		return PointsRedeemed{RedemptionID: uuid.New(), Points: n, Reward: "MUG"}
	}
	err := c.CheckAll(r(100), r(40))
	var re *RejectionError
	if !errors.As(err, &re) || re.Entity != "loyalty" || !strings.Contains(err.Error(), "event 1") || !strings.Contains(re.Rule, "balance of 39") {
		t.Errorf("CheckAll = %v", err)
	}
	n := c.Clone()
	spent := r(139)
	n.Apply(spent)
	n.Apply(PointsExpired{EarningID: earningID, Points: 5})
	// Apply trusts history: an over-expiry in legacy history folds.
	if c.Points() != 139 || n.Points() != -5 {
		t.Errorf("Points: original %d, clone %d", c.Points(), n.Points())
	}
	if s, _ := c.Earning(earningID); s.Remaining != 119 {
		t.Errorf("original remainder %d after the clone spent it", s.Remaining)
	}
	if err := c.Check(PointsRedeemed{RedemptionID: spent.RedemptionID, Points: 1, Reward: "MUG"}); err != nil {
		t.Errorf("the clone's redemption id is used in the original: %v", err)
	}
}

// TestOnlyErasedOutcomeFollowsForgotten: after CustomerForgotten the stream
// takes only the record that a queued message was not sent because of the
// erasure, so that every message gets an outcome.
func TestOnlyErasedOutcomeFollowsForgotten(t *testing.T) {
	id := uuid.New()
	c := NewCustomer(id)
	c.Apply(CustomerRegistered{CustomerID: id, Name: "Zoë"})
	c.Apply(CustomerForgotten{Request: "DSR-1"})
	msg := uuid.New()
	for _, tc := range []struct {
		name string
		e    Event
		ok   bool
	}{
		{"erased outcome", MessageFailed{MessageID: msg, Channel: ConsentEmail, Reason: FailureCustomerErased}, true},
		{"other failure", MessageFailed{MessageID: msg, Channel: ConsentEmail, Reason: FailureRejected, Attempts: 1}, false},
		{"delivered", MessageDelivered{MessageID: msg, Channel: ConsentEmail, Via: ViaSMTP, Attempts: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Check(tc.e)
			if tc.ok && err != nil {
				t.Fatalf("want accepted, got %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrRejected) {
				t.Fatalf("want ErrRejected, got %v", err)
			}
		})
	}
}

// TestDeliveryOutcomeIDIsDeterministic: one id per message, distinct across
// messages and from the message id itself.
func TestDeliveryOutcomeIDIsDeterministic(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	if first, again := DeliveryOutcomeID(a), DeliveryOutcomeID(uuid.MustParse(a.String())); first != again {
		t.Fatal("outcome id not deterministic")
	}
	if DeliveryOutcomeID(a) == DeliveryOutcomeID(b) || DeliveryOutcomeID(a) == a {
		t.Fatal("outcome ids collide")
	}
}

// A merge is decided against both parties' histories: who may absorb whom,
// and an unmerge only of a merge in effect.
func TestCheckMerge(t *testing.T) {
	s, a, c := uuid.New(), uuid.New(), uuid.New()
	m := CustomerMerged{MergeID: uuid.New(), Survivor: s, Absorbed: a}
	reg := func(id uuid.UUID) *Customer {
		cu := NewCustomer(id)
		cu.Apply(CustomerRegistered{CustomerID: id, Name: "X"})
		return cu
	}
	tests := []struct {
		name    string
		stream  uuid.UUID
		history []Event
		event   Event
		ok      bool
	}{
		{"survivor side", s, nil, m, true},
		{"absorbed side", a, nil, m, true},
		{"a third stream", c, nil, m, false},
		{"absorbed twice", a, []Event{m}, CustomerMerged{MergeID: uuid.New(), Survivor: c, Absorbed: a}, false},
		{"absorbed survivor absorbs", a, []Event{m}, CustomerMerged{MergeID: uuid.New(), Survivor: a, Absorbed: c}, false},
		{"survivor absorbs another", s, []Event{m}, CustomerMerged{MergeID: uuid.New(), Survivor: s, Absorbed: c}, true},
		{"survivor cannot be absorbed", s, []Event{m}, CustomerMerged{MergeID: uuid.New(), Survivor: c, Absorbed: s}, false},
		{"unmerge in effect", s, []Event{m}, CustomerUnmerged{MergeID: m.MergeID, Survivor: s, Absorbed: a}, true},
		{"unmerge unknown", s, nil, CustomerUnmerged{MergeID: m.MergeID, Survivor: s, Absorbed: a}, false},
		{"unmerge twice", s, []Event{m, CustomerUnmerged{MergeID: m.MergeID, Survivor: s, Absorbed: a}}, CustomerUnmerged{MergeID: m.MergeID, Survivor: s, Absorbed: a}, false},
		{"unmerge wrong parties", s, []Event{m}, CustomerUnmerged{MergeID: m.MergeID, Survivor: s, Absorbed: c}, false},
		{"merge again after unmerge", a, []Event{m, CustomerUnmerged{MergeID: m.MergeID, Survivor: s, Absorbed: a}}, CustomerMerged{MergeID: uuid.New(), Survivor: c, Absorbed: a}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cu := reg(tt.stream)
			for _, e := range tt.history {
				cu.Apply(e)
			}
			err := cu.Check(tt.event)
			if (err == nil) != tt.ok {
				t.Fatalf("Check = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrRejected) {
				t.Errorf("error %v is not a rejection", err)
			}
		})
	}
}
