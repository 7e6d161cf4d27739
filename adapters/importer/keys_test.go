package importer_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/importer"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/identity"
)

// keyedLedger is a ledger sealing with a keyring over memory, the store
// under it, and the identity read model the import looks identifiers up
// in (rebuilt on demand: between rebuilds it lags the log, as the CLI's
// does until `project` runs).
type keyedLedger struct {
	t       *testing.T
	store   *memstore.Store
	keys    *keyring.Keyring
	ledger  *ledger.Service
	rm      projections.Backend
	rebuild func()
}

func newKeyedLedger(t *testing.T) *keyedLedger {
	t.Helper()
	ctx := context.Background()
	keys := keyringtest.Memory(t)
	store := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = store.Close(); _ = keys.Close() })
	l := ledger.New(store)
	l.Keys = keys
	k := &keyedLedger{t: t, store: store, keys: keys, ledger: l, rm: projections.NewMemory()}
	k.rebuild = func() {
		t.Helper()
		if err := projections.Replay(ctx, store, k.rm, []projections.Projection{identity.New(keys)}, projections.Config{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	k.rebuild()
	return k
}

// run imports input as batch, looking identifiers up in the identity read
// model as it stands.
func (k *keyedLedger) run(batch, input string) (importer.Summary, []*importer.RowError, error) {
	k.t.Helper()
	var rejected []*importer.RowError
	im, err := importer.New(k.ledger, k.store, importer.Config{
		Batch: batch, Keys: k.keys,
		OnReject: func(r *importer.RowError) { rejected = append(rejected, r) },
		Lookup: func(ctx context.Context, kind domain.IdentifierKind, value string) (uuid.UUID, bool, error) {
			var id uuid.UUID
			err := projections.View(ctx, k.rm, identity.Name, func(r projections.Reader) error {
				var err error
				id, err = identity.Lookup(ctx, r, k.keys, kind, value)
				return err
			})
			if errors.Is(err, projections.ErrNotFound) {
				return uuid.Nil, false, nil
			}
			return id, err == nil, err
		},
	})
	if err != nil {
		k.t.Fatal(err)
	}
	sum, err := im.Run(context.Background(), importer.NewNDJSON(strings.NewReader(input), importer.Defaults{Actor: "import:" + batch}))
	return sum, rejected, err
}

func (k *keyedLedger) stream(c uuid.UUID) []eventstore.Record {
	k.t.Helper()
	recs, err := k.store.ReadStream(context.Background(), domain.StreamID(c), eventstore.ReadStreamOptions{})
	if errors.Is(err, eventstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		k.t.Fatal(err)
	}
	return recs
}

func types(recs []eventstore.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Type
	}
	return out
}

// With a keyring, an identifier nobody holds registers a customer whose id
// is the keyed hash broker ingest derives, never the unkeyed uuid v5; a
// re-run appends nothing; once that customer is forgotten, a re-run of
// the same batch still appends nothing (its rows are recognised in the
// forgotten stream, whether the identity read model still names the
// forgotten customer, names nobody, or already names the next one), while
// a new batch with the same e-mail registers a NEW customer — the next
// generation — instead of landing on the erased stream.
func TestImportWithKeyringAcrossAnErasure(t *testing.T) {
	ctx := context.Background()
	k := newKeyedLedger(t)
	const bruno, chloe = "bruno.díaz@example.es", "chloé.martin@example.fr"
	registerChloe := `{"identifier":{"kind":"email","value":"Chloé.Martin@Example.fr"},"type":"CustomerRegistered","event":{"name":"Chloé Martin","country":"FR"},"occurredAt":"` + when + `"}`
	input := lines(purchase, note, registerChloe)

	gen0, gen1 := k.keys.CustomerID(domain.IdentifierEmail, bruno, 0), k.keys.CustomerID(domain.IdentifierEmail, bruno, 1)
	if gen0 == importer.CustomerIDFor(domain.IdentifierEmail, bruno) {
		t.Fatal("the keyed id is the unkeyed uuid v5")
	}
	sum, rejected, err := k.run("crm-2025-03", input)
	if err != nil || len(rejected) > 0 || sum.Imported != 3 || sum.Registered != 2 {
		t.Fatalf("import: %+v, %v, %v", sum, err, rejected)
	}
	if got := types(k.stream(gen0)); !slices.Equal(got, []string{domain.TypeCustomerRegistered, domain.TypeIdentifierLinked, domain.TypePurchaseCompleted, domain.TypeNoteAdded}) {
		t.Fatalf("bruno's stream at the keyed id: %v", got)
	}
	if k.stream(importer.CustomerIDFor(domain.IdentifierEmail, bruno)) != nil {
		t.Fatal("events stored at the unkeyed id")
	}
	// A registration row naming an identifier registers the keyed id too.
	chloeID := k.keys.CustomerID(domain.IdentifierEmail, chloe, 0)
	if got := types(k.stream(chloeID)); !slices.Equal(got, []string{domain.TypeCustomerRegistered, domain.TypeIdentifierLinked}) {
		t.Fatalf("chloé's stream at the keyed id: %v", got)
	}
	for _, r := range all(t, k.store) {
		for _, plain := range []string{"Bruno", "bruno", "Chloé", "Prefers French"} {
			if bytes.Contains(r.Data, []byte(plain)) {
				t.Fatalf("plaintext %q stored: %s", plain, r.Data)
			}
		}
	}
	count := len(all(t, k.store))
	unchanged := func(what string) {
		t.Helper()
		if n := len(all(t, k.store)); n != count {
			t.Fatalf("%s appended %d events", what, n-count)
		}
	}
	if sum, rejected, err := k.run("crm-2025-03", input); err != nil || len(rejected) > 0 || sum.Imported != 3 || sum.Forgotten != 0 {
		t.Fatalf("re-run: %+v, %v, %v", sum, err, rejected)
	}
	unchanged("a re-run")

	// Bruno is forgotten. The identity read model has not caught up: it
	// still names him.
	k.rebuild()
	if _, err := k.ledger.Forget(ctx, gen0, ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-2025-0042"}, Metadata: domain.Metadata{OccurredAt: time.Now(), Actor: "user:dpo"}}); err != nil {
		t.Fatal(err)
	}
	count++ // CustomerForgotten
	rerun := func(what string) {
		t.Helper()
		sum, rejected, err := k.run("crm-2025-03", input)
		if err != nil || len(rejected) > 0 || sum.Imported != 1 || sum.Forgotten != 2 || sum.Registered != 0 {
			t.Fatalf("%s: %+v, %v, %v; want Chloé's row imported, Bruno's two forgotten", what, sum, err, rejected)
		}
		unchanged(what)
	}
	rerun("a re-run while the read model still names the forgotten customer")
	k.rebuild()
	rerun("a re-run once the read model dropped the forgotten customer")

	// New touchpoints with the same e-mail: a new customer.
	later := `{"identifier":{"kind":"email","value":"BRUNO.DÍAZ@example.es"},"type":"NoteAdded","event":{"body":"new here"},"occurredAt":"` + when + `"}`
	sum, rejected, err = k.run("crm-2025-04", lines(later))
	if err != nil || len(rejected) > 0 || sum.Imported != 1 || sum.Registered != 1 {
		t.Fatalf("a new batch after the erasure: %+v, %v, %v", sum, err, rejected)
	}
	if got := types(k.stream(gen1)); !slices.Equal(got, []string{domain.TypeCustomerRegistered, domain.TypeIdentifierLinked, domain.TypeNoteAdded}) {
		t.Fatalf("the new customer %s holds %v", gen1, got)
	}
	if got := types(k.stream(gen0)); len(got) != 5 || got[4] != domain.TypeCustomerForgotten {
		t.Fatalf("the forgotten stream changed: %v", got)
	}
	count += 3
	k.rebuild()
	rerun("a re-run once the read model names the new customer")
	if sum, rejected, err := k.run("crm-2025-04", lines(later)); err != nil || len(rejected) > 0 || sum.Imported != 1 {
		t.Fatalf("re-run of the new batch: %+v, %v, %v", sum, err, rejected)
	}
	unchanged("a re-run of the new batch")

	// A row naming the forgotten customer by id is refused unless an
	// earlier run imported it.
	byID := `{"customerId":"` + gen0.String() + `","type":"NoteAdded","event":{"body":"too late"},"occurredAt":"` + when + `"}`
	if sum, rejected, err := k.run("crm-2025-05", lines(byID)); !errors.Is(err, importer.ErrRejectedRows) || len(rejected) != 1 || !errors.Is(rejected[0], domain.ErrRejected) || !strings.Contains(rejected[0].Error(), "forgotten") || sum.Forgotten != 0 {
		t.Fatalf("a new row for the forgotten customer: %+v, %v, %v", sum, err, rejected)
	}
	unchanged("a refused row")
}

// An import interrupted before a customer was forgotten and resumed after
// it: the rows it had imported stay erased and count as forgotten; the
// rows it had not reached are new touchpoints and register a new
// customer.
func TestImportResumedAfterAnErasure(t *testing.T) {
	ctx := context.Background()
	k := newKeyedLedger(t)
	const bruno = "bruno.díaz@example.es"
	if sum, _, err := k.run("crm-2025-03", lines(purchase)); err != nil || sum.Registered != 1 {
		t.Fatalf("first, interrupted run: %+v, %v", sum, err)
	}
	gen0 := k.keys.CustomerID(domain.IdentifierEmail, bruno, 0)
	if _, err := k.ledger.Forget(ctx, gen0, ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-7"}, Metadata: domain.Metadata{OccurredAt: time.Now(), Actor: "user:dpo"}}); err != nil {
		t.Fatal(err)
	}
	sum, rejected, err := k.run("crm-2025-03", lines(purchase, note))
	if err != nil || len(rejected) > 0 || sum.Forgotten != 1 || sum.Imported != 1 || sum.Registered != 1 {
		t.Fatalf("resumed run: %+v, %v, %v", sum, err, rejected)
	}
	gen1 := k.keys.CustomerID(domain.IdentifierEmail, bruno, 1)
	recs := k.stream(gen1)
	if got := types(recs); !slices.Equal(got, []string{domain.TypeCustomerRegistered, domain.TypeIdentifierLinked, domain.TypeNoteAdded}) {
		t.Fatalf("the new customer holds %v", got)
	}
	if recs[0].ID != importer.EventID("crm-2025-03", 2, "registered") {
		t.Fatalf("the new customer's registration %s does not derive from the note's line", recs[0].ID)
	}
	if n := len(k.stream(gen0)); n != 4 {
		t.Fatalf("the forgotten stream holds %d events, want 4", n)
	}
}

// A nil *Keyring in Config.Keys is the plaintext mode: the unkeyed id.
func TestImportNilKeyringIsPlaintextMode(t *testing.T) {
	store := memstore.New(memstore.Config{})
	var none *keyring.Keyring
	sum, rejected, err := run(t, store, "crm", lines(note), func(c *importer.Config) { c.Keys = none })
	if err != nil || len(rejected) > 0 || sum.Registered != 1 {
		t.Fatalf("import: %+v, %v, %v", sum, err, rejected)
	}
	id := importer.CustomerIDFor(domain.IdentifierEmail, "bruno.díaz@example.es")
	if recs, err := store.ReadStream(context.Background(), domain.StreamID(id), eventstore.ReadStreamOptions{}); err != nil || len(recs) != 3 {
		t.Fatalf("stream at the unkeyed id: %d events, %v", len(recs), err)
	}
}
