// Package pgtest gives tests a PostgreSQL database to run against: URL finds
// and checks the server, Schema gives each test a fresh schema of its own so
// that tests run in parallel on one shared server without interfering.
//
// When the server cannot be reached the tests are skipped with one loud,
// uniform message, except under CI (CI=true), where a skipped database test
// would hide a broken build, so it is a failure instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the test database's
// connection string.
const EnvURL = "CXLEDGER_TEST_POSTGRES_URL"

// DefaultURL is used when EnvURL is not set: the local development server.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// reachable caches, per connection string, the outcome of the first ping so
// that a package with hundreds of tests pings once, and so that every test
// reports the same reason when the server is down.
var reachable sync.Map // string -> error (nil error stored as errOK)

type okType struct{}

func (okType) Error() string { return "ok" }

var errOK error = okType{}

// URL returns the test database's connection string after checking that the
// server answers. When it does not, the test is skipped with a message saying
// loudly that the PostgreSQL tests were NOT run, or fails when CI=true.
func URL(t testing.TB) string {
	t.Helper()
	connString := os.Getenv(EnvURL)
	if connString == "" {
		connString = DefaultURL
	}
	v, ok := reachable.Load(connString)
	if !ok {
		err := ping(connString)
		if err == nil {
			err = errOK
		}
		v, _ = reachable.LoadOrStore(connString, err)
	}
	if err := v.(error); err != errOK {
		msg := fmt.Sprintf("!!! POSTGRES TESTS WERE NOT RUN: cannot reach %s: %v. "+
			"Start PostgreSQL or set %s to a reachable database (under CI=true this is a failure).",
			redact(connString), err, EnvURL)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return connString
}

func ping(connString string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// redact hides a password in a URL-style connection string; key=value
// strings are shown as they are, since they rarely carry one in tests.
func redact(connString string) string {
	if u, err := url.Parse(connString); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return connString
}

// Schema creates a fresh, uniquely named, empty schema in the test database
// and drops it, with everything in it, when the test ends. Names are
// lowercase identifiers ("t_" and 16 hex digits) that need no quoting.
func Schema(t testing.TB) string {
	t.Helper()
	connString := URL(t)
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("pgtest: random schema name: %v", err)
	}
	name := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", redact(connString), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "create schema "+name); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, connString)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "drop schema "+name+" cascade"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return name
}
