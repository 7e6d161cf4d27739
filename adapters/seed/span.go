package seed

import (
	"errors"
	"fmt"
	"math"
	"time"

	"golang.org/x/sync/errgroup"
)

// MaxSpan bounds the span SpanFor picks: a century of history. (The domain
// refuses events before 1900, which also bounds it for an early Reference.)
const MaxSpan = 100 * 365 * 24 * time.Hour

// calibrationSample is the number of customers SpanFor generates at each
// span it tries. History lengths are heavy-tailed (a weekly buyer has
// dozens of times the events of a one-off one): 2,000 customers put the
// sample's mean within about 3% of the population's (one standard error),
// for a second or so of generation.
const calibrationSample = 2000

// spanSteps bounds SpanFor's iterations; spanTolerance is the relative gap
// to the target at which it stops early.
const (
	spanSteps     = 8
	spanTolerance = 0.005
)

// SpanFor returns the Span at which cfg's ordinary customers (the heavy
// account left out) hold about eventsPerCustomer events each on average:
// what a caller sets as cfg.Span so that n customers hold about n ×
// eventsPerCustomer events. A longer span means longer relationships, not
// busier customers: registrations spread over a longer past, so that the
// early customers have bought, opened tickets and received newsletters for
// longer, at the same rhythms as at the default span.
//
// It only lengthens: when cfg's own span (DefaultSpan when 0) already gives
// eventsPerCustomer or more, that span is returned unchanged, so the
// population is the one cfg describes. Nor does it go beyond MaxSpan (or
// 1900): a target out of reach gives the longest span, and the population
// holds fewer events than asked.
//
// The calibration is deterministic: it generates a sample of cfg's own
// customers (spread evenly over cfg.Customers when set, all of them when
// there are fewer than the sample's size) with cfg.Seed, measures their
// mean, and scales the span by target/mean until the mean is within half a
// percent of the target or a few steps have passed. History length grows
// about linearly with the span, so two or three steps suffice.
func SpanFor(cfg Config, eventsPerCustomer float64) (time.Duration, error) {
	if !(eventsPerCustomer > 0) || math.IsInf(eventsPerCustomer, 0) {
		return 0, fmt.Errorf("seed: span for %v events per customer: want a positive number", eventsPerCustomer)
	}
	g, err := NewGenerator(cfg)
	if err != nil {
		return 0, err
	}
	cfg = g.Config()
	base := cfg.Span
	sample := calibration(cfg)
	if len(sample) == 0 {
		return base, nil // the heavy account alone: no ordinary customer to lengthen
	}
	mean, err := meanEvents(cfg, base, sample)
	if err != nil {
		return 0, err
	}
	if mean >= eventsPerCustomer {
		return base, nil
	}
	longest := min(MaxSpan, cfg.Reference.Sub(time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC)))
	if longest <= base {
		return base, nil
	}
	span := base
	for range spanSteps {
		// Clamped as a float: a far target would overflow a Duration.
		f := min(float64(span)*eventsPerCustomer/mean, float64(longest))
		next := max(time.Duration(f).Round(time.Second), base)
		if next == span {
			break // at a bound, or converged to the second
		}
		span = next
		if mean, err = meanEvents(cfg, span, sample); err != nil {
			return 0, err
		}
		if math.Abs(mean/eventsPerCustomer-1) < spanTolerance {
			break
		}
	}
	return span, nil
}

// calibration is the indices of the ordinary customers SpanFor measures:
// all of cfg's when there are few, else calibrationSample spread evenly
// over them, so that the sample is the population's and not only its
// first customers'.
func calibration(cfg Config) []int {
	first := 0
	if cfg.HeavyEvents > 0 {
		first = 1 // the heavy account's length is HeavyEvents whatever the span
	}
	n, population := calibrationSample, 0
	if cfg.Customers > 0 {
		population = cfg.Customers - first
		n = min(n, population)
	}
	out := make([]int, 0, n)
	for k := range n {
		i := first + k
		if population > n {
			i = first + k*population/n
		}
		out = append(out, i)
	}
	return out
}

// meanEvents generates the sample's customers at span, on cfg.Generators
// goroutines, and returns their mean history length.
func meanEvents(cfg Config, span time.Duration, sample []int) (float64, error) {
	cfg.Span = span
	g, err := NewGenerator(cfg)
	if err != nil {
		return 0, err
	}
	workers := max(min(cfg.Generators, len(sample)), 1)
	totals := make([]int, workers)
	var eg errgroup.Group
	for w := range workers {
		eg.Go(func() error {
			for k := w; k < len(sample); k += workers {
				h, err := g.Customer(sample[k])
				if err != nil {
					return err
				}
				totals[w] += len(h.Events)
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return 0, fmt.Errorf("seed: calibrating the span: %w", err)
	}
	sum := 0
	for _, t := range totals {
		sum += t
	}
	if sum == 0 {
		return 0, errors.New("seed: calibrating the span: the sample has no events")
	}
	return float64(sum) / float64(len(sample)), nil
}
