package attribution

import (
	"fmt"
	"slices"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Apply implements projections.Projection.
func (p *projection) Apply(tx *projections.Tx, e domain.Envelope) error {
	if p.err != nil {
		return p.err
	}
	if err := p.checkMeta(tx); err != nil {
		return err
	}
	id, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return fmt.Errorf("attribution: %w", err)
	}
	a := &applier{p: p, tx: tx, id: id.String(), at: e.Metadata.OccurredAt.UTC()}
	if rec, ok, err := projections.Get[customerRecord](tx, customerKey(a.id)); err != nil {
		return err
	} else if ok && rec.Forgotten {
		return nil
	}
	switch ev := e.Event.(type) {
	case domain.CampaignTouched:
		return a.campaignTouched(ev)
	case domain.EmailSent:
		name := campaignName(ev.Campaign)
		if name == "" {
			return nil
		}
		if err := a.count(name, func(c *campaignRecord) { c.Sent++ }); err != nil {
			return err
		}
		if err := a.emailSent(ev.MessageID, name); err != nil {
			return err
		}
		return a.touchIf(domain.ActionSent, name)
	case domain.SMSSent:
		name := campaignName(ev.Campaign)
		if name == "" {
			return nil
		}
		if err := a.count(name, func(c *campaignRecord) { c.Sent++ }); err != nil {
			return err
		}
		return a.touchIf(domain.ActionSent, name)
	case domain.EmailOpened:
		return a.message(ev.MessageID, func(m *messageRecord) { m.Opened = true })
	case domain.EmailClicked:
		return a.message(ev.MessageID, func(m *messageRecord) { m.Clicked = true })
	case domain.LeadCaptured:
		name := campaignName(ev.Campaign)
		if name == "" {
			return nil
		}
		if err := a.count(name, func(c *campaignRecord) { c.Leads++ }); err != nil {
			return err
		}
		return a.touchIf(ActionLead, name)
	case domain.PurchaseCompleted:
		return a.purchase(ev)
	case domain.RefundIssued:
		return a.refund(ev)
	case domain.CustomerForgotten:
		return a.forget()
	}
	return nil
}

// checkMeta records the read model's settings on its first event and
// refuses to fold into a read model built with other settings.
func (p *projection) checkMeta(tx *projections.Tx) error {
	m, ok, err := projections.Get[metaRecord](tx, metaKey)
	if err != nil {
		return err
	}
	if !ok {
		return projections.Put(tx, metaKey, p.set)
	}
	if !m.equal(p.set) {
		return fmt.Errorf("attribution: read model %s was built with window %ds and qualifying %v, configured %ds and %v: rebuild it", p.name, m.WindowSeconds, m.Qualifying, p.set.WindowSeconds, p.set.Qualifying)
	}
	return nil
}

// applier folds one event of one customer.
type applier struct {
	p  *projection
	tx *projections.Tx
	id string
	at time.Time
	// rec is the customer's record, once loaded.
	rec *customerRecord
}

func (a *applier) customer() (*customerRecord, error) {
	if a.rec == nil {
		rec, err := projections.Load[customerRecord](a.tx, customerKey(a.id))
		if err != nil {
			return nil, err
		}
		a.rec = rec
	}
	return a.rec, nil
}

func (a *applier) campaign(name string) (*campaignRecord, error) {
	c, err := projections.Load[campaignRecord](a.tx, campaignKey(name))
	if err != nil {
		return nil, err
	}
	c.Campaign = name
	return c, nil
}

func (a *applier) count(name string, fn func(*campaignRecord)) error {
	c, err := a.campaign(name)
	if err != nil {
		return err
	}
	fn(c)
	return nil
}

func (a *applier) campaignTouched(ev domain.CampaignTouched) error {
	name := campaignName(ev.Campaign)
	if name == "" {
		return nil
	}
	err := a.count(name, func(c *campaignRecord) {
		switch ev.Action {
		case domain.ActionSent:
			c.Sent++
		case domain.ActionDelivered:
			c.Delivered++
		case domain.ActionBounced:
			c.Bounced++
		case domain.ActionViewed:
			c.Viewed++
		case domain.ActionClicked:
			c.Clicked++
		case domain.ActionConverted:
			c.Converted++
		case domain.ActionUnsubscribed:
			c.Unsubscribed++
		}
	})
	if err != nil {
		return err
	}
	return a.touchIf(ev.Action, name)
}

