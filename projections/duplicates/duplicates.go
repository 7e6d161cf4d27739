// Package duplicates proposes pairs of customer records that are likely
// one person: the read model behind GET /v1/identity/duplicates and
// `cxledger duplicates`, from which an operator or a service decides a
// merge (domain.CustomerMerged).
//
// # Rules
//
// Two customers are a candidate pair when they share
//
//   - an e-mail address, compared in canonical form (trimmed, lower-case:
//     every provider folds case), and for Gmail (gmail.com,
//     googlemail.com) also without the dots of the local part and without
//     a +tag (MatchEmail);
//   - a phone number in E.164 form, or an external id ("system:id");
//   - a name, folded (FoldName: accents, case, punctuation and word order
//     ignored) and at least NameThreshold similar (NameSimilarity: the
//     least Jaro-Winkler similarity of the words), when
//     they also share the company or, for customers without one, the
//     locale, and neither name is common in that context.
//
// # Common names
//
// Agreeing on a name that many customers hold is no evidence that two of
// them are one person (record linkage's term-frequency adjustment): a
// thousand "Unknown Customer" rows of an import, or every James Smith of
// a large shop, would otherwise pair each with up to MaxBlock others and
// fill the read model with pairs nobody reviews. A name (its folded words,
// in its company or locale) held by more than MaxNameHolders customers is
// common: it gives no name evidence, and its holders pair only on
// identifiers; they leave the name blocks, making room there for names
// that can still be evidence. Crossing the bound recomputes the pairs of
// the holders that had it so far; a name once common stays common (the
// read model keeps a count, not every holder), so the outcome depends on
// the log alone, never on how it was batched.
//
// Each pair lists its reasons, each with a score (an identical external
// id 1.0, e-mail 0.98, e-mail by a provider's rule 0.9, phone 0.85, a name
// with the company 0.7 × similarity, with the locale 0.5 × similarity),
// and the pair's score combines them as independent evidence
// (1 − Π(1 − s)).
//
// # Index, not scans
//
// Every match key (the match form of an identifier, or a name block: the
// context and the first three letters of a name word) indexes the
// customers holding it, so that a change to one customer recomputes only
// that customer's pairs, from the customers sharing one of its keys
// (at most MaxBlock per key, so that a very common key cannot make one
// event cost a scan). Pairs are stored once, under their score for the
// paged list and under each customer for per-customer reads: a read is a
// lookup or a range of the pair list, never a pass over the customers.
//
// # Sealed values
//
// With Keys (adapters/keyring), names, companies and identifier values are
// tokens in the events. Apply opens them in memory, and the read model
// stores match keys only as blind indexes (Keys.Blind) and names only as
// the tokens the events hold, opened again when a neighbour is compared;
// a token that no longer opens (an erased customer) matches nothing.
// CustomerForgotten removes the customer from every key and pair.
//
// # Key layout
//
//	c/<customer>                what the customer matches on
//	k/<match key>               the customers holding a match key
//	p/<lo>/<hi>                 a pair (lo < hi as strings)
//	s/<1000-score>/<lo>/<hi>    the pair list, best first
//	x/<customer>                the customers paired with a customer
//	f/<customer>                an erased customer
//	n/<blind prefix>/<customer> a customer found by a name prefix (search.go)
//	q/<blind name>              how many customers hold a name (common names)
package duplicates

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/identity"
)

// Name is the read model's name.
const Name = "duplicates"

// Version is the read model's schema version.
// 2 adds the name-search index (n/); 3 counts name holders (q/), drops
// name evidence between holders of a common name and takes them out of
// the name blocks.
const Version = 3

// MaxBlock is how many customers of one match key a change is compared
// with.
const MaxBlock = 200

// MaxNameHolders is how many customers of one context (company, else
// locale) may hold a name before it is common and stops counting as
// evidence (see "Common names" above).
const MaxNameHolders = 20

