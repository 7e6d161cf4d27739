package recommend

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// mergeRecord is the value at merge/<merge id>: the parties, which halves
// are in the log, and whether the merge is in effect (both halves in, no
// unmerge yet), the rule of the merges read model.
type mergeRecord struct {
	Survivor     string `json:"survivor"`
	Absorbed     string `json:"absorbed"`
	SurvivorSide bool   `json:"survivorSide,omitempty"`
	AbsorbedSide bool   `json:"absorbedSide,omitempty"`
	InEffect     bool   `json:"inEffect,omitempty"`
}

// unitRecord is the value at unit/<customer> for every customer of a
// merged group (the survivor included): the group's survivor.
type unitRecord struct {
	Survivor string `json:"survivor"`
}

// memberRecord is the value at member/<survivor>/<absorbed>.
type memberRecord struct {
	Customer string `json:"customer"`
}

func mergeKey(id uuid.UUID) string         { return mergePrefix + id.String() }
func unitKey(c string) string              { return unitPrefix + c }
func membersOf(s string) string            { return memberPrefix + s + "/" }
func memberKey(s, a string) string         { return membersOf(s) + a }
func sameID(stream, id uuid.UUID) bool     { return stream == id }
func idsOf(s string, ms []string) []string { return append([]string{s}, ms...) }