// touchIf records a touch of campaign name at a.at when action qualifies:
// the customer is reached, and every purchase whose window holds the
// touch is attributed again.
func (a *applier) touchIf(action domain.CampaignAction, name string) error {
	if !a.p.qualifies(action) {
		return nil
	}
	view, _, err := projections.Get[customerRecord](a.tx, customerKey(a.id))
	if err != nil {
		return err
	}
	if _, found := slices.BinarySearch(view.Reached, name); !found {
		rec, err := a.customer()
		if err != nil {
			return err
		}
		i, _ := slices.BinarySearch(rec.Reached, name)
		rec.Reached = slices.Insert(rec.Reached, i, name)
		if err := a.count(name, func(c *campaignRecord) { c.Reached++ }); err != nil {
			return err
		}
	}
	t := touch{At: a.at, Campaign: name}
	b, err := projections.Load[touchRecord](a.tx, touchesKey(a.id, monthOf(a.at)))
	if err != nil {
		return err
	}
	var inserted bool
	var dropped *touch
	b.Touches, inserted, dropped = insertSorted(b.Touches, t, a.p.maxTouches, touchCmp)
	if inserted {
		if err := a.reattribute(t.At); err != nil {
			return err
		}
	}
	if dropped != nil && touchCmp(*dropped, t) != 0 {
		return a.reattribute(dropped.At)
	}
	return nil
}

func monthOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// reattribute brings up to date every purchase whose window holds a touch
// at t: those at t to t + window. The customer's record is loaded (and so
// rewritten) only when there is one: most touches have no purchase after
// them.
func (a *applier) reattribute(t time.Time) error {
	view, _, err := projections.Get[customerRecord](a.tx, customerKey(a.id))
	if err != nil {
		return err
	}
	end := t.Add(a.p.window)
	from, _ := slices.BinarySearchFunc(view.Purchases, t, func(p purchase, t time.Time) int { return p.At.Compare(t) })
	if from == len(view.Purchases) || view.Purchases[from].At.After(end) {
		return nil
	}
	rec, err := a.customer()
	if err != nil {
		return err
	}
	for i := from; i < len(rec.Purchases) && !rec.Purchases[i].At.After(end); i++ {
		if err := a.reconcile(i); err != nil {
			return err
		}
	}
	return nil
}

// emailSent links a Message-ID to its campaign: the first campaign send
// by (occurred-at, campaign) wins.
func (a *applier) emailSent(messageID, name string) error {
	return a.message(messageID, func(m *messageRecord) {
		if m.Campaign == "" || touchCmp(touch{a.at, name}, touch{m.SentAt, m.Campaign}) < 0 {
			m.Campaign, m.SentAt = name, a.at
		}
	})
}

// message changes a message record with fn and moves its open and click
// counts to the campaign it then belongs to.
func (a *applier) message(messageID string, fn func(*messageRecord)) error {
	m, err := projections.Load[messageRecord](a.tx, messageKey(a.id, messageID))
	if err != nil {
		return err
	}
	before := *m
	fn(m)
	if before == *m {
		return nil
	}
	if err := a.messageCounts(before, -1); err != nil {
		return err
	}
	return a.messageCounts(*m, 1)
}

func (a *applier) messageCounts(m messageRecord, sign int64) error {
	if m.Campaign == "" || (!m.Opened && !m.Clicked) {
		return nil
	}
	return a.count(m.Campaign, func(c *campaignRecord) {
		if m.Opened {
			c.EmailOpened += sign
		}
		if m.Clicked {
			c.EmailClicked += sign
		}
	})
}

func (a *applier) purchase(ev domain.PurchaseCompleted) error {
	rec, err := a.customer()
	if err != nil {
		return err
	}
	np := purchase{At: a.at, Order: ev.OrderID.String(), Amount: max(ev.Amount, 0), Currency: ev.Currency}
	var inserted bool
	var dropped *purchase
	rec.Purchases, inserted, dropped = insertSorted(rec.Purchases, np, a.p.maxPurchases, purchaseCmp)
	if dropped != nil && purchaseCmp(*dropped, np) != 0 {
		// The dropped purchase takes its contribution with it.
		if err := a.contribute(*dropped, -1); err != nil {
			return err
		}
		if err := a.reconcileOrder(dropped.Order); err != nil {
			return err
		}
	}
	if inserted {
		return a.reconcileOrder(np.Order)
	}
	return nil
}

func (a *applier) refund(ev domain.RefundIssued) error {
	rec, err := a.customer()
	if err != nil {
		return err
	}
	nr := refund{At: a.at, ID: ev.RefundID.String(), Order: ev.OrderID.String(), Amount: max(ev.Amount, 0), Currency: ev.Currency}
	var inserted bool
	var dropped *refund
	rec.Refunds, inserted, dropped = insertSorted(rec.Refunds, nr, a.p.maxRefunds, refundCmp)
	var orders []string
	if inserted {
		orders = a.refundOrders(nr)
	}
	if dropped != nil && refundCmp(*dropped, nr) != 0 {
		orders = append(orders, a.refundOrders(*dropped)...)
	}
	slices.Sort(orders)
	for _, o := range slices.Compact(orders) {
		if err := a.reconcileOrder(o); err != nil {
			return err
		}
	}
	return nil
}

