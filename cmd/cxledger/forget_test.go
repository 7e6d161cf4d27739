package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

// testMasterKey is the master key the package's tests run with: a
// PostgreSQL store needs one configured (the embedded store would generate
// its own). A developer's own CXLEDGER_MASTER_KEY wins.
const testMasterKey = "q1dQzLX0J6b7Y3xv0m0m3wzq0F8v3g2sV8r4c2Q9h1Y="

func TestMain(m *testing.M) {
	// The test binary doubles as the cxledger command, for tests that
	// need a real process to SIGKILL (delivery_e2e_test.go).
	if os.Getenv(envRunMain) == "1" {
		main()
		return
	}
	if os.Getenv(envMasterKey) == "" {
		_ = os.Setenv(envMasterKey, testMasterKey)
	}
	code := m.Run()
	closeBrowser() // the web console tests' one Chromium
	os.Exit(code)
}

// testKeyring is a keyring with the tests' master key over a memory key
// store: what derives from the master key alone (blind indexes, derived
// customer ids) equals the server's.
func testKeyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	mk, err := keyring.ParseMasterKey(os.Getenv(envMasterKey))
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyring.Open(context.Background(), mk, keyring.NewMemory(), keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The master key's sources: with nothing configured the embedded store
// generates DATA/master.key (0600) and says to back it up; later runs use
// it; another key is refused at once; a PostgreSQL store needs one
// configured; a key file readable by others is refused.
func TestMasterKeyConfiguration(t *testing.T) {
	t.Setenv(envMasterKey, "")
	dir := t.TempDir()
	register := []string{"append", "--data", dir, "--type", "CustomerRegistered", "--event", `{"name":"Zoë"}`}
	code, _, errOut := cli(t, "", register...)
	if code != 0 || !strings.Contains(errOut, "GENERATED A NEW MASTER KEY") || !strings.Contains(errOut, "SEPARATELY FROM THE DATA") {
		t.Fatalf("first run: exit %d, %s", code, errOut)
	}
	keyFile := filepath.Join(dir, masterKeyFileName)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v, %v", fi, err)
	}
	if code, _, errOut := cli(t, "", register...); code != 0 || strings.Contains(errOut, "GENERATED") {
		t.Fatalf("second run: exit %d, %s", code, errOut)
	}

	other := filepath.Join(t.TempDir(), "other.key")
	if _, _, err := keyring.LoadOrCreateMasterKeyFile(other); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cli(t, "", "read", "--all", "--data", dir, "--master-key-file", other); code != 1 || !strings.Contains(errOut, "wrong master key") {
		t.Fatalf("another master key: exit %d, %s", code, errOut)
	}
	if code, out, errOut := cli(t, "", "read", "--all", "--data", dir, "--master-key-file", keyFile); code != 0 || !strings.Contains(out, "Zoë") {
		t.Fatalf("the right key file: exit %d, %s %s", code, out, errOut)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cli(t, "", "read", "--all", "--data", dir); code != 1 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("a world-readable key file: exit %d, %s", code, errOut)
	}
	t.Setenv(envMasterKey, "not a key")
	if code, _, errOut := cli(t, "", "read", "--all", "--data", t.TempDir()); code != 1 || !strings.Contains(errOut, envMasterKey) || strings.Contains(errOut, "not a key") {
		t.Fatalf("a malformed %s: exit %d, %s", envMasterKey, code, errOut)
	}
	t.Setenv(envMasterKey, "")
	code, _, errOut = cli(t, "", "read", "--all", "--store", pgtest.URL(t), "--pg-schema", pgtest.Schema(t))
	if code != 2 || !strings.Contains(errOut, "--master-key-file") || !strings.Contains(errOut, envMasterKey) {
		t.Fatalf("PostgreSQL without a master key: exit %d, %s", code, errOut)
	}
}
