package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/notary/notarytest"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

// The notary suite runs here against the embedded and PostgreSQL stores,
// with tampering done the way an attacker with access to the data would:
// editing the bbolt file with bbolt, and the tables with SQL. (Its natural
// home is the backends' own tests, but the import-direction rule of
// cmd/layercheck keeps eventstore backends from importing eventstore/notary,
// even in tests.)

// boltLedger is an embedded store's data file.
type boltLedger struct {
	path string
	s    *boltstore.Store
}

func newBoltLedger(t *testing.T) notarytest.Ledger {
	l := &boltLedger{path: filepath.Join(t.TempDir(), "ledger.db")}
	l.open(t)
	t.Cleanup(func() { _ = l.s.Close() })
	return l
}

func (l *boltLedger) open(t *testing.T) {
	t.Helper()
	s, err := boltstore.Open(l.path, boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open %s: %v", l.path, err)
	}
	l.s = s
}

func (l *boltLedger) Store() notarytest.Store { return l.s }

func (l *boltLedger) Reopen(t *testing.T) bool {
	if err := l.s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	l.open(t)
	return true
}

func (l *boltLedger) Tamper(t *testing.T, tm notarytest.Tampering) bool {
	if err := l.s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	tamperBolt(t, l.path, tm)
	l.open(t)
	return true
}

// tamperBolt edits the events bucket of a closed data file directly. The
// layout is boltstore's (layout.go, record.go): key = 8-byte big-endian
// position; value = format byte, 16-byte event id, ..., the JSON data last.
func tamperBolt(t *testing.T, path string, tm notarytest.Tampering) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open the data file with bbolt: %v", err)
	}
	defer db.Close()
	key := func(p uint64) []byte { return binary.BigEndian.AppendUint64(nil, p) }
	err = db.Update(func(tx *bolt.Tx) error {
		events := tx.Bucket([]byte("events"))
		get := func(p uint64) ([]byte, error) {
			v := events.Get(key(p))
			if v == nil {
				return nil, fmt.Errorf("no event at position %d", p)
			}
			return bytes.Clone(v), nil
		}
		switch tm.Kind {
		case notarytest.Alter:
			v, err := get(tm.Position)
			if err != nil {
				return err
			}
			// Change the data's last digit: still valid JSON, same length.
			i := bytes.LastIndexAny(v, "0123456789")
			v[i] = '0' + (v[i]-'0'+1)%10
			return events.Put(key(tm.Position), v)
		case notarytest.Delete:
			return events.Delete(key(tm.Position))
		case notarytest.Insert:
			forged, err := get(tm.Position)
			if err != nil {
				return err
			}
			id := uuid.New()
			copy(forged[1:17], id[:])
			var later [][2][]byte
			c := events.Cursor()
			for k, v := c.Seek(key(tm.Position + 1)); k != nil; k, v = c.Next() {
				later = append(later, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			}
			for i := len(later) - 1; i >= 0; i-- {
				p := binary.BigEndian.Uint64(later[i][0])
				if err := events.Put(key(p+1), later[i][1]); err != nil {
					return err
				}
			}
			return events.Put(key(tm.Position+1), forged)
		case notarytest.Swap:
			a, err := get(tm.Position)
			if err != nil {
				return err
			}
			b, err := get(tm.Other)
			if err != nil {
				return err
			}
			if err := events.Put(key(tm.Position), b); err != nil {
				return err
			}
			return events.Put(key(tm.Other), a)
		case notarytest.Truncate:
			var doomed [][]byte
			c := events.Cursor()
			for k, _ := c.Seek(key(tm.Position)); k != nil; k, _ = c.Next() {
				doomed = append(doomed, bytes.Clone(k))
			}
			for _, k := range doomed {
				if err := events.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("unknown tampering %v", tm.Kind)
	})
	if err != nil {
		t.Fatalf("tamper (%s at %d): %v", tm.Kind, tm.Position, err)
	}
}

func TestNotarySuiteEmbedded(t *testing.T) { notarytest.Run(t, newBoltLedger) }

// pgLedger is a PostgreSQL schema.
type pgLedger struct {
	url, schema string
	s           *pgstore.Store
}

func newPGLedger(t *testing.T) notarytest.Ledger {
	l := &pgLedger{url: pgtest.URL(t), schema: pgtest.Schema(t)}
	l.open(t)
	t.Cleanup(func() { _ = l.s.Close() })
	return l
}

func (l *pgLedger) open(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, l.url, pgstore.Options{Schema: l.schema, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("open schema %s: %v", l.schema, err)
	}
	l.s = s
}

func (l *pgLedger) Store() notarytest.Store { return l.s }

func (l *pgLedger) Reopen(t *testing.T) bool {
	_ = l.s.Close()
	l.open(t)
	return true
}

func (l *pgLedger) Tamper(t *testing.T, tm notarytest.Tampering) bool {
	_ = l.s.Close()
	tamperPG(t, l.url, l.schema, tm)
	l.open(t)
	return true
}

// tamperPG edits the events table directly with SQL.
func tamperPG(t *testing.T, url, schema string, tm notarytest.Tampering) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	events := schema + ".events"
	const far = 1_000_000_000 // positions out of the way while renumbering
	var stmts []string
	switch tm.Kind {
	case notarytest.Alter:
		stmts = []string{fmt.Sprintf(`update %s set data = '{"tampered":true}'::json where position = %d`, events, tm.Position)}
	case notarytest.Delete:
		stmts = []string{fmt.Sprintf(`delete from %s where position = %d`, events, tm.Position)}
	case notarytest.Insert:
		stmts = []string{
			fmt.Sprintf(`update %s set position = position + %d where position > %d`, events, far, tm.Position),
			fmt.Sprintf(`update %s set position = position - %d + 1 where position > %d`, events, far, far),
			fmt.Sprintf(`insert into %s (position, event_id, stream, version, type, recorded_at, occurred_at, actor, channel, correlation_id, causation_id, schema_version, data)
				select position + 1, gen_random_uuid(), 'customer-' || gen_random_uuid(), 0, type, recorded_at, occurred_at, actor, channel, correlation_id, causation_id, schema_version, data
				from %s where position = %d`, events, events, tm.Position),
		}
	case notarytest.Swap:
		stmts = []string{
			fmt.Sprintf(`update %s set position = %d where position = %d`, events, far, tm.Position),
			fmt.Sprintf(`update %s set position = %d where position = %d`, events, tm.Position, tm.Other),
			fmt.Sprintf(`update %s set position = %d where position = %d`, events, tm.Other, far),
		}
	case notarytest.Truncate:
		stmts = []string{fmt.Sprintf(`delete from %s where position >= %d`, events, tm.Position)}
	default:
		t.Fatalf("unknown tampering %v", tm.Kind)
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("tamper (%s at %d): %s: %v", tm.Kind, tm.Position, q, err)
		}
	}
}

