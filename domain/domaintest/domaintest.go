// Package domaintest gives tests of every write path one valid event of
// every domain type, with the history it needs to be accepted, so that a
// test can try each type as each role (domain.MayAppend) and tell a
// refusal by the authority table from one by the customer's history.
package domaintest

import (
	"fmt"
	"strings"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/google/uuid"
)

// Sample is an event of one type for a registered customer: appending
// Before (in one append, at Sample.At minus an hour) and then Event (at
// At) is accepted by the customer's history.
type Sample struct {
	// Before are the events Event needs in the history (an open ticket for
	// a TicketUpdated, an earning for a PointsRedeemed); domain.RoleAdmin
	// may append every one of them.
	Before []domain.Event
	Event  domain.Event
}

// For returns a sample of typ for customer with fresh entity ids, so that
// any number of samples can go to one customer. at is when Event occurs;
// Before must occur an hour earlier (an earning that expires in between
// makes a PointsExpired acceptable). A CustomerRegistered sample
// registers customer: its stream must not exist yet. It fails for a type
// the codec does not know.
func For(typ string, customer uuid.UUID, at time.Time) (Sample, error) {
	ticket, opportunity, order, earning := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	opened := domain.TicketOpened{TicketID: ticket, Subject: "Colis non reçu", Priority: domain.PriorityHigh, Channel: domain.TicketEmail}
	opp := domain.OpportunityOpened{OpportunityID: opportunity, Name: "40 vélos électriques", Amount: 9_600_000, Currency: "EUR", Stage: domain.StageQualification, ExpectedClose: "2026-06-30"}
	bought := domain.PurchaseCompleted{OrderID: order, Amount: 12_990, Currency: "EUR", Shipping: 1_000, Lines: []domain.OrderLine{
		{SKU: "SNK-42-WHT", Description: "Baskets blanches, taille 42", Quantity: 1, UnitAmount: 8_990},
		{SKU: "SOCK-3P", Quantity: 2, UnitAmount: 1_500},
	}}
	granted := domain.PointsEarned{EarningID: earning, Points: 500, Reason: domain.EarnAdjustment, ExpiresAt: at.Add(-30 * time.Minute).UTC()}
	msg := fmt.Sprintf("<%s@mail.cxledger.example>", uuid.New())

	var s Sample
	switch typ {
	case domain.TypeCustomerRegistered:
		s.Event = domain.CustomerRegistered{CustomerID: customer, Name: "Zoë Ångström-Nguyễn", Country: "FR"}
	case domain.TypeProfileUpdated:
		s.Event = domain.ProfileUpdated{Name: new("Zoë Nguyễn")}
	case domain.TypeIdentifierLinked:
		s.Event = domain.IdentifierLinked{Kind: domain.IdentifierExternal, Value: "crm:" + uuid.NewString()}
	case domain.TypeConsentGranted:
		s.Event = domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "checkout-form"}
	case domain.TypeConsentWithdrawn:
		s.Event = domain.ConsentWithdrawn{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing}
	case domain.TypeCustomerForgotten:
		s.Event = domain.CustomerForgotten{Request: "DSR-2026-0042"}
	case domain.TypeCustomerMerged:
		s.Event = domain.CustomerMerged{MergeID: uuid.New(), Survivor: customer, Absorbed: uuid.New(), Reason: "same e-mail address"}
	case domain.TypeCustomerUnmerged:
		m := domain.CustomerMerged{MergeID: uuid.New(), Survivor: customer, Absorbed: uuid.New(), Reason: "same e-mail address"}
		s.Before = []domain.Event{m}
		s.Event = domain.CustomerUnmerged{MergeID: m.MergeID, Survivor: customer, Absorbed: m.Absorbed, Reason: "two people after all"}

	case domain.TypeCallLogged:
		s.Event = domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: 754, Agent: "user:marta", Outcome: domain.CallConnected}
	case domain.TypeEmailSent:
		s.Event = domain.EmailSent{MessageID: msg, Subject: "Votre commande est en route 🚚", From: "support@shop.example", To: "zoe@example.fr"}
	case domain.TypeEmailReceived:
		s.Event = domain.EmailReceived{MessageID: msg, Subject: "Re: Votre commande", From: "zoe@example.fr", To: "support@shop.example"}
	case domain.TypeEmailOpened:
		s.Event = domain.EmailOpened{MessageID: msg}
	case domain.TypeEmailClicked:
		s.Event = domain.EmailClicked{MessageID: msg, URL: "https://shop.example/track/10472"}
	case domain.TypeChatConversationHeld:
		s.Event = domain.ChatConversationHeld{ConversationID: "conv_" + uuid.NewString(), Agent: "user:jean-pierre", Messages: 17, DurationSeconds: 420}
	case domain.TypeMeetingHeld:
		s.Event = domain.MeetingHeld{Title: "Quarterly business review", DurationSeconds: 3600}
	case domain.TypeSMSSent:
		s.Event = domain.SMSSent{To: "+33 6 12 34 56 78", Body: "Votre colis arrive demain."}
	case domain.TypeNoteAdded:
		s.Event = domain.NoteAdded{Body: "Prefers contact in French ✉"}

	case domain.TypePurchaseCompleted:
		s.Event = bought
	case domain.TypeRefundIssued:
		s.Before = []domain.Event{bought}
		s.Event = domain.RefundIssued{RefundID: uuid.New(), OrderID: order, Amount: 1_500, Currency: "EUR"}

	case domain.TypeTicketOpened:
		s.Event = opened
	case domain.TypeTicketUpdated:
		s.Before = []domain.Event{opened}
		s.Event = domain.TicketUpdated{TicketID: ticket, Comment: "Opened an inquiry with the carrier."}
	case domain.TypeTicketResolved:
		s.Before = []domain.Event{opened}
		s.Event = domain.TicketResolved{TicketID: ticket, Resolution: "Parcel found."}
	case domain.TypeTicketReopened:
		s.Before = []domain.Event{opened, domain.TicketResolved{TicketID: ticket, Resolution: "Parcel found."}}
		s.Event = domain.TicketReopened{TicketID: ticket, Reason: "Parcel was damaged."}
	case domain.TypeTicketClosed:
		s.Before = []domain.Event{opened}
		s.Event = domain.TicketClosed{TicketID: ticket, Reason: "Replacement delivered."}
	case domain.TypeTicketEscalated:
		s.Before = []domain.Event{opened}
		s.Event = domain.TicketEscalated{TicketID: ticket, Priority: domain.PriorityHigh, Breach: "no first response within 4h", SLASeconds: 4 * 3600}

	case domain.TypeLeadCaptured:
		s.Event = domain.LeadCaptured{Source: domain.LeadWebForm, Interest: "Fleet of 40 e-bikes"}
	case domain.TypeOpportunityOpened:
		s.Event = opp
	case domain.TypeOpportunityStageChanged:
		s.Before = []domain.Event{opp}
		s.Event = domain.OpportunityStageChanged{OpportunityID: opportunity, Stage: domain.StageProposal}
	case domain.TypeOpportunityWon:
		s.Before = []domain.Event{opp}
		s.Event = domain.OpportunityWon{OpportunityID: opportunity}
	case domain.TypeOpportunityLost:
		s.Before = []domain.Event{opp}
		s.Event = domain.OpportunityLost{OpportunityID: opportunity, Reason: domain.LossCompetitor}

	case domain.TypePointsEarned:
		s.Event = domain.PointsEarned{EarningID: uuid.New(), Points: 250, Reason: domain.EarnAdjustment}
	case domain.TypePointsRedeemed:
		s.Before = []domain.Event{domain.PointsEarned{EarningID: earning, Points: 500, Reason: domain.EarnAdjustment}}
		s.Event = domain.PointsRedeemed{RedemptionID: uuid.New(), Points: 100, Reward: "Café offert ☕"}
	case domain.TypePointsExpired:
		s.Before = []domain.Event{granted}
		s.Event = domain.PointsExpired{EarningID: earning, Points: 500}
	case domain.TypePointsClawedBack:
		refund := uuid.New()
		s.Before = []domain.Event{bought,
			domain.PointsEarned{EarningID: earning, Points: 129, Reason: domain.EarnPurchase, OrderID: &order},
			domain.RefundIssued{RefundID: refund, OrderID: order, Amount: 1_500, Currency: "EUR"}}
		s.Event = domain.PointsClawedBack{EarningID: earning, RefundID: refund, OrderID: order, Points: 14}

	case domain.TypeCampaignTouched:
		s.Event = domain.CampaignTouched{Campaign: "spring-2026", Channel: domain.CampaignEmail, Action: domain.ActionClicked}
	case domain.TypeSurveyAnswered:
		s.Event = domain.SurveyAnswered{Survey: "nps-post-purchase", NPS: new(9)}

	case domain.TypeMessageQueued:
		s.Event = domain.MessageQueued{MessageID: uuid.New(), Channel: domain.ConsentEmail, Template: "order-follow-up", Purpose: domain.PurposeService}
	case domain.TypeDiscountIssued:
		s.Event = domain.DiscountIssued{DiscountID: uuid.New(), Code: "BDAY-" + strings.ToUpper(uuid.NewString()[:8]), PercentOff: 10, ValidUntil: at.AddDate(0, 1, 0).UTC().Truncate(24 * time.Hour), Reason: "birthday"}
	case domain.TypeMessageDelivered:
		s.Event = domain.MessageDelivered{MessageID: uuid.New(), Channel: domain.ConsentEmail, Via: domain.ViaWebhook, Attempts: 1}
	case domain.TypeMessageFailed:
		s.Event = domain.MessageFailed{MessageID: uuid.New(), Channel: domain.ConsentSMS, Reason: domain.FailureRejected, Via: domain.ViaWebhook, Attempts: 1, Detail: "HTTP 410"}
	default:
		if _, err := domain.SchemaVersion(typ); err != nil {
			return Sample{}, err
		}
		return Sample{}, fmt.Errorf("domaintest: no sample of %s yet: add one", typ)
	}
	return s, nil
}
