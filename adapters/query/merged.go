package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/attribution"
	"github.com/cxledger/cxledger/projections/duplicates"
	"github.com/cxledger/cxledger/projections/merges"
)

// ErrMerged is wrapped by the error of a read of a customer that was
// merged into another (a *MergedError, which names the survivor): the
// edges answer with a redirect to the survivor.
var ErrMerged = errors.New("merged into another customer")

// MergedError says that Customer was absorbed by Survivor: reads of
// Customer are answered by Survivor's.
type MergedError struct {
	Customer, Survivor uuid.UUID
}

// Error implements error.
func (e *MergedError) Error() string {
	return fmt.Sprintf("customer %s was merged into %s", e.Customer, e.Survivor)
}

// Unwrap makes errors.Is(err, ErrMerged) true.
func (e *MergedError) Unwrap() error { return ErrMerged }

// group resolves id through the merges read model: a *MergedError when id
// was absorbed, else id and the customers merged into it (id first). A
// backend without the merges read model resolves nothing.
func (s *Service) group(ctx context.Context, id uuid.UUID) ([]uuid.UUID, error) {
	var survivor uuid.UUID
	var ids []uuid.UUID
	err := projections.View(ctx, s.b, merges.Name, func(r projections.Reader) error {
		var err error
		survivor, ids, err = merges.Group(ctx, r, id)
		return err
	})
	switch {
	case errors.Is(err, projections.ErrNotActive), errors.Is(err, projections.ErrUnknownProjection):
		return []uuid.UUID{id}, nil
	case err != nil:
		return nil, err
	case survivor != id:
		return nil, &MergedError{Customer: id, Survivor: survivor}
	}
	return ids, nil
}

// Resolve returns the customer id is answered by: its survivor when it was
// merged into another, else id itself.
func (s *Service) Resolve(ctx context.Context, id uuid.UUID) (uuid.UUID, error) {
	_, err := s.group(ctx, id)
	if me, ok := errors.AsType[*MergedError](err); ok {
		return me.Survivor, nil
	}
	return id, err
}

// mergedFold folds the combined history of a merged customer (ids[0] the
// survivor) into throw-away in-memory read models of ps, as the as-of
// views do: the result is, by construction, the read models of one
// customer who had had all those events (merges.Combine).
func (s *Service) mergedFold(ctx context.Context, ids []uuid.UUID, ps ...projections.Projection) (*projections.Memory, error) {
	combined, err := s.mergedHistory(ctx, ids)
	if err != nil {
		return nil, err
	}
	return foldHistory(ctx, ids[0], combined, ps...)
}

// mergedHistory reads the combined history of a merged customer (ids[0]
// the survivor): merges.Combine of every member's stream.
func (s *Service) mergedHistory(ctx context.Context, ids []uuid.UUID) ([]domain.Envelope, error) {
	if s.Log == nil {
		return nil, fmt.Errorf("view of %s, merged with %d other customer(s): the query service has no event log to fold them from", ids[0], len(ids)-1)
	}
	histories := make([][]domain.Envelope, len(ids))
	for i, id := range ids {
		h, err := readHistory(ctx, s.Log, id, nil)
		if err != nil {
			return nil, err
		}
		histories[i] = h
	}
	return merges.Combine(ids[0], histories...), nil
}

// foldHistory folds a survivor's combined history into throw-away
// in-memory read models of ps.
func foldHistory(ctx context.Context, survivor uuid.UUID, combined []domain.Envelope, ps ...projections.Projection) (*projections.Memory, error) {
	mem := projections.NewMemory()
	for _, p := range ps {
		handles := projections.Handles(p)
		var mine []domain.Envelope
		for _, e := range combined {
			if handles(e.Type) {
				mine = append(mine, e)
			}
		}
		if err := fold(ctx, mem, p, mine); err != nil {
			return nil, fmt.Errorf("merged view of %s: %w", survivor, err)
		}
	}
	return mem, nil
}

