package domain

// Marketing and feedback event type names.
const (
	TypeCampaignTouched = "CampaignTouched"
	TypeSurveyAnswered  = "SurveyAnswered"
)

// CampaignChannel is the medium of a campaign touch.
type CampaignChannel string

// Campaign channels.
const (
	CampaignEmail      CampaignChannel = "email"
	CampaignSMS        CampaignChannel = "sms"
	CampaignPush       CampaignChannel = "push"
	CampaignSocial     CampaignChannel = "social"
	CampaignDisplay    CampaignChannel = "display"
	CampaignSearch     CampaignChannel = "search"
	CampaignDirectMail CampaignChannel = "direct_mail"
	CampaignEvent      CampaignChannel = "event"
	CampaignWeb        CampaignChannel = "web"
)

var campaignChannels = []CampaignChannel{CampaignEmail, CampaignSMS, CampaignPush, CampaignSocial, CampaignDisplay, CampaignSearch, CampaignDirectMail, CampaignEvent, CampaignWeb}

// CampaignAction is what happened at a campaign touch.
type CampaignAction string

// Campaign actions.
const (
	ActionSent         CampaignAction = "sent"
	ActionDelivered    CampaignAction = "delivered"
	ActionBounced      CampaignAction = "bounced"
	ActionViewed       CampaignAction = "viewed"
	ActionClicked      CampaignAction = "clicked"
	ActionConverted    CampaignAction = "converted"
	ActionUnsubscribed CampaignAction = "unsubscribed"
)

var campaignActions = []CampaignAction{ActionSent, ActionDelivered, ActionBounced, ActionViewed, ActionClicked, ActionConverted, ActionUnsubscribed}

// CampaignTouched records one contact between a marketing campaign and the
// customer, for attribution.
type CampaignTouched struct {
	Campaign string          `json:"campaign"`
	Channel  CampaignChannel `json:"channel"`
	Action   CampaignAction  `json:"action"`
}

// EventType implements Event.
func (CampaignTouched) EventType() string { return TypeCampaignTouched }

// Validate implements Event.
func (e CampaignTouched) Validate() error {
	var v validator
	v.line("campaign", e.Campaign, true, maxName)
	enum(&v, "channel", e.Channel, true, campaignChannels)
	enum(&v, "action", e.Action, true, campaignActions)
	return v.err()
}

// SurveyAnswered records a Net Promoter Score answer. NPS is a pointer
// because 0 is a real (and important) score: a missing field must be an
// error, not a detractor.
type SurveyAnswered struct {
	Survey  string `json:"survey"`
	NPS     *int   `json:"nps"`
	Comment string `json:"comment,omitempty"`
}

// EventType implements Event.
func (SurveyAnswered) EventType() string { return TypeSurveyAnswered }

// Validate implements Event.
func (e SurveyAnswered) Validate() error {
	var v validator
	v.line("survey", e.Survey, true, maxName)
	if e.NPS == nil {
		v.add("nps", "required, 0 to 10")
	} else {
		v.intRange("nps", int64(*e.NPS), 0, 10)
	}
	v.text("comment", e.Comment, false, maxText)
	return v.err()
}
