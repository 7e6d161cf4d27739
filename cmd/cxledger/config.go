package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/boltkeys"
	"github.com/cxledger/cxledger/adapters/keyring/pgkeys"
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
	// MasterKeyFile holds the keyring's master key, base64 of 32 bytes
	// (CXLEDGER_MASTER_KEY_FILE); see masterKey for the other sources.
	MasterKeyFile string
}

const (
	defaultDataDir    = "./cxledger-data"
	dataFileName      = "ledger.db"
	masterKeyFileName = "master.key"
)

// envMasterKey names the environment variable that may hold the master key
// itself (base64). It is read where the key is needed, never registered as
// a flag: a key on a command line shows in every process listing.
const envMasterKey = "CXLEDGER_MASTER_KEY"

// masterKey resolves the keyring's master key, in this order:
// --master-key-file (or CXLEDGER_MASTER_KEY_FILE), then CXLEDGER_MASTER_KEY,
// then — for the embedded store only, so that `cxledger serve` works with
// nothing configured — DATA/master.key, generated on first use with mode
// 0600 and a loud warning to back it up apart from the data. A PostgreSQL
// or KurrentDB store, shared by several processes and hosts, needs the key
// configured: each host generating its own would lock all but the first
// out (the key check value would differ).
func (c storeConfig) masterKey(log *slog.Logger) (keyring.MasterKey, error) {
	mk, ok, err := c.configuredMasterKey()
	if err != nil || ok {
		return mk, err
	}
	path := filepath.Join(c.Data, masterKeyFileName)
	mk, created, err := keyring.LoadOrCreateMasterKeyFile(path)
	if err != nil {
		return keyring.MasterKey{}, err
	}
	if created {
		log.Warn("GENERATED A NEW MASTER KEY: it protects every customer's personal data. BACK IT UP NOW, SEPARATELY FROM THE DATA: without it no personal data can ever be read again; kept beside the data, a copy of the data directory exposes it. Move it out of the data directory and pass --master-key-file or "+envMasterKey+" in production.", "file", path)
	}
	return mk, nil
}

// configuredMasterKey reads the master key from --master-key-file or
// CXLEDGER_MASTER_KEY; ok is false when neither is set and the store is
// the embedded one (masterKey then uses DATA/master.key). It creates
// nothing, so commands check it before opening anything.
func (c storeConfig) configuredMasterKey() (mk keyring.MasterKey, ok bool, err error) {
	if c.MasterKeyFile != "" {
		mk, err := keyring.ReadMasterKeyFile(c.MasterKeyFile)
		if err != nil {
			return keyring.MasterKey{}, false, fmt.Errorf("--master-key-file: %w", err)
		}
		return mk, true, nil
	}
	if v, ok := os.LookupEnv(envMasterKey); ok && v != "" {
		mk, err := keyring.ParseMasterKey(v)
		if err != nil {
			return keyring.MasterKey{}, false, fmt.Errorf("%s: %w", envMasterKey, err)
		}
		return mk, true, nil
	}
	kind, _, err := c.parse()
	if err != nil {
		return keyring.MasterKey{}, false, err
	}
	if kind != kindEmbedded {
		return keyring.MasterKey{}, false, usageErr("no master key configured: a PostgreSQL or KurrentDB store needs --master-key-file FILE or %s (base64 of 32 bytes, e.g. from openssl rand -base64 32), the same on every host", envMasterKey)
	}
	return keyring.MasterKey{}, false, nil
}

// openKeyring opens the keyring beside the event store: the key store is
// DATA/keys.db for the embedded store and KurrentDB, the cxledger_keys
// table of the PostgreSQL schema; the master key is masterKey's. A wrong
// master key fails here, before anything is read or written.
func openKeyring(ctx context.Context, c storeConfig, log *slog.Logger) (*keyring.Keyring, error) {
	mk, err := c.masterKey(log)
	if err != nil {
		return nil, err
	}
	kind, _, err := c.parse()
	if err != nil {
		return nil, err
	}
	var backend keyring.Backend
	if kind == kindPostgres {
		b, err := pgkeys.Open(ctx, c.Store, pgkeys.Options{Schema: c.Schema})
		if err != nil {
			return nil, fmt.Errorf("open key store: %w", err)
		}
		backend = b
	} else {
		b, err := boltkeys.Open(filepath.Join(c.Data, boltkeys.FileName), boltkeys.Options{})
		if err != nil {
			return nil, fmt.Errorf("open key store: %w", err)
		}
		backend = b
	}
	k, err := keyring.Open(ctx, mk, backend, keyring.Options{})
	if err != nil {
		_ = backend.Close()
		return nil, err
	}
	return k, nil
}

func (c *storeConfig) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.Data, "data", envOr("CXLEDGER_DATA", defaultDataDir), "directory of the embedded store's data file (env CXLEDGER_DATA)")
	fs.StringVar(&c.Store, "store", os.Getenv("CXLEDGER_STORE"), "event store: empty for the embedded store, postgres://user@host:port/db, or esdb:// / kurrentdb://host:2113 (env CXLEDGER_STORE)")
	fs.StringVar(&c.Schema, "pg-schema", envOr("CXLEDGER_PG_SCHEMA", pgstore.DefaultSchema), "PostgreSQL schema of the ledger's tables (env CXLEDGER_PG_SCHEMA)")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", os.Getenv("CXLEDGER_MASTER_KEY_FILE"), "file holding the master key that protects personal data, base64 of 32 bytes, mode 0600 (env CXLEDGER_MASTER_KEY_FILE; or the key itself in CXLEDGER_MASTER_KEY; default for the embedded store: DATA/"+masterKeyFileName+", generated on first use)")
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
