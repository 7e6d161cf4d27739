// Package query answers the questions agents, analysts and auditors ask of
// the read models, composing several of them where one answer needs it
// (the unified customer view joins customer 360 with the analytics scores).
// Every edge that reads — HTTP, CLI — goes through it.
package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/attribution"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/engage"
	"github.com/cxledger/cxledger/projections/identity"
	"github.com/cxledger/cxledger/projections/pipeline"
	"github.com/cxledger/cxledger/projections/recommend"
	"github.com/cxledger/cxledger/projections/timeline"
	"github.com/google/uuid"
)

// Keys reveals the sealed personal data read models hold and blinds the
// identifiers a lookup asks for: adapters/keyring.Keyring.
type Keys interface {
	identity.Keys
	// RevealJSON replaces the customer's tokens in a JSON document by
	// their plaintext, or by an erasure marker once the key is destroyed.
	RevealJSON(ctx context.Context, customer uuid.UUID, doc []byte) ([]byte, error)
	// RevealFunc does the same in a string, passing each plaintext
	// through fn.
	RevealFunc(ctx context.Context, customer uuid.UUID, s string, fn func(string) string) (string, error)
}

var _ engage.Scores = (*Service)(nil)

// Service reads the read models of one backend.
type Service struct {
	b projections.Backend
	// Now is the clock time-dependent figures (recency, churn, the
	// loyalty tier's rolling window) use.
	Now func() time.Time
	// Tiers is the loyalty tier policy; the zero policy is the default
	// (bronze, silver from 500.00, gold from 2000.00 over 12 months).
	Tiers domain.TierPolicy
	// Keys reveals personal data in what the Service returns, and blinds
	// looked-up identifiers as the identity index was built; nil when the
	// ledger has no keyring (plaintext read models). Read models keep
	// tokens; only the answers are revealed.
	Keys Keys
	// Log is the event log merged customers' views are folded from (see
	// projections/merges): a read of a survivor folds its members'
	// streams, a read of an absorbed id fails with a *MergedError. nil
	// resolves no merges (each id answers with its own records), and
	// Timeline, whose entries are read from the log, fails.
	Log LogReader

	fits fitCache
}

// New returns a Service over the read models in b.
func New(b projections.Backend) *Service { return &Service{b: b, Now: time.Now} }

// fitTTL is how long the Service reuses the analytics model it read: a
// refit by another process shows within it. A model stored through the
// Service shows at once.
const fitTTL = time.Second

// fitCache holds the analytics model last read.
type fitCache struct {
	mu   sync.Mutex
	fit  *analytics.Fit
	read time.Time
}

// loadFit returns the stored analytics model (nil, false before the first
// fit), from the cache when it is younger than fitTTL. Only a model found
// is cached, so that the first fit shows at once.
func (s *Service) loadFit(ctx context.Context) (*analytics.Fit, bool, error) {
	s.fits.mu.Lock()
	defer s.fits.mu.Unlock()
	if s.fits.fit != nil && time.Since(s.fits.read) < fitTTL {
		return s.fits.fit, true, nil
	}
	fit, ok, err := analytics.LoadFit(ctx, s.b)
	if err != nil || !ok {
		return nil, false, err
	}
	s.fits.fit, s.fits.read = fit, time.Now()
	return fit, true, nil
}

// CustomerView is the unified view of one customer: everything an agent
// needs so the customer never repeats themselves.
type CustomerView struct {
	customer360.View
	// Score holds the analytics figures (RFM, churn, P(alive)); nil for a
	// customer who never bought or answered a survey.
	Score *analytics.Score `json:"score,omitempty"`
}