// Reason is one piece of evidence that two customers are one person.
type Reason struct {
	// Kind is "email", "phone", "external" or "name".
	Kind string `json:"kind"`
	// Rule says what matched, without the value (personal data).
	Rule  string  `json:"rule"`
	Score float64 `json:"score"`
}

// Pair is a candidate duplicate.
type Pair struct {
	Customers [2]uuid.UUID `json:"customers"`
	Score     float64      `json:"score"`
	Reasons   []Reason     `json:"reasons"`
}

// ident is one identifier of a customer, blinded.
type ident struct {
	Kind      domain.IdentifierKind `json:"kind"`
	Match     string                `json:"match"`
	Canonical string                `json:"canonical"`
}

// record is the value at c/<customer>.
type record struct {
	// Name and Company as stored in the events (tokens with Keys).
	Name    string  `json:"name,omitempty"`
	Company string  `json:"company,omitempty"`
	Locale  string  `json:"locale,omitempty"`
	Idents  []ident `json:"idents,omitempty"`
	// Keys are the match keys the customer is indexed under.
	Keys []string `json:"keys,omitempty"`
	// Search are the blinded name prefixes the customer is found by
	// (search.go), sorted.
	Search []string `json:"search,omitempty"`
	// NameKey is the key of the name's holder count (q/…), "" when the
	// name gives no evidence (no name, or no context).
	NameKey string `json:"nameKey,omitempty"`
}

// holders is the value at q/<name>: how many customers hold the name in
// its context, and, until it is common, which.
type holders struct {
	Count  int         `json:"count"`
	IDs    []uuid.UUID `json:"ids,omitempty"`
	Common bool        `json:"common,omitempty"`
}

// members is the value at k/<match key> and at x/<customer>: customer
// ids, sorted as strings. Apply reads them by key and never scans, so that
// a batch of thousands of events costs no more per event than one.
type members struct {
	IDs []uuid.UUID `json:"ids"`
}

func (m *members) add(id uuid.UUID) bool {
	i, found := slices.BinarySearchFunc(m.IDs, id, cmpID)
	if found {
		return false
	}
	m.IDs = slices.Insert(slices.Clone(m.IDs), i, id)
	return true
}

func (m *members) remove(id uuid.UUID) {
	if i, found := slices.BinarySearchFunc(m.IDs, id, cmpID); found {
		m.IDs = slices.Delete(slices.Clone(m.IDs), i, i+1)
	}
}

