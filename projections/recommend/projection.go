package recommend

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/google/uuid"
)

// DefaultName is the read model's name when Config.Name is empty.
const DefaultName = "recommend"

// version is the schema version of the stored records; bump it whenever
// Apply, the record layout or MaxPaired changes.
const version = 2

// MaxPaired is the number of distinct products (and, separately, of
// distinct categories) per customer that take part in co-purchase counts:
// the first MaxPaired a customer bought, in log order. It bounds the pair
// updates a customer causes to MaxPaired·(MaxPaired−1) over their whole
// history. Changing it changes what is stored (it is part of the version).
const MaxPaired = 50

// Config configures the projection. Nothing in it changes what is stored:
// support thresholds and limits are query-time Options.
type Config struct {
	// Name is the read model's name (default DefaultName), so that a
	// second instance can run beside the first.
	Name string
}

// New returns the recommendations projection.
func New(cfg Config) projections.Projection {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	return projection{name: cfg.Name}
}

type projection struct{ name string }

// Name implements projections.Projection.
func (p projection) Name() string { return p.name }

// Version implements projections.Projection.
func (projection) Version() int { return version }

// Types implements projections.Projection.
func (projection) Types() []string {
	return []string{domain.TypePurchaseCompleted, domain.TypeCustomerForgotten,
		domain.TypeCustomerMerged, domain.TypeCustomerUnmerged}
}

// dimension is what is counted: products (SKUs) or categories. Both are
// folded by the same code under their own key prefixes.
type dimension struct {
	kind Kind
	word string // the key segment naming the dimension
}

var (
	products   = dimension{KindProduct, "product"}
	categories = dimension{KindCategory, "category"}
)

// Key layout. Every item (a SKU or a category) enters a key only through
// segment, which escapes '/', so that a prefix names exactly one item and
// no key is ever parsed: records carry their items in full.
const (
	customerPrefix = "customer/"
	boughtPrefix   = "bought/"
	itemPrefix     = "item/"
	pairPrefix     = "pair/"
	statsKey       = "stats"
	mergePrefix    = "merge/"
	unitPrefix     = "unit/"
	memberPrefix   = "member/"
)

func customerKey(c string) string { return customerPrefix + c }

// boughtDimPrefix starts the membership keys of customer c in dimension d.
func boughtDimPrefix(c string, d dimension) string { return boughtPrefix + c + "/" + d.word + "/" }

func boughtKey(c string, d dimension, item string) string {
	return boughtDimPrefix(c, d) + segment(item)
}

// itemDimPrefix starts every item key of dimension d.
func itemDimPrefix(d dimension) string { return itemPrefix + d.word + "/" }

func itemKey(d dimension, item string) string { return itemDimPrefix(d) + segment(item) }

// pairAnchorPrefix starts the pair keys of anchor x: one per item bought
// together with x.
func pairAnchorPrefix(d dimension, x string) string {
	return pairPrefix + d.word + "/" + segment(x) + "/"
}

func pairKey(d dimension, x, y string) string { return pairAnchorPrefix(d, x) + segment(y) }

// maxSegment bounds an escaped item in a key; segmentPrefix is what a
// longer one keeps before its hash. The longest key, a pair, is then
// len("pair/category/") + 2·maxSegment + 1 = 815 bytes, within
// projections.MaxKeyLen. A validated SKU or category (at most 100
// characters) always fits; only legacy or imported history is hashed.
const (
	maxSegment    = 400
	segmentPrefix = 360
)