// Customer returns the unified view of a customer, or an error wrapping
// projections.ErrNotFound. A customer merged into another fails with a
// *MergedError; a survivor's view is that of one customer with its own
// and its members' histories (see projections/merges).
func (s *Service) Customer(ctx context.Context, id uuid.UUID) (CustomerView, error) {
	ids, err := s.group(ctx, id)
	if err != nil {
		return CustomerView{}, err
	}
	b := s.b
	if len(ids) > 1 {
		if b, err = s.mergedFold(ctx, ids, customer360.New(), analytics.NewCustomers(analytics.Config{})); err != nil {
			return CustomerView{}, err
		}
	}
	var v CustomerView
	err = projections.View(ctx, b, customer360.Name, func(r projections.Reader) error {
		view, err := customer360.Get(ctx, r, id)
		v.View = view
		return err
	})
	if err != nil {
		return CustomerView{}, err
	}
	v.SetTier(s.Tiers, s.Now())
	// The analytics figures are two lookups (the customer's record, the
	// stored model); a customer without them, or a store whose analytics
	// read model is not built yet, gets the view without a score.
	score, err := s.scoreIn(ctx, b, id)
	switch {
	case errors.Is(err, projections.ErrNotFound), errors.Is(err, projections.ErrNotActive):
	case err != nil:
		return CustomerView{}, fmt.Errorf("analytics of customer %s: %w", id, err)
	default:
		v.Score = &score
	}
	if v.Score != nil {
		v.Segment = string(v.Score.Segment)
		v.ChurnRisk = v.Score.ChurnRisk
	}
	if s.Keys != nil {
		if v, err = s.revealView(ctx, ids, v); err != nil {
			return CustomerView{}, err
		}
	}
	return v, nil
}

// revealView reveals the tokens in a view: through its JSON, which holds
// every field an edge shows. Identifiers were kept sealed as entered; once
// revealed they are shown in canonical form, once each, as without a
// keyring.
func (s *Service) revealView(ctx context.Context, ids []uuid.UUID, v CustomerView) (CustomerView, error) {
	id := ids[0]
	doc, err := json.Marshal(v)
	if err != nil {
		return CustomerView{}, fmt.Errorf("reveal view of %s: %w", id, err)
	}
	revealed := doc
	// A merged view holds the tokens of every member, each sealed with
	// its own customer's key.
	for _, member := range ids {
		if revealed, err = s.Keys.RevealJSON(ctx, member, revealed); err != nil {
			return CustomerView{}, fmt.Errorf("reveal view of %s: %w", id, err)
		}
	}
	if bytes.Equal(revealed, doc) {
		return v, nil
	}
	var out CustomerView
	if err := json.Unmarshal(revealed, &out); err != nil {
		return CustomerView{}, fmt.Errorf("reveal view of %s: %w", id, err)
	}
	var idents []customer360.Identifier
	for _, ident := range out.Identifiers {
		if n, err := domain.NormalizeIdentifier(ident.Kind, ident.Value); err == nil {
			ident.Value = n
		}
		if !slices.ContainsFunc(idents, func(i customer360.Identifier) bool { return i.Kind == ident.Kind && i.Value == ident.Value }) {
			idents = append(idents, ident)
		}
	}
	out.Identifiers = idents
	return out, nil
}

// Lookup finds the customer an identifier belongs to ("email",
// "ana@example.com"), or fails with an error wrapping
// projections.ErrNotFound.
func (s *Service) Lookup(ctx context.Context, kind domain.IdentifierKind, value string) (uuid.UUID, error) {
	var id uuid.UUID
	err := projections.View(ctx, s.b, identity.Name, func(r projections.Reader) error {
		var err error
		id, err = identity.Lookup(ctx, r, s.identityKeys(), kind, value)
		return err
	})
	if err != nil {
		return id, err
	}
	// The latest link among merged customers is the merged customer's.
	return s.Resolve(ctx, id)
}

// identityKeys returns Keys as the identity index takes them: a nil
// interface when there are none.
func (s *Service) identityKeys() identity.Keys {
	if s.Keys == nil {
		return nil
	}
	return s.Keys
}