func TestNotarySuitePostgres(t *testing.T) { notarytest.Run(t, newPGLedger) }

// TestVerifyCLITampered: the whole path an operator takes, per backend:
// customers appended through the CLI, a key, a checkpoint kept outside,
// then the data edited behind the ledger's back; verify exits 1 naming the
// first bad position.
func TestVerifyCLITampered(t *testing.T) {
	kinds := []struct {
		tm      notarytest.Tampering
		message string
	}{
		{notarytest.Tampering{Kind: notarytest.Alter, Position: 5}, "first bad global position 5 (leaf 4): altered"},
		{notarytest.Tampering{Kind: notarytest.Delete, Position: 5}, "first bad global position 5 (leaf 4): deleted"},
		{notarytest.Tampering{Kind: notarytest.Insert, Position: 4}, "first bad global position 5 (leaf 4): inserted"},
		{notarytest.Tampering{Kind: notarytest.Swap, Position: 5, Other: 6}, "first bad global position 5 (leaf 4): reordered"},
	}
	for _, backend := range []string{"embedded", "postgres"} {
		for _, k := range kinds {
			t.Run(backend+"/"+k.tm.Kind.String(), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				var store []string
				var tamper func()
				switch backend {
				case "embedded":
					store = []string{"--data", dir}
					tamper = func() { tamperBolt(t, filepath.Join(dir, "ledger.db"), k.tm) }
				default:
					url, schema := pgtest.URL(t), pgtest.Schema(t)
					store = []string{"--store", url, "--pg-schema", schema}
					tamper = func() { tamperPG(t, url, schema, k.tm) }
				}
				customer := appendHistory(t, store, 8)
				vkey, cpFile := checkpointCLI(t, dir, store)
				with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }

				code, out, errOut := cli(t, "", with("verify", "--checkpoint", cpFile, "--verifier", vkey, "--customer", customer)...)
				if code != 0 || !strings.Contains(out, "log         OK") || !strings.Contains(out, "8 verified") {
					t.Fatalf("verify before tampering: exit %d\n%s%s", code, out, errOut)
				}
				tamper()
				code, out, errOut = cli(t, "", with("verify", "--checkpoint", cpFile, "--verifier", vkey)...)
				if code != 1 || !strings.Contains(errOut, k.message) || !strings.Contains(out, "log         FAILED") {
					t.Fatalf("verify after %s: exit %d, want 1 naming %q\nstdout:\n%s\nstderr:\n%s", k.tm.Kind, code, k.message, out, errOut)
				}
			})
		}
	}
}

