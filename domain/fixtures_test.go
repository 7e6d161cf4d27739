package domain

import (
	"time"

	"github.com/google/uuid"
)

// Fixtures look like production: real uuids, unicode names, realistic
// amounts in minor units.
var (
	customerID    = uuid.MustParse("15cf8f44-2ec6-441c-9f2e-229a8d221eaf")
	ticketID      = uuid.MustParse("73614f1c-77e4-43b3-9a90-542472fc6bc1")
	opportunityID = uuid.MustParse("35a49188-cc59-45b8-9def-6ecd78b7cf3a")
	orderID       = uuid.MustParse("44de0bb8-b9b6-42cb-b699-a1d767a2699c")
	refundID      = uuid.MustParse("457583b2-585c-4972-abb0-3fb81e8c1e8a")
	otherID       = uuid.MustParse("b700c11a-ec2a-4426-aec1-5da2f454f7d6")
	earningID     = uuid.MustParse("5d0f7a3e-9c1b-4e8d-a2f6-3b7c9e1d4a58")
	redemptionID  = uuid.MustParse("c81e4b2a-6f3d-4a9c-8e5b-0d2f7a1c3e96")
	messageID     = uuid.MustParse("0b9e6c2d-4f7a-5b3e-8c1d-2a6f9e0b4d73")
	discountID    = uuid.MustParse("9a3c5e7f-1b2d-5f4e-8a6c-3d5e7f9a1b2c")

	now = time.Date(2025, 3, 14, 9, 26, 53, 589_793_000, time.UTC)
)

func ptr[T any](v T) *T { return &v }

