// Package recommend is the next-best-offer read model: product co-purchase
// and category affinity folded from the lines of PurchaseCompleted, and,
// computed from them at query time, a ranked list per customer of the
// products or categories they have not bought yet, each with its reason
// ("bought BEANS-1KG; 42% of BEANS-1KG buyers also bought GRINDER-X
// (21 of 50)").
//
// # Stored facts
//
// Everything is counted in distinct customers, never in orders or units:
// a customer who reorders the same basket every week is one buyer of each
// product and one co-buyer of each pair, so that a heavy buyer cannot make
// an affinity on their own. Products are order-line SKUs and categories
// order-line categories (OrderLine.Category), both compared exactly as
// written; a line without a category counts for its product only.
//
//	customer/<customer uuid>                   products and categories bought (counts), the paired ones
//	bought/<customer uuid>/<dim>/<item>        one marker per item the customer bought
//	item/<dim>/<item>                          distinct buyers; a product's description and category
//	pair/<dim>/<anchor>/<item>                 distinct customers who bought both (both directions)
//	stats                                      customers with at least one product, and one category
//	merge/<merge uuid>                         a merge's parties, halves seen, whether in effect
//	unit/<customer uuid>                       the survivor of the customer's merged group
//	member/<survivor uuid>/<absorbed uuid>     a member of a merged group
//
// <dim> is "product" or "category". Items enter keys escaped ('/', '%',
// '~', control characters and invalid UTF-8 become %XX) and, beyond 400
// bytes (only in unvalidated legacy history), cut and suffixed with a hash,
// so that every key stays within projections.MaxKeyLen; keys are never
// parsed, records carry their items in full. A product's description and
// category are those of its latest line (in log order) that has one.
//
// Nothing stored depends on the clock, on batch boundaries or on a
// configuration: thresholds, limits and the kind of recommendation are
// query-time Options. The same history gives the same bytes, and
// projections.Digest, on every backend and with any batching.
//
// # Write amplification
//
// A customer's k-th new product adds one to the pair counts with each of
// their k−1 earlier ones, in both directions. To bound that, only the
// first MaxPaired (50) distinct products a customer bought, in log order,
// take part in pair counts, and likewise for categories: a customer
// causes at most 50·49 pair updates over their whole history, and at
// most 98 per new product. Products beyond the cap still count as bought
// (their buyers, and exclusion from the customer's own recommendations)
// but neither anchor recommendations nor add co-purchase evidence. Such
// customers are resellers and key accounts, whose baskets say little
// about affinity; the cost is a slight underestimate of confidence for
// the products they bought.
//
// # Merged customers
//
// A merged group (see projections/merges) counts as one customer in the
// shared counts while the merge is in effect — once both CustomerMerged
// halves are in, until the first CustomerUnmerged — as it does in every
// merged read: the counts equal those of a log in which one customer made
// all the group's purchases. Each record keeps its own customer record
// and markers (a marker notes where the item was first bought: log
// position, line), so that the group's contribution can be computed from
// them: one buyer of each item any member bought, one buyer of the kind,
// and one co-buyer of each pair of the group's first MaxPaired items in
// order of first purchase. A merge replaces the members' contributions by
// the group's, an unmerge the group's by the members' (integer counts: the
// result equals a replay without the merge, byte for byte, a pair nobody
// co-bought any more being deleted), and a purchase on a record of the
// group replaces the group's contribution before it by the one after it.
// An erasure of a member while merged leaves that record counted as on its
// own (as without the merge) and the group goes on without it.
//
// # Refunds and erasure
//
// RefundIssued is not folded: a refund names an order and an amount, not
// the lines returned, and most refunds are partial (goodwill, shipping,
// one broken item). A purchase is evidence that the products were chosen
// together, and a product the customer returned should not be offered to
// them again either, so refunds neither remove co-purchase evidence nor
// make a product recommendable again.
//
// CustomerForgotten removes the customer's own records (the items they
// bought) and leaves a tombstone, so that events after it (only in
// imported history) do not count them twice; the anonymous counts keep
// what they counted, as the other aggregate read models do. Recommend
// then answers projections.ErrNotFound for that customer.
//
// # Recommendations
//
// For a customer C and a candidate item Y that C has not bought, every
// item X that C bought (and that is paired, see above) gives the
// confidence
//
//	P(Y | X) = buyers(X ∧ Y) ÷ buyers(X)
//
// and Y's score is the highest of them: the single best reason, which is
// what the recommendation then says, rather than a sum that would favour
// customers with many purchases and count correlated evidence several
// times. An anchor X counts for Y only when buyers(X ∧ Y), the support, is
// at least Options.MinSupport (default 3) — a 100% resting on one customer
// is noise — and P(Y | X) at least Options.MinConfidence (default 0); Y
// takes the best anchor that counts. Ties are broken
// exactly (confidences are compared as fractions): higher confidence,
// then more co-buyers, then the item in byte order; for one Y, the anchor
// with the higher confidence, then more co-buyers, then the anchor in byte
// order. The reason rounds the confidence to whole percent, half up.
// Affinity also reports the lift, P(Y | X) ÷ P(Y), with P(Y) the share of
// the customers who bought any item of the kind; ranking does not use it.
//
// When the customer has no affinity recommendation — they bought nothing
// (a customer the read model has never seen buy is such a customer, since
// it sees purchases only), or no evidence passes the thresholds — the
// answer is the most bought items they have not bought, by distinct
// buyers and then by item, with at least MinSupport buyers, marked
// BasisPopular with the reason "popular: bought by N customers".
// Recommend never mixes the two kinds of evidence in one answer.
//
// Category recommendations are the same computation over categories:
// "bought coffee; 60% of coffee buyers also bought grinders (3 of 5)".
//
// # Cost
//
// Recommend reads the customer's record and markers, then scans the pair
// counts of each of their (at most 50) paired items and reads the chosen
// items: O(paired items × partners). The popular fallback scans every
// item of the kind. Run it on one snapshot (projections.View) for a
// consistent answer.
package recommend
