// Package catalog is the one place the ledger's read models are listed.
// An analyst adds a read model by writing a type that implements
// projections.Projection and adding it to All; the engine then builds it
// from position 0 on its next start, without touching the others.
package catalog

import (
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/attribution"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/duplicates"
	"github.com/cxledger/cxledger/projections/identity"
	"github.com/cxledger/cxledger/projections/merges"
	"github.com/cxledger/cxledger/projections/pipeline"
	"github.com/cxledger/cxledger/projections/recommend"
	"github.com/cxledger/cxledger/projections/timeline"
)

// Deps are what read models need from outside the log. The zero Deps is
// the ledger without a keyring: plaintext personal data.
type Deps struct {
	// Identifiers opens sealed identifier values and blinds them for the
	// identity index (adapters/keyring.Keyring); nil: plaintext. Every
	// process building or querying the index must pass the same keys.
	Identifiers identity.Keys
	// Attribution configures campaign attribution (its window); the zero
	// value is the default.
	Attribution attribution.Config
}

// All returns a fresh instance of every read model, in a stable order.
func All(d Deps) []projections.Projection {
	return []projections.Projection{
		identity.New(d.Identifiers),
		customer360.New(),
		timeline.New(),
		pipeline.New(pipeline.Config{}),
		analytics.NewCustomers(analytics.Config{}),
		analytics.NewChannels(analytics.Config{}),
		analytics.NewTickets(analytics.Config{}),
		recommend.New(recommend.Config{}),
		attribution.New(d.Attribution),
		merges.New(),
		duplicates.New(d.Identifiers),
	}
}

// Select returns the read models with the given names, in All's order, or
// every read model when names is empty. Unknown names are returned so the
// caller can report them.
func Select(d Deps, names ...string) (selected []projections.Projection, unknown []string) {
	all := All(d)
	if len(names) == 0 {
		return all, nil
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	for _, p := range all {
		if want[p.Name()] {
			selected = append(selected, p)
			delete(want, p.Name())
		}
	}
	for _, n := range names {
		if want[n] {
			unknown = append(unknown, n)
			want[n] = false
		}
	}
	return selected, unknown
}
