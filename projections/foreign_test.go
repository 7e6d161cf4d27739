package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// everything is a projection of every type that counts what it applies.
type everything struct{ applied *[]string }

func (everything) Name() string    { return "everything" }
func (everything) Version() int    { return 1 }
func (everything) Types() []string { return nil }
func (p everything) Apply(_ *projections.Tx, e domain.Envelope) error {
	*p.applied = append(*p.applied, e.Type)
	return nil
}

// A projection of every type applies every domain event and never a record
// of another kind (the access log's), which only moves its checkpoint.
func TestEveryTypeMeansEveryDomainType(t *testing.T) {
	ctx := context.Background()
	var applied []string
	p := everything{applied: &applied}
	b := projections.NewMemory()
	id := uuid.New()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := []domain.Envelope{
		{ID: uuid.New(), Stream: domain.StreamID(id), Type: domain.TypeCustomerRegistered, Position: 1, Metadata: domain.Metadata{OccurredAt: at}, Event: domain.CustomerRegistered{CustomerID: id, Name: "Zoé"}},
		{ID: uuid.New(), Stream: "access-" + id.String(), Type: "AccessRecorded", Position: 2, Metadata: domain.Metadata{OccurredAt: at}},
		{ID: uuid.New(), Stream: domain.StreamID(id), Type: domain.TypeNoteAdded, Position: 3, Metadata: domain.Metadata{OccurredAt: at}, Event: domain.NoteAdded{Body: "x"}},
	}
	if err := projections.ApplyBatch(ctx, b, "everything_v1_g1", p, batch); err != nil {
		t.Fatal(err)
	}
	if len(applied) != 2 || applied[0] != domain.TypeCustomerRegistered || applied[1] != domain.TypeNoteAdded {
		t.Errorf("applied %v", applied)
	}
	if cp, err := b.Checkpoint(ctx, "everything_v1_g1"); err != nil || cp != 3 {
		t.Errorf("checkpoint %d, %v; want 3", cp, err)
	}
}

// scanThenChange loads an object, scans, then changes the object: the
// change must be written although the scan wrote the batch's changes.
type scanThenChange struct{}

type counter struct{ N int }

func (scanThenChange) Name() string    { return "scan_then_change" }
func (scanThenChange) Version() int    { return 1 }
func (scanThenChange) Types() []string { return []string{domain.TypeNoteAdded} }
func (scanThenChange) Apply(tx *projections.Tx, e domain.Envelope) error {
	c, err := projections.Load[counter](tx, "count")
	if err != nil {
		return err
	}
	seen := 0
	if err := tx.Scan("", "", func(string, []byte) (bool, error) { seen++; return true, nil }); err != nil {
		return err
	}
	c.N++
	return nil
}

func TestChangeAfterScanIsWritten(t *testing.T) {
	ctx := context.Background()
	b := projections.NewMemory()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var batch []domain.Envelope
	for i := range 3 {
		batch = append(batch, domain.Envelope{ID: uuid.New(), Stream: domain.StreamID(uuid.New()), Type: domain.TypeNoteAdded, Position: uint64(i + 1), Metadata: domain.Metadata{OccurredAt: at}, Event: domain.NoteAdded{Body: "x"}})
	}
	if err := projections.ApplyBatch(ctx, b, "scan_then_change_v1_g1", scanThenChange{}, batch); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := b.View(ctx, "scan_then_change_v1_g1", func(r projections.Reader) error {
		v, _, err := r.Get(ctx, "count")
		got = v
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"N":3}` {
		t.Errorf("count = %s, want {\"N\":3}", got)
	}
}
