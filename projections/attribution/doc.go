// Package attribution is the campaign attribution read model: per
// campaign, its touches (sent, delivered, bounced, opened, clicked,
// converted, unsubscribed, leads), the distinct customers it reached, and
// the purchases, revenue and conversion rate attributed to it under two
// models, last touch and first touch. Campaigns serves the report (GET
// /v1/analytics/campaigns).
//
// # Touches
//
// Counts are per event unless said otherwise; campaign names are compared
// exactly as recorded.
//
//	sent          CampaignTouched sent; EmailSent and SMSSent naming the campaign
//	delivered     CampaignTouched delivered
//	bounced       CampaignTouched bounced
//	opened        CampaignTouched viewed; plus the campaign's e-mails opened (once per message)
//	clicked       CampaignTouched clicked; plus the campaign's e-mails clicked (once per message)
//	converted     CampaignTouched converted (the campaign tool's own conversions)
//	unsubscribed  CampaignTouched unsubscribed
//	leads         LeadCaptured naming the campaign
//
// EmailOpened and EmailClicked name only a Message-ID: they count for the
// campaign of the customer's EmailSent with that Message-ID, whichever of
// them arrives first, and once per message however often it is opened or
// clicked (unique opens and clicks; a click does not imply an open). When
// one Message-ID was sent under several campaigns, the send that sorts
// first by (occurred-at, campaign) owns it. Opens and clicks of a message
// never sent under a campaign count nowhere, and neither does an EmailSent
// without a campaign. A source that records a send both as CampaignTouched
// sent and as EmailSent naming the campaign is counted twice: record one.
//
// # Qualifying touches and reach
//
// A qualifying touch is a touch whose action is in Config.Qualifying: by
// default sent (CampaignTouched sent, and EmailSent and SMSSent naming the
// campaign), delivered, viewed, clicked and lead (LeadCaptured naming the
// campaign). converted may be added; bounced and unsubscribed never
// qualify. Opens and clicks known only through EmailOpened and EmailClicked
// are not touches of their own: the message's send is, at its sending
// time. A campaign reached a customer when the customer has at least one
// qualifying touch of it, ever; Reached counts those customers.
//
// # Attribution
//
// Each purchase (PurchaseCompleted, at its occurred-at p) is credited,
// under each model, to at most one campaign, chosen among the customer's
// qualifying touches at t with p − window ≤ t ≤ p (Config.Window, default
// 7 days): both edges are included, so a touch exactly one window before
// the purchase still counts and one a nanosecond earlier does not, and a
// touch at the purchase's very instant counts. Touches after the purchase
// never count.
//
//   - Last touch: the campaign of the latest such touch.
//   - First touch: the campaign of the earliest such touch.
//
// Touches at the same instant are ordered by campaign name, and the first
// name wins under both models. A purchase without a qualifying touch in
// its window is unattributed (it still counts in Report.Purchases). An
// order id counts once: a repeated PurchaseCompleted of the same order
// (which the aggregate refuses, but old imports may hold) is ignored,
// keeping the one that sorts first by (occurred-at, order, amount,
// currency).
//
// Per campaign and model:
//
//   - Purchases: the purchases credited to the campaign.
//   - Revenue, per currency in integer minor units, never converted: gross
//     (the purchases' amounts), refunded and net = gross − refunded. A
//     RefundIssued of a credited order in the order's currency is
//     subtracted from the campaign the order is credited to, whenever it
//     happened, up to the order's amount; a refund in another currency is
//     ignored, and a refund id counts once. The purchase stays counted:
//     a refund reduces revenue, not conversions.
//   - Customers: the distinct customers with at least one credited
//     purchase.
//   - ConversionRate = Customers ÷ Reached: of the customers the campaign
//     reached, the share that bought within the window after a touch of
//     it and were credited under the model. Since a credit needs a
//     qualifying touch, Customers ≤ Reached and the rate is in [0, 1]. Both
//     count over all time; the rate is 0 when nobody was reached.
//
// # Arrival order
//
// Events arrive in log order, which is not occurred-at order: imports
// backdate touches and purchases. The read model depends only on the set
// of events folded, not on their order nor on batching: every stored
// record, and so the report, is a function of the set (the tests fold
// shuffled histories and compare the bytes). To get there, each customer's
// qualifying touches, purchases and refunds are kept as sorted sets of
// facts, and each purchase stores the attribution last derived from them.
// When a fact arrives, the purchases it can affect are derived again — a
// touch at t affects the purchases from t to t + window, a refund its
// order, a purchase itself — and any change replaces the purchase's old
// contribution to the figures by its new one.
//
// # Storage and bounds
//
// Keys (customer ids are canonical lower-case uuids):
//
//	meta                                   the Config the read model is built with
//	totals                                 every purchase, count and money per currency
//	campaign/<name>                        one campaign's figures
//	customer/<id>                          reached campaigns, purchases (with their attribution), refunds
//	customer/<id>/touches/<YYYY-MM>        the customer's qualifying touches of one UTC month
//	customer/<id>/message/<sha-256 prefix> one Message-ID: its campaign, opened, clicked
//
// Touches are bucketed by month, so that attributing a purchase reads only
// the one or two buckets its window spans (at most 14 with MaxWindow), and
// a customer's record does not grow with marketing volume. Touches of one
// campaign at the same instant are one fact. Storage grows with facts, as
// the timeline's does, and each record is bounded: a month bucket holds at
// most MaxTouchesPerMonth touches, a customer record at most MaxPurchases
// purchases and MaxRefunds refunds. Past a bound the oldest fact by
// occurred-at is dropped, with everything it contributed (a dropped touch
// credits no purchase, a dropped purchase leaves the figures); the kept
// facts are the most recent ones of the whole set, whatever the arrival
// order, so the result stays independent of it. Touch counts and reach
// never decrease. The list of reached campaigns grows with the number of
// campaigns that reached the customer, not with touches; message records
// are one per Message-ID opened, clicked or sent under a campaign.
//
// # Configuration and rebuilds
//
// Config.Window and Config.Qualifying decide what is stored, so they are
// recorded in the read model (the meta record, reported with every
// Report). Apply refuses to fold into a read model built with other
// settings: rebuild it from position 0 (`cxledger replay attribution`), or
// give the new settings their own Config.Name.
//
// # Erasure
//
// CustomerForgotten deletes the customer's facts (record, touches,
// messages) and leaves a marker so that nothing of theirs is folded again;
// the campaign figures and totals keep what they counted, as anonymous
// aggregates do elsewhere in cxledger.
//
// # Cost
//
// A touch costs the customer's record, its month bucket and the
// re-attribution of the purchases in the following window; a purchase
// reads the buckets of its window. Campaigns reads the campaign records
// only: O(campaigns), whatever the number of customers.
package attribution
