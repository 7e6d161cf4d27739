package duplicates

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/identity"
)

// Name search (GET /v1/customers/search): every word of a customer's name
// is folded as for matching (FoldName: accents, case and punctuation
// ignored) and each of its prefixes of MinPrefix to MaxPrefix letters is
// stored, blinded with Keys, at
//
//	n/<blind prefix>/<customer>
//
// so that a type-ahead query is one range read per query word, never a
// pass over the customers. A blind index is a keyed hash: it matches a
// whole value or nothing, which is why the prefixes are indexed one by one
// and why no arbitrary substring ("guye" in "Nguyen") can match.

// MinPrefix and MaxPrefix bound the indexed prefixes of a name word, in
// letters: a query word shorter than MinPrefix is too common to look up,
// and one longer than MaxPrefix is looked up by its first MaxPrefix
// letters.
const (
	MinPrefix = 2
	MaxPrefix = 16
)

// searchKind is the blind-index domain of name prefixes, apart from the
// identifiers' and the name blocks'.
const searchKind = "name-prefix"

func searchKey(blind string, id uuid.UUID) string { return "n/" + blind + "/" + id.String() }

// namePrefixes returns the prefixes a name is found by, sorted and
// without repeats.
func namePrefixes(name string) []string {
	var out []string
	for _, w := range nameWords(name) {
		r := []rune(w)
		for n := MinPrefix; n <= min(len(r), MaxPrefix); n++ {
			out = append(out, string(r[:n]))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// reindexSearch moves cid's name-prefix entries from what rec holds to
// the prefixes of name (sealed as in the events); a name that does not
// open (an erased customer) is found by nothing.
func (p projection) reindexSearch(tx *projections.Tx, cid uuid.UUID, rec *record, forget bool) error {
	var want []string
	if !forget {
		name, ok, err := p.open(tx.Context(), cid, rec.Name)
		if err != nil {
			return err
		}
		if ok {
			for _, pre := range namePrefixes(name) {
				want = append(want, p.blind(searchKind, pre))
			}
			slices.Sort(want)
		}
	}
	for _, b := range rec.Search {
		if _, found := slices.BinarySearch(want, b); !found {
			tx.Delete(searchKey(b, cid))
		}
	}
	for _, b := range want {
		if _, found := slices.BinarySearch(rec.Search, b); !found {
			if err := projections.Put(tx, searchKey(b, cid), struct{}{}); err != nil {
				return err
			}
		}
	}
	rec.Search = want
	return nil
}

// Search returns up to limit customers whose name has, for every word of
// q, a word starting with it (folded: "zo ngu" finds "Nguyễn, Zoé"),
// in customer id order after the id after (uuid.Nil: from the start);
// more reports whether further matches follow. keys blinds as the
// projection did (nil: plaintext). A q without a word of MinPrefix
// letters is domain.ErrInvalid.
func Search(ctx context.Context, r projections.Reader, keys identity.Keys, q string, after uuid.UUID, limit int) (ids []uuid.UUID, more bool, err error) {
	var words []string
	for _, w := range nameWords(q) {
		if rw := []rune(w); len(rw) >= MinPrefix {
			words = append(words, string(rw[:min(len(rw), MaxPrefix)]))
		}
	}
	if len(words) == 0 {
		return nil, false, fmt.Errorf("duplicates: search %q: want a word of at least %d letters: %w", q, MinPrefix, domain.ErrInvalid)
	}
	// The longest word is likely the rarest: its range is read, and each
	// of its customers is checked against the other words by key.
	slices.SortStableFunc(words, func(a, b string) int { return len([]rune(b)) - len([]rune(a)) })
	blind := func(v string) string {
		if keys == nil {
			return v
		}
		return keys.Blind(searchKind, v)
	}
	prefix := "n/" + blind(words[0]) + "/"
	start := ""
	if after != uuid.Nil {
		start = prefix + after.String()
	}
	others := make([]string, 0, len(words)-1)
	for _, w := range words[1:] {
		others = append(others, blind(w))
	}
	err = r.Scan(ctx, prefix, start, func(key string, _ []byte) (bool, error) {
		id, err := uuid.Parse(strings.TrimPrefix(key, prefix))
		if err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		for _, o := range others {
			_, ok, err := projections.Read[struct{}](ctx, r, searchKey(o, id))
			if err != nil || !ok {
				return err == nil, err
			}
		}
		if len(ids) == limit {
			more = true
			return false, nil
		}
		ids = append(ids, id)
		return true, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("duplicates: search: %w", err)
	}
	return ids, more, nil
}
