package analytics

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// rfmFacts reads what RFM ranks from a customer record as the customers
// projection writes it (encoding/json of customerRecord: fields in order,
// no spaces), without reflection: the orders, the last purchase day and the
// main currency with its net spend. ok is false for a customer without a
// purchase, and for any document not of exactly that shape, which the
// caller then decodes with encoding/json. The full RFM list reads every
// customer, and this is most of its cost.
func rfmFacts(doc []byte, today int64) (f facts, buyer, ok bool) {
	p := parser{b: doc}
	if !p.lit(`{"customer":`) || !p.skipString() || !p.lit(`,"orders":`) {
		return facts{}, false, false
	}
	orders, okN := p.int()
	if !okN {
		return facts{}, false, false
	}
	for _, name := range []string{`,"firstPurchase":`, `,"lastPurchase":`} {
		if p.lit(name) && !p.skipString() {
			return facts{}, false, false
		}
	}
	last, days := int64(0), 0
	if p.lit(`,"days":[`) {
		for {
			d, okD := p.int()
			if !okD {
				return facts{}, false, false
			}
			last, days = d, days+1
			if p.lit(`]`) {
				break
			}
			if !p.lit(`,`) {
				return facts{}, false, false
			}
		}
	}
	var best, prev string
	var bestOrders, bestNet int64
	if p.lit(`,"money":{`) {
		for first := true; ; first = false {
			code, okC := p.string()
			// encoding/json writes map keys sorted, each once.
			if !okC || (!first && code <= prev) || !p.lit(`:{"orders":`) {
				return facts{}, false, false
			}
			prev = code
			var m [4]int64 // orders, gross, refunds, refunded
			var okM bool
			if m[0], okM = p.int(); !okM {
				return facts{}, false, false
			}
			for i, name := range []string{`,"gross":`, `,"refunds":`, `,"refunded":`} {
				if !p.lit(name) {
					return facts{}, false, false
				}
				if m[i+1], okM = p.int(); !okM {
					return facts{}, false, false
				}
			}
			if !p.lit(`}`) {
				return facts{}, false, false
			}
			// mainCurrency's rule: most orders, ties to the first code
			// (the codes come in order); the empty code never counts.
			if code != "" && (best == "" || m[0] > bestOrders) {
				best, bestOrders, bestNet = code, m[0], m[1]-m[3]
			}
			if p.lit(`}`) {
				break
			}
			if !p.lit(`,`) {
				return facts{}, false, false
			}
		}
	}
	// What follows (the survey answers) is not needed.
	if !p.lit(`}`) && !p.lit(`,"surveys":`) {
		return facts{}, false, false
	}
	if orders == 0 || days == 0 {
		return facts{}, false, true
	}
	return facts{recency: max(0, today-last), orders: orders, currency: best, monetary: bestNet}, true, true
}

// parser reads a JSON document of a known shape.
type parser struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (p *parser) lit(s string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return false
	}
	p.i += len(s)
	return true
}

// string consumes a string without escapes and returns it.
func (p *parser) string() (string, bool) {
	start := p.i + 1
	if !p.skipString() {
		return "", false
	}
	raw := p.b[start : p.i-1]
	if !utf8.Valid(raw) {
		// encoding/json would read U+FFFD for each bad byte: leave the
		// document to it (read models hold valid UTF-8 only).
		return "", false
	}
	return string(raw), true
}

// skipString consumes a string without escapes.
func (p *parser) skipString() bool {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch p.b[j] {
		case '\\':
			return false
		case '"':
			p.i = j + 1
			return true
		}
	}
	return false
}

// int consumes an integer.
func (p *parser) int() (int64, bool) {
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		return 0, false
	}
	p.i = j
	return v, true
}