// segment escapes item for use inside a key: '%', '/', '~', ASCII control
// characters and invalid UTF-8 bytes become %XX, everything else is kept,
// so the result is valid UTF-8 without NUL or '/'. An escaped item longer
// than maxSegment bytes is cut to segmentPrefix bytes (at an escape
// boundary) followed by '~' and the first 128 bits of the item's SHA-256
// in hex: '~' never occurs in an escaped item, so the two forms cannot
// collide.
func segment(item string) string {
	var b strings.Builder
	cut := -1
	for i := 0; i < len(item); {
		r, size := utf8.DecodeRuneInString(item[i:])
		if b.Len() <= segmentPrefix {
			cut = b.Len()
		}
		if (r == utf8.RuneError && size == 1) || r == '%' || r == '/' || r == '~' || r < 0x20 || r == 0x7f {
			for _, c := range []byte(item[i : i+size]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		} else {
			b.WriteString(item[i : i+size])
		}
		i += size
	}
	s := b.String()
	if len(s) <= maxSegment {
		return s
	}
	sum := sha256.Sum256([]byte(item))
	return s[:cut] + "~" + hex.EncodeToString(sum[:16])
}

// customerRecord is what the read model keeps per customer.
type customerRecord struct {
	Customer string `json:"customer"`
	// Forgotten marks an erased customer: nothing else of theirs is kept,
	// and their later events are ignored.
	Forgotten bool `json:"forgotten,omitempty"`
	// Products and Categories count the distinct items bought.
	Products   int64 `json:"products,omitempty"`
	Categories int64 `json:"categories,omitempty"`
	// PairedProducts and PairedCategories are the items taking part in
	// pair counts: the first MaxPaired bought, in log order.
	PairedProducts   []string `json:"pairedProducts,omitempty"`
	PairedCategories []string `json:"pairedCategories,omitempty"`
}

func (c *customerRecord) count(d dimension) *int64 {
	if d == categories {
		return &c.Categories
	}
	return &c.Products
}

func (c *customerRecord) paired(d dimension) *[]string {
	if d == categories {
		return &c.PairedCategories
	}
	return &c.PairedProducts
}

// boughtRecord marks an item a customer bought, with where they first
// bought it (the event's log position and the line's index in it): the
// order of a merged group's items, whose first MaxPaired are paired.
type boughtRecord struct {
	Item     string `json:"item"`
	Position uint64 `json:"position"`
	Line     int    `json:"line,omitempty"`
}

// itemRecord counts an item's distinct buyers. Products also keep the
// description and category of their latest line that has one.
type itemRecord struct {
	Item        string `json:"item"`
	Buyers      int64  `json:"buyers"`
	Description string `json:"description,omitempty"`
	Category    string `json:"category,omitempty"`
}

// pairRecord counts the distinct customers who bought both Anchor and
// Item (within their paired items). Every pair is stored in both
// directions, so that an anchor's partners are one prefix scan.
type pairRecord struct {
	Anchor string `json:"anchor"`
	Item   string `json:"item"`
	Buyers int64  `json:"buyers"`
}

// statsRecord counts the customers with at least one product, and with at
// least one category: the base of popularity shares and lift.
type statsRecord struct {
	ProductBuyers  int64 `json:"productBuyers"`
	CategoryBuyers int64 `json:"categoryBuyers"`
}

func (s *statsRecord) count(d dimension) *int64 {
	if d == categories {
		return &s.CategoryBuyers
	}
	return &s.ProductBuyers
}

// Apply implements projections.Projection.
func (p projection) Apply(tx *projections.Tx, e domain.Envelope) error {
	id, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	switch ev := e.Event.(type) {
	case domain.PurchaseCompleted:
		return p.purchase(tx, id, e.Position, ev)
	case domain.CustomerForgotten:
		return p.forget(tx, id)
	case domain.CustomerMerged:
		return p.merged(tx, id, ev)
	case domain.CustomerUnmerged:
		return p.unmerged(tx, ev)
	}
	return nil
}

// purchase records the order's lines: every new product or category of the
// customer counts one more buyer and, while the customer has fewer than
// MaxPaired paired items, one more co-buyer with each paired item.
func (p projection) purchase(tx *projections.Tx, id uuid.UUID, pos uint64, ev domain.PurchaseCompleted) error {
	cid := id.String()
	if old, ok, err := projections.Get[customerRecord](tx, customerKey(cid)); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	} else if ok && old.Forgotten {
		return nil
	}
	group, err := p.group(tx, cid)
	if err != nil {
		return err
	}
	if group == nil {
		return p.lines(tx, cid, pos, ev, true)
	}
	// A member of a merge in effect: the group counts as one customer, so
	// its contribution is replaced by the one it makes with this purchase.
	var c counts
	if err := p.contribute(tx, group, -1, &c); err != nil {
		return err
	}
	if err := p.lines(tx, cid, pos, ev, false); err != nil {
		return err
	}
	if err := p.contribute(tx, group, 1, &c); err != nil {
		return err
	}
	return p.apply(tx, &c)
}

