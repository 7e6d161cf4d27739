package audit_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/adapters/audit"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
	"github.com/cxledger/cxledger/eventstore/storetest/backends"
	"github.com/cxledger/cxledger/projections"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// checkpoint syncs the tree and returns a checkpoint of it, signed and
// opened again as an auditor would.
func checkpoint(t *testing.T, s eventstore.Store) (notary.Checkpoint, string) {
	t.Helper()
	tree, err := notary.New(s, s.(notary.HashStore), nil).Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := notary.GenerateKey("ledger.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := notary.NewSigner(skey)
	verifier, _ := notary.NewVerifier(vkey)
	signed, err := notary.Sign(notary.Checkpoint{Origin: "ledger.test", Size: tree.N, Hash: tree.Hash, Time: time.Now()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := notary.Open(signed, verifier)
	if err != nil {
		t.Fatal(err)
	}
	return cp, string(signed)
}

func TestBuild(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		l := ledger.New(s)
		id, other := uuid.New(), uuid.New()
		md := func(d, actor, channel string) domain.Metadata {
			return domain.Metadata{OccurredAt: day(d), Actor: actor, Channel: channel, CorrelationID: "corr-" + d}
		}
		if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.NoStream,
			ledger.Touchpoint{Event: domain.CustomerRegistered{CustomerID: id, Name: "Zoé Nguyen"}, Metadata: md("2026-01-10", "service:web", "web")},
			ledger.Touchpoint{Event: domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "checkout"}, Metadata: md("2026-01-10", "service:web", "web")},
		); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, domain.RoleSystem, other, eventstore.NoStream,
			ledger.Touchpoint{Event: domain.CustomerRegistered{CustomerID: other, Name: "Ola Nordmann"}, Metadata: md("2026-01-11", "service:web", "web")}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.StreamExists,
			ledger.Touchpoint{Event: domain.NoteAdded{Body: "Prefers mornings"}, Metadata: md("2026-02-01", "user:ana", "crm")},
			ledger.Touchpoint{Event: domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Reason: "too many"}, Metadata: md("2026-03-01", "service:prefs", "web")},
		); err != nil {
			t.Fatal(err)
		}
		cp, signed := checkpoint(t, s)
		// One event after the checkpoint.
		if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.StreamExists,
			ledger.Touchpoint{Event: domain.NoteAdded{Body: "Called back"}, Metadata: md("2026-04-01", "user:ana", "phone")}); err != nil {
			t.Fatal(err)
		}
		if _, err := notary.New(s, s.(notary.HashStore), nil).Sync(ctx); err != nil {
			t.Fatal(err)
		}

		tl, err := audit.Build(ctx, s, s.(notary.HashStore), id, cp, audit.Options{Proofs: true, Signed: signed})
		if err != nil {
			t.Fatal(err)
		}
		if !tl.Verified || tl.Problem != "" || tl.Events != 5 || len(tl.Entries) != 5 {
			t.Fatalf("timeline: verified %v %q, %d events, %d entries", tl.Verified, tl.Problem, tl.Events, len(tl.Entries))
		}
		wantProof := []string{"verified", "verified", "verified", "verified", "newer than the checkpoint"}
		wantLeaf := []int64{0, 1, 3, 4, 5} // the other customer's registration is leaf 2
		for i, e := range tl.Entries {
			if e.Proof != wantProof[i] || e.Leaf != wantLeaf[i] || e.Version != uint64(i) {
				t.Errorf("entry %d: proof %q leaf %d version %d", i, e.Proof, e.Leaf, e.Version)
			}
			if e.Record == nil || e.LeafHash != notary.LeafHash(*e.Record).String() {
				t.Errorf("entry %d: no record or wrong leaf hash", i)
			}
			if e.Proof != "verified" {
				continue
			}
			// What an auditor's tool does with the entry alone.
			var proof tlog.RecordProof
			for _, h := range e.InclusionProof {
				ph, err := tlog.ParseHash(h)
				if err != nil {
					t.Fatal(err)
				}
				proof = append(proof, ph)
			}
			leaf, _ := tlog.ParseHash(e.LeafHash)
			if err := tlog.CheckRecord(proof, cp.Size, cp.Hash, e.Leaf, leaf); err != nil {
				t.Errorf("entry %d: the auditor's own check fails: %v", i, err)
			}
		}
		note := tl.Entries[2]
		if note.Summary != "Note: Prefers mornings" || note.Actor != "user:ana" || note.Channel != "crm" || note.CorrelationID != "corr-2026-02-01" || !note.OccurredAt.Equal(day("2026-02-01")) || note.RecordedAt.IsZero() {
			t.Errorf("note entry = %+v", note)
		}
		if !strings.Contains(tl.Entries[3].Summary, "Consent withdrawn") {
			t.Errorf("consent history missing: %q", tl.Entries[3].Summary)
		}

		// Filters select entries; the proofs still cover the whole stream.
		for name, tt := range map[string]struct {
			f    audit.Filter
			want []uint64
		}{
			"type":  {audit.Filter{Types: []string{domain.TypeConsentGranted, domain.TypeConsentWithdrawn}}, []uint64{1, 3}},
			"actor": {audit.Filter{Actor: "user:ana"}, []uint64{2, 4}},
			"range": {audit.Filter{From: day("2026-02-01"), To: day("2026-03-01")}, []uint64{2}},
		} {
			tl, err := audit.Build(ctx, s, s.(notary.HashStore), id, cp, audit.Options{Filter: tt.f})
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range tl.Entries {
				got = append(got, e.Version)
			}
			if !tl.Verified || tl.Events != 5 || len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) || (len(got) > 1 && got[1] != tt.want[1]) {
				t.Errorf("%s: versions %v (verified %v, %d events), want %v", name, got, tl.Verified, tl.Events, tt.want)
			}
		}

		// Outputs carry the checkpoint.
		var js, cs, tx bytes.Buffer
		if err := tl.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		var back audit.Timeline
		if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Checkpoint.Signed != signed || back.Checkpoint.Size != cp.Size || len(back.Entries) != 5 {
			t.Errorf("JSON round trip: %v %+v", err, back.Checkpoint)
		}
		if err := tl.WriteCSV(&cs); err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(cs.String(), "\n", 4)
		if !strings.HasPrefix(lines[1], "# checkpoint ledger.test size 5 root "+cp.Hash.String()) || !strings.HasPrefix(lines[2], "# VERIFIED") {
			t.Errorf("CSV preamble:\n%s", cs.String())
		}
		rows, err := csv.NewReader(strings.NewReader(lines[3])).ReadAll()
		if err != nil || len(rows) != 6 || rows[0][0] != "position" || rows[3][4] != "Note: Prefers mornings" || rows[5][12] != "newer than the checkpoint" {
			t.Errorf("CSV rows: %v %q", err, rows)
		}
		if err := tl.WriteText(&tx); err != nil || !strings.Contains(tx.String(), "Prefers mornings") || !strings.Contains(tx.String(), "correlation corr-2026-02-01") {
			t.Errorf("text: %v\n%s", err, tx.String())
		}

		if _, err := audit.Build(ctx, s, s.(notary.HashStore), uuid.New(), cp, audit.Options{}); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("unknown customer: %v", err)
		}
	})
}

