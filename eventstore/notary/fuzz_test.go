package notary

import (
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// fuzzSigner and fuzzVerifier are a fixed test key pair (never used
// outside this test), so that the corpus' signed seeds stay valid.
const (
	fuzzSigner   = "PRIVATE+KEY+fuzz.example/log+f1e0c193+AVCMLG9/2meCv3vXP+uYg+1GZoHbuGuMvGHymQHJU5Bl"
	fuzzVerifier = "fuzz.example/log+f1e0c193+AfhTw1lsy7yDpilFSuOsaesx8n3fRDVshofPB1cAS4wS"
)

// FuzzOpen: checkpoints come from outside (auditors' files, requests), so
// Open must never panic, and whatever it accepts must sign and open again
// to the same checkpoint.
func FuzzOpen(f *testing.F) {
	signer, err := note.NewSigner(fuzzSigner)
	if err != nil {
		f.Fatal(err)
	}
	verifier, err := note.NewVerifier(fuzzVerifier)
	if err != nil {
		f.Fatal(err)
	}
	cp := Checkpoint{Origin: "fuzz.example/log", Size: 42, Hash: tlog.RecordHash([]byte("x")), Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	good, err := Sign(cp, signer)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(cp.Text()))
	f.Add([]byte("fuzz.example/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ntime 2026-01-02T03:04:05.000006Z\n\n— fuzz.example/log 8eDBkw==\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := Open(msg, verifier)
		if err != nil {
			return
		}
		again, err := Sign(got, signer)
		if err != nil {
			t.Fatalf("Open accepted %+v, which Sign refuses: %v", got, err)
		}
		if back, err := Open(again, verifier); err != nil || back != got {
			t.Fatalf("re-signed checkpoint opens to %+v, %v; want %+v", back, err, got)
		}
	})
}

// FuzzCheckpointText fuzzes the body parser directly: a signature check
// would keep almost every random body from reaching it.
func FuzzCheckpointText(f *testing.F) {
	cp := Checkpoint{Origin: "fuzz.example/log", Size: 42, Hash: tlog.RecordHash([]byte("x")), Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	f.Add(cp.Text())
	f.Add(cp.Text() + "extension\n")
	f.Add("o\n0\n" + tlog.Hash{}.String() + "\ntime 0001-01-01T00:00:00.000000Z\n")
	f.Fuzz(func(t *testing.T, text string) {
		got, err := parseText(text)
		if err != nil {
			return
		}
		back, err := parseText(got.Text())
		if err != nil || back != got {
			t.Fatalf("Text of an accepted checkpoint parses to %+v, %v; want %+v", back, err, got)
		}
	})
}
