// Package analytics holds cxledger's customer-analytics read models and the
// models computed from them (fitted in the background, read by lookup): RFM scores and segments,
// historical lifetime value, churn risk (a recency-versus-rhythm score and
// the BG/NBD probability alive), channel mix, ticket SLA figures and NPS.
//
// # Read models
//
// Three projections, each small and with its own name, store only facts
// taken from events: integer counts, integer money in minor units per
// currency, and OccurredAt instants (in UTC). Nothing stored depends on the
// clock, on batch boundaries or on a configuration; everything that depends
// on "now" or on the whole base is computed by the queries, with an
// injected now.
//
//	NewCustomers  analytics_customers  customer/<customer uuid>
//	NewChannels   analytics_channels   day/<YYYY-MM-DD>
//	NewTickets    analytics_tickets    ticket/<customer uuid>/<ticket uuid>
//
// A customer record holds the number of purchases (PurchaseCompleted,
// free orders included), the first and last purchase instants, the
// distinct UTC days with a purchase, per currency the order count, gross
// amount, refund count and refunded amount (RefundIssued, in the refund's
// currency), and the latest answer to each survey (SurveyAnswered; the
// later OccurredAt wins, and at equal times the later event).
// CustomerForgotten deletes the customer's record: their purchases and
// answers leave RFM, lifetime value and NPS. The anonymous aggregates
// (channel mix, ticket SLA) keep what they counted.
//
// A day record counts touches per channel on one UTC day of OccurredAt.
// The touches and their channels:
//
//	CallLogged                                           phone
//	EmailSent, EmailReceived, EmailOpened, EmailClicked  email
//	ChatConversationHeld                                 chat
//	MeetingHeld                                          meeting
//	SMSSent                                              sms
//	CampaignTouched                                      its channel (email, sms, push, social, …)
//	TicketOpened                                         its channel (email, phone, chat, web, …)
//
// NoteAdded is an agent's note, not a touch; purchases, refunds and
// profile events are not counted either.
//
// A ticket record holds the current priority (TicketOpened, changed by
// TicketUpdated), the opening instant, the earliest update flagged
// FirstResponse, and the standing resolution: TicketResolved sets it,
// TicketReopened clears it. TicketClosed without a resolution is not a
// resolution.
//
// # RFM
//
// RFM scores every customer with at least one purchase, as of an analysis date (the fit's AsOf):
//
//   - Recency: whole UTC days from the last purchase day to now's day
//     (fewer is better).
//   - Frequency: the number of purchases (more is better).
//   - Monetary: net spend (gross − refunded) in the customer's main
//     currency, the currency of most of their orders (ties: the first code
//     alphabetically). Amounts in different currencies are never compared
//     or added: a customer's monetary score ranks them only against the
//     customers with the same main currency.
//
// Each is scored 1–5 by quintile, ties at their midrank: a customer whose
// value w customers of the N ranked together beat from below and t share
// (themselves included) sits at the quantile q = (w + t/2) ÷ N and scores
// ⌈5q⌉. Ten customers with distinct values score 1,1,2,2,3,3,4,4,5,5;
// equal values always score the same, the middle of the places they span.
// So a lone customer, or a base all tied (everyone bought once, today),
// scores 3 — the middle, not the bottom, since nobody does better — and
// segment needs_attention, not lost. Small bases are ranked by the same
// rule (two customers score 2 and 4, three 1, 3 and 5). Segments are
// assigned by SegmentOf's rules:
//
//	champions           R ≥ 4, F ≥ 4, M ≥ 4   recent, frequent, big spenders
//	loyal               R ≥ 3, F ≥ 4          frequent and not lapsed
//	new                 R ≥ 4, F = 1          first purchase, recently
//	potential_loyalist  R ≥ 4                 recent, a few purchases
//	at_risk             R ≤ 2, F ≥ 3          bought often, not lately
//	needs_attention     R = 3                 middling recency
//	hibernating         R = 2                 lapsing, few purchases
//	lost                R = 1                 longest lapsed, few purchases
//
// The first matching rule wins, in that order; every score has a segment.
//
// # Lifetime value
//
// Historical lifetime value is, per currency, gross purchases, refunds and
// net = gross − refunded, in minor units. It is never converted or summed
// across currencies.
//
// # Churn risk
//
// Two models are reported side by side in Score; both use purchase days
// (distinct UTC days with a purchase), so that a basket split into three
// orders is one visit.
//
// Rhythm score (ChurnRisk). A customer's rhythm m is the mean gap between
// their purchase days, (last day − first day) ÷ (days − 1). A customer with
// a single purchase day has no rhythm of their own and gets the base's
// pooled rhythm, Σ(last − first) ÷ Σ(days − 1) over repeat customers. With
// t the recency in days,
//
//	ChurnRisk = 1 − e^(−t/m)
//
// is the probability that a customer buying as a Poisson process at their
// own rhythm would have bought again within t days; the longer the silence
// compared with the habit, the closer to 1: 0.63 at one rhythm of silence,
// 0.86 at two, 0.95 at three. It is nil when no rhythm is known (no repeat
// customer in the base).
//
// BG/NBD (PAlive, ExpectedPurchases). The beta-geometric/negative binomial
// model of Fader, Hardie and Lee (2005) is fitted by maximum likelihood to
// the whole base when the model is fitted (FitBGNBD: Nelder–Mead on the logarithms of
// r, α, a, b; deterministic), with, per customer, x = purchase days − 1
// repeat purchases, tx = last − first purchase day and T = now's day −
// first purchase day, in days. PAlive is P(active | x, tx, T); for x = 0 the
// model says 1, which is why one-time buyers should be read with the
// rhythm score. ExpectedPurchases is the expected number of purchase days
// in the next Options.Horizon days. Both are nil when the base cannot be
// fitted (fewer than 20 buyers, or no repeat purchase: ErrNoFit) unless
// Options.Model fixes the parameters. With the parameters Fader, Hardie
// and Lee publish for the CDNOW sample (r = 0.243, α = 4.414, a = 0.793,
// b = 2.426, in weeks) the implementation reproduces their worked example
// (1.226 expected purchases in 39 weeks for x = 2, tx = 30.43, T = 38.86);
// the fit is tested on simulated data: it recovers the parameters, reaches
// at least the likelihood of the true ones, and stops where the gradient
// vanishes.
//
// # Ticket SLA
//
// Per priority (the ticket's current one), the time to first response
// (start of each cycle, the opening or a reopening → its first update
// flagged FirstResponse) and to resolution (the time a ticket with a
// standing resolution was open: the sum of its cycles, so time while
// resolved does not count), each as count, median and 90th
// percentile by the nearest-rank method: the p-th percentile of n sorted
// values is the value of rank ⌈p·n/100⌉, so the median of an even count is
// the lower middle value. Negative durations (events dated out of order)
// count as zero. Breaches and Overdue count the cycles past their
// response deadline by the rule of domain.TicketClock (recomputed on a
// priority change, restarted on a reopening), the one the escalation
// reactor follows.
//
// # NPS
//
// NPS = 100 × (promoters − detractors) ÷ responses, promoters answering
// 9–10 and detractors 0–6. Each customer counts once, with their latest
// answer: overall their latest answer to any survey, per survey their
// latest answer to that survey. Repeated answers update a customer's
// voice rather than multiply it.
//
// # The stored model
//
// Nothing on the read path fits the model or scans the base. FitModel
// scores the whole base as of an analysis date and fits BG/NBD; the
// result, a Fit, is kept in the read-model store (namespace
// ModelNamespace) with the RFM quintile bands (the range of values each
// score was given), the pooled rhythm, the parameters with their
// log-likelihood, the customers read model's position it covers, the
// analysis date, the time it was fitted and, when asked, a calibration
// end with the holdout validation. A Fitter refits it in the background
// (on a schedule and after enough new events); an analyst may fit as of a
// chosen date, which the Fitter then keeps. A read (ScoreFrom, ScoreAll,
// ChurnRiskAt) looks up the customer's record and the Fit: the figures are
// those a fresh LoadBase at the Fit's analysis date gives over the same
// history, to the digit, and say which fit and date they come from.
// Without a fit the facts are served and the ranked figures are absent
// with the reason (Score.Unscored).
//
// The analysis date matters for any history that ended before today:
// with the wall clock every customer of an old dataset is lapsed. A fit's
// recency, churn and T count to its AsOf day. With a calibration end the
// parameters are fitted on the purchase days up to it (T counted to it),
// and Validation compares the expected purchase days in the holdout
// period (calibration end, AsOf] with the actual ones, overall and by
// repeat purchases in calibration (FHL 2005, figure 4). On the CDNOW
// calibration summary the fit reproduces the published estimates.
//
// # Cost
//
// LoadBase, RFM and CustomerScore read every customer and fit the model:
// they are the fresh computation the stored Fit is checked against, and
// what FitModel runs, never what a request runs.
package analytics