// Personal data is sealed in the stored events: the auditor's timeline
// reveals it, shows it erased after forget, and every proof still holds
// because the tree covers the ciphertext, which forget does not touch.
func TestBuildSealedAndForgotten(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		kr := keyringtest.Memory(t)
		l := ledger.New(s)
		l.Keys = kr
		id := uuid.New()
		md := domain.Metadata{OccurredAt: day("2026-01-10"), Actor: "user:ana"}
		if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.NoStream,
			ledger.Touchpoint{Event: domain.CustomerRegistered{CustomerID: id, Name: "Zoé Nguyen"}, Metadata: md},
			ledger.Touchpoint{Event: domain.NoteAdded{Body: "Allergic to hazelnuts"}, Metadata: md},
		); err != nil {
			t.Fatal(err)
		}
		raw, err := s.ReadStream(ctx, domain.StreamID(id), eventstore.ReadStreamOptions{})
		if err != nil || strings.Contains(string(raw[1].Data), "hazelnut") {
			t.Fatalf("the note is stored in plaintext: %s %v", raw[1].Data, err)
		}
		cp, _ := checkpoint(t, s)

		tl, err := audit.Build(ctx, s, s.(notary.HashStore), id, cp, audit.Options{Reveal: kr})
		if err != nil {
			t.Fatal(err)
		}
		if !tl.Verified || tl.Entries[0].Summary != "Customer registered: Zoé Nguyen" || tl.Entries[1].Summary != "Note: Allergic to hazelnuts" {
			t.Fatalf("revealed timeline: %+v", tl)
		}

		if _, err := l.Forget(ctx, id, ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-7"}, Metadata: md}); err != nil {
			t.Fatal(err)
		}
		tl, err = audit.Build(ctx, s, s.(notary.HashStore), id, cp, audit.Options{Reveal: kr})
		if err != nil {
			t.Fatal(err)
		}
		if !tl.Verified || tl.Events != 3 {
			t.Fatalf("after forget the old checkpoint must still verify: %+v", tl)
		}
		if tl.Entries[0].Summary != "Customer registered: "+keyring.Erased || tl.Entries[1].Summary != "Note: "+keyring.Erased {
			t.Errorf("forgotten summaries: %q, %q", tl.Entries[0].Summary, tl.Entries[1].Summary)
		}
		if tl.Entries[2].Type != domain.TypeCustomerForgotten || tl.Entries[2].Proof != "newer than the checkpoint" {
			t.Errorf("forget entry: %+v", tl.Entries[2])
		}
		later, _ := checkpoint(t, s)
		if _, err := notary.VerifyConsistency(ctx, s.(notary.HashStore), cp, later); err != nil {
			t.Errorf("the log after forget does not extend the log before: %v", err)
		}
		if rep, err := notary.Verify(ctx, s, s.(notary.HashStore), later); err != nil {
			t.Errorf("full verification after forget: %v (%s)", err, rep.Summary())
		}
	})
}