// appendHistory appends n events to one new customer through the CLI and
// returns the customer id.
func appendHistory(t *testing.T, store []string, n int) string {
	t.Helper()
	with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }
	code, out, errOut := cli(t, "", with("append", "--type", "CustomerRegistered", "--event", `{"name":"Zoë Ñúñez","country":"ES"}`, "--actor", "service:crm", "--channel", "web")...)
	if code != 0 {
		t.Fatalf("register: exit %d: %s", code, errOut)
	}
	customer := decodeAppended(t, out).CustomerID.String()
	for i := 1; i < n; i++ {
		code, _, errOut := cli(t, "", with("append", "--customer", customer, "--type", "CallLogged", "--channel", "phone",
			"--event", fmt.Sprintf(`{"direction":"inbound","durationSeconds":%d,"agent":"user:marta","outcome":"connected"}`, 60+i))...)
		if code != 0 {
			t.Fatalf("append call %d: exit %d: %s", i, code, errOut)
		}
	}
	return customer
}

// checkpointCLI makes a key in dir and a signed checkpoint of the store,
// and returns the verifier key and the checkpoint's file.
func checkpointCLI(t *testing.T, dir string, store []string) (vkey, cpFile string) {
	t.Helper()
	keyFile := filepath.Join(dir, "signer.key")
	if _, err := os.Stat(keyFile); err != nil {
		code, out, errOut := cli(t, "", "checkpoint", "keygen", "--name", "ledger.example.com/cxledger", "--out", keyFile)
		if code != 0 {
			t.Fatalf("keygen: exit %d: %s", code, errOut)
		}
		if err := os.WriteFile(filepath.Join(dir, "verifier.key"), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v, err := os.ReadFile(filepath.Join(dir, "verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, "", append(append([]string{"checkpoint"}, store...), "--key", keyFile)...)
	if code != 0 {
		t.Fatalf("checkpoint: exit %d: %s", code, errOut)
	}
	f, err := os.CreateTemp(dir, "checkpoint-*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(out); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v)), f.Name()
}

// TestTimelineCatchesAMovedVersion: an event moved (with SQL) to a
// position past the checkpoint, its metadata rewritten, would look "newer
// than the checkpoint" on its own; the stream's next version is still in
// the checkpoint, which no honest log allows. The customer check and the
// auditor's timeline must fail, not say VERIFIED.
func TestTimelineCatchesAMovedVersion(t *testing.T) {
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	store := []string{"--store", url, "--pg-schema", schema}
	dir := t.TempDir()
	customer := appendHistory(t, store, 4)
	vkey, cpFile := checkpointCLI(t, dir, store)
	with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, fmt.Sprintf(`update %s.events set actor = 'user:mallory', occurred_at = '2020-01-01', position = 1000 where position = 3`, schema)); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := cli(t, "", with("timeline", "--checkpoint", cpFile, "--verifier", vkey, customer)...)
	if code != 1 || !strings.Contains(out, "NOT VERIFIED") || !strings.Contains(out, "reordered") {
		t.Fatalf("timeline over a moved version: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, "", with("verify", "--checkpoint", cpFile, "--verifier", vkey, "--customer", customer)...)
	if code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("verify over a moved version: exit %d\n%s%s", code, out, errOut)
	}
}
