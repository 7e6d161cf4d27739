package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/eventstore/notary"
)

func TestCheckpointKeygen(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "signer.key")
	code, out, errOut := cli(t, "", "checkpoint", "keygen", "--name", "ledger.example.com/cxledger", "--out", keyFile)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", info.Mode().Perm())
	}
	skey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := notary.NewSigner(string(skey))
	if err != nil {
		t.Fatalf("the key file holds no signer key: %v", err)
	}
	verifier, err := notary.NewVerifier(out)
	if err != nil {
		t.Fatalf("keygen printed no verifier key: %q: %v", out, err)
	}
	if signer.Name() != "ledger.example.com/cxledger" || verifier.KeyHash() != signer.KeyHash() {
		t.Fatalf("signer %s %08x, verifier %s %08x", signer.Name(), signer.KeyHash(), verifier.Name(), verifier.KeyHash())
	}
	if strings.Contains(out, "PRIVATE") {
		t.Fatal("keygen printed the secret key")
	}
	if _, err := os.Stat(filepath.Join(dir, "ledger.db")); err == nil {
		t.Fatal("keygen opened a store")
	}

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"existing file", []string{"--name", "x", "--out", keyFile}, 1, "refusing to overwrite"},
		{"no name", []string{"--out", filepath.Join(dir, "k2")}, 2, "required"},
		{"no out", []string{"--name", "x"}, 2, "required"},
		{"name with a space", []string{"--name", "my log", "--out", filepath.Join(dir, "k3")}, 2, "--name"},
		{"name with a plus", []string{"--name", "a+b", "--out", filepath.Join(dir, "k4")}, 2, "--name"},
		{"unknown flag", []string{"--name", "x", "--out", filepath.Join(dir, "k5"), "--force"}, 2, "force"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := cli(t, "", append([]string{"checkpoint", "keygen"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, %q; want %d mentioning %q", code, errOut, tc.code, tc.want)
			}
		})
	}
	if again, _ := os.ReadFile(keyFile); string(again) != string(skey) {
		t.Fatal("the existing key file was changed")
	}
}

// TestCheckpointAndVerify, per backend: checkpoints of a growing log verify,
// the newer extends the older, a customer's events are proven (older ones
// verified, later ones newer), and wrong keys, a forked log's checkpoint
// and bad command lines are refused.
func TestCheckpointAndVerify(t *testing.T) {
	for name, store := range storeFlags(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }
			ana := appendHistory(t, store, 5)
			appendHistory(t, store, 3)
			vkey, older := checkpointCLI(t, dir, store)
			appendHistory(t, store, 4)
			code, _, errOut := cli(t, "", with("append", "--customer", ana, "--type", "NoteAdded", "--event", `{"body":"prefers e-mail ✉"}`)...)
			if code != 0 {
				t.Fatalf("append: exit %d: %s", code, errOut)
			}
			_, newer := checkpointCLI(t, dir, store)

			verifierFile := filepath.Join(dir, "verifier.key")
			for _, v := range []string{vkey, verifierFile} {
				code, out, errOut := cli(t, "", with("verify", "--checkpoint", newer, "--verifier", v, "--older", older, "--customer", ana)...)
				if code != 0 {
					t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
				}
				for _, want := range []string{
					"13 events", "log         OK", "older       OK: the checkpoint of 8 events",
					"6 events: 6 verified, 0 newer",
				} {
					if !strings.Contains(out, want) {
						t.Errorf("verify output lacks %q:\n%s", want, out)
					}
				}
			}
			// Against the older checkpoint, the customer's latest event is
			// newer than it.
			code, out, errOut := cli(t, "", with("verify", "--checkpoint", older, "--verifier", vkey, "--customer", ana)...)
			if code != 0 || !strings.Contains(out, "6 events: 5 verified, 1 newer than the checkpoint") {
				t.Fatalf("verify against the older checkpoint: exit %d\n%s%s", code, out, errOut)
			}

			// A log rewritten from its first event: another ledger, signed
			// with the same key, is not an extension of the older checkpoint.
			otherDir := t.TempDir()
			other := []string{"--data", otherDir}
			appendHistory(t, other, 10)
			if err := os.WriteFile(filepath.Join(otherDir, "verifier.key"), []byte(vkey+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			keyCopy, err := os.ReadFile(filepath.Join(dir, "signer.key"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(otherDir, "signer.key"), keyCopy, 0o600); err != nil {
				t.Fatal(err)
			}
			_, forked := checkpointCLI(t, otherDir, other)
			code, out, errOut = cli(t, "", append([]string{"verify"}, append(other, "--checkpoint", forked, "--verifier", vkey, "--older", older)...)...)
			if code != 1 || !strings.Contains(out, "older       FAILED: the log was rewritten or forked") || !strings.Contains(errOut, "inconsistent") {
				t.Fatalf("verify of a forked log: exit %d\n%s%s", code, out, errOut)
			}

			_, stranger, err := notary.GenerateKey("ledger.example.com/cxledger")
			if err != nil {
				t.Fatal(err)
			}
			refusals := []struct {
				name string
				args []string
				code int
				want string
			}{
				{"another key", []string{"--checkpoint", newer, "--verifier", stranger}, 1, "not signed by"},
				{"not a checkpoint", []string{"--checkpoint", verifierFile, "--verifier", vkey}, 1, "invalid checkpoint"},
				{"missing checkpoint file", []string{"--checkpoint", filepath.Join(dir, "nope"), "--verifier", vkey}, 1, "read checkpoint"},
				{"no verifier", []string{"--checkpoint", newer}, 2, "required"},
				{"verifier neither key nor file", []string{"--checkpoint", newer, "--verifier", "nope"}, 2, "--verifier"},
				{"older and newer swapped", []string{"--checkpoint", older, "--verifier", vkey, "--older", newer}, 2, "swap them"},
				{"bad customer id", []string{"--checkpoint", newer, "--verifier", vkey, "--customer", "ana"}, 2, "--customer"},
				{"unknown customer", []string{"--checkpoint", newer, "--verifier", vkey, "--customer", "7f1c2a9e-5b3d-4e8f-a1c6-9d2b7e4f0a18"}, 1, "not found"},
			}
			for _, tc := range refusals {
				t.Run(tc.name, func(t *testing.T) {
					code, out, errOut := cli(t, "", with(append([]string{"verify"}, tc.args...)...)...)
					if code != tc.code || !strings.Contains(errOut, tc.want) {
						t.Fatalf("exit %d, stderr %q; want %d mentioning %q\n%s", code, errOut, tc.code, tc.want, out)
					}
				})
			}
			if code, _, errOut := cli(t, "", with("checkpoint")...); code != 2 || !strings.Contains(errOut, "--key") {
				t.Fatalf("checkpoint without --key: exit %d: %s", code, errOut)
			}
		})
	}
}