// TestBuildMarksWhatCannotBeShown: on every store, the auditor's summaries
// show a tampered sealed value as keyring.Undecryptable (not its
// ciphertext) and a name's bidi override as a visible mark.
func TestBuildMarksWhatCannotBeShown(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		kr := keyringtest.Memory(t)
		l := ledger.New(s)
		l.Keys = kr
		id := uuid.New()
		md := domain.Metadata{OccurredAt: day("2026-01-10"), Actor: "user:ana"}
		if _, err := l.Append(ctx, domain.RoleService, id, eventstore.NoStream,
			ledger.Touchpoint{Event: domain.CustomerRegistered{CustomerID: id, Name: "Zoé \u202eneyugN\u202c"}, Metadata: md},
		); err != nil {
			t.Fatal(err)
		}
		// A note whose sealed body was altered after sealing, as a
		// tampered backup or a bad disk would hold it.
		tok, err := kr.SealString(ctx, id, "Allergic to hazelnuts")
		if err != nil {
			t.Fatal(err)
		}
		b := []byte(tok)
		if b[len(b)-2] == 'A' {
			b[len(b)-2] = 'B'
		} else {
			b[len(b)-2] = 'A'
		}
		data, _ := json.Marshal(domain.NoteAdded{Body: string(b)})
		if _, err := s.Append(ctx, domain.StreamID(id), eventstore.Exact(0), eventstore.EventData{
			ID: uuid.New(), Type: domain.TypeNoteAdded, Data: data,
			Metadata: eventstore.Metadata{OccurredAt: md.OccurredAt, Actor: md.Actor, SchemaVersion: 1},
		}); err != nil {
			t.Fatal(err)
		}
		cp, _ := checkpoint(t, s)
		tl, err := audit.Build(ctx, s, s.(notary.HashStore), id, cp, audit.Options{Reveal: kr})
		if err != nil {
			t.Fatal(err)
		}
		if len(tl.Entries) != 2 {
			t.Fatalf("entries: %+v", tl.Entries)
		}
		if got, want := tl.Entries[0].Summary, "Customer registered: Zoé [U+202E]neyugN[U+202C]"; got != want {
			t.Errorf("registration summary %q, want %q", got, want)
		}
		if got, want := tl.Entries[1].Summary, "Note: "+keyring.Undecryptable; got != want {
			t.Errorf("tampered note summary %q, want %q", got, want)
		}
		var text bytes.Buffer
		if err := tl.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsRune(text.String(), '\u202e') || !strings.Contains(text.String(), "[U+202E]") {
			t.Errorf("the terminal output shows the override raw:\n%s", text.String())
		}
	})
}
