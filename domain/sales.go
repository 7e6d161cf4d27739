package domain

import "github.com/google/uuid"

// Sales event type names.
const (
	TypeLeadCaptured            = "LeadCaptured"
	TypeOpportunityOpened       = "OpportunityOpened"
	TypeOpportunityStageChanged = "OpportunityStageChanged"
	TypeOpportunityWon          = "OpportunityWon"
	TypeOpportunityLost         = "OpportunityLost"
)

// LeadSource is how a lead reached us.
type LeadSource string

// Lead sources.
const (
	LeadWebForm  LeadSource = "web_form"
	LeadReferral LeadSource = "referral"
	LeadEvent    LeadSource = "event"
	LeadPartner  LeadSource = "partner"
	LeadOutbound LeadSource = "outbound"
	LeadAds      LeadSource = "ads"
	LeadImport   LeadSource = "import"
	LeadOther    LeadSource = "other"
)

var leadSources = []LeadSource{LeadWebForm, LeadReferral, LeadEvent, LeadPartner, LeadOutbound, LeadAds, LeadImport, LeadOther}

// LeadCaptured records interest from the customer, attributed to a source
// and optionally a campaign.
type LeadCaptured struct {
	Source   LeadSource `json:"source"`
	Campaign string     `json:"campaign,omitempty"`
	Interest string     `json:"interest,omitempty"`
}

// EventType implements Event.
func (LeadCaptured) EventType() string { return TypeLeadCaptured }

// Validate implements Event.
func (e LeadCaptured) Validate() error {
	var v validator
	enum(&v, "source", e.Source, true, leadSources)
	v.line("campaign", e.Campaign, false, maxName)
	v.text("interest", e.Interest, false, maxText)
	return v.err()
}

// OpportunityStage is an open opportunity's place in the pipeline. Won and
// lost are outcomes with their own events, not stages.
type OpportunityStage string

// Opportunity stages.
const (
	StageProspecting   OpportunityStage = "prospecting"
	StageQualification OpportunityStage = "qualification"
	StageProposal      OpportunityStage = "proposal"
	StageNegotiation   OpportunityStage = "negotiation"
)

var opportunityStages = []OpportunityStage{StageProspecting, StageQualification, StageProposal, StageNegotiation}

// OpportunityOpened records a potential sale of Amount minor units of
// Currency, expected to close on ExpectedClose (a YYYY-MM-DD date).
type OpportunityOpened struct {
	OpportunityID uuid.UUID        `json:"opportunityId"`
	Name          string           `json:"name"`
	Amount        int64            `json:"amount"`
	Currency      string           `json:"currency"`
	Stage         OpportunityStage `json:"stage"`
	ExpectedClose string           `json:"expectedClose"`
}

// EventType implements Event.
func (OpportunityOpened) EventType() string { return TypeOpportunityOpened }

// Validate implements Event.
func (e OpportunityOpened) Validate() error {
	var v validator
	v.id("opportunityId", e.OpportunityID)
	v.line("name", e.Name, true, maxSubject)
	v.money("amount", "currency", e.Amount, e.Currency, false)
	enum(&v, "stage", e.Stage, true, opportunityStages)
	v.date("expectedClose", e.ExpectedClose, true)
	return v.err()
}

// OpportunityStageChanged moves an open opportunity along the pipeline.
type OpportunityStageChanged struct {
	OpportunityID uuid.UUID        `json:"opportunityId"`
	Stage         OpportunityStage `json:"stage"`
}

// EventType implements Event.
func (OpportunityStageChanged) EventType() string { return TypeOpportunityStageChanged }

// Validate implements Event.
func (e OpportunityStageChanged) Validate() error {
	var v validator
	v.id("opportunityId", e.OpportunityID)
	enum(&v, "stage", e.Stage, true, opportunityStages)
	return v.err()
}

// OpportunityWon records a closed sale; the opportunity is final.
type OpportunityWon struct {
	OpportunityID uuid.UUID `json:"opportunityId"`
	Comment       string    `json:"comment,omitempty"`
}

// EventType implements Event.
func (OpportunityWon) EventType() string { return TypeOpportunityWon }

// Validate implements Event.
func (e OpportunityWon) Validate() error {
	var v validator
	v.id("opportunityId", e.OpportunityID)
	v.text("comment", e.Comment, false, maxText)
	return v.err()
}

// LossReason says why an opportunity was lost, for win/loss analysis.
type LossReason string

// Loss reasons.
const (
	LossPrice      LossReason = "price"
	LossCompetitor LossReason = "competitor"
	LossNoBudget   LossReason = "no_budget"
	LossNoDecision LossReason = "no_decision"
	LossTiming     LossReason = "timing"
	LossProductFit LossReason = "product_fit"
	LossOther      LossReason = "other"
)

var lossReasons = []LossReason{LossPrice, LossCompetitor, LossNoBudget, LossNoDecision, LossTiming, LossProductFit, LossOther}

// OpportunityLost records a lost sale; the opportunity is final. Detail is
// required when Reason is "other", so that the reason is never empty.
type OpportunityLost struct {
	OpportunityID uuid.UUID  `json:"opportunityId"`
	Reason        LossReason `json:"reason"`
	Detail        string     `json:"detail,omitempty"`
}

// EventType implements Event.
func (OpportunityLost) EventType() string { return TypeOpportunityLost }

// Validate implements Event.
func (e OpportunityLost) Validate() error {
	var v validator
	v.id("opportunityId", e.OpportunityID)
	enum(&v, "reason", e.Reason, true, lossReasons)
	v.text("detail", e.Detail, e.Reason == LossOther, maxText)
	return v.err()
}