// validEvents holds one realistic, valid event of every known type.
func validEvents() map[string]Event {
	return map[string]Event{
		TypeCustomerRegistered: CustomerRegistered{CustomerID: customerID, Name: "Zoë Ångström-Nguyễn", Locale: "fr-FR", Country: "FR", Company: "Société Générale d'Électricité", Birthday: "1988-07-14"},
		TypeProfileUpdated:     ProfileUpdated{Name: ptr("Zoë Nguyễn"), Company: ptr(""), Birthday: ptr("--02-29")},
		TypeIdentifierLinked:   IdentifierLinked{Kind: IdentifierEmail, Value: "Zoe.Nguyen@Example.fr"},
		TypeConsentGranted:     ConsentGranted{Channel: ConsentEmail, Purpose: PurposeMarketing, Source: "checkout-form", Wording: "newsletter-2024-06"},
		TypeConsentWithdrawn:   ConsentWithdrawn{Channel: ConsentSMS, Purpose: PurposeMarketing, Reason: "Trop de messages 📱"},
		TypeCustomerForgotten:  CustomerForgotten{Request: "DSR-2025-0042", Reason: "GDPR art. 17 request by e-mail"},
		TypeCustomerMerged:     CustomerMerged{MergeID: customerID, Survivor: customerID, Absorbed: uuid.MustParse("0193a5f0-0000-7000-8000-000000000002"), Reason: "même adresse gmail"},
		TypeCustomerUnmerged:   CustomerUnmerged{MergeID: customerID, Survivor: customerID, Absorbed: uuid.MustParse("0193a5f0-0000-7000-8000-000000000002"), Reason: "deux personnes"},

		TypeCallLogged:           CallLogged{Direction: CallInbound, DurationSeconds: 754, Agent: "user:marta.kowalska", Outcome: CallConnected, Summary: "Asked about delivery of order #10472.\nPromised a call back."},
		TypeEmailSent:            EmailSent{MessageID: "<20250314092653.4711@mail.cxledger.example>", Subject: "Votre commande est en route 🚚", From: "support@shop.example", To: "zoe.nguyen@example.fr", Template: "shipping-confirmation", Campaign: "spring-2025"},
		TypeEmailReceived:        EmailReceived{MessageID: "<CAF=ab12@mail.example.fr>", Subject: "Re: Votre commande", From: "zoe.nguyen@example.fr", To: "support@shop.example", InReplyTo: "<20250314092653.4711@mail.cxledger.example>"},
		TypeEmailOpened:          EmailOpened{MessageID: "<20250314092653.4711@mail.cxledger.example>"},
		TypeEmailClicked:         EmailClicked{MessageID: "<20250314092653.4711@mail.cxledger.example>", URL: "https://shop.example/track/10472?utm_source=email"},
		TypeChatConversationHeld: ChatConversationHeld{ConversationID: "conv_01HQ3Z8K2M", Agent: "user:jean-pierre", Messages: 17, DurationSeconds: 420, Summary: "Size exchange for sneakers"},
		TypeMeetingHeld:          MeetingHeld{Title: "Quarterly business review", DurationSeconds: 3600, Location: "München, Marienplatz 8", Attendees: []string{"Zoë Nguyễn", "Marta Kowalska"}, Notes: "Renewal discussed."},
		TypeSMSSent:              SMSSent{To: "+33 6 12 34 56 78", Body: "Votre colis arrive demain entre 9h et 12h."},
		TypeNoteAdded:            NoteAdded{Body: "Prefers contact in French, after 17:00.\nVIP since 2019."},

		TypePurchaseCompleted: PurchaseCompleted{OrderID: orderID, Amount: 12_990, Currency: "EUR", Lines: []OrderLine{
			{SKU: "SNK-42-WHT", Description: "Baskets blanches, taille 42", Quantity: 1, UnitAmount: 8_990},
			{SKU: "SOCK-3P", Description: "Chaussettes (lot de 3)", Quantity: 2, UnitAmount: 1_500},
		}, Shipping: 1_000},
		TypeRefundIssued: RefundIssued{RefundID: refundID, OrderID: orderID, Amount: 1_500, Currency: "EUR", Reason: "Socks returned unopened"},

		TypeTicketOpened:   TicketOpened{TicketID: ticketID, Subject: "Colis non reçu", Priority: PriorityHigh, Channel: TicketEmail, Description: "Order #10472 shows delivered but nothing arrived."},
		TypeTicketUpdated:  TicketUpdated{TicketID: ticketID, Status: ptr(StatusInProgress), Assignee: ptr("user:marta.kowalska"), Comment: "Opened an inquiry with the carrier.", FirstResponse: true},
		TypeTicketResolved: TicketResolved{TicketID: ticketID, Resolution: "Carrier found the parcel; delivered 2025-03-16."},
		TypeTicketReopened: TicketReopened{TicketID: ticketID, Reason: "Parcel was damaged."},
		TypeTicketClosed:   TicketClosed{TicketID: ticketID, Reason: "Replacement delivered."},

		TypeLeadCaptured:            LeadCaptured{Source: LeadWebForm, Campaign: "salon-lyon-2025", Interest: "Fleet of 40 e-bikes"},
		TypeOpportunityOpened:       OpportunityOpened{OpportunityID: opportunityID, Name: "40 e-bikes for Société Générale d'Électricité", Amount: 9_600_000, Currency: "EUR", Stage: StageQualification, ExpectedClose: "2025-06-30"},
		TypeOpportunityStageChanged: OpportunityStageChanged{OpportunityID: opportunityID, Stage: StageProposal},
		TypeOpportunityWon:          OpportunityWon{OpportunityID: opportunityID, Comment: "Signed after a 5% discount."},
		TypeOpportunityLost:         OpportunityLost{OpportunityID: opportunityID, Reason: LossCompetitor, Detail: "Went with a local supplier."},

		TypePointsEarned:     PointsEarned{EarningID: earningID, Points: 129, Reason: EarnPurchase, OrderID: ptr(orderID), ExpiresAt: now.AddDate(1, 0, 0)},
		TypePointsRedeemed:   PointsRedeemed{RedemptionID: redemptionID, Points: 100, Reward: "Café offert ☕ (COFFEE-FREE)"},
		TypePointsExpired:    PointsExpired{EarningID: earningID, Points: 29},
		TypePointsClawedBack: PointsClawedBack{EarningID: earningID, RefundID: refundID, OrderID: orderID, Points: 15},

		TypeCampaignTouched: CampaignTouched{Campaign: "spring-2025", Channel: CampaignEmail, Action: ActionClicked},
		TypeSurveyAnswered:  SurveyAnswered{Survey: "nps-post-purchase", NPS: ptr(9), Comment: "Très bon service, merci !"},

		TypeTicketEscalated: TicketEscalated{TicketID: ticketID, Priority: PriorityHigh, Breach: "no first response within 4h", SLASeconds: 4 * 3600},
		TypeMessageQueued:   MessageQueued{MessageID: messageID, Channel: ConsentEmail, Template: "purchase-follow-up", Purpose: PurposeMarketing, Campaign: "après-achat-2025"},
		TypeDiscountIssued:  DiscountIssued{DiscountID: discountID, Code: "BDAY-1A2B3C4D", PercentOff: 10, ValidUntil: time.Date(2025, 8, 13, 0, 0, 0, 0, time.UTC), Reason: "birthday"},

		TypeMessageDelivered: MessageDelivered{MessageID: messageID, Channel: ConsentEmail, Via: ViaSMTP, Attempts: 2},
		TypeMessageFailed:    MessageFailed{MessageID: messageID, Channel: ConsentSMS, Reason: FailureAttemptsExhausted, Via: ViaWebhook, Attempts: 5, Detail: "HTTP 503"},
	}
}

func validMetadata() Metadata {
	return Metadata{
		OccurredAt:    now.Add(-3 * time.Minute),
		Actor:         "user:2c4f1a9e-5b7d-4e0a-8f3c-6d2b9a1e7f45",
		Channel:       "web",
		CorrelationID: "8bb067a5-c507-450d-b63c-19a12ce59e0e",
		CausationID:   "13ab3ffd-6a45-46b9-9ce3-af6896cd53d1",
		SchemaVersion: 1,
	}
}
