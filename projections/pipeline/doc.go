// Package pipeline is the sales-pipeline read model: one record per
// opportunity, folded from OpportunityOpened, OpportunityStageChanged,
// OpportunityWon and OpportunityLost, and the pipeline figures computed from
// those records at query time.
//
// # Stored facts
//
// Apply stores only what the events say, keyed
//
//	opportunity/<customer uuid>/<opportunity uuid>
//
// (opportunity ids are unique per customer stream, so the customer is part
// of the key). A record holds the name, amount (integer minor units) and
// currency, current stage, outcome (open, won, lost), expected close date,
// the OccurredAt of opening, of entering the current stage and of closing,
// and per stage the number of completed visits and their total whole
// seconds. A visit is completed when the opportunity leaves the stage by a
// stage change, a win or a loss; a negative duration (events dated out of
// order) counts as zero. Events after a win or a loss are ignored (the
// aggregate refuses them; imported history may still hold them), and so is
// a stage change to the current stage. A change, win or loss of an
// opportunity that was never opened creates the record with the event's
// OccurredAt as opening time and no amount, so the fold is total.
//
// Nothing in a record depends on the clock, on the order of batches or on
// a configuration: the weighted forecast's probabilities are a query-time
// parameter (Options.Probabilities), so changing them never requires a
// rebuild.
//
// # Figures (Summary)
//
// Money is kept per currency and never converted or mixed. Counts mix
// currencies freely. With Options.ClosedFrom and ClosedTo, closed figures
// use only opportunities closed (won or lost) in [ClosedFrom, ClosedTo);
// open figures always use every open opportunity.
//
//   - Open by stage: count and amount per currency of open opportunities in
//     each stage, in pipeline order (prospecting, qualification, proposal,
//     negotiation).
//   - Weighted forecast: Σ amount × p(stage) over open opportunities, per
//     currency, rounded half away from zero to minor units once per
//     currency (per-stage weighted amounts are rounded on their own, so they
//     may differ from the total by a unit). p defaults to
//     DefaultProbabilities.
//   - Win rate: won ÷ (won + lost), over closed opportunities, all
//     currencies together; 0 when nothing closed.
//   - Average deal size: won amount ÷ won count, per currency, rounded half
//     away from zero to minor units.
//   - Average cycle length: mean of (closed at − opened at) over closed
//     opportunities, won and lost, all currencies together.
//   - Time per stage: for each stage, the completed visits and their mean
//     duration, over every opportunity (open or closed) that left the stage.
//     Open opportunities also report their mean age in the current stage at
//     Options.Now.
//   - Sales velocity, per currency, in minor units per day (below).
//
// Sales velocity is the expected revenue per day:
//
//	velocity = open opportunities × win rate × average deal size ÷ average cycle (days)
//
// with the currency's open count and unrounded average deal size, and the
// overall win rate and cycle. It is 0 when the currency has no won deal or
// the average cycle is zero.
//
// Forecast groups open opportunities by the month of their expected close
// date, with the same weighting, and counts those whose date has passed.
//
// Summary and Forecast scan every opportunity: O(opportunities) per call.
// Board reads one stage of the index of open opportunities (board.go).
package pipeline