// refundOrders returns the orders whose refunded amount r can change: its
// own, and those of the stored refunds with its refund id (only the first
// refund of an id counts).
func (a *applier) refundOrders(r refund) []string {
	orders := []string{r.Order}
	for _, o := range a.rec.Refunds {
		if o.ID == r.ID {
			orders = append(orders, o.Order)
		}
	}
	return orders
}

// reconcileOrder brings up to date every stored purchase of an order id.
func (a *applier) reconcileOrder(order string) error {
	for i := range a.rec.Purchases {
		if a.rec.Purchases[i].Order == order {
			if err := a.reconcile(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// reconcile recomputes the state of purchase i from the stored facts and,
// when it changed, replaces its contribution to the figures.
func (a *applier) reconcile(i int) error {
	want, err := a.evaluate(i)
	if err != nil {
		return err
	}
	p := &a.rec.Purchases[i]
	if want == p.state {
		return nil
	}
	if err := a.contribute(*p, -1); err != nil {
		return err
	}
	p.state = want
	return a.contribute(*p, 1)
}

// evaluate computes what purchase i contributes, from the stored facts.
func (a *applier) evaluate(i int) (state, error) {
	p := a.rec.Purchases[i]
	for _, q := range a.rec.Purchases[:i] {
		if q.Order == p.Order {
			return state{}, nil // a repeated order id: the first one counts
		}
	}
	s := state{Counted: true}
	for j, r := range a.rec.Refunds {
		if r.Order != p.Order || r.Currency != p.Currency {
			continue
		}
		if slices.ContainsFunc(a.rec.Refunds[:j], func(o refund) bool { return o.ID == r.ID }) {
			continue // a repeated refund id: the first one counts
		}
		s.Refunded += min(r.Amount, p.Amount-s.Refunded)
	}
	touches, err := a.touchesIn(p.At.Add(-a.p.window), p.At)
	if err != nil {
		return state{}, err
	}
	if len(touches) > 0 {
		s.First = touches[0].Campaign
		last := touches[len(touches)-1].At
		k := len(touches) - 1
		for k > 0 && touches[k-1].At.Equal(last) {
			k--
		}
		s.Last = touches[k].Campaign
	}
	return s, nil
}

// touchesIn returns the customer's stored touches from from to to, both
// included, sorted.
func (a *applier) touchesIn(from, to time.Time) ([]touch, error) {
	var out []touch
	for m := monthOf(from); !m.After(to); m = m.AddDate(0, 1, 0) {
		b, ok, err := projections.Get[touchRecord](a.tx, touchesKey(a.id, m))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		i, _ := slices.BinarySearchFunc(b.Touches, from, func(t touch, from time.Time) int { return t.At.Compare(from) })
		for ; i < len(b.Touches) && !b.Touches[i].At.After(to); i++ {
			out = append(out, b.Touches[i])
		}
	}
	return out, nil
}

// contribute adds sign × purchase p's contribution to the totals, to its
// campaigns' figures and to the customer's conversions.
func (a *applier) contribute(p purchase, sign int64) error {
	if !p.Counted {
		return nil
	}
	tot, err := projections.Load[totalsRecord](a.tx, totalsKey)
	if err != nil {
		return err
	}
	tot.Purchases += sign
	addMoney(&tot.Revenue, p.Currency, p.Amount, p.Refunded, sign)
	for _, m := range []struct {
		campaign string
		figures  func(*campaignRecord) *modelRecord
		counts   *map[string]int64
	}{
		{p.Last, func(c *campaignRecord) *modelRecord { return &c.Last }, &a.rec.Last},
		{p.First, func(c *campaignRecord) *modelRecord { return &c.First }, &a.rec.First},
	} {
		if m.campaign == "" {
			continue
		}
		c, err := a.campaign(m.campaign)
		if err != nil {
			return err
		}
		f := m.figures(c)
		f.Purchases += sign
		addMoney(&f.Revenue, p.Currency, p.Amount, p.Refunded, sign)
		if *m.counts == nil {
			*m.counts = map[string]int64{}
		}
		before := (*m.counts)[m.campaign]
		after := before + sign
		if after == 0 {
			delete(*m.counts, m.campaign)
		} else {
			(*m.counts)[m.campaign] = after
		}
		if len(*m.counts) == 0 {
			*m.counts = nil
		}
		switch {
		case before == 0 && after > 0:
			f.Customers++
		case before > 0 && after == 0:
			f.Customers--
		}
	}
	return nil
}

// forget erases the customer's facts; the figures keep what they counted.
func (a *applier) forget() error {
	var keys []string
	err := a.tx.Scan(customerKey(a.id)+"/", "", func(key string, _ []byte) (bool, error) {
		keys = append(keys, key)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("attribution: forget %s: %w", a.id, err)
	}
	for _, k := range keys {
		a.tx.Delete(k)
	}
	return projections.Put(a.tx, customerKey(a.id), customerRecord{Forgotten: true})
}
