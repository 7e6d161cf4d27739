package duplicates_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/duplicates"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// population folds n customers into a fresh namespace of b: names from
// pools of 300 first and 3,000 last names, one of 20 locales, a company
// for a third of them, and an e-mail each (a Gmail one for half, one in
// fifty reusing an earlier address with dots or a +tag).
func population(b testing.TB, backend projections.Backend, n int) (ids []uuid.UUID, r projections.Reader) {
	rng := rand.New(rand.NewPCG(42, 7))
	word := func(i int) string {
		const letters = "abcdefghijklmnopqrstuvwxyz"
		w := []byte{letters[i%26] - 32, letters[(i/26)%26], letters[(i/676)%26], letters[(i*7)%26], letters[(i*13)%26]}
		return string(w)
	}
	l := projectiontest.NewLog(b)
	var emails []string
	for i := range n {
		id := uuid.New()
		ids = append(ids, id)
		reg := domain.CustomerRegistered{CustomerID: id, Name: word(rng.IntN(300)) + " " + word(1000+rng.IntN(3000)), Locale: locales[rng.IntN(len(locales))]}
		if rng.IntN(3) == 0 {
			reg.Company = "Company " + word(rng.IntN(5000))
		}
		l.Add(id, at, reg)
		email := fmt.Sprintf("user%d@example.org", i)
		if i%2 == 0 {
			email = fmt.Sprintf("user.%d@gmail.com", i)
		}
		if i%50 == 49 && len(emails) > 0 {
			email = "x+" + emails[rng.IntN(len(emails))]
		}
		emails = append(emails, email)
		l.Add(id, at, domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: email})
	}
	ns := fmt.Sprintf("duplicates_bench_%d", n)
	projectiontest.FoldBatches(b, backend, ns, duplicates.New(nil), l.Envelopes(), 8192)
	return ids, projectiontest.NamespaceReader{Backend: backend, Namespace: ns}
}

var locales = []string{"fr-FR", "de-DE", "en-GB", "en-US", "es-ES", "it-IT", "nl-NL", "pt-PT", "pl-PL", "sv-SE",
	"fr-BE", "fr-CA", "de-AT", "de-CH", "en-IE", "en-AU", "es-MX", "pt-BR", "da-DK", "fi-FI"}

// BenchmarkReads100k: on bbolt, the reads at 100,000 customers are lookups — one
// customer's pairs, and a page of the list — whatever the base's size.
// The fold of the population is setup, reported as a metric.
func BenchmarkReads100k(b *testing.B) { benchmarkReads(b, 100_000) }

// BenchmarkReads10k is BenchmarkReads100k at a tenth of the size: the
// read figures must not grow with the base.
func BenchmarkReads10k(b *testing.B) { benchmarkReads(b, 10_000) }

func benchmarkReads(b *testing.B, n int) {
	backend := projectiontest.Bolt(b)
	start := time.Now()
	ids, r := population(b, backend, n)
	b.ReportMetric(time.Since(start).Seconds(), "fold-s")
	ctx := context.Background()
	b.Run("customer", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := duplicates.ForCustomer(ctx, r, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			page, _, err := duplicates.List(ctx, r, "", 50)
			if err != nil || len(page) == 0 {
				b.Fatal(len(page), err)
			}
		}
	})
}
