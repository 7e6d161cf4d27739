package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/cxledger/cxledger/eventstore/kurrent"
	"github.com/cxledger/cxledger/eventstore/pgstore"
)

// storeConfig says which event store to open. Flags win over environment
// variables, which win over the defaults.
type storeConfig struct {
	// Data is the directory of the embedded store (CXLEDGER_DATA).
	Data string
	// Store is empty for the embedded store, a postgres:// URL, or an
	// esdb:// or kurrentdb:// connection string for KurrentDB
	// (CXLEDGER_STORE).
	Store string
	// Schema is the PostgreSQL schema holding the ledger's tables
	// (CXLEDGER_PG_SCHEMA), so that several ledgers can share a database.
	Schema string
}

const (
	defaultDataDir = "./cxledger-data"
	dataFileName   = "ledger.db"
)

func (c *storeConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Data, "data", envOr("CXLEDGER_DATA", defaultDataDir), "directory of the embedded store's data file (env CXLEDGER_DATA)")
	fs.StringVar(&c.Store, "store", os.Getenv("CXLEDGER_STORE"), "event store: empty for the embedded store, postgres://user@host:port/db, or esdb:// / kurrentdb://host:2113 (env CXLEDGER_STORE)")
	fs.StringVar(&c.Schema, "pg-schema", envOr("CXLEDGER_PG_SCHEMA", pgstore.DefaultSchema), "PostgreSQL schema of the ledger's tables (env CXLEDGER_PG_SCHEMA)")
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// storeKind is the backend a configuration selects.
type storeKind int

const (
	kindEmbedded storeKind = iota
	kindPostgres
	kindKurrent
)

// parse validates the configuration and says which backend it selects,
// with the embedded store's data file path.
func (c storeConfig) parse() (storeKind, string, error) {
	s := strings.TrimSpace(c.Store)
	switch {
	case s == "" || s == "embedded" || s == "bolt":
		if strings.TrimSpace(c.Data) == "" {
			return 0, "", errors.New("--data: empty directory for the embedded store")
		}
		return kindEmbedded, filepath.Join(c.Data, dataFileName), nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		u, err := url.Parse(s)
		if err != nil {
			return 0, "", fmt.Errorf("--store: not a valid PostgreSQL URL: %v", redact(err))
		}
		if u.Host == "" {
			return 0, "", errors.New("--store: PostgreSQL URL has no host (want postgres://user@host:5432/db)")
		}
		return kindPostgres, "", nil
	case isKurrentURL(s):
		if _, err := kurrent.ParseURL(s); err != nil {
			// A *url.Error would echo the password; the client's own errors
			// (a missing tlsCAFile, an unknown setting) do not.
			msg := err.Error()
			if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
				msg = redact(err)
			}
			return 0, "", fmt.Errorf("--store: not a valid KurrentDB connection string: %s", msg)
		}
		return kindKurrent, "", nil
	default:
		scheme := s
		if i := strings.Index(s, "://"); i >= 0 {
			scheme = s[:i]
		}
		return 0, "", fmt.Errorf("--store: unsupported store %q: use postgres://…, esdb://… or kurrentdb://…, or leave empty for the embedded store", scheme)
	}
}

// redact keeps a URL parse error from echoing a password back into logs.
func redact(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err.Error()
	}
	return "malformed URL"
}

// isKurrentURL reports whether s names a KurrentDB server.
func isKurrentURL(s string) bool {
	for _, scheme := range []string{"esdb://", "esdb+discover://", "kurrentdb://", "kurrentdb+discover://"} {
		if strings.HasPrefix(s, scheme) {
			return true
		}
	}
	return false
}