// readHistory returns every event of customer id's stream that keep
// accepts (nil: all), decoded.
func readHistory(ctx context.Context, log LogReader, id uuid.UUID, keep func(eventstore.Record) bool) ([]domain.Envelope, error) {
	var events []domain.Envelope
	stream := domain.StreamID(id)
	for from := uint64(0); ; {
		page, err := log.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: from, Limit: eventstore.DefaultReadLimit})
		if errors.Is(err, eventstore.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		for _, r := range page {
			if keep != nil && !keep(r) {
				continue
			}
			e, err := projections.Envelope(r)
			if err != nil {
				return nil, fmt.Errorf("history of %s: %w", id, err)
			}
			events = append(events, e)
		}
		if len(page) < eventstore.DefaultReadLimit {
			break
		}
		from = page[len(page)-1].Version + 1
	}
	return events, nil
}

// DuplicatesPage is one page of candidate duplicate pairs.
type DuplicatesPage struct {
	Pairs []duplicates.Pair `json:"pairs"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// Duplicates returns up to limit candidate pairs, best score first, after
// cursor (a Next of a previous page). Pairs already one customer (both
// ids resolve to the same survivor) are left out, as a page may then be
// shorter than limit while Next is set. With customer set, it returns that
// customer's pairs instead, unpaged.
func (s *Service) Duplicates(ctx context.Context, customer uuid.UUID, cursor string, limit int) (DuplicatesPage, error) {
	var page DuplicatesPage
	err := projections.View(ctx, s.b, duplicates.Name, func(r projections.Reader) error {
		var err error
		if customer != uuid.Nil {
			page.Pairs, err = duplicates.ForCustomer(ctx, r, customer)
			return err
		}
		page.Pairs, page.Next, err = duplicates.List(ctx, r, cursor, limit)
		return err
	})
	if err != nil {
		return DuplicatesPage{}, err
	}
	kept := page.Pairs[:0]
	for _, p := range page.Pairs {
		a, err := s.Resolve(ctx, p.Customers[0])
		if err != nil {
			return DuplicatesPage{}, err
		}
		b, err := s.Resolve(ctx, p.Customers[1])
		if err != nil {
			return DuplicatesPage{}, err
		}
		if a != b {
			kept = append(kept, p)
		}
	}
	page.Pairs = kept
	if page.Pairs == nil {
		page.Pairs = []duplicates.Pair{}
	}
	return page, nil
}

// mergeRFM counts every merged customer once in an RFM list: the entries
// of absorbed customers are dropped and each survivor's is scored from the
// combined history (absent when no member ever bought), in customer id
// order as ScoreAll lists them.
func (s *Service) mergeRFM(ctx context.Context, fit *analytics.Fit, list []analytics.CustomerRFM) ([]analytics.CustomerRFM, error) {
	var groups map[uuid.UUID][]merges.Member
	err := projections.View(ctx, s.b, merges.Name, func(r projections.Reader) error {
		var err error
		groups, err = merges.Groups(ctx, r)
		return err
	})
	switch {
	case errors.Is(err, projections.ErrNotActive), errors.Is(err, projections.ErrUnknownProjection):
		return list, nil
	case err != nil:
		return nil, err
	case len(groups) == 0:
		return list, nil
	}
	drop := map[uuid.UUID]bool{}
	for survivor, ms := range groups {
		drop[survivor] = true
		for _, m := range ms {
			drop[m.Customer] = true
		}
	}
	out := make([]analytics.CustomerRFM, 0, len(list))
	for _, c := range list {
		if !drop[c.CustomerID] {
			out = append(out, c)
		}
	}
	for survivor, ms := range groups {
		ids := []uuid.UUID{survivor}
		for _, m := range ms {
			ids = append(ids, m.Customer)
		}
		mem, err := s.mergedFold(ctx, ids, analytics.NewCustomers(analytics.Config{}))
		if err != nil {
			return nil, err
		}
		err = projections.View(ctx, mem, analytics.CustomersName, func(r projections.Reader) error {
			return analytics.ScoreAll(ctx, r, fit, func(c analytics.CustomerRFM) error {
				out = append(out, c)
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b analytics.CustomerRFM) int {
		return strings.Compare(a.CustomerID.String(), b.CustomerID.String())
	})
	return out, nil
}

// overlay reads the keys under own from mine and every other key from
// shared: a merged customer's own records, folded from its combined
// history, over the read model every customer shares.
type overlay struct {
	mine, shared projections.Reader
	own          []string
}

func (o overlay) pick(key string) projections.Reader {
	for _, p := range o.own {
		if strings.HasPrefix(key, p) {
			return o.mine
		}
	}
	return o.shared
}

// Get implements projections.Reader.
func (o overlay) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return o.pick(key).Get(ctx, key)
}

// Scan implements projections.Reader. A scan is answered by one side: own
// prefixes are never scanned together with shared keys by the queries
// that use an overlay.
func (o overlay) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	return o.pick(prefix).Scan(ctx, prefix, after, fn)
}

// mergeGroups returns the merges in effect (survivor first in each
// group); none without the merges read model.
func (s *Service) mergeGroups(ctx context.Context) ([][]uuid.UUID, error) {
	var groups map[uuid.UUID][]merges.Member
	err := projections.View(ctx, s.b, merges.Name, func(r projections.Reader) error {
		var err error
		groups, err = merges.Groups(ctx, r)
		return err
	})
	if errors.Is(err, projections.ErrNotActive) || errors.Is(err, projections.ErrUnknownProjection) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([][]uuid.UUID, 0, len(groups))
	for survivor, ms := range groups {
		ids := []uuid.UUID{survivor}
		for _, m := range ms {
			ids = append(ids, m.Customer)
		}
		out = append(out, ids)
	}
	slices.SortFunc(out, func(a, b []uuid.UUID) int { return strings.Compare(a[0].String(), b[0].String()) })
	return out, nil
}

// mergedAttribution returns live adjusted so that every merged customer
// counts once: each member's own history folded apart is taken away, and
// the group's combined history folded as one customer is added, with the
// live read model's Config.
func (s *Service) mergedAttribution(ctx context.Context, live projections.Reader) (projections.Reader, error) {
	groups, err := s.mergeGroups(ctx)
	if err != nil || len(groups) == 0 {
		return live, err
	}
	cfg, ok, err := attribution.ConfigOf(ctx, live)
	if err != nil || !ok {
		return live, err
	}
	var minus, plus []projections.Reader
	for _, ids := range groups {
		for _, id := range ids {
			mem, err := s.ownFold(ctx, id, attribution.New(cfg))
			if err != nil {
				return nil, err
			}
			minus = append(minus, backendReader{mem, attribution.DefaultName})
		}
		mem, err := s.mergedFold(ctx, ids, attribution.New(cfg))
		if err != nil {
			return nil, err
		}
		plus = append(plus, backendReader{mem, attribution.DefaultName})
	}
	return attribution.Adjusted(live, minus, plus), nil
}

// ownFold folds one customer's own stream into a throw-away read model of
// p: what that customer alone contributes to it.
func (s *Service) ownFold(ctx context.Context, id uuid.UUID, p projections.Projection) (*projections.Memory, error) {
	if s.Log == nil {
		return nil, fmt.Errorf("merged customer %s: the query service has no event log to fold it from", id)
	}
	h, err := readHistory(ctx, s.Log, id, nil)
	if err != nil {
		return nil, err
	}
	handles := projections.Handles(p)
	var mine []domain.Envelope
	for _, e := range h {
		if handles(e.Type) {
			mine = append(mine, e)
		}
	}
	mem := projections.NewMemory()
	if err := fold(ctx, mem, p, mine); err != nil {
		return nil, fmt.Errorf("history of %s: %w", id, err)
	}
	return mem, nil
}

// backendReader reads the active namespace of one read model of a
// backend, one View per call, copying what it returns.
type backendReader struct {
	b    projections.Backend
	name string
}

// Get implements projections.Reader.
func (br backendReader) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var out []byte
	var ok bool
	err := projections.View(ctx, br.b, br.name, func(r projections.Reader) error {
		v, found, err := r.Get(ctx, key)
		out, ok = append([]byte(nil), v...), found
		return err
	})
	return out, ok, err
}

// Scan implements projections.Reader.
func (br backendReader) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	return projections.View(ctx, br.b, br.name, func(r projections.Reader) error {
		return r.Scan(ctx, prefix, after, fn)
	})
}
