package domain

import (
	"time"

	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestValidate lists, for every event type, valid variants (nil error) and
// invalid ones with the field the error must name.
func TestValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) }
	lines := func(n int) []OrderLine {
		ls := make([]OrderLine, n)
		for i := range ls {
			ls[i] = OrderLine{SKU: "SKU-1", Quantity: 1, UnitAmount: 100}
		}
		return ls
	}
	ev := validEvents()
	reg := ev[TypeCustomerRegistered].(CustomerRegistered)
	call := ev[TypeCallLogged].(CallLogged)
	sent := ev[TypeEmailSent].(EmailSent)
	recv := ev[TypeEmailReceived].(EmailReceived)
	chat := ev[TypeChatConversationHeld].(ChatConversationHeld)
	meet := ev[TypeMeetingHeld].(MeetingHeld)
	buy := ev[TypePurchaseCompleted].(PurchaseCompleted)
	refund := ev[TypeRefundIssued].(RefundIssued)
	opened := ev[TypeTicketOpened].(TicketOpened)
	opp := ev[TypeOpportunityOpened].(OpportunityOpened)

	with := func(e CustomerRegistered, f func(*CustomerRegistered)) CustomerRegistered { f(&e); return e }
	disc := func(f func(*DiscountIssued)) DiscountIssued {
		e := ev[TypeDiscountIssued].(DiscountIssued)
		f(&e)
		return e
	}
	withCall := func(f func(*CallLogged)) CallLogged { e := call; f(&e); return e }
	withBuy := func(f func(*PurchaseCompleted)) PurchaseCompleted {
		e := buy
		e.Lines = append([]OrderLine(nil), buy.Lines...)
		f(&e)
		return e
	}
	withOpp := func(f func(*OpportunityOpened)) OpportunityOpened { e := opp; f(&e); return e }
	withRefund := func(f func(*RefundIssued)) RefundIssued { e := refund; f(&e); return e }

	tests := []struct {
		name  string
		event Event
		field string // "" means valid
	}{
		// Profile and identity.
		{"registered minimal", CustomerRegistered{CustomerID: customerID, Name: "李小龍"}, ""},
		{"registered nil id", with(reg, func(e *CustomerRegistered) { e.CustomerID = uuid.Nil }), "customerId"},
		{"registered blank name", with(reg, func(e *CustomerRegistered) { e.Name = "  " }), "name"},
		{"registered long name", with(reg, func(e *CustomerRegistered) { e.Name = long(201) }), "name"},
		{"registered name 200 runes", with(reg, func(e *CustomerRegistered) { e.Name = long(200) }), ""},
		{"registered control char", with(reg, func(e *CustomerRegistered) { e.Name = "Zoë\x00" }), "name"},
		{"registered invalid utf8", with(reg, func(e *CustomerRegistered) { e.Name = "Zo\xffë" }), "name"},
		{"registered bad locale", with(reg, func(e *CustomerRegistered) { e.Locale = "french" }), "locale"},
		{"registered non-canonical locale", with(reg, func(e *CustomerRegistered) { e.Locale = "fr-fr" }), "locale"},
		{"registered bad country", with(reg, func(e *CustomerRegistered) { e.Country = "fr" }), "country"},
		{"registered unknown country", with(reg, func(e *CustomerRegistered) { e.Country = "ZZ" }), "country"},
		{"profile empty", ProfileUpdated{}, ""},
		{"profile clear name", ProfileUpdated{Name: ptr("")}, "name"},
		{"profile clear company", ProfileUpdated{Company: ptr("")}, ""},
		{"profile bad country", ProfileUpdated{Country: ptr("France")}, "country"},
		{"profile locale", ProfileUpdated{Locale: ptr("pt-BR")}, ""},
		{"profile birthday only", ProfileUpdated{Birthday: ptr("1988-07-14")}, ""},
		{"profile clear birthday", ProfileUpdated{Birthday: ptr("")}, ""},
		{"profile bad birthday", ProfileUpdated{Birthday: ptr("14/07/1988")}, "birthday"},
		{"registered birthday", with(reg, func(e *CustomerRegistered) { e.Birthday = "1988-07-14" }), ""},
		{"registered birthday without year", with(reg, func(e *CustomerRegistered) { e.Birthday = "--07-14" }), ""},
		{"registered birthday feb 29 without year", with(reg, func(e *CustomerRegistered) { e.Birthday = "--02-29" }), ""},
		{"registered birthday feb 29 leap year", with(reg, func(e *CustomerRegistered) { e.Birthday = "1992-02-29" }), ""},
		{"registered birthday feb 29 common year", with(reg, func(e *CustomerRegistered) { e.Birthday = "1990-02-29" }), "birthday"},
		{"registered birthday feb 30 without year", with(reg, func(e *CustomerRegistered) { e.Birthday = "--02-30" }), "birthday"},
		{"registered birthday month 13", with(reg, func(e *CustomerRegistered) { e.Birthday = "--13-01" }), "birthday"},
		{"registered birthday day 0", with(reg, func(e *CustomerRegistered) { e.Birthday = "--01-00" }), "birthday"},
		{"registered birthday signed", with(reg, func(e *CustomerRegistered) { e.Birthday = "--+1-01" }), "birthday"},
		{"registered birthday no dashes", with(reg, func(e *CustomerRegistered) { e.Birthday = "--0714" }), "birthday"},
		{"registered birthday unpadded", with(reg, func(e *CustomerRegistered) { e.Birthday = "1988-7-14" }), "birthday"},
		{"registered birthday before 1900", with(reg, func(e *CustomerRegistered) { e.Birthday = "1899-12-31" }), "birthday"},
		{"registered birthday with time", with(reg, func(e *CustomerRegistered) { e.Birthday = "1988-07-14T00:00:00Z" }), "birthday"},
		{"registered birthday blank", with(reg, func(e *CustomerRegistered) { e.Birthday = " " }), "birthday"},
		{"identifier phone", IdentifierLinked{Kind: IdentifierPhone, Value: "0033 6 12 34 56 78"}, ""},
		{"identifier external", IdentifierLinked{Kind: IdentifierExternal, Value: "Shopify:81723"}, ""},
		{"identifier unknown kind", IdentifierLinked{Kind: "fax", Value: "+33612345678"}, "kind"},
		{"identifier missing kind", IdentifierLinked{Value: "+33612345678"}, "kind"},
		{"identifier bad email", IdentifierLinked{Kind: IdentifierEmail, Value: "zoe@"}, "value"},
		{"identifier bad phone", IdentifierLinked{Kind: IdentifierPhone, Value: "06 12 34 56 78"}, "value"},
		{"identifier bad external", IdentifierLinked{Kind: IdentifierExternal, Value: "81723"}, "value"},
		{"identifier missing value", IdentifierLinked{Kind: IdentifierEmail}, "value"},
		{"consent granted minimal", ConsentGranted{Channel: ConsentWhatsApp, Purpose: PurposeService}, ""},
		{"consent granted bad channel", ConsentGranted{Channel: "pigeon", Purpose: PurposeService}, "channel"},
		{"consent granted missing purpose", ConsentGranted{Channel: ConsentEmail}, "purpose"},
		{"consent withdrawn bad purpose", ConsentWithdrawn{Channel: ConsentEmail, Purpose: "spam"}, "purpose"},
		{"consent withdrawn missing channel", ConsentWithdrawn{Purpose: PurposeMarketing}, "channel"},
		{"forgotten minimal", CustomerForgotten{}, ""},
		{"merged minimal", CustomerMerged{MergeID: customerID, Survivor: customerID, Absorbed: uuid.New()}, ""},
		{"merged no absorbed", CustomerMerged{MergeID: customerID, Survivor: customerID}, "absorbed"},
		{"merged with itself", CustomerMerged{MergeID: customerID, Survivor: customerID, Absorbed: customerID}, "absorbed"},
		{"merged no merge id", CustomerMerged{Survivor: customerID, Absorbed: uuid.New()}, "mergeId"},
		{"unmerged minimal", CustomerUnmerged{MergeID: customerID, Survivor: customerID, Absorbed: uuid.New()}, ""},
		{"unmerged no survivor", CustomerUnmerged{MergeID: customerID, Absorbed: uuid.New()}, "survivor"},
		{"forgotten long request", CustomerForgotten{Request: long(201)}, "request"},

		// Interactions.
		{"call zero duration no answer", withCall(func(e *CallLogged) { e.DurationSeconds = 0; e.Outcome = CallNoAnswer }), ""},
		{"call bad direction", withCall(func(e *CallLogged) { e.Direction = "sideways" }), "direction"},
		{"call negative duration", withCall(func(e *CallLogged) { e.DurationSeconds = -1 }), "durationSeconds"},
		{"call 25h", withCall(func(e *CallLogged) { e.DurationSeconds = 25 * 3600 }), "durationSeconds"},
		{"call missing agent", withCall(func(e *CallLogged) { e.Agent = "" }), "agent"},
		{"call bad outcome", withCall(func(e *CallLogged) { e.Outcome = "great" }), "outcome"},
		{"call long summary", withCall(func(e *CallLogged) { e.Summary = long(10001) }), "summary"},
		{"email sent missing id", EmailSent{Subject: sent.Subject, From: sent.From, To: sent.To}, "messageId"},
		{"email sent bad to", EmailSent{MessageID: sent.MessageID, From: sent.From, To: "zoe at example"}, "to"},
		{"email sent bad from", EmailSent{MessageID: sent.MessageID, From: "", To: sent.To}, "from"},
		{"email sent newline subject", EmailSent{MessageID: sent.MessageID, Subject: "a\nBcc: x", From: sent.From, To: sent.To}, "subject"},
		{"email received bad from", EmailReceived{MessageID: recv.MessageID, From: "@example.fr", To: recv.To}, "from"},
		{"email opened missing id", EmailOpened{}, "messageId"},
		{"email clicked javascript", EmailClicked{MessageID: "<a@b>", URL: "javascript:alert(1)"}, "url"},
		{"email clicked relative", EmailClicked{MessageID: "<a@b>", URL: "/track/1"}, "url"},
		{"email clicked missing url", EmailClicked{MessageID: "<a@b>"}, "url"},
		{"chat bot only", ChatConversationHeld{ConversationID: chat.ConversationID, Messages: 3}, ""},
		{"chat no messages", ChatConversationHeld{ConversationID: chat.ConversationID}, "messages"},
		{"chat missing id", ChatConversationHeld{Messages: 3}, "conversationId"},
		{"meeting zero duration", MeetingHeld{Title: meet.Title}, "durationSeconds"},
		{"meeting missing title", MeetingHeld{DurationSeconds: 60}, "title"},
		{"meeting blank attendee", MeetingHeld{Title: "QBR", DurationSeconds: 60, Attendees: []string{"Zoë", " "}}, "attendees[1]"},
		{"meeting too many attendees", MeetingHeld{Title: "Town hall", DurationSeconds: 60, Attendees: make([]string, 51)}, "attendees"},
		{"sms bad number", SMSSent{To: "06 12", Body: "Bonjour"}, "to"},
		{"sms empty body", SMSSent{To: "+4915112345678"}, "body"},
		{"sms long body", SMSSent{To: "+4915112345678", Body: long(1601)}, "body"},
		{"note empty", NoteAdded{Body: "\n\t"}, "body"},
		{"note long", NoteAdded{Body: long(10001)}, "body"},

		// Commerce.
		{"purchase JPY", PurchaseCompleted{OrderID: orderID, Amount: 15_800, Currency: "JPY", Lines: []OrderLine{{SKU: "和菓子-12", Quantity: 2, UnitAmount: 7_900}}}, ""},
		{"purchase free", withBuy(func(e *PurchaseCompleted) { e.Amount, e.Discount = 0, 12_990 }), ""},
		// The amount reconciles with lines + shipping + tax − discount
		// (the fixture: 8 990 + 2 × 1 500 + 1 000 shipping = 12 990).
		{"purchase amount above its parts", withBuy(func(e *PurchaseCompleted) { e.Amount = 1_000_000 }), "amount"},
		{"purchase amount below its parts", withBuy(func(e *PurchaseCompleted) { e.Amount = 1 }), "amount"},
		{"purchase one line of 1 for 1000", withBuy(func(e *PurchaseCompleted) {
			e.Amount, e.Shipping, e.Lines = 1_000, 0, []OrderLine{{SKU: "A", Quantity: 1, UnitAmount: 1}}
		}), "amount"},
		{"purchase with tax and discount", withBuy(func(e *PurchaseCompleted) { e.Amount, e.Tax, e.Discount = 14_588, 2_598, 1_000 }), ""},
		{"purchase negative shipping", withBuy(func(e *PurchaseCompleted) { e.Amount, e.Shipping = 10_990, -1_000 }), "shipping"},
		{"purchase negative tax", withBuy(func(e *PurchaseCompleted) { e.Tax = -1 }), "tax"},
		{"purchase negative discount", withBuy(func(e *PurchaseCompleted) { e.Amount, e.Discount = 12_991, -1 }), "discount"},
		{"purchase absurd discount", withBuy(func(e *PurchaseCompleted) { e.Discount = MaxAmount + 1 }), "discount"},
		{"purchase discount above the order", withBuy(func(e *PurchaseCompleted) { e.Amount, e.Discount = 0, 13_000 }), "amount"},
		{"purchase nil order", withBuy(func(e *PurchaseCompleted) { e.OrderID = uuid.Nil }), "orderId"},
		{"purchase negative", withBuy(func(e *PurchaseCompleted) { e.Amount = -12_990 }), "amount"},
		{"purchase too large", withBuy(func(e *PurchaseCompleted) { e.Amount = MaxAmount + 1 }), "amount"},
		{"purchase lower-case currency", withBuy(func(e *PurchaseCompleted) { e.Currency = "eur" }), "currency"},
		{"purchase unknown currency", withBuy(func(e *PurchaseCompleted) { e.Currency = "ABC" }), "currency"},
		{"purchase XXX currency", withBuy(func(e *PurchaseCompleted) { e.Currency = "XXX" }), "currency"},
		{"purchase missing currency", withBuy(func(e *PurchaseCompleted) { e.Currency = "" }), "currency"},
		{"purchase no lines", withBuy(func(e *PurchaseCompleted) { e.Lines = nil }), "lines"},
		{"purchase 501 lines", withBuy(func(e *PurchaseCompleted) { e.Lines = lines(501) }), "lines"},
		{"purchase 500 lines", withBuy(func(e *PurchaseCompleted) { e.Lines, e.Amount = lines(500), 500*100+1_000 }), ""},
		{"purchase zero quantity", withBuy(func(e *PurchaseCompleted) { e.Lines[1].Quantity = 0 }), "lines[1].quantity"},
		{"purchase negative unit", withBuy(func(e *PurchaseCompleted) { e.Lines[0].UnitAmount = -1 }), "lines[0].unitAmount"},
		{"purchase line overflow", withBuy(func(e *PurchaseCompleted) { e.Lines[0].Quantity = 1_000_000; e.Lines[0].UnitAmount = MaxAmount }), "lines[0].unitAmount"},
		{"purchase missing sku", withBuy(func(e *PurchaseCompleted) { e.Lines[0].SKU = "" }), "lines[0].sku"},
		{"refund nil refund id", withRefund(func(e *RefundIssued) { e.RefundID = uuid.Nil }), "refundId"},
		{"refund nil order id", withRefund(func(e *RefundIssued) { e.OrderID = uuid.Nil }), "orderId"},
		{"refund zero", withRefund(func(e *RefundIssued) { e.Amount = 0 }), "amount"},
		{"refund negative", withRefund(func(e *RefundIssued) { e.Amount = -1_500 }), "amount"},
		{"refund bad currency", withRefund(func(e *RefundIssued) { e.Currency = "EURO" }), "currency"},

		// Service.
		{"ticket opened bad priority", TicketOpened{TicketID: ticketID, Subject: opened.Subject, Priority: "p1", Channel: TicketEmail}, "priority"},
		{"ticket opened bad channel", TicketOpened{TicketID: ticketID, Subject: opened.Subject, Priority: PriorityLow, Channel: "fax"}, "channel"},
		{"ticket opened missing subject", TicketOpened{TicketID: ticketID, Priority: PriorityLow, Channel: TicketWeb}, "subject"},
		{"ticket opened nil id", TicketOpened{Subject: "x", Priority: PriorityLow, Channel: TicketWeb}, "ticketId"},
		{"ticket updated comment only", TicketUpdated{TicketID: ticketID, Comment: "Relancé le transporteur."}, ""},
		{"ticket updated unassign", TicketUpdated{TicketID: ticketID, Assignee: ptr("")}, ""},
		{"ticket updated nothing", TicketUpdated{TicketID: ticketID}, ""},
		{"ticket updated to resolved", TicketUpdated{TicketID: ticketID, Status: ptr(StatusResolved)}, "status"},
		{"ticket updated unknown status", TicketUpdated{TicketID: ticketID, Status: ptr(TicketStatus("done"))}, "status"},
		{"ticket updated bad priority", TicketUpdated{TicketID: ticketID, Priority: ptr(TicketPriority("asap"))}, "priority"},
		{"ticket updated nil id", TicketUpdated{Comment: "x"}, "ticketId"},
		{"ticket resolved no resolution", TicketResolved{TicketID: ticketID}, "resolution"},
		{"ticket reopened no reason", TicketReopened{TicketID: ticketID}, "reason"},
		{"ticket closed minimal", TicketClosed{TicketID: ticketID}, ""},
		{"ticket closed nil id", TicketClosed{}, "ticketId"},

		// Sales.
		{"lead minimal", LeadCaptured{Source: LeadReferral}, ""},
		{"lead bad source", LeadCaptured{Source: "tv"}, "source"},
		{"lead missing source", LeadCaptured{Campaign: "x"}, "source"},
		{"opportunity bad stage", withOpp(func(e *OpportunityOpened) { e.Stage = "won" }), "stage"},
		{"opportunity bad date", withOpp(func(e *OpportunityOpened) { e.ExpectedClose = "30/06/2025" }), "expectedClose"},
		{"opportunity impossible date", withOpp(func(e *OpportunityOpened) { e.ExpectedClose = "2025-02-30" }), "expectedClose"},
		{"opportunity insane date", withOpp(func(e *OpportunityOpened) { e.ExpectedClose = "0025-06-30" }), "expectedClose"},
		{"opportunity missing date", withOpp(func(e *OpportunityOpened) { e.ExpectedClose = "" }), "expectedClose"},
		{"opportunity negative amount", withOpp(func(e *OpportunityOpened) { e.Amount = -1 }), "amount"},
		{"opportunity missing name", withOpp(func(e *OpportunityOpened) { e.Name = "" }), "name"},
		{"opportunity nil id", withOpp(func(e *OpportunityOpened) { e.OpportunityID = uuid.Nil }), "opportunityId"},
		{"stage changed bad stage", OpportunityStageChanged{OpportunityID: opportunityID, Stage: "closed"}, "stage"},
		{"stage changed nil id", OpportunityStageChanged{Stage: StageNegotiation}, "opportunityId"},
		{"won nil id", OpportunityWon{}, "opportunityId"},
		{"lost bad reason", OpportunityLost{OpportunityID: opportunityID, Reason: "bad luck"}, "reason"},
		{"lost other without detail", OpportunityLost{OpportunityID: opportunityID, Reason: LossOther}, "detail"},
		{"lost other with detail", OpportunityLost{OpportunityID: opportunityID, Reason: LossOther, Detail: "Company acquired"}, ""},

		// Loyalty.
		{"earned bonus", PointsEarned{EarningID: earningID, Points: 50, Reason: EarnBonus, Rule: "double-points-weekend"}, ""},
		{"earned adjustment without expiry", PointsEarned{EarningID: earningID, Points: 1, Reason: EarnAdjustment}, ""},
		{"earned nil id", PointsEarned{Points: 1, Reason: EarnAdjustment}, "earningId"},
		{"earned zero points", PointsEarned{EarningID: earningID, Reason: EarnAdjustment}, "points"},
		{"earned negative points", PointsEarned{EarningID: earningID, Points: -5, Reason: EarnAdjustment}, "points"},
		{"earned too many points", PointsEarned{EarningID: earningID, Points: MaxPoints + 1, Reason: EarnAdjustment}, "points"},
		{"earned bad reason", PointsEarned{EarningID: earningID, Points: 1, Reason: "birthday"}, "reason"},
		{"earned missing reason", PointsEarned{EarningID: earningID, Points: 1}, "reason"},
		{"earned purchase without order", PointsEarned{EarningID: earningID, Points: 1, Reason: EarnPurchase}, "orderId"},
		{"earned nil order", PointsEarned{EarningID: earningID, Points: 1, Reason: EarnAdjustment, OrderID: ptr(uuid.Nil)}, "orderId"},
		{"earned bonus without rule", PointsEarned{EarningID: earningID, Points: 1, Reason: EarnBonus}, "rule"},
		{"earned insane expiry", PointsEarned{EarningID: earningID, Points: 1, Reason: EarnAdjustment, ExpiresAt: day(2300, 1, 1)}, "expiresAt"},
		{"redeemed zero", PointsRedeemed{RedemptionID: redemptionID, Reward: "COFFEE"}, "points"},
		{"redeemed nil id", PointsRedeemed{Points: 1, Reward: "COFFEE"}, "redemptionId"},
		{"redeemed missing reward", PointsRedeemed{RedemptionID: redemptionID, Points: 1}, "reward"},
		{"redeemed reward control chars", PointsRedeemed{RedemptionID: redemptionID, Points: 1, Reward: "a\nb"}, "reward"},
		{"expired zero", PointsExpired{EarningID: earningID}, "points"},
		{"expired nil id", PointsExpired{Points: 1}, "earningId"},
		{"clawback zero", PointsClawedBack{EarningID: earningID, RefundID: refundID, OrderID: orderID}, "points"},
		{"clawback nil refund", PointsClawedBack{EarningID: earningID, OrderID: orderID, Points: 1}, "refundId"},
		{"clawback nil order", PointsClawedBack{EarningID: earningID, RefundID: refundID, Points: 1}, "orderId"},

		// Marketing and feedback.
		{"campaign missing campaign", CampaignTouched{Channel: CampaignSMS, Action: ActionSent}, "campaign"},
		{"campaign bad channel", CampaignTouched{Campaign: "x", Channel: "tv", Action: ActionSent}, "channel"},
		{"campaign bad action", CampaignTouched{Campaign: "x", Channel: CampaignSMS, Action: "liked"}, "action"},
		{"survey nps 0", SurveyAnswered{Survey: "nps", NPS: ptr(0)}, ""},
		{"survey nps 10", SurveyAnswered{Survey: "nps", NPS: ptr(10)}, ""},
		{"survey nps 11", SurveyAnswered{Survey: "nps", NPS: ptr(11)}, "nps"},
		{"survey nps -1", SurveyAnswered{Survey: "nps", NPS: ptr(-1)}, "nps"},
		{"survey nps missing", SurveyAnswered{Survey: "nps"}, "nps"},
		{"survey missing survey", SurveyAnswered{NPS: ptr(7)}, "survey"},

		// Automation.
		{"escalated valid", ev[TypeTicketEscalated], ""},
		{"escalated nil ticket", TicketEscalated{Priority: PriorityLow, Breach: "x", SLASeconds: 60}, "ticketId"},
		{"escalated bad priority", TicketEscalated{TicketID: ticketID, Priority: "critical", Breach: "x", SLASeconds: 60}, "priority"},
		{"escalated missing breach", TicketEscalated{TicketID: ticketID, Priority: PriorityLow, SLASeconds: 60}, "breach"},
		{"escalated zero sla", TicketEscalated{TicketID: ticketID, Priority: PriorityLow, Breach: "x"}, "slaSeconds"},
		{"escalated sla over a year", TicketEscalated{TicketID: ticketID, Priority: PriorityLow, Breach: "x", SLASeconds: 367 * 24 * 3600}, "slaSeconds"},
		{"queued service minimal", MessageQueued{MessageID: messageID, Channel: ConsentSMS, Template: "thank-you-won", Purpose: PurposeService}, ""},
		{"queued nil id", MessageQueued{Channel: ConsentEmail, Template: "t", Purpose: PurposeService}, "messageId"},
		{"queued push channel", MessageQueued{MessageID: messageID, Channel: ConsentPush, Template: "t", Purpose: PurposeService}, "channel"},
		{"queued missing template", MessageQueued{MessageID: messageID, Channel: ConsentEmail, Purpose: PurposeService}, "template"},
		{"queued analytics purpose", MessageQueued{MessageID: messageID, Channel: ConsentEmail, Template: "t", Purpose: PurposeAnalytics}, "purpose"},
		{"discount valid", ev[TypeDiscountIssued], ""},
		{"discount nil id", disc(func(e *DiscountIssued) { e.DiscountID = uuid.Nil }), "discountId"},
		{"discount missing code", disc(func(e *DiscountIssued) { e.Code = "" }), "code"},
		{"discount lower-case code", disc(func(e *DiscountIssued) { e.Code = "bday-1a2b" }), "code"},
		{"discount code with space", disc(func(e *DiscountIssued) { e.Code = "BDAY 1A2B" }), "code"},
		{"discount zero percent", disc(func(e *DiscountIssued) { e.PercentOff = 0 }), "percentOff"},
		{"discount 101 percent", disc(func(e *DiscountIssued) { e.PercentOff = 101 }), "percentOff"},
		{"discount 100 percent", disc(func(e *DiscountIssued) { e.PercentOff = 100 }), ""},
		{"discount no validity", disc(func(e *DiscountIssued) { e.ValidUntil = time.Time{} }), "validUntil"},
		{"discount missing reason", disc(func(e *DiscountIssued) { e.Reason = "" }), "reason"},
		{"queued campaign control chars", MessageQueued{MessageID: messageID, Channel: ConsentEmail, Template: "t", Purpose: PurposeMarketing, Campaign: "a\nb"}, "campaign"},

		// Delivery.
		{"delivered valid", ev[TypeMessageDelivered], ""},
		{"delivered nil id", MessageDelivered{Channel: ConsentEmail, Via: ViaSMTP, Attempts: 1}, "messageId"},
		{"delivered push channel", MessageDelivered{MessageID: messageID, Channel: ConsentPush, Via: ViaSMTP, Attempts: 1}, "channel"},
		{"delivered no via", MessageDelivered{MessageID: messageID, Channel: ConsentEmail, Attempts: 1}, "via"},
		{"delivered zero attempts", MessageDelivered{MessageID: messageID, Channel: ConsentEmail, Via: ViaWebhook}, "attempts"},
		{"failed valid", ev[TypeMessageFailed], ""},
		{"failed erased, nothing tried", MessageFailed{MessageID: messageID, Channel: ConsentEmail, Reason: FailureCustomerErased}, ""},
		{"failed unknown reason", MessageFailed{MessageID: messageID, Channel: ConsentEmail, Reason: "bounced"}, "reason"},
		{"failed bad via", MessageFailed{MessageID: messageID, Channel: ConsentEmail, Reason: FailureRejected, Via: "fax", Attempts: 1}, "via"},
		{"failed negative attempts", MessageFailed{MessageID: messageID, Channel: ConsentEmail, Reason: FailureRejected, Attempts: -1}, "attempts"},
		{"failed detail with newline", MessageFailed{MessageID: messageID, Channel: ConsentEmail, Reason: FailureRejected, Attempts: 1, Detail: "a\nb"}, "detail"},
	}
	// "nothing to change" updates name no field: they are reported on "".
	emptyAllowed := map[string]bool{"profile empty": true, "ticket updated nothing": true}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			covered[tt.event.EventType()] = true
			err := tt.event.Validate()
			if emptyAllowed[tt.name] {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Field != "" {
					t.Fatalf("want a field-less error, got %v", err)
				}
				return
			}
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid naming %s, got %v", tt.field, err)
			}
			var all ValidationErrors
			if !errors.As(err, &all) {
				t.Fatalf("want ValidationErrors, got %T", err)
			}
			for _, e := range all {
				if e.Field == tt.field {
					if e.Rule == "" {
						t.Errorf("empty rule for %s", tt.field)
					}
					return
				}
			}
			t.Fatalf("no error names %s: %v", tt.field, err)
		})
	}
	for typ := range validEvents() {
		if !covered[typ] {
			t.Errorf("no validation cases for %s", typ)
		}
	}
}
