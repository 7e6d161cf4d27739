package analytics

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// cdnow holds the parameters Fader, Hardie and Lee (2005) estimate on the
// CDNOW sample of 2 357 customers, time in weeks.
var cdnow = BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}

func TestPublishedConditionalExpectation(t *testing.T) {
	// FHL 2005, section 5: customer 1 of the sample made x = 2 repeat
	// purchases, the last at tx = 30.43 weeks, observed for T = 38.86
	// weeks; the expected number of purchases in the next 39 weeks is
	// 1.226.
	o := Observation{X: 2, Tx: 30.43, T: 38.86}
	got := cdnow.ExpectedPurchases(39, o)
	t.Logf("E=%v palive=%v", got, cdnow.PAlive(o))
	if math.Abs(got-1.226) > 0.0005 {
		t.Errorf("E[Y(39)] = %.4f, want 1.226", got)
	}
}

// simulate draws n customers from the BG/NBD model, each observed for T.
func simulate(m BGNBD, n int, T float64, seed uint64) []Observation {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]Observation, n)
	for i := range out {
		lambda := gammaDraw(rng, m.R) / m.Alpha
		g1, g2 := gammaDraw(rng, m.A), gammaDraw(rng, m.B)
		p := g1 / (g1 + g2)
		var o Observation
		o.T = T
		for t := 0.0; ; {
			t += rng.ExpFloat64() / lambda
			if t > T {
				break
			}
			o.X++
			o.Tx = t
			if rng.Float64() < p {
				break
			}
		}
		out[i] = o
	}
	return out
}

// gammaDraw draws from Gamma(shape, 1) (Marsaglia and Tsang, with the
// shape < 1 boost).
func gammaDraw(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		return gammaDraw(rng, shape+1) * math.Pow(rng.Float64(), 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v
		}
	}
}

func totalLL(m BGNBD, obs []Observation) float64 {
	var ll float64
	for _, o := range obs {
		ll += o.weight() * m.LogLikelihood(o)
	}
	return ll
}

// The fit recovers the parameters of simulated data, reaches a likelihood
// at least that of the true parameters (it is the maximum), and sits where
// the gradient vanishes.
func TestFitBGNBDRecoversSimulatedParameters(t *testing.T) {
	truth := cdnow
	obs := simulate(truth, 20_000, 39, 42)
	fit, err := FitBGNBD(obs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fit %+v", fit)
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"r", fit.R, truth.R, 0.10}, {"alpha", fit.Alpha, truth.Alpha, 0.15},
		{"a", fit.A, truth.A, 0.25}, {"b", fit.B, truth.B, 0.25},
	} {
		if math.Abs(c.got-c.want) > c.tol*c.want {
			t.Errorf("%s = %.4f, want %.4f ± %.0f%%", c.name, c.got, c.want, 100*c.tol)
		}
	}
	llFit, llTrue := totalLL(fit, obs), totalLL(truth, obs)
	if llFit < llTrue {
		t.Errorf("log-likelihood at the fit %.4f is below the truth's %.4f", llFit, llTrue)
	}
	// Central differences in log-parameters: ∂LL/∂log θ ≈ 0 at the maximum.
	p := []float64{math.Log(fit.R), math.Log(fit.Alpha), math.Log(fit.A), math.Log(fit.B)}
	at := func(p []float64) BGNBD {
		return BGNBD{R: math.Exp(p[0]), Alpha: math.Exp(p[1]), A: math.Exp(p[2]), B: math.Exp(p[3])}
	}
	for i := range p {
		const h = 1e-4
		up, down := slices.Clone(p), slices.Clone(p)
		up[i] += h
		down[i] -= h
		g := (totalLL(at(up), obs) - totalLL(at(down), obs)) / (2 * h) / float64(len(obs))
		if math.Abs(g) > 1e-5 {
			t.Errorf("mean gradient along log θ%d = %g, want 0", i, g)
		}
	}
	// The order of customers does not matter.
	shuffled := slices.Clone(obs)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if again, _ := FitBGNBD(shuffled); again != fit {
		t.Errorf("shuffled input fits %+v, not %+v", again, fit)
	}
}

func TestFitBGNBDNeedsData(t *testing.T) {
	few := simulate(cdnow, minFitCustomers-1, 39, 1)
	if _, err := FitBGNBD(few); !errors.Is(err, ErrNoFit) {
		t.Errorf("%d customers: err %v, want ErrNoFit", len(few), err)
	}
	once := make([]Observation, 100)
	for i := range once {
		once[i] = Observation{T: float64(i)}
	}
	if _, err := FitBGNBD(once); !errors.Is(err, ErrNoFit) {
		t.Errorf("no repeat purchase: err %v, want ErrNoFit", err)
	}
}

func TestQuintiles(t *testing.T) {
	for _, c := range []struct {
		name   string
		values []int64
		want   []int
	}{
		{"ten distinct", []int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, []int{1, 1, 2, 2, 3, 3, 4, 4, 5, 5}},
		{"nine distinct, symmetric", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}, []int{1, 1, 2, 2, 3, 4, 4, 5, 5}},
		{"all tied", []int64{7, 7, 7, 7, 7}, []int{3, 3, 3, 3, 3}},
		{"alone", []int64{42}, []int{3}},
		{"two", []int64{5, 9}, []int{2, 4}},
		{"two tied", []int64{9, 9}, []int{3, 3}},
		{"three", []int64{1, 2, 3}, []int{1, 3, 5}},
		{"most tied at the bottom", []int64{1, 1, 1, 1, 1, 1, 1, 1, 2, 3}, []int{2, 2, 2, 2, 2, 2, 2, 2, 5, 5}},
		{"input order does not matter", []int64{3, 1, 2}, []int{5, 1, 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := quintiles(len(c.values), func(int) string { return "" }, func(i int) int64 { return c.values[i] })
			if !slices.Equal(got, c.want) {
				t.Errorf("quintiles(%v) = %v, want %v", c.values, got, c.want)
			}
		})
	}
}

func TestNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 20; i++ {
		d = append(d, time.Duration(i)*time.Second)
	}
	// n = 20: median rank ⌈10⌉ = 10, p90 rank ⌈18⌉ = 18.
	if got := summarise(d); got.MedianSeconds != 10 || got.P90Seconds != 18 {
		t.Errorf("%+v, want median 10 s, p90 18 s", got)
	}
	if got := summarise([]time.Duration{1500 * time.Millisecond}); got.MedianSeconds != 1.5 || got.P90Seconds != 1.5 {
		t.Errorf("one value: %+v", got)
	}
	if got := summarise(nil); got != (Durations{}) {
		t.Errorf("no value: %+v", got)
	}
}