// cmpID orders ids as their strings (lower-case hex, hyphens at fixed
// places), which is the order of their bytes, without formatting them.
func cmpID(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// putMembers stores m at key, or deletes key when m is empty, so that the
// read model holds no empty lists (and an unmerge-free history of adds and
// removes leaves the bytes a history without them would).
func putMembers(tx *projections.Tx, key string, m *members) error {
	if len(m.IDs) == 0 {
		tx.Delete(key)
		return nil
	}
	return projections.Put(tx, key, *m)
}

func recordKey(id uuid.UUID) string { return "c/" + id.String() }
func indexKey(key string) string    { return "k/" + key }
func pairOf(a, b uuid.UUID) (lo, hi uuid.UUID) {
	if cmpID(a, b) < 0 {
		return a, b
	}
	return b, a
}
func pairKey(a, b uuid.UUID) string {
	lo, hi := pairOf(a, b)
	return "p/" + lo.String() + "/" + hi.String()
}
func scoreKey(score float64, a, b uuid.UUID) string {
	lo, hi := pairOf(a, b)
	return fmt.Sprintf("s/%04d/%s/%s", 1000-int(score*1000+0.5), lo, hi)
}
func crossKey(id uuid.UUID) string     { return "x/" + id.String() }
func forgottenKey(id uuid.UUID) string { return "f/" + id.String() }

type projection struct {
	keys  identity.Keys
	words *wordCache
}

// New returns the duplicates projection; keys opens and blinds sealed
// values as for the identity index (nil: plaintext).
func New(keys identity.Keys) projections.Projection {
	return projection{keys: keys, words: &wordCache{m: map[string][]string{}}}
}

// wordCache remembers the folded words of names already opened: a change
// to one customer compares its name with up to MaxBlock neighbours per
// block, each folded again otherwise (Unicode normalization was a third of
// the projection's replay CPU). It is keyed by the opened name, so a name
// that no longer opens (an erased customer) never reaches it; it is
// emptied when full, bounding its memory.
type wordCache struct {
	mu sync.Mutex
	m  map[string][]string
}

// wordCacheLimit bounds the names a wordCache holds.
const wordCacheLimit = 50_000

// nameWords returns nameWords(name); the slice is shared: do not change it.
func (c *wordCache) nameWords(name string) []string {
	if c == nil {
		return nameWords(name)
	}
	c.mu.Lock()
	w, ok := c.m[name]
	c.mu.Unlock()
	if ok {
		return w
	}
	w = nameWords(name)
	c.mu.Lock()
	if len(c.m) >= wordCacheLimit {
		clear(c.m)
	}
	c.m[name] = w
	c.mu.Unlock()
	return w
}

// Name implements projections.Projection.
func (projection) Name() string { return Name }

// Version implements projections.Projection.
func (projection) Version() int { return Version }

// Types implements projections.Projection.
func (projection) Types() []string {
	return []string{domain.TypeCustomerRegistered, domain.TypeProfileUpdated, domain.TypeIdentifierLinked, domain.TypeCustomerForgotten}
}

// Apply implements projections.Projection.
func (p projection) Apply(tx *projections.Tx, e domain.Envelope) error {
	cid, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return fmt.Errorf("duplicates: event %s: %w", e.ID, err)
	}
	if _, gone, err := projections.Get[struct{}](tx, forgottenKey(cid)); err != nil || gone {
		return err
	}
	rec, err := projections.Load[record](tx, recordKey(cid))
	if err != nil {
		return err
	}
	switch ev := e.Event.(type) {
	case domain.CustomerRegistered:
		rec.Name, rec.Company, rec.Locale = ev.Name, ev.Company, ev.Locale
		if err := p.reindexSearch(tx, cid, rec, false); err != nil {
			return err
		}
	case domain.ProfileUpdated:
		if ev.Name == nil && ev.Company == nil && ev.Locale == nil {
			return nil
		}
		if ev.Name != nil {
			rec.Name = *ev.Name
			if err := p.reindexSearch(tx, cid, rec, false); err != nil {
				return err
			}
		}
		if ev.Company != nil {
			rec.Company = *ev.Company
		}
		if ev.Locale != nil {
			rec.Locale = *ev.Locale
		}
	case domain.IdentifierLinked:
		plain, ok, err := p.open(tx.Context(), cid, ev.Value)
		if err != nil || !ok {
			return err
		}
		canonical, err := domain.NormalizeIdentifier(ev.Kind, plain)
		if err != nil {
			return nil // not comparable; history is not an error
		}
		match := canonical
		if ev.Kind == domain.IdentifierEmail {
			match, _ = MatchEmail(canonical)
		}
		id := ident{Kind: ev.Kind, Match: p.blind("match-"+string(ev.Kind), match), Canonical: p.blind(string(ev.Kind), canonical)}
		if slices.Contains(rec.Idents, id) {
			return nil
		}
		rec.Idents = append(rec.Idents, id)
	case domain.CustomerForgotten:
		if err := p.reindex(tx, cid, rec, nil); err != nil {
			return err
		}
		if _, err := p.recount(tx, cid, rec.NameKey, ""); err != nil {
			return err
		}
		if err := p.reindexSearch(tx, cid, rec, true); err != nil {
			return err
		}
		if err := dropPairs(tx, cid); err != nil {
			return err
		}
		tx.Delete(recordKey(cid))
		return projections.Put(tx, forgottenKey(cid), struct{}{})
	default:
		return nil
	}
	keys, nameKey, err := p.matchKeys(tx.Context(), cid, rec)
	if err != nil {
		return err
	}
	common, err := p.recount(tx, cid, rec.NameKey, nameKey)
	if err != nil {
		return err
	}
	if common {
		keys = slices.DeleteFunc(keys, isNameBlock)
	}
	if err := p.reindex(tx, cid, rec, keys); err != nil {
		return err
	}
	rec.Keys, rec.NameKey = keys, nameKey
	if err := projections.Put(tx, recordKey(cid), *rec); err != nil {
		return err
	}
	projections.BatchState[changed](tx, Name).add(cid)
	return nil
}