// Timeline returns one page of a customer's timeline (see timeline.Page):
// projections.ErrNotFound for a customer without events, domain.ErrInvalid
// for a malformed cursor. Summaries are revealed, each revealed value
// clipped as the timeline clips plaintext (timeline.Clip).
func (s *Service) Timeline(ctx context.Context, id uuid.UUID, q timeline.Query) (timeline.Result, error) {
	ids, err := s.group(ctx, id)
	if err != nil {
		return timeline.Result{}, err
	}
	if s.Log == nil {
		return timeline.Result{}, fmt.Errorf("timeline of %s: the query service has no event log to read it from", id)
	}
	b, events := s.b, timeline.FromLog(s.Log)
	if len(ids) > 1 {
		combined, err := s.mergedHistory(ctx, ids)
		if err != nil {
			return timeline.Result{}, err
		}
		if b, err = foldHistory(ctx, ids[0], combined, timeline.New()); err != nil {
			return timeline.Result{}, err
		}
		events = timeline.History(combined)
	}
	var res timeline.Result
	err = projections.View(ctx, b, timeline.Name, func(r projections.Reader) error {
		var err error
		res, err = timeline.Page(ctx, r, events, id, q)
		return err
	})
	if err != nil || s.Keys == nil {
		return res, err
	}
	for i := range res.Entries {
		for _, member := range ids {
			if res.Entries[i].Summary, err = s.Keys.RevealFunc(ctx, member, res.Entries[i].Summary, timeline.Clip); err != nil {
				return timeline.Result{}, fmt.Errorf("reveal timeline of %s: %w", id, err)
			}
		}
	}
	return res, nil
}

// PipelineReport is the sales pipeline: stage and win-rate figures plus the
// forecast of open opportunities by expected close month.
type PipelineReport struct {
	pipeline.Report
	Forecast []pipeline.ForecastMonth `json:"forecast"`
}

// Pipeline computes the pipeline figures and forecast at the service's
// clock (opts.Now, when zero).
func (s *Service) Pipeline(ctx context.Context, opts pipeline.Options) (PipelineReport, error) {
	if opts.Now.IsZero() {
		opts.Now = s.Now()
	}
	var rep PipelineReport
	err := projections.View(ctx, s.b, pipeline.DefaultName, func(r projections.Reader) error {
		sum, err := pipeline.Summary(ctx, r, opts)
		if err != nil {
			return err
		}
		fc, err := pipeline.Forecast(ctx, r, opts)
		if err != nil {
			return err
		}
		rep = PipelineReport{Report: sum, Forecast: fc}
		return nil
	})
	return rep, err
}

// RFMReport is the RFM list: every buyer scored by the stored model, and
// which fit and analysis date the scores are as of.
type RFMReport struct {
	Model     *analytics.ModelInfo    `json:"model"`
	Customers []analytics.CustomerRFM `json:"customers"`
}

// RFM scores every customer with a purchase by the stored model (one pass
// over the customers read model, no fit), or fails with
// analytics.ErrNoModel before the first fit.
func (s *Service) RFM(ctx context.Context) (RFMReport, error) {
	fit, ok, err := s.loadFit(ctx)
	if err != nil {
		return RFMReport{}, err
	}
	if !ok {
		return RFMReport{}, analytics.ErrNoModel
	}
	var out RFMReport
	err = projections.View(ctx, s.b, analytics.CustomersName, func(r projections.Reader) error {
		out = RFMReport{Model: fit.Info(), Customers: []analytics.CustomerRFM{}}
		return analytics.ScoreAll(ctx, r, fit, func(c analytics.CustomerRFM) error {
			out.Customers = append(out.Customers, c)
			return nil
		})
	})
	if err != nil {
		return RFMReport{}, err
	}
	out.Customers, err = s.mergeRFM(ctx, fit, out.Customers)
	return out, err
}

