package boltrm_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/backendtest"
	"github.com/cxledger/cxledger/projections/boltrm"
)

func open(t testing.TB, path string) *boltrm.Backend {
	t.Helper()
	b, err := boltrm.Open(path, boltrm.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Features{Validates: true, FollowsDrop: true, ClosedEverywhere: true},
		func(t *testing.T) projections.Backend {
			return open(t, filepath.Join(t.TempDir(), boltrm.FileName))
		})
}

func TestOpenFailsWhenFileInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), boltrm.FileName)
	open(t, path)
	// bbolt's flock is per open file description, so a second Open in the
	// same process stands in for a second process.
	_, err := boltrm.Open(path, boltrm.Options{})
	if !errors.Is(err, boltrm.ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", boltrm.FileName)
	ctx := t.Context()
	b, err := boltrm.Open(path, boltrm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(ctx, "customer360_v1", func(w projections.Writer) error {
		if err := w.Put(ctx, "c:1", []byte(`{"name": "Zoë"}`)); err != nil {
			return err
		}
		return w.SetCheckpoint(ctx, 77)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Activate(ctx, "customer360", "customer360_v1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open(t, path)
	if cp, err := b.Checkpoint(ctx, "customer360_v1"); err != nil || cp != 77 {
		t.Fatalf("checkpoint after reopen = %d, %v", cp, err)
	}
	if ns, err := b.Active(ctx, "customer360"); err != nil || ns != "customer360_v1" {
		t.Fatalf("active after reopen = %q, %v", ns, err)
	}
	err = b.View(ctx, "customer360_v1", func(r projections.Reader) error {
		v, ok, err := projections.Read[map[string]string](ctx, r, "c:1")
		if err != nil || !ok || v["name"] != "Zoë" {
			return fmt.Errorf("value after reopen = %v, %v, %v", v, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
