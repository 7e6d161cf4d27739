package notary_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/eventstore/notary"
	"github.com/cxledger/cxledger/eventstore/notary/notarytest"
)

func sampleCheckpoint() notary.Checkpoint {
	return notary.Checkpoint{
		Origin: "ledger.example.com/cxledger",
		Size:   1234567,
		Hash:   tlog.RecordHash([]byte("root")),
		Time:   time.Date(2026, 11, 22, 10, 4, 5, 123456000, time.UTC),
	}
}

func TestCheckpointText(t *testing.T) {
	cp := sampleCheckpoint()
	want := "ledger.example.com/cxledger\n1234567\n" + cp.Hash.String() + "\ntime 2026-11-22T10:04:05.123456Z\n"
	if got := cp.Text(); got != want {
		t.Fatalf("Text =\n%s\nwant\n%s", got, want)
	}
}

func TestCheckpointSignOpen(t *testing.T) {
	signer, verifier := notarytest.Keys(t, "ledger.example.com/cxledger")
	_, stranger := notarytest.Keys(t, "ledger.example.com/cxledger")
	cp := sampleCheckpoint()
	msg, err := notary.Sign(cp, signer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(msg, []byte(cp.Text()+"\n— ledger.example.com/cxledger ")) {
		t.Fatalf("signed checkpoint:\n%s", msg)
	}
	got, err := notary.Open(msg, verifier)
	if err != nil || got != cp {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, cp)
	}
	// A time in another zone is written in UTC and comes back equal.
	local := cp
	local.Time = cp.Time.In(time.FixedZone("CET", 3600))
	msg2, err := notary.Sign(local, signer)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := notary.Open(msg2, verifier); err != nil || got != cp {
		t.Fatalf("Open of a checkpoint signed with a CET time = %+v, %v", got, err)
	}

	bad := []struct {
		name     string
		msg      []byte
		verifier note.Verifier
	}{
		{"another key", msg, stranger},
		{"no verifier", msg, nil},
		{"size changed", bytes.Replace(msg, []byte("\n1234567\n"), []byte("\n1234568\n"), 1), verifier},
		{"root changed", bytes.Replace(msg, []byte(cp.Hash.String()), []byte(tlog.Hash{}.String()), 1), verifier},
		{"time changed", bytes.Replace(msg, []byte("10:04:05"), []byte("10:04:06"), 1), verifier},
		{"signature cut", msg[:len(msg)-10], verifier},
		{"no signature", []byte(cp.Text()), verifier},
		{"empty", nil, verifier},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := notary.Open(tc.msg, tc.verifier); !errors.Is(err, notary.ErrBadCheckpoint) {
				t.Fatalf("Open = %v, want ErrBadCheckpoint", err)
			}
		})
	}
}

// TestCheckpointMalformedBodies: bodies that are signed, but wrong.
func TestCheckpointMalformedBodies(t *testing.T) {
	signer, verifier := notarytest.Keys(t, "log")
	hash := sampleCheckpoint().Hash.String()
	const tm = "time 2026-11-22T10:04:05.123456Z\n"
	ok := []struct {
		name, body string
		size       int64
	}{
		{"minimal", "log\n0\n" + hash + "\n" + tm, 0},
		{"unknown extension ignored", "log\n5\n" + hash + "\n" + tm + "other extension\n", 5},
		{"extension before time", "log\n5\n" + hash + "\nx\n" + tm, 5},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := note.Sign(&note.Note{Text: tc.body}, signer)
			if err != nil {
				t.Fatal(err)
			}
			if cp, err := notary.Open(msg, verifier); err != nil || cp.Size != tc.size {
				t.Fatalf("Open = %+v, %v", cp, err)
			}
		})
	}
	bad := []struct{ name, body string }{
		{"no time", "log\n5\n" + hash + "\n"},
		{"two times", "log\n5\n" + hash + "\n" + tm + tm},
		{"empty origin", "\n5\n" + hash + "\n" + tm},
		{"negative size", "log\n-5\n" + hash + "\n" + tm},
		{"size with leading zero", "log\n05\n" + hash + "\n" + tm},
		{"size with plus", "log\n+5\n" + hash + "\n" + tm},
		{"size too large", "log\n9223372036854775808\n" + hash + "\n" + tm},
		{"size not a number", "log\nfive\n" + hash + "\n" + tm},
		{"short hash", "log\n5\n" + hash[:40] + "\n" + tm},
		{"hash not base64", "log\n5\n" + strings.Repeat("!", 44) + "\n" + tm},
		{"url-safe base64", "log\n5\n" + strings.NewReplacer("+", "-", "/", "_").Replace(tlog.Hash{0xfb, 0xff}.String()) + "\n" + tm},
		{"time without microseconds", "log\n5\n" + hash + "\ntime 2026-11-22T10:04:05Z\n"},
		{"time not UTC", "log\n5\n" + hash + "\ntime 2026-11-22T10:04:05.123456+01:00\n"},
		{"year zero", "log\n5\n" + hash + "\ntime 0000-11-22T10:04:05.123456Z\n"},
		{"empty extension line", "log\n5\n" + hash + "\n\n" + tm},
		{"too few lines", "log\n5\n"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := note.Sign(&note.Note{Text: tc.body}, signer)
			if err != nil {
				return // note itself refuses the text: nothing to open
			}
			if cp, err := notary.Open(msg, verifier); !errors.Is(err, notary.ErrBadCheckpoint) {
				t.Fatalf("Open = %+v, %v; want ErrBadCheckpoint", cp, err)
			}
		})
	}
	// Sign refuses what it could not write unambiguously.
	for _, cp := range []notary.Checkpoint{
		{Origin: "", Size: 1, Time: time.Now()},
		{Origin: "two\nlines", Size: 1, Time: time.Now()},
		{Origin: "log", Size: -1, Time: time.Now()},
		{Origin: "log", Size: 1},
	} {
		if _, err := notary.Sign(cp, signer); !errors.Is(err, notary.ErrBadCheckpoint) {
			t.Errorf("Sign(%+v) = %v, want ErrBadCheckpoint", cp, err)
		}
	}
}