// Score returns one customer's analytics figures by lookup (their record
// and the stored model; without a model, the facts and the reason), or an
// error wrapping projections.ErrNotFound when the customer never bought or
// answered.
func (s *Service) Score(ctx context.Context, id uuid.UUID) (analytics.Score, error) {
	ids, err := s.group(ctx, id)
	if err != nil {
		return analytics.Score{}, err
	}
	b := s.b
	if len(ids) > 1 {
		if b, err = s.mergedFold(ctx, ids, analytics.NewCustomers(analytics.Config{})); err != nil {
			return analytics.Score{}, err
		}
	}
	return s.scoreIn(ctx, b, id)
}

// scoreIn is Score reading the customer's record in b (the live read
// models, or a merged customer's fold) and the stored model.
func (s *Service) scoreIn(ctx context.Context, b projections.Backend, id uuid.UUID) (analytics.Score, error) {
	fit, _, err := s.loadFit(ctx)
	if err != nil {
		return analytics.Score{}, err
	}
	var out analytics.Score
	err = projections.View(ctx, b, analytics.CustomersName, func(r projections.Reader) error {
		var err error
		out, err = analytics.ScoreFrom(ctx, r, id, fit, s.Now())
		return err
	})
	return out, err
}

// ChurnRisk returns a customer's rhythm churn risk (analytics.Score's
// ChurnRisk) as of at, by lookup: their own rhythm, or the stored model's
// pooled rhythm for a customer who bought on one day only; ok is false
// for a customer without a score (never bought, or no rhythm known). It
// implements engage.Scores for the at-risk retention rule, which asks at
// each check's due time rather than at s.Now.
//
// A merged customer is one person with one risk, that of the combined
// history, and the rule keeps a check timer per record that bought: so
// that the person gets one win-back offer per crossing, not one per
// record, only the group's lead answers — the first of the survivor and
// then its members in merge order that bought on its own record (the
// records whose purchases scheduled a check) — and the others answer no
// score (their checks wait and keep their state). After an unmerge each
// record answers its own risk again.
func (s *Service) ChurnRisk(ctx context.Context, id uuid.UUID, at time.Time) (risk float64, ok bool, err error) {
	fit, _, err := s.loadFit(ctx)
	if err != nil {
		return 0, false, err
	}
	ids, err := s.group(ctx, id)
	if me, merged := errors.AsType[*MergedError](err); merged {
		ids, err = s.group(ctx, me.Survivor)
	}
	if err != nil {
		return 0, false, err
	}
	b := s.b
	if len(ids) > 1 {
		var lead uuid.UUID
		err := projections.View(ctx, s.b, analytics.CustomersName, func(r projections.Reader) error {
			for _, m := range ids {
				bought, err := analytics.Bought(ctx, r, m)
				if err != nil || bought {
					lead = m
					return err
				}
			}
			return nil
		})
		if err != nil || lead != id {
			return 0, false, err
		}
		if b, err = s.mergedFold(ctx, ids, analytics.NewCustomers(analytics.Config{})); err != nil {
			return 0, false, err
		}
		id = ids[0]
	}
	err = projections.View(ctx, b, analytics.CustomersName, func(r projections.Reader) error {
		var err error
		risk, ok, err = analytics.ChurnRiskAt(ctx, r, id, fit, at)
		return err
	})
	return risk, ok, err
}

// Model returns the stored analytics model, or analytics.ErrNoModel
// before the first fit.
func (s *Service) Model(ctx context.Context) (analytics.Fit, error) {
	fit, ok, err := analytics.LoadFit(ctx, s.b)
	switch {
	case err != nil:
		return analytics.Fit{}, err
	case !ok:
		return analytics.Fit{}, analytics.ErrNoModel
	}
	return *fit, nil
}