// changed lists the customers whose pairs a batch must recompute, in the
// order they first changed.
type changed struct {
	ids  []uuid.UUID
	seen map[uuid.UUID]struct{}
}

func (c *changed) add(id uuid.UUID) {
	if _, ok := c.seen[id]; ok {
		return
	}
	if c.seen == nil {
		c.seen = map[uuid.UUID]struct{}{}
	}
	c.seen[id] = struct{}{}
	c.ids = append(c.ids, id)
}

// Finish implements projections.BatchFinisher: the pairs of each customer
// the batch changed are recomputed once, from the batch's final state. A
// customer registered and given three identifiers in one batch was
// compared with its blocks four times before, three of them thrown away.
// The pairs come out as after each event: a pair is a function of its two
// records and their blocks, and it is recomputed whenever either changes,
// so it ends as computed from both final records either way.
func (p projection) Finish(tx *projections.Tx) error {
	c := projections.BatchState[changed](tx, Name)
	for _, cid := range c.ids {
		if _, gone, err := projections.Get[struct{}](tx, forgottenKey(cid)); err != nil {
			return err
		} else if gone {
			continue // its pairs went with it
		}
		rec, ok, err := projections.Get[record](tx, recordKey(cid))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := p.pairs(tx, cid, &rec); err != nil {
			return err
		}
	}
	return nil
}

func (p projection) open(ctx context.Context, cid uuid.UUID, stored string) (string, bool, error) {
	if p.keys == nil || stored == "" {
		return stored, true, nil
	}
	plain, ok, err := p.keys.Open(ctx, cid, stored)
	if err != nil {
		return "", false, fmt.Errorf("duplicates: open a value of %s: %w", cid, err)
	}
	return plain, ok, nil
}

func (p projection) blind(kind, value string) string {
	if p.keys == nil {
		return value
	}
	return p.keys.Blind(domain.IdentifierKind(kind), value)
}