// lines records the order's lines for customer cid; counted says whether
// the shared counts are updated here (a customer in no merge) or by the
// caller (a member of a merged group).
func (p projection) lines(tx *projections.Tx, cid string, pos uint64, ev domain.PurchaseCompleted, counted bool) error {
	var cust *customerRecord
	for i, l := range ev.Lines {
		if strings.TrimSpace(l.SKU) == "" { // legacy history; validation refuses it
			continue
		}
		if cust == nil {
			var err error
			if cust, err = projections.Load[customerRecord](tx, customerKey(cid)); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			cust.Customer = cid
		}
		at := boughtRecord{Position: pos, Line: i}
		if err := p.add(tx, cust, products, l.SKU, at, counted); err != nil {
			return err
		}
		prod, err := projections.Load[itemRecord](tx, itemKey(products, l.SKU))
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if l.Description != "" {
			prod.Description = l.Description
		}
		if strings.TrimSpace(l.Category) == "" {
			continue
		}
		prod.Category = l.Category
		if err := p.add(tx, cust, categories, l.Category, at, counted); err != nil {
			return err
		}
	}
	return nil
}

// add records that cust bought item in dimension d, once per customer,
// first at at; counted says whether it also updates the shared counts.
func (p projection) add(tx *projections.Tx, cust *customerRecord, d dimension, item string, at boughtRecord, counted bool) error {
	bk := boughtKey(cust.Customer, d, item)
	if _, ok, err := projections.Get[boughtRecord](tx, bk); err != nil || ok {
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		return nil
	}
	at.Item = item
	if err := projections.Put(tx, bk, at); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if !counted {
		*cust.count(d)++
		if paired := cust.paired(d); len(*paired) < MaxPaired {
			*paired = append(*paired, item)
		}
		return nil
	}
	it, err := projections.Load[itemRecord](tx, itemKey(d, item))
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	it.Item = item
	it.Buyers++
	if n := cust.count(d); *n == 0 {
		st, err := projections.Load[statsRecord](tx, statsKey)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		*st.count(d)++
	}
	*cust.count(d)++
	paired := cust.paired(d)
	if len(*paired) >= MaxPaired {
		return nil
	}
	for _, x := range *paired {
		if err := p.pair(tx, d, x, item); err != nil {
			return err
		}
		if err := p.pair(tx, d, item, x); err != nil {
			return err
		}
	}
	*paired = append(*paired, item)
	return nil
}

// pair counts one more co-buyer of anchor x and item y.
func (p projection) pair(tx *projections.Tx, d dimension, x, y string) error {
	r, err := projections.Load[pairRecord](tx, pairKey(d, x, y))
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	r.Anchor, r.Item = x, y
	r.Buyers++
	return nil
}

// forget drops what the read model holds about the customer and leaves a
// tombstone; the anonymous counts keep what they counted.
func (p projection) forget(tx *projections.Tx, id uuid.UUID) error {
	cid := id.String()
	old, ok, err := projections.Get[customerRecord](tx, customerKey(cid))
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if ok && old.Forgotten {
		return nil
	}
	group, err := p.group(tx, cid)
	if err != nil {
		return err
	}
	// A member of a merged group leaves it counted as it would be on its
	// own (the anonymous counts keep what an erased customer counted, as
	// if never merged), and the group goes on without it.
	var c counts
	if group != nil {
		if err := p.contribute(tx, group, -1, &c); err != nil {
			return err
		}
		if err := p.contribute(tx, []string{cid}, 1, &c); err != nil {
			return err
		}
	}
	// Scan writes the batch's pending objects first: nothing loaded before
	// it may be changed after it, so the tombstone is Put afterwards.
	var keys []string
	err = tx.Scan(boughtPrefix+cid+"/", "", func(key string, _ []byte) (bool, error) {
		keys = append(keys, key)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s: forget %s: %w", p.name, cid, err)
	}
	for _, k := range keys {
		tx.Delete(k)
	}
	if err := projections.Put(tx, customerKey(cid), customerRecord{Customer: cid, Forgotten: true}); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if group == nil {
		return nil
	}
	if err := p.contribute(tx, group, 1, &c); err != nil {
		return err
	}
	return p.apply(tx, &c)
}

// CustomerPrefixes returns the key prefixes that hold one customer's own
// records (what they bought, what they paired): everything else in the
// read model is shared by every customer. A merged customer's view reads
// these from a fold of its combined history and the rest from the live
// read model (adapters/query).
func CustomerPrefixes(customer uuid.UUID) []string {
	c := customer.String()
	return []string{customerKey(c), boughtPrefix + c + "/"}
}
