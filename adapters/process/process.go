// Package process says what one cxledger process runs: its roles. Several
// processes may share one PostgreSQL schema in any mix of roles — N
// all-in-one processes, or N stateless API replicas and one or more
// workers — because every piece of background work that writes (each
// projection, each reactor, the broker relay) has one owner among them,
// the holder of its lease (projections.Leases); the others stand by and
// take over when the owner goes away.
package process

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Role names, as --run and CXLEDGER_RUN spell them.
const (
	// API serves the HTTP API and consumes broker ingest (both append
	// through the write path and read the shared read models).
	API = "api"
	// Projections runs (owns, or stands by for) the read models.
	Projections = "projections"
	// Reactors runs (owns, or stands by for) the automation reactors:
	// rules, loyalty, built-in automations.
	Reactors = "reactors"
	// Relay publishes the log to the broker (owns, or stands by for, the
	// relay lease).
	Relay = "relay"
	// Delivery sends queued messages (MessageQueued) by webhook and SMTP
	// (owns, or stands by for, the delivery lease).
	Delivery = "delivery"
)

// names is every role, in the order String writes them.
var names = []string{API, Projections, Reactors, Relay, Delivery}

// ErrNoRole is wrapped by Parse's error when the list names no role.
var ErrNoRole = errors.New("no role to run")

// Roles is the set of roles a process runs. The zero Roles runs nothing;
// All runs everything.
type Roles struct {
	API, Projections, Reactors, Relay, Delivery bool
}

// All is the default: every role, in one process. It is safe with several
// such processes on one schema.
func All() Roles {
	return Roles{API: true, Projections: true, Reactors: true, Relay: true, Delivery: true}
}

// Parse reads a comma-separated list of roles ("api",
// "projections,reactors,relay", "all"). Unknown, repeated or no roles are
// an error naming the word.
func Parse(s string) (Roles, error) {
	var r Roles
	seen := map[string]bool{}
	for word := range strings.SplitSeq(s, ",") {
		word = strings.TrimSpace(word)
		if word == "" {
			continue
		}
		if seen[word] {
			return Roles{}, fmt.Errorf("role %q listed twice", word)
		}
		seen[word] = true
		switch word {
		case "all":
			r = All()
		case API:
			r.API = true
		case Projections:
			r.Projections = true
		case Reactors:
			r.Reactors = true
		case Relay:
			r.Relay = true
		case Delivery:
			r.Delivery = true
		default:
			return Roles{}, fmt.Errorf("unknown role %q (want a comma-separated list of %s, or all)", word, strings.Join(names, ", "))
		}
	}
	if r == (Roles{}) {
		return Roles{}, fmt.Errorf("%q: %w (want a comma-separated list of %s, or all)", s, ErrNoRole, strings.Join(names, ", "))
	}
	return r, nil
}

// String lists the roles, comma-separated, in a fixed order.
func (r Roles) String() string {
	on := map[string]bool{API: r.API, Projections: r.Projections, Reactors: r.Reactors, Relay: r.Relay, Delivery: r.Delivery}
	var out []string
	for _, n := range names {
		if on[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

// Names lists every role name, for help texts.
func Names() []string { return slices.Clone(names) }