// FitModel fits the analytics model now, as of opts.AsOf (zero: the
// service's clock; an analysis date given pins it for the background
// fitter), and stores it for every read. It scans the customers read
// model and runs the fit: an analyst's or an operator's request, never a
// read's.
func (s *Service) FitModel(ctx context.Context, opts analytics.FitOptions) (analytics.Fit, error) {
	opts.Now = s.Now()
	opts.Pinned = !opts.AsOf.IsZero() || !opts.CalibrationEnd.IsZero()
	if opts.Pinned && opts.AsOf.IsZero() {
		opts.AsOf = opts.Now
	}
	fit, err := analytics.FitAndSave(ctx, s.b, opts)
	if err != nil {
		return analytics.Fit{}, err
	}
	s.fits.mu.Lock()
	s.fits.fit, s.fits.read = &fit, time.Now()
	s.fits.mu.Unlock()
	return fit, nil
}

// NPS returns the Net Promoter Score report.
func (s *Service) NPS(ctx context.Context) (analytics.NPSReport, error) {
	var out analytics.NPSReport
	err := projections.View(ctx, s.b, analytics.CustomersName, func(r projections.Reader) error {
		var err error
		out, err = analytics.NPS(ctx, r)
		return err
	})
	return out, err
}

// ChannelMix returns the touches per channel of each UTC day in [from, to].
func (s *Service) ChannelMix(ctx context.Context, from, to time.Time) (analytics.ChannelMixReport, error) {
	var out analytics.ChannelMixReport
	err := projections.View(ctx, s.b, analytics.ChannelsName, func(r projections.Reader) error {
		var err error
		out, err = analytics.ChannelMix(ctx, r, from, to)
		return err
	})
	return out, err
}

// TicketSLA returns the ticket resolution figures per priority.
func (s *Service) TicketSLA(ctx context.Context) ([]analytics.PrioritySLA, error) {
	var out []analytics.PrioritySLA
	err := projections.View(ctx, s.b, analytics.TicketsName, func(r projections.Reader) error {
		var err error
		out, err = analytics.TicketSLA(ctx, r, analytics.TicketSLAOptions{Now: s.Now()})
		return err
	})
	return out, err
}

// Recommendations returns a customer's next-best offers, products and
// categories, with the reason for each (see recommend.ForCustomer).
func (s *Service) Recommendations(ctx context.Context, id uuid.UUID, opts recommend.Options) (recommend.Recommendations, error) {
	ids, err := s.group(ctx, id)
	if err != nil {
		return recommend.Recommendations{}, err
	}
	var mine projections.Backend
	if len(ids) > 1 {
		// What the merged customer bought comes from the combined
		// history; the co-purchase counts are the live ones, which count
		// the merged group as one customer (projections/recommend).
		if mine, err = s.mergedFold(ctx, ids, recommend.New(recommend.Config{})); err != nil {
			return recommend.Recommendations{}, err
		}
	}
	var out recommend.Recommendations
	err = projections.View(ctx, s.b, recommend.DefaultName, func(r projections.Reader) error {
		if mine == nil {
			var err error
			out, err = recommend.ForCustomer(ctx, r, id, opts)
			return err
		}
		return projections.View(ctx, mine, recommend.DefaultName, func(m projections.Reader) error {
			var err error
			out, err = recommend.ForCustomer(ctx, overlay{mine: m, shared: r, own: recommend.CustomerPrefixes(id)}, id, opts)
			return err
		})
	})
	return out, err
}

// Campaigns returns the campaign attribution report. A merged customer
// counts once: its members' contributions are replaced by that of their
// combined history (attribution.Adjusted).
func (s *Service) Campaigns(ctx context.Context, opts attribution.Options) (attribution.Report, error) {
	var out attribution.Report
	err := projections.View(ctx, s.b, attribution.DefaultName, func(r projections.Reader) error {
		adjusted, err := s.mergedAttribution(ctx, r)
		if err != nil {
			return err
		}
		out, err = attribution.Campaigns(ctx, adjusted, opts)
		return err
	})
	return out, err
}
