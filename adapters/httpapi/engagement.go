package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cxledger/cxledger/projections/attribution"
	"github.com/cxledger/cxledger/projections/recommend"
)

// recommendations: GET /v1/customers/{id}/recommendations?limit=&minSupport=&minConfidence=
// — next-best offers (products and categories) with the reason for each.
func (s *Server) recommendations(w http.ResponseWriter, r *http.Request) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var opts recommend.Options
	if opts.Limit, err = limitParam(q.Get("limit"), recommend.DefaultLimit, recommend.MaxLimit); err != nil {
		return err
	}
	if raw := q.Get("minSupport"); raw != "" {
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || v < 1 {
			return malformed("minSupport=%q: want a positive integer", raw)
		}
		opts.MinSupport = v
	}
	if raw := q.Get("minConfidence"); raw != "" {
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil || v < 0 || v > 1 {
			return malformed("minConfidence=%q: want a number from 0 to 1", raw)
		}
		opts.MinConfidence = v
	}
	if err := s.waitFor(r, recommend.DefaultName); err != nil {
		return err
	}
	rec, err := s.query.Recommendations(r.Context(), id, opts)
	if errors.Is(err, recommend.ErrInvalidOptions) {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

// campaigns: GET /v1/analytics/campaigns?campaign=…&campaign=… — touches,
// last- and first-touch attributed purchases, revenue and conversion per
// campaign.
func (s *Server) campaigns(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitFor(r, attribution.DefaultName); err != nil {
		return err
	}
	rep, err := s.query.Campaigns(r.Context(), attribution.Options{Campaigns: r.URL.Query()["campaign"]})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
