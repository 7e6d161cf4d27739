package analytics

import (
	"errors"
	"math"
	"slices"
)

// BGNBD holds the four parameters of the BG/NBD model of Fader, Hardie and
// Lee (2005), "Counting Your Customers the Easy Way": while active, a
// customer buys as a Poisson process of rate λ, with λ ~ Gamma(R, Alpha)
// across customers; after each repeat purchase the customer drops out for
// good with probability p, with p ~ Beta(A, B) across customers. Alpha is in
// the unit of time of the observations (days in this package).
type BGNBD struct {
	R     float64 `json:"r"`
	Alpha float64 `json:"alpha"`
	A     float64 `json:"a"`
	B     float64 `json:"b"`
}

// Observation is one customer's purchase summary for the BG/NBD model: X
// repeat purchases (purchases after the first), the last at Tx after the
// first, observed for T since the first (0 ≤ Tx ≤ T). Weight counts
// identical customers (0 means 1).
type Observation struct {
	X, Tx, T float64
	Weight   float64
}

func (o Observation) weight() float64 {
	if o.Weight == 0 {
		return 1
	}
	return o.Weight
}

func (m BGNBD) valid() bool {
	for _, v := range []float64{m.R, m.Alpha, m.A, m.B} {
		if !(v > 0) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// LogLikelihood is the log-likelihood of one observation (FHL 2005, eq. 6):
//
//	L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
//	  + [x > 0] B(a+1, b+x−1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+tx)^(r+x))
//
// computed in logs.
func (m BGNBD) LogLikelihood(o Observation) float64 {
	return m.logLikelihood(o, m.repeatTerms(o.X))
}

// xTerms are the parts of an observation's log-likelihood that depend on
// the parameters and x only.
type xTerms struct{ a1, a2, logA, logBX1 float64 }

func (m BGNBD) repeatTerms(x float64) xTerms {
	r, alpha, a, b := m.R, m.Alpha, m.A, m.B
	t := xTerms{
		a1: lgamma(r+x) - lgamma(r) + r*math.Log(alpha),
		a2: lgamma(a+b) + lgamma(b+x) - lgamma(b) - lgamma(a+b+x),
	}
	if x > 0 {
		t.logA, t.logBX1 = math.Log(a), math.Log(b+x-1)
	}
	return t
}

func (m BGNBD) logLikelihood(o Observation, t xTerms) float64 {
	r, alpha, x := m.R, m.Alpha, o.X
	a3 := -(r + x) * math.Log(alpha+o.T)
	if x == 0 {
		return t.a1 + t.a2 + a3
	}
	a4 := t.logA - t.logBX1 - (r+x)*math.Log(alpha+o.Tx)
	hi := math.Max(a3, a4)
	return t.a1 + t.a2 + hi + math.Log(math.Exp(a3-hi)+math.Exp(a4-hi))
}

// weightedLL is Σ weight · LogLikelihood over data sorted by X (as
// compress leaves it), computing the terms of each x once: the same
// figures as LogLikelihood, summed in the same order, a few times faster.
func (m BGNBD) weightedLL(data []Observation) float64 {
	var ll float64
	var t xTerms
	for i, o := range data {
		if i == 0 || o.X != data[i-1].X {
			t = m.repeatTerms(o.X)
		}
		ll += o.weight() * m.logLikelihood(o, t)
	}
	return ll
}

// PAlive is the probability that a customer with this history is still
// active at T (FHL 2005, eq. 13): 1 for x = 0, else
//
//	1 / (1 + a/(b+x−1) · ((α+T)/(α+tx))^(r+x))
func (m BGNBD) PAlive(o Observation) float64 {
	if o.X == 0 {
		return 1
	}
	lr := math.Log(m.A/(m.B+o.X-1)) + (m.R+o.X)*(math.Log(m.Alpha+o.T)-math.Log(m.Alpha+o.Tx))
	return 1 / (1 + math.Exp(lr))
}

// ExpectedPurchases is the expected number of purchases in the next t
// after T, given the history (FHL 2005, eq. 10):
//
//	E[Y(t)] = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))]
//	          ÷ (1 + [x > 0] a/(b+x−1) · ((α+T)/(α+tx))^(r+x))
//
// It is NaN when a = 1, where the formula has a removable singularity.
func (m BGNBD) ExpectedPurchases(t float64, o Observation) float64 {
	r, alpha, a, b, x := m.R, m.Alpha, m.A, m.B, o.X
	if a == 1 {
		return math.NaN()
	}
	z := t / (alpha + o.T + t)
	f := hyp2f1(r+x, b+x, a+b+x-1, z)
	num := (a + b + x - 1) / (a - 1) * (1 - math.Pow((alpha+o.T)/(alpha+o.T+t), r+x)*f)
	den := 1.0
	if x > 0 {
		den += a / (b + x - 1) * math.Pow((alpha+o.T)/(alpha+o.Tx), r+x)
	}
	return num / den
}

// hyp2f1 is the Gauss hypergeometric series ₂F₁(a, b; c; z) for 0 ≤ z < 1,
// summed until the terms no longer change the sum.
func hyp2f1(a, b, c, z float64) float64 {
	sum, term := 1.0, 1.0
	for n := 0.0; n < 100_000; n++ {
		term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
		sum += term
		if math.Abs(term) <= 1e-15*math.Abs(sum) {
			break
		}
	}
	return sum
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

// ErrNoFit is returned by FitBGNBD when the data cannot identify the model:
// too few customers, or no repeat purchase at all.
var ErrNoFit = errors.New("analytics: not enough purchase history to fit the BG/NBD model")

// minFitCustomers is the smallest base FitBGNBD accepts.
const minFitCustomers = 20

// FitBGNBD estimates the BG/NBD parameters by maximum likelihood: the
// Nelder–Mead simplex method minimises the mean negative log-likelihood over
// the logarithms of the four parameters (so they stay positive), from
// r = α = a = b = 1, restarted from its best point until a restart no longer
// improves it. Each parameter is kept within e^±12. The result depends
// only on the multiset of observations: they are sorted and identical ones
// merged before fitting, so the same base always gives the same parameters.
func FitBGNBD(obs []Observation) (BGNBD, error) {
	data := compress(obs)
	var n, repeaters float64
	for _, o := range data {
		n += o.weight()
		if o.X > 0 {
			repeaters += o.weight()
		}
	}
	if n < minFitCustomers || repeaters == 0 {
		return BGNBD{}, ErrNoFit
	}
	model := func(p []float64) BGNBD {
		return BGNBD{R: math.Exp(p[0]), Alpha: math.Exp(p[1]), A: math.Exp(p[2]), B: math.Exp(p[3])}
	}
	objective := func(p []float64) float64 {
		for _, v := range p {
			if math.Abs(v) > 12 {
				return math.Inf(1)
			}
		}
		ll := model(p).weightedLL(data)
		if math.IsNaN(ll) {
			return math.Inf(1)
		}
		return -ll / n
	}
	best, fbest := []float64{0, 0, 0, 0}, math.Inf(1)
	for range 10 {
		p, f := nelderMead(objective, best, 0.5, 20_000)
		if f >= fbest-1e-13 {
			if f < fbest {
				best, fbest = p, f
			}
			break
		}
		best, fbest = p, f
	}
	if math.IsInf(fbest, 0) {
		return BGNBD{}, ErrNoFit
	}
	return model(best), nil
}

// compress sorts observations and merges identical ones into weights.
func compress(obs []Observation) []Observation {
	s := slices.Clone(obs)
	slices.SortFunc(s, func(p, q Observation) int {
		switch {
		case p.X != q.X:
			return cmpFloat(p.X, q.X)
		case p.Tx != q.Tx:
			return cmpFloat(p.Tx, q.Tx)
		}
		return cmpFloat(p.T, q.T)
	})
	out := s[:0]
	for _, o := range s {
		if n := len(out); n > 0 && out[n-1].X == o.X && out[n-1].Tx == o.Tx && out[n-1].T == o.T {
			out[n-1].Weight = out[n-1].weight() + o.weight()
			continue
		}
		o.Weight = o.weight()
		out = append(out, o)
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// nelderMead minimises f from x0 with an initial simplex of x0 and x0 plus
// step along each axis, using the standard coefficients (reflection 1,
// expansion 2, contraction ½, shrink ½). It stops when the simplex's values
// agree to 1e-12 (relative) and its vertices to 1e-9, or after maxIter
// iterations, and returns the best vertex and its value. Ties keep the
// earlier vertex, so the run is deterministic.
func nelderMead(f func([]float64) float64, x0 []float64, step float64, maxIter int) ([]float64, float64) {
	n := len(x0)
	pts := make([][]float64, n+1)
	vals := make([]float64, n+1)
	for i := range pts {
		pts[i] = slices.Clone(x0)
		if i > 0 {
			pts[i][i-1] += step
		}
		vals[i] = f(pts[i])
	}
	order := make([]int, n+1)
	point := func(c []float64, d []float64, t float64) []float64 { // c + t(d − c)
		out := make([]float64, n)
		for j := range out {
			out[j] = c[j] + t*(d[j]-c[j])
		}
		return out
	}
	for iter := 0; iter < maxIter; iter++ {
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(i, j int) int { return cmpFloat(vals[i], vals[j]) })
		ps, vs := make([][]float64, n+1), make([]float64, n+1)
		for i, k := range order {
			ps[i], vs[i] = pts[k], vals[k]
		}
		pts, vals = ps, vs
		if converged(pts, vals) {
			break
		}
		centroid := make([]float64, n)
		for _, p := range pts[:n] {
			for j := range centroid {
				centroid[j] += p[j] / float64(n)
			}
		}
		worst := pts[n]
		xr := point(centroid, worst, -1)
		fr := f(xr)
		switch {
		case fr < vals[0]:
			xe := point(centroid, worst, -2)
			if fe := f(xe); fe < fr {
				pts[n], vals[n] = xe, fe
			} else {
				pts[n], vals[n] = xr, fr
			}
		case fr < vals[n-1]:
			pts[n], vals[n] = xr, fr
		default:
			var xc []float64
			if fr < vals[n] {
				xc = point(centroid, xr, 0.5) // outside contraction
			} else {
				xc = point(centroid, worst, 0.5) // inside contraction
			}
			if fc := f(xc); fc < math.Min(fr, vals[n]) {
				pts[n], vals[n] = xc, fc
				continue
			}
			for i := 1; i <= n; i++ {
				pts[i] = point(pts[0], pts[i], 0.5)
				vals[i] = f(pts[i])
			}
		}
	}
	best := 0
	for i := range vals {
		if vals[i] < vals[best] {
			best = i
		}
	}
	return pts[best], vals[best]
}

func converged(pts [][]float64, vals []float64) bool {
	lo, hi := vals[0], vals[len(vals)-1]
	if math.IsInf(hi, 0) || hi-lo > 1e-12*(math.Abs(lo)+1e-12) {
		return false
	}
	for _, p := range pts[1:] {
		for j := range p {
			if math.Abs(p[j]-pts[0][j]) > 1e-9 {
				return false
			}
		}
	}
	return true
}
