package keyring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

var (
	zoe = uuid.MustParse("15cf8f44-2ec6-441c-9f2e-229a8d221eaf")
	ana = uuid.MustParse("b700c11a-ec2a-4426-aec1-5da2f454f7d6")
)

func masterKey(b byte) keyring.MasterKey {
	var mk keyring.MasterKey
	for i := range mk {
		mk[i] = b + byte(i)
	}
	return mk
}

func newKeyring(t *testing.T, backend keyring.Backend) *keyring.Keyring {
	t.Helper()
	if backend == nil {
		backend = keyring.NewMemory()
	}
	k, err := keyring.Open(context.Background(), masterKey(1), backend, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func ptr[T any](v T) *T { return &v }

// tamper flips one bit of the ciphertext of a token (its last base64url
// character but one, so that the encoding stays canonical).
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestTamperedValueIsMarkedAndLogged: a value of the customer's that does
// not open reads as Undecryptable wherever it is revealed, and each
// reveal logs a warning naming the customer (and the event) but not the
// value.
func TestTamperedValueIsMarkedAndLogged(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	k, err := keyring.Open(ctx, masterKey(1), keyring.NewMemory(), keyring.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	good, err := k.SealString(ctx, zoe, "Zoë Nguyễn")
	if err != nil {
		t.Fatal(err)
	}
	bad := tamper(good)
	data, _ := json.Marshal(map[string]string{"name": bad, "company": good})
	rec := eventstore.Record{ID: uuid.MustParse("7d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a"), Stream: domain.StreamID(zoe), Type: domain.TypeCustomerRegistered, Data: data}
	recs, err := k.RevealRecords(ctx, []eventstore.Record{rec})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"company":"Zoë Nguyễn","name":"` + keyring.Undecryptable + `"}`; string(recs[0].Data) != want {
		t.Errorf("revealed %s, want %s", recs[0].Data, want)
	}
	line := logs.String()
	for _, want := range []string{"level=WARN", "customer=" + zoe.String(), "event=" + rec.ID.String(), "values=1"} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, bad[len(bad)-20:]) || strings.Contains(line, "Zoë") {
		t.Errorf("log shows the value: %q", line)
	}
	logs.Reset()
	if s, err := k.Reveal(ctx, zoe, "Customer registered: "+bad); err != nil || s != "Customer registered: "+keyring.Undecryptable {
		t.Errorf("Reveal = %q, %v", s, err)
	}
	if !strings.Contains(logs.String(), "customer="+zoe.String()) {
		t.Errorf("no warning for a summary: %q", logs.String())
	}
}

// samples holds one event of every type that has personal data, with every
// personal field set, realistic and unicode.
func samples() []domain.Event {
	ticket := uuid.MustParse("6f1e9a3c-2b4d-4e5f-8a7b-9c0d1e2f3a4b")
	order := uuid.MustParse("0c7d2e1f-3a4b-4c5d-9e6f-7a8b9c0d1e2f")
	opp := uuid.MustParse("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
	return []domain.Event{
		domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë Ångström-Nguyễn", Locale: "fr-FR", Country: "FR", Company: "Société Générale d'Électricité", Address: "12 rue des Lilas\n75011 Paris", Birthday: "1988-07-14"},
		domain.ProfileUpdated{Name: ptr("Zoë Nguyễn"), Company: ptr("Atelier <Zoë> & Fils"), Address: ptr("3 quai de la Loire, 75019 Paris"), Birthday: ptr("--02-29")},
		domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "  Zoe.Nguyen@Example.FR "},
		domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Reason: "Zoë says: \"too many\" e-mails"},
		domain.CustomerForgotten{Request: "DSR-2025-0042", Reason: "Zoë Nguyễn asked by phone"},
		domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: 754, Agent: "user:marta", Outcome: domain.CallConnected, Summary: "Zoë called about her order\nwill call back"},
		domain.EmailSent{MessageID: "<m1@shop.example>", Subject: "Votre commande, Zoë", From: "orders@shop.example", To: "zoe.nguyen@example.fr", Template: "order"},
		domain.EmailReceived{MessageID: "<m2@mail.example>", Subject: "Re: Votre commande", From: "zoe.nguyen@example.fr", To: "support@shop.example", InReplyTo: "<m1@shop.example>"},
		domain.EmailClicked{MessageID: "<m1@shop.example>", URL: "https://shop.example/unsubscribe?email=zoe.nguyen%40example.fr"},
		domain.ChatConversationHeld{ConversationID: "chat-81723", Agent: "user:marta", Messages: 12, DurationSeconds: 600, Summary: "Zoë wants a refund"},
		domain.MeetingHeld{Title: "Lunch with Zoë", DurationSeconds: 3600, Location: "Chez Zoë, 12 rue des Lilas", Attendees: []string{"Zoë Nguyễn", "Marta Kowalska"}, Notes: "Zoë expects twins"},
		domain.SMSSent{To: "+33 6 12 34 56 78", Body: "Bonjour Zoë, votre colis arrive"},
		domain.NoteAdded{Body: "Zoë prefers e-mail after 18:00"},
		domain.RefundIssued{RefundID: uuid.MustParse("1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"), OrderID: order, Amount: 250, Currency: "EUR", Reason: "Zoë's parcel was damaged"},
		domain.TicketOpened{TicketID: ticket, Subject: "Zoë: parcel damaged", Priority: domain.PriorityHigh, Channel: domain.TicketEmail, Description: "Box crushed, Zoë sent photos"},
		domain.TicketUpdated{TicketID: ticket, Comment: "Called Zoë back"},
		domain.TicketResolved{TicketID: ticket, Resolution: "Refunded Zoë"},
		domain.TicketReopened{TicketID: ticket, Reason: "Zoë still waiting"},
		domain.TicketClosed{TicketID: ticket, Reason: "Zoë confirmed"},
		domain.LeadCaptured{Source: domain.LeadWebForm, Campaign: "spring", Interest: "Zoë wants a coffee subscription"},
		domain.OpportunityOpened{OpportunityID: opp, Name: "Zoë Nguyễn — office coffee", Amount: 120000, Currency: "EUR", Stage: domain.StageProposal, ExpectedClose: "2026-06-30"},
		domain.OpportunityWon{OpportunityID: opp, Comment: "Zoë signed"},
		domain.OpportunityLost{OpportunityID: opp, Reason: domain.LossOther, Detail: "Zoë moved to Lyon"},
		domain.SurveyAnswered{Survey: "nps-q1", NPS: ptr(9), Comment: "Zoë: great service"},
		domain.CustomerMerged{MergeID: uuid.MustParse("2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"), Survivor: zoe, Absorbed: uuid.MustParse("3d4e5f6a-7b8c-4d9e-8f1a-2b3c4d5e6f7a"), Reason: "Zoë's gmail with and without dots"},
		domain.CustomerUnmerged{MergeID: uuid.MustParse("2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"), Survivor: zoe, Absorbed: uuid.MustParse("3d4e5f6a-7b8c-4d9e-8f1a-2b3c4d5e6f7a"), Reason: "Zoë has a sister at the same address"},
	}
}

// Every event type with personal data seals exactly its personal fields:
// no personal value survives in the stored bytes, every other byte does,
// sealing is deterministic, and revealing gives the encoded bytes back.
func TestSealEveryEventType(t *testing.T) {
	ctx := context.Background()
	k := newKeyring(t, nil)
	covered := map[string]bool{}
	for _, e := range samples() {
		typ, version, data, err := domain.Encode(e)
		if err != nil {
			t.Fatalf("%T: %v", e, err)
		}
		covered[typ] = true
		t.Run(typ, func(t *testing.T) {
			sealed, err := k.Seal(ctx, zoe, typ, data)
			if err != nil {
				t.Fatal(err)
			}
			var plain, got map[string]json.RawMessage
			if err := json.Unmarshal(data, &plain); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(sealed, &got); err != nil {
				t.Fatalf("sealed data is not JSON: %v\n%s", err, sealed)
			}
			personal := domain.PersonalFields(typ)
			for name, raw := range plain {
				isPersonal := slices.Contains(personal, name) || slices.Contains(personal, name+"[]")
				if !isPersonal {
					if !bytes.Equal(got[name], raw) {
						t.Errorf("field %s changed: %s -> %s", name, raw, got[name])
					}
					continue
				}
				var values []string
				if slices.Contains(personal, name+"[]") {
					if err := json.Unmarshal(got[name], &values); err != nil {
						t.Fatal(err)
					}
				} else {
					var v string
					if err := json.Unmarshal(got[name], &v); err != nil {
						t.Fatal(err)
					}
					values = []string{v}
				}
				for _, v := range values {
					tok, err := keyring.ParseToken(v)
					if err != nil || tok.Customer != zoe {
						t.Errorf("field %s holds %q, want a token of %s (%v)", name, v, zoe, err)
					}
				}
			}
			for _, p := range personal {
				if _, ok := plain[strings.TrimSuffix(p, "[]")]; !ok {
					t.Errorf("personal field %q is not in %s's JSON %s: the table names a field that does not exist", p, typ, data)
				}
			}
			// Outside the tokens: base64 ciphertext may spell "zoe" by chance.
			bare := keyring.ReplaceTokens(string(sealed), func(keyring.Token, string) string { return "" })
			for _, word := range []string{"Zoë", "Zoe", "zoe", "Lilas", "+33", "Marta Kowalska"} {
				if strings.Contains(bare, word) {
					t.Errorf("sealed data still contains %q: %s", word, sealed)
				}
			}
			again, err := k.Seal(ctx, zoe, typ, data)
			if err != nil || !bytes.Equal(again, sealed) {
				t.Errorf("sealing twice gave different bytes:\n%s\n%s", sealed, again)
			}
			revealed, err := k.RevealJSON(ctx, zoe, sealed)
			if err != nil || !bytes.Equal(revealed, data) {
				t.Errorf("RevealJSON = %s, %v\nwant          %s", revealed, err, data)
			}
			// History decodes sealed data as it is (Decode does not
			// re-validate), and the aggregate folds it.
			if _, err := domain.Decode(typ, version, sealed); err != nil {
				t.Errorf("Decode of sealed data: %v", err)
			}
		})
	}
	for _, typ := range domain.Types() {
		if len(domain.PersonalFields(typ)) > 0 && !covered[typ] {
			t.Errorf("%s has personal fields but no sample here", typ)
		}
	}
}

func TestSealWithoutPersonalData(t *testing.T) {
	ctx := context.Background()
	counting := &countingBackend{Backend: keyring.NewMemory()}
	k := newKeyring(t, counting)
	for _, e := range []domain.Event{
		domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 1250, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "COF-1", Description: "Coffee", Quantity: 1, UnitAmount: 1250}}},
		domain.NoteAdded{Body: ""}, // invalid, but empty values stay empty
		domain.ProfileUpdated{Locale: ptr("de-DE"), Name: ptr("")},
	} {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := k.Seal(ctx, zoe, e.EventType(), data)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%T: Seal = %s, %v; want the data unchanged", e, got, err)
		}
	}
	if n := counting.creates.Load(); n != 0 {
		t.Errorf("%d keys created for events without personal values", n)
	}
	if _, err := k.Seal(ctx, zoe, domain.TypeNoteAdded, []byte(`["not an object"]`)); err == nil {
		t.Error("Seal accepted data that is not a JSON object")
	}
}

func TestReveal(t *testing.T) {
	ctx := context.Background()
	k := newKeyring(t, nil)
	seal := func(c uuid.UUID, s string) string {
		tok, err := k.SealString(ctx, c, s)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	zoeName := seal(zoe, "Zoë Nguyễn")
	zoeNote := seal(zoe, "line one\nline two")
	anaName := seal(ana, "Ana Sousa")
	forged := domain.SealedPrefix + zoe.String() + ":" + strings.Repeat("A", 40)
	cases := []struct {
		name, in, want string
		fn             func(string) string
	}{
		{name: "whole value", in: zoeName, want: "Zoë Nguyễn"},
		{name: "inside a summary", in: "Customer registered: " + zoeName + " (web)", want: "Customer registered: Zoë Nguyễn (web)"},
		{name: "two tokens", in: zoeName + " / " + zoeNote, want: "Zoë Nguyễn / line one\nline two"},
		{name: "clipped by fn", in: "Note: " + zoeNote, want: "Note: line one …", fn: func(s string) string { return strings.Split(s, "\n")[0] + " …" }},
		{name: "another customer's token is left", in: anaName, want: anaName},
		{name: "a forged token is undecryptable", in: forged, want: keyring.Undecryptable},
		{name: "a tampered token is undecryptable", in: "Note: " + tamper(zoeNote) + " (web)", want: "Note: " + keyring.Undecryptable + " (web)"},
		{name: "a bare prefix", in: "enc:v1:", want: "enc:v1:"},
		{name: "prefix with a bad uuid", in: "enc:v1:not-a-uuid:AAAA", want: "enc:v1:not-a-uuid:AAAA"},
		{name: "upper-case uuid is not canonical", in: strings.Replace(zoeName, zoe.String(), strings.ToUpper(zoe.String()), 1), want: strings.Replace(zoeName, zoe.String(), strings.ToUpper(zoe.String()), 1)},
		{name: "plain text", in: "nothing sealed here", want: "nothing sealed here"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := k.RevealFunc(ctx, zoe, c.in, c.fn)
			if err != nil || got != c.want {
				t.Fatalf("RevealFunc(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}

	if err := k.Forget(ctx, zoe); err != nil {
		t.Fatal(err)
	}
	got, err := k.Reveal(ctx, zoe, "Note: "+zoeNote+" by "+zoeName)
	if err != nil || got != "Note: "+keyring.Erased+" by "+keyring.Erased {
		t.Fatalf("after Forget: %q, %v", got, err)
	}
	if got, _ := k.Reveal(ctx, ana, anaName); got != "Ana Sousa" {
		t.Fatalf("forgetting Zoë erased Ana: %q", got)
	}
	var nilKeyring *keyring.Keyring
	if got, err := nilKeyring.Reveal(ctx, ana, anaName); err != nil || got != anaName {
		t.Fatalf("a nil keyring revealed %q, %v", got, err)
	}
}

func TestForgottenCustomer(t *testing.T) {
	ctx := context.Background()
	k := newKeyring(t, nil)
	if err := k.Forget(ctx, zoe); err != nil { // never had a key: a tombstone all the same
		t.Fatal(err)
	}
	if err := k.Forget(ctx, zoe); err != nil {
		t.Fatalf("second Forget: %v", err)
	}
	_, _, data, _ := domain.Encode(domain.NoteAdded{Body: "after the erasure"})
	_, err := k.Seal(ctx, zoe, domain.TypeNoteAdded, data)
	var rej *domain.RejectionError
	if !errors.Is(err, keyring.ErrForgotten) || !errors.As(err, &rej) || rej.Entity != "customer" {
		t.Fatalf("Seal for a forgotten customer: %v; want ErrForgotten and a customer rejection", err)
	}
	// The erasure record itself can always be written: its free text is
	// dropped once the key is gone.
	_, _, data, _ = domain.Encode(domain.CustomerForgotten{Request: "DSR-7", Reason: "Zoë asked"})
	got, err := k.Seal(ctx, zoe, domain.TypeCustomerForgotten, data)
	if err != nil || string(got) != `{"request":"DSR-7","reason":"`+keyring.Erased+`"}` {
		t.Fatalf("Seal of CustomerForgotten after the key = %s, %v", got, err)
	}
	if p, ok, err := k.Open(ctx, zoe, "zoe@example.fr"); err != nil || !ok || p != "zoe@example.fr" {
		t.Fatalf("Open of a plaintext value = %q, %v, %v", p, ok, err)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	k := newKeyring(t, nil)
	tok, _ := k.SealString(ctx, zoe, "Zoe@Example.FR")
	for _, c := range []struct {
		name     string
		customer uuid.UUID
		stored   string
		want     string
		ok       bool
	}{
		{"sealed", zoe, tok, "Zoe@Example.FR", true},
		{"plaintext", zoe, "zoe@example.fr", "zoe@example.fr", true},
		{"another customer's", ana, tok, "", false},
		{"malformed", zoe, domain.SealedPrefix + "garbage", "", false},
	} {
		p, ok, err := k.Open(ctx, c.customer, c.stored)
		if err != nil || ok != c.ok || p != c.want {
			t.Errorf("%s: Open = %q, %v, %v; want %q, %v", c.name, p, ok, err, c.want, c.ok)
		}
	}
	if err := k.Forget(ctx, zoe); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := k.Open(ctx, zoe, tok); err != nil || ok || p != "" {
		t.Errorf("Open after Forget = %q, %v, %v; want not ok", p, ok, err)
	}
}

func TestBlindAndCustomerID(t *testing.T) {
	a := newKeyring(t, nil)
	b, err := keyring.Open(context.Background(), masterKey(2), keyring.NewMemory(), keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	email := "zoe.nguyen@example.fr"
	blind := a.Blind(domain.IdentifierEmail, email)
	switch {
	case blind != a.Blind(domain.IdentifierEmail, email):
		t.Error("Blind is not deterministic")
	case strings.Contains(blind, "zoe"), len(blind) != 64:
		t.Errorf("Blind = %q, want 64 hex digits", blind)
	case blind == b.Blind(domain.IdentifierEmail, email):
		t.Error("two master keys give the same blind index")
	case blind == a.Blind(domain.IdentifierExternal, email):
		t.Error("the kind does not change the blind index")
	}
	var nilKeyring *keyring.Keyring
	if got := nilKeyring.Blind(domain.IdentifierEmail, email); got != email {
		t.Errorf("nil Blind = %q", got)
	}

	id0 := a.CustomerID(domain.IdentifierEmail, email, 0)
	id1 := a.CustomerID(domain.IdentifierEmail, email, 1)
	switch {
	case id0 != a.CustomerID(domain.IdentifierEmail, email, 0):
		t.Error("CustomerID is not deterministic")
	case id0 == id1:
		t.Error("the generation does not change the id")
	case id0 == b.CustomerID(domain.IdentifierEmail, email, 0):
		t.Error("two master keys derive the same id")
	case id0.Version() != 8 || id0.Variant() != uuid.RFC4122:
		t.Errorf("id %s: version %d, variant %s", id0, id0.Version(), id0.Variant())
	}
	if _, err := domain.ParseStreamID(domain.StreamID(id0)); err != nil {
		t.Errorf("derived id makes no stream: %v", err)
	}
}

func TestRevealRecords(t *testing.T) {
	ctx := context.Background()
	k := newKeyring(t, nil)
	_, _, data, _ := domain.Encode(domain.NoteAdded{Body: "Zoë <3 coffee"})
	sealed, err := k.Seal(ctx, zoe, domain.TypeNoteAdded, data)
	if err != nil {
		t.Fatal(err)
	}
	recs := []eventstore.Record{
		{Stream: domain.StreamID(zoe), Type: domain.TypeNoteAdded, Data: sealed},
		{Stream: "access-" + zoe.String(), Type: "AccessRecorded", Data: sealed},
		{Stream: domain.StreamID(ana), Type: domain.TypeNoteAdded, Data: []byte(`{"body":"plain"}`)},
	}
	got, err := k.RevealRecords(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0].Data, data) || !bytes.Equal(got[1].Data, sealed) || string(got[2].Data) != `{"body":"plain"}` {
		t.Fatalf("RevealRecords = %s | %s | %s", got[0].Data, got[1].Data, got[2].Data)
	}
	if !bytes.Equal(recs[0].Data, sealed) {
		t.Fatal("RevealRecords changed its input")
	}
}

// countingBackend counts what reaches the backend.
type countingBackend struct {
	keyring.Backend
	loads, creates atomic.Int64
}

func (c *countingBackend) Load(ctx context.Context, id uuid.UUID) (keyring.Entry, bool, error) {
	c.loads.Add(1)
	return c.Backend.Load(ctx, id)
}

func (c *countingBackend) Create(ctx context.Context, id uuid.UUID, e keyring.Entry) (keyring.Entry, error) {
	c.creates.Add(1)
	return c.Backend.Create(ctx, id, e)
}

// The cache serves a live key for CacheTTL, then asks the backend again.
func TestCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &countingBackend{Backend: keyring.NewMemory()}
	k, err := keyring.Open(ctx, masterKey(1), b, keyring.Options{CacheTTL: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.SealString(ctx, zoe, "Zoë")
	if err != nil {
		t.Fatal(err)
	}
	loads := b.loads.Load()
	for range 10 {
		if _, err := k.Reveal(ctx, zoe, tok); err != nil {
			t.Fatal(err)
		}
	}
	if b.loads.Load() != loads {
		t.Fatalf("%d loads within the TTL", b.loads.Load()-loads)
	}
	now = now.Add(time.Minute)
	if _, err := k.Reveal(ctx, zoe, tok); err != nil {
		t.Fatal(err)
	}
	if b.loads.Load() != loads+1 {
		t.Fatalf("%d loads after the TTL, want 1", b.loads.Load()-loads)
	}
}

func TestMasterKey(t *testing.T) {
	mk := masterKey(7)
	for _, s := range []string{mk.String(), " " + mk.String() + "\n", strings.TrimRight(mk.String(), "=")} {
		got, err := keyring.ParseMasterKey(s)
		if err != nil || got != mk {
			t.Errorf("ParseMasterKey(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "c2hvcnQ=", "not base64 at all!", strings.Repeat("A", 64)} {
		_, err := keyring.ParseMasterKey(s)
		if !errors.Is(err, keyring.ErrBadMasterKey) || (s != "" && strings.Contains(err.Error(), s)) {
			t.Errorf("ParseMasterKey(%q): %v; want ErrBadMasterKey, without the input", s, err)
		}
	}
	if got := strings.Join([]string{mk.GoString(), formatted(mk)}, " "); strings.Contains(got, mk.String()) {
		t.Errorf("the key leaks through fmt: %s", got)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "master.key")
	first, created, err := keyring.LoadOrCreateMasterKeyFile(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateMasterKeyFile = %v, created %v", err, created)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	second, created, err := keyring.LoadOrCreateMasterKeyFile(path)
	if err != nil || created || second != first {
		t.Fatalf("second LoadOrCreateMasterKeyFile = %v, created %v, same %v", err, created, second == first)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.ReadMasterKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file was accepted: %v", err)
	}
}

func formatted(mk keyring.MasterKey) string {
	var b strings.Builder
	for _, verb := range []string{"%v", "%s", "%x", "%+v"} {
		b.WriteString(fmt.Sprintf(verb, mk))
	}
	return b.String()
}