// merged folds one half of a merge; with both halves in, the two
// customers start counting as one.
func (p projection) merged(tx *projections.Tx, stream uuid.UUID, ev domain.CustomerMerged) error {
	m, _, err := projections.Get[mergeRecord](tx, mergeKey(ev.MergeID))
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if m.InEffect {
		return nil
	}
	m.Survivor, m.Absorbed = ev.Survivor.String(), ev.Absorbed.String()
	switch {
	case sameID(stream, ev.Survivor):
		m.SurvivorSide = true
	case sameID(stream, ev.Absorbed):
		m.AbsorbedSide = true
	default:
		return nil // in a third stream: not a half of anything
	}
	if m.SurvivorSide && m.AbsorbedSide {
		m.InEffect = true
		if err := p.join(tx, m.Survivor, m.Absorbed); err != nil {
			return err
		}
	}
	if err := projections.Put(tx, mergeKey(ev.MergeID), m); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// unmerged ends a merge at its first CustomerUnmerged: the absorbed
// customer counts on its own again.
func (p projection) unmerged(tx *projections.Tx, ev domain.CustomerUnmerged) error {
	m, ok, err := projections.Get[mergeRecord](tx, mergeKey(ev.MergeID))
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if !ok {
		return nil // the other half's unmerge already ended it
	}
	tx.Delete(mergeKey(ev.MergeID))
	if !m.InEffect {
		return nil
	}
	return p.split(tx, m.Survivor, m.Absorbed)
}

// members returns the customers merged into survivor, in key order.
func (p projection) members(tx *projections.Tx, survivor string) ([]string, error) {
	var ms []string
	err := tx.Scan(membersOf(survivor), "", func(key string, value []byte) (bool, error) {
		var m memberRecord
		if err := json.Unmarshal(value, &m); err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		ms = append(ms, m.Customer)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: members of %s: %w", p.name, survivor, err)
	}
	return ms, nil
}

// group returns the customers of cid's merged group, survivor first, or
// nil when cid is in no merge in effect.
func (p projection) group(tx *projections.Tx, cid string) ([]string, error) {
	u, ok, err := projections.Get[unitRecord](tx, unitKey(cid))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	if !ok {
		return nil, nil
	}
	ms, err := p.members(tx, u.Survivor)
	if err != nil {
		return nil, err
	}
	return idsOf(u.Survivor, ms), nil
}

// join replaces the separate contributions of survivor's group and of
// absorbed with that of their union.
func (p projection) join(tx *projections.Tx, survivor, absorbed string) error {
	ms, err := p.members(tx, survivor)
	if err != nil {
		return err
	}
	before := idsOf(survivor, ms)
	var c counts
	for _, step := range []struct {
		ids  []string
		sign int64
	}{{before, -1}, {[]string{absorbed}, -1}, {append(slices.Clone(before), absorbed), 1}} {
		if err := p.contribute(tx, step.ids, step.sign, &c); err != nil {
			return err
		}
	}
	if err := p.apply(tx, &c); err != nil {
		return err
	}
	if err := projections.Put(tx, unitKey(survivor), unitRecord{survivor}); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if err := projections.Put(tx, unitKey(absorbed), unitRecord{survivor}); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if err := projections.Put(tx, memberKey(survivor, absorbed), memberRecord{absorbed}); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// split replaces the contribution of survivor's group with those of the
// group without absorbed and of absorbed alone: exactly what a log
// without the merge would have counted.
func (p projection) split(tx *projections.Tx, survivor, absorbed string) error {
	ms, err := p.members(tx, survivor)
	if err != nil {
		return err
	}
	rest := slices.DeleteFunc(slices.Clone(ms), func(m string) bool { return m == absorbed })
	var c counts
	if err := p.contribute(tx, idsOf(survivor, ms), -1, &c); err != nil {
		return err
	}
	if err := p.contribute(tx, idsOf(survivor, rest), 1, &c); err != nil {
		return err
	}
	if err := p.contribute(tx, []string{absorbed}, 1, &c); err != nil {
		return err
	}
	if err := p.apply(tx, &c); err != nil {
		return err
	}
	tx.Delete(unitKey(absorbed))
	tx.Delete(memberKey(survivor, absorbed))
	if len(rest) == 0 {
		tx.Delete(unitKey(survivor))
	}
	return nil
}

// counts are changes to the shared counts, collected before any is made.
type counts struct {
	items map[string]*itemChange
	pairs map[string]*pairChange
	stats statsRecord
}

type itemChange struct {
	d    dimension
	item string
	n    int64
}

type pairChange struct {
	d    dimension
	x, y string
	n    int64
}

// contribute adds sign times what the customers ids, counted as one
// customer, contribute to the shared counts: one buyer of every item any
// of them bought, one customer with an item of the kind, and one co-buyer
// of every pair of the first MaxPaired items bought (by where each was
// first bought). For one customer it is what the incremental fold counted.
func (p projection) contribute(tx *projections.Tx, ids []string, sign int64, c *counts) error {
	if c.items == nil {
		c.items, c.pairs = map[string]*itemChange{}, map[string]*pairChange{}
	}
	for _, d := range []dimension{products, categories} {
		var all []boughtRecord
		for _, id := range ids {
			err := tx.Scan(boughtDimPrefix(id, d), "", func(key string, value []byte) (bool, error) {
				var b boughtRecord
				if err := json.Unmarshal(value, &b); err != nil {
					return false, fmt.Errorf("decode %q: %w", key, err)
				}
				all = append(all, b)
				return true, nil
			})
			if err != nil {
				return fmt.Errorf("%s: bought by %s: %w", p.name, id, err)
			}
		}
		slices.SortStableFunc(all, func(a, b boughtRecord) int {
			if c := cmp.Compare(a.Position, b.Position); c != 0 {
				return c
			}
			return cmp.Compare(a.Line, b.Line)
		})
		seen := map[string]bool{}
		var items []string
		for _, b := range all {
			if !seen[b.Item] {
				seen[b.Item] = true
				items = append(items, b.Item)
			}
		}
		if len(items) == 0 {
			continue
		}
		*c.stats.count(d) += sign
		for _, it := range items {
			k := itemKey(d, it)
			if c.items[k] == nil {
				c.items[k] = &itemChange{d: d, item: it}
			}
			c.items[k].n += sign
		}
		paired := items[:min(len(items), MaxPaired)]
		for _, x := range paired {
			for _, y := range paired {
				if x == y {
					continue
				}
				k := pairKey(d, x, y)
				if c.pairs[k] == nil {
					c.pairs[k] = &pairChange{d: d, x: x, y: y}
				}
				c.pairs[k].n += sign
			}
		}
	}
	return nil
}

// apply makes the changes; a pair nobody co-bought any more is deleted,
// as a log without the merge would never have written it.
func (p projection) apply(tx *projections.Tx, c *counts) error {
	for k, ch := range c.items {
		if ch.n == 0 {
			continue
		}
		it, err := projections.Load[itemRecord](tx, k)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		it.Item = ch.item
		it.Buyers += ch.n
	}
	for k, ch := range c.pairs {
		if ch.n == 0 {
			continue
		}
		r, err := projections.Load[pairRecord](tx, k)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		r.Anchor, r.Item = ch.x, ch.y
		if r.Buyers += ch.n; r.Buyers <= 0 {
			tx.Delete(k)
		}
	}
	if c.stats.ProductBuyers != 0 || c.stats.CategoryBuyers != 0 {
		st, err := projections.Load[statsRecord](tx, statsKey)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		st.ProductBuyers += c.stats.ProductBuyers
		st.CategoryBuyers += c.stats.CategoryBuyers
	}
	return nil
}