// matchKeys returns the keys rec is indexed under, sorted, and the key of
// its name's holder count ("" when its name gives no evidence).
func (p projection) matchKeys(ctx context.Context, cid uuid.UUID, rec *record) (keys []string, nameKey string, err error) {
	for _, id := range rec.Idents {
		keys = append(keys, string(id.Kind)+"/"+id.Match)
	}
	name, ok, err := p.open(ctx, cid, rec.Name)
	if err != nil {
		return nil, "", err
	}
	company, cok, err := p.open(ctx, cid, rec.Company)
	if err != nil {
		return nil, "", err
	}
	if ok && cok {
		nctx := foldContext(company, rec.Locale)
		for _, b := range nameBlocks(name, nctx) {
			keys = append(keys, "name/"+p.blind("name-block", b))
		}
		if words := p.words.nameWords(name); nctx != "" && len(words) > 0 {
			nameKey = "q/" + p.blind("name-holders", nctx+"/"+strings.Join(words, " "))
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys), nameKey, nil
}

// recount moves cid from the holders of the name at key from to those of
// the name at key to ("" for none), and reports whether the name at to is
// common. The holder that makes a name common takes every holder counted
// so far out of the name blocks and marks them for their pairs to be
// recomputed, so that the name evidence between them goes.
func (p projection) recount(tx *projections.Tx, cid uuid.UUID, from, to string) (common bool, err error) {
	if from == to {
		if to == "" {
			return false, nil
		}
		h, _, err := projections.Get[holders](tx, to)
		return h.Common, err
	}
	if from != "" {
		h, err := projections.Load[holders](tx, from)
		if err != nil {
			return false, err
		}
		h.Count--
		if i, found := slices.BinarySearchFunc(h.IDs, cid, cmpID); found {
			h.IDs = slices.Delete(slices.Clone(h.IDs), i, i+1)
		}
		if h.Count <= 0 && !h.Common {
			tx.Delete(from)
		}
	}
	if to == "" {
		return false, nil
	}
	h, err := projections.Load[holders](tx, to)
	if err != nil {
		return false, err
	}
	h.Count++
	switch {
	case h.Common:
	case h.Count > MaxNameHolders:
		changed := projections.BatchState[changed](tx, Name)
		for _, id := range h.IDs {
			changed.add(id)
			if err := p.leaveNameBlocks(tx, id); err != nil {
				return false, err
			}
		}
		h.Common, h.IDs = true, nil
	default:
		if i, found := slices.BinarySearchFunc(h.IDs, cid, cmpID); !found {
			h.IDs = slices.Insert(slices.Clone(h.IDs), i, cid)
		}
	}
	return h.Common, nil
}

// isNameBlock reports whether a match key is a name block.
func isNameBlock(key string) bool { return strings.HasPrefix(key, "name/") }

// leaveNameBlocks takes id out of its name blocks: its name became common,
// and a block is for names that can still be evidence (leaving makes room
// for them under MaxBlock).
func (p projection) leaveNameBlocks(tx *projections.Tx, id uuid.UUID) error {
	rec, err := projections.Load[record](tx, recordKey(id))
	if err != nil {
		return err
	}
	keys := slices.DeleteFunc(slices.Clone(rec.Keys), isNameBlock)
	if len(keys) == len(rec.Keys) {
		return nil
	}
	if err := p.reindex(tx, id, rec, keys); err != nil {
		return err
	}
	rec.Keys = keys
	return nil
}

// reindex moves cid from the keys it was indexed under to keys. A key
// holds at most MaxBlock customers, the first to claim it: a very common
// key (a shared office e-mail) must not make one event cost thousands of
// comparisons.
func (p projection) reindex(tx *projections.Tx, cid uuid.UUID, rec *record, keys []string) error {
	for _, k := range rec.Keys {
		if !slices.Contains(keys, k) {
			m, err := projections.Load[members](tx, indexKey(k))
			if err != nil {
				return err
			}
			m.remove(cid)
			if err := putMembers(tx, indexKey(k), m); err != nil {
				return err
			}
		}
	}
	for _, k := range keys {
		if !slices.Contains(rec.Keys, k) {
			m, err := projections.Load[members](tx, indexKey(k))
			if err != nil {
				return err
			}
			if len(m.IDs) >= MaxBlock || !m.add(cid) {
				continue
			}
			if err := putMembers(tx, indexKey(k), m); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropPairs deletes every pair of cid.
func dropPairs(tx *projections.Tx, cid uuid.UUID) error {
	mine, _, err := projections.Get[members](tx, crossKey(cid))
	if err != nil {
		return err
	}
	for _, o := range mine.IDs { // unpair changes the stored list, not this copy
		if err := unpair(tx, cid, o); err != nil {
			return err
		}
	}
	tx.Delete(crossKey(cid))
	return nil
}

// pairs recomputes every pair of cid from the customers sharing one of
// its match keys.
func (p projection) pairs(tx *projections.Tx, cid uuid.UUID, rec *record) error {
	reasons := map[uuid.UUID][]Reason{}
	name, nameOK, err := p.open(tx.Context(), cid, rec.Name)
	if err != nil {
		return err
	}
	words := p.words.nameWords(name) // compared with every name in its blocks
	common := map[string]bool{}      // name holder keys seen, common or not
	isCommon := func(key string) (bool, error) {
		if key == "" {
			return false, nil
		}
		c, seen := common[key]
		if !seen {
			h, _, err := projections.Get[holders](tx, key)
			if err != nil {
				return false, err
			}
			c, common[key] = h.Common, h.Common
		}
		return c, nil
	}
	mineCommon, err := isCommon(rec.NameKey)
	if err != nil {
		return err
	}
	for _, k := range rec.Keys {
		kind, _, _ := strings.Cut(k, "/")
		if kind == "name" && (!nameOK || mineCommon) {
			continue // no name evidence: not worth reading the block
		}
		m, _, err := projections.Get[members](tx, indexKey(k)) // read only
		if err != nil {
			return err
		}
		var block []uuid.UUID
		for _, o := range m.IDs {
			if o != cid {
				block = append(block, o)
			}
		}
		for _, o := range block {
			stored, _, err := projections.Get[record](tx, recordKey(o)) // read only
			if err != nil {
				return err
			}
			other := &stored
			var r Reason
			if kind == "name" {
				if slices.ContainsFunc(reasons[o], func(r Reason) bool { return r.Kind == "name" }) {
					continue
				}
				if c, err := isCommon(other.NameKey); err != nil {
					return err
				} else if c {
					continue
				}
				oname, ok, err := p.open(tx.Context(), o, other.Name)
				if err != nil {
					return err
				}
				sim := wordSimilarity(words, p.words.nameWords(oname))
				if !ok || sim < NameThreshold {
					continue
				}
				weight, rule := weightNameLocale, "similar name (%.2f), same locale"
				if p.sameCompany(tx.Context(), cid, rec, o, other) {
					weight, rule = weightNameCompany, "similar name (%.2f), same company"
				}
				r = Reason{Kind: "name", Rule: fmt.Sprintf(rule, sim), Score: round(weight * sim)}
			} else {
				exact := false
				for _, a := range rec.Idents {
					if string(a.Kind)+"/"+a.Match != k {
						continue
					}
					for _, b := range other.Idents {
						if b.Kind == a.Kind && b.Canonical == a.Canonical {
							exact = true
						}
					}
				}
				score, rule := identifierScore(domain.IdentifierKind(kind), exact)
				r = Reason{Kind: kind, Rule: rule, Score: score}
			}
			reasons[o] = append(reasons[o], r)
		}
	}
	// Only what changed is written: a pair whose reasons are the same is
	// left as stored, and a partner's list of pairs is touched only when
	// a pair appears or goes. Recomputing every pair from scratch rewrote
	// each partner's list (about 60 ids at a million events) for every
	// change to a customer.
	mine, _, err := projections.Get[members](tx, crossKey(cid))
	if err != nil {
		return err
	}
	for _, o := range mine.IDs {
		if _, still := reasons[o]; !still {
			if err := unpair(tx, cid, o); err != nil {
				return err
			}
		}
	}
	others := make([]uuid.UUID, 0, len(reasons))
	for o := range reasons {
		others = append(others, o)
	}
	slices.SortFunc(others, cmpID)
	for _, o := range others {
		rs := reasons[o]
		slices.SortFunc(rs, func(a, b Reason) int {
			if c := strings.Compare(a.Kind, b.Kind); c != 0 {
				return c
			}
			return strings.Compare(a.Rule, b.Rule)
		})
		scores := make([]float64, len(rs))
		for i, r := range rs {
			scores[i] = r.Score
		}
		lo, hi := pairOf(cid, o)
		pr := Pair{Customers: [2]uuid.UUID{lo, hi}, Score: combine(scores), Reasons: rs}
		old, had, err := projections.Get[Pair](tx, pairKey(cid, o))
		if err != nil {
			return err
		}
		if had && old.Score == pr.Score && old.Customers == pr.Customers && slices.Equal(old.Reasons, pr.Reasons) {
			continue
		}
		if had {
			tx.Delete(scoreKey(old.Score, cid, o))
		}
		if err := projections.Put(tx, pairKey(cid, o), pr); err != nil {
			return err
		}
		if err := projections.Put(tx, scoreKey(pr.Score, cid, o), pr); err != nil {
			return err
		}
		for _, side := range [][2]uuid.UUID{{cid, o}, {o, cid}} {
			if err := addPartner(tx, side[0], side[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// unpair deletes the pair of a and b and takes each off the other's list.
func unpair(tx *projections.Tx, a, b uuid.UUID) error {
	pr, ok, err := projections.Get[Pair](tx, pairKey(a, b))
	if err != nil {
		return err
	}
	if ok {
		tx.Delete(scoreKey(pr.Score, a, b))
	}
	tx.Delete(pairKey(a, b))
	for _, side := range [][2]uuid.UUID{{a, b}, {b, a}} {
		m, err := projections.Load[members](tx, crossKey(side[0]))
		if err != nil {
			return err
		}
		m.remove(side[1])
		if err := putMembers(tx, crossKey(side[0]), m); err != nil {
			return err
		}
	}
	return nil
}

// addPartner puts b on a's list of pairs, touching the list only when b
// is not on it yet.
func addPartner(tx *projections.Tx, a, b uuid.UUID) error {
	m, _, err := projections.Get[members](tx, crossKey(a))
	if err != nil {
		return err
	}
	if _, found := slices.BinarySearchFunc(m.IDs, b, cmpID); found {
		return nil
	}
	ml, err := projections.Load[members](tx, crossKey(a))
	if err != nil {
		return err
	}
	ml.add(b)
	return putMembers(tx, crossKey(a), ml)
}

// sameCompany reports whether two customers name the same company
// (folded); false when either has none or it does not open.
func (p projection) sameCompany(ctx context.Context, a uuid.UUID, ra *record, b uuid.UUID, rb *record) bool {
	ca, ok1, err1 := p.open(ctx, a, ra.Company)
	cb, ok2, err2 := p.open(ctx, b, rb.Company)
	if err1 != nil || err2 != nil || !ok1 || !ok2 {
		return false
	}
	fa := strings.Join(p.words.nameWords(ca), " ")
	return fa != "" && fa == strings.Join(p.words.nameWords(cb), " ")
}

func round(x float64) float64 { return float64(int(x*1000+0.5)) / 1000 }

// List returns up to limit pairs, best score first, after the cursor
// (a key returned as next; "" starts at the best); next is "" at the end.
func List(ctx context.Context, r projections.Reader, after string, limit int) (pairs []Pair, next string, err error) {
	if after != "" && !strings.HasPrefix(after, "s/") {
		return nil, "", fmt.Errorf("duplicates: cursor %q: %w", after, domain.ErrInvalid)
	}
	var last string
	err = r.Scan(ctx, "s/", after, func(key string, value []byte) (bool, error) {
		if len(pairs) == limit {
			next = last
			return false, nil
		}
		var pr Pair
		if err := json.Unmarshal(value, &pr); err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		pairs, last = append(pairs, pr), key
		return true, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("duplicates: list: %w", err)
	}
	return pairs, next, nil
}

// ForCustomer returns the pairs of one customer, best first.
func ForCustomer(ctx context.Context, r projections.Reader, id uuid.UUID) ([]Pair, error) {
	m, _, err := projections.Read[members](ctx, r, crossKey(id))
	if err != nil {
		return nil, fmt.Errorf("duplicates: pairs of %s: %w", id, err)
	}
	others := m.IDs
	var pairs []Pair
	for _, o := range others {
		pr, ok, err := projections.Read[Pair](ctx, r, pairKey(id, o))
		if err != nil {
			return nil, fmt.Errorf("duplicates: pairs of %s: %w", id, err)
		}
		if ok {
			pairs = append(pairs, pr)
		}
	}
	slices.SortStableFunc(pairs, func(a, b Pair) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	return pairs, nil
}
