package pgrm_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/pgrm"
)

// openOn returns a backend on schema, as another process would open it.
func openOn(t *testing.T, schema string) *pgrm.Backend {
	t.Helper()
	b, err := pgrm.Open(context.Background(), pgtest.URL(t), pgrm.Options{Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// keys returns n keys "<prefix>NNNNN" with JSON values naming round.
func keys(prefix string, from, n int, round string) map[string]string {
	m := make(map[string]string, n)
	for i := from; i < from+n; i++ {
		m[fmt.Sprintf("%s%05d", prefix, i)] = fmt.Sprintf(`{"i":%d,"round":%q}`, i, round)
	}
	return m
}

// commit writes puts and moves the checkpoint from → to, fenced as the
// engine commits.
func commit(t *testing.T, b projections.Backend, ns string, from, to uint64, puts map[string]string, dels ...string) error {
	t.Helper()
	return b.Commit(t.Context(), ns, projections.Claim{From: from}, func(w projections.Writer) error {
		for k, v := range puts {
			if err := w.Put(t.Context(), k, []byte(v)); err != nil {
				return err
			}
		}
		for _, k := range dels {
			if err := w.Delete(t.Context(), k); err != nil {
				return err
			}
		}
		return w.SetCheckpoint(t.Context(), to)
	})
}

// contents reads namespace ns whole.
func contents(t *testing.T, b projections.Backend, ns string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := b.View(t.Context(), ns, func(r projections.Reader) error {
		return r.Scan(t.Context(), "", "", func(k string, v []byte) (bool, error) {
			got[k] = string(v)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func create(t *testing.T, b projections.Backend, ns string) {
	t.Helper()
	if err := b.Update(t.Context(), ns, func(w projections.Writer) error { return w.SetCheckpoint(t.Context(), 0) }); err != nil {
		t.Fatal(err)
	}
}

func wantStats(t *testing.T, b *pgrm.Backend, rows, refused int64) {
	t.Helper()
	if r, f := b.CopyStats(); r != rows || f != refused {
		t.Fatalf("COPY stats: %d rows, %d refused; want %d rows, %d refused", r, f, rows, refused)
	}
}

func wantContents(t *testing.T, b projections.Backend, ns string, want map[string]string) {
	t.Helper()
	if got := contents(t, b, ns); !maps.Equal(got, want) {
		t.Fatalf("namespace %s holds %d keys, want %d (first differences: %v)", ns, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(got, want map[string]string) []string {
	var d []string
	for k, v := range want {
		if got[k] != v && len(d) < 3 {
			d = append(d, fmt.Sprintf("%s: got %q want %q", k, got[k], v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && len(d) < 6 {
			d = append(d, "unexpected "+k)
		}
	}
	return d
}

// A generation the backend created empty is filled by COPY for the keys
// it has never written, and by upserts for the others; the table holds
// exactly what was committed either way.
func TestFreshGenerationIsCopied(t *testing.T) {
	b := open(t)
	const ns = "fresh_v1_g1"
	create(t, b, ns)
	want := keys("k", 0, 1000, "1")
	if err := commit(t, b, ns, 0, 10, want); err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, 1000, 0)

	// Half rewritten (upserts), half new (COPY), some deleted.
	second := keys("k", 500, 1000, "2")
	if err := commit(t, b, ns, 10, 20, second, "k00000", "k00001"); err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, 1500, 0)
	maps.Copy(want, second)
	delete(want, "k00000")
	delete(want, "k00001")
	wantContents(t, b, ns, want)

	// A deleted key put again is not new to the key set: an upsert.
	again := keys("k", 0, 2, "3")
	maps.Copy(again, keys("m", 0, 300, "3"))
	if err := commit(t, b, ns, 20, 30, again); err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, 1800, 0)
	maps.Copy(want, again)
	wantContents(t, b, ns, want)

	// A flush of few new keys (a caught-up read model) goes by upsert;
	// they join the set all the same.
	if err := commit(t, b, ns, 30, 31, keys("s", 0, 3, "4")); err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, 1800, 0)
	if err := commit(t, b, ns, 31, 40, keys("n", 0, 400, "5")); err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, 2200, 0)
	maps.Copy(want, keys("s", 0, 3, "4"))
	maps.Copy(want, keys("n", 0, 400, "5"))
	wantContents(t, b, ns, want)

	// A namespace this backend did not create empty is never copied into.
	other := openOn(t, b.Schema())
	if err := commit(t, other, ns, 40, 50, keys("o", 0, 400, "6")); err != nil {
		t.Fatal(err)
	}
	wantStats(t, other, 0, 0)
	maps.Copy(want, keys("o", 0, 400, "6"))
	wantContents(t, b, ns, want)
}

// Another writer that writes a key and leaves the checkpoint alone is not
// seen by the key set: the COPY meets the key, rolls back to its
// savepoint, and the batch goes as upserts. Nothing is lost or doubled,
// and COPY is not tried again in that namespace.
func TestCopyMeetsAnotherWriter(t *testing.T) {
	b := open(t)
	const ns = "fresh_v1_g1"
	create(t, b, ns)
	want := keys("k", 0, 300, "1")
	if err := commit(t, b, ns, 0, 10, want); err != nil {
		t.Fatal(err)
	}
	other := openOn(t, b.Schema())
	err := other.Update(t.Context(), ns, func(w projections.Writer) error {
		return w.Put(t.Context(), "k00400", []byte(`{"by":"other"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	next := keys("k", 300, 300, "2") // k00300–k00599: k00400 is in the table
	if err := commit(t, b, ns, 10, 20, next); err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, 300, 1)
	maps.Copy(want, next)
	wantContents(t, b, ns, want)

	if err := commit(t, b, ns, 20, 30, keys("k", 600, 300, "3")); err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, 300, 1)
	maps.Copy(want, keys("k", 600, 300, "3"))
	wantContents(t, b, ns, want)
}

// Another writer that moves the checkpoint makes the key set untrusted:
// the next batch goes as upserts.
func TestMovedCheckpointEndsCopy(t *testing.T) {
	b := open(t)
	const ns = "fresh_v1_g1"
	create(t, b, ns)
	want := keys("k", 0, 300, "1")
	if err := commit(t, b, ns, 0, 10, want); err != nil {
		t.Fatal(err)
	}
	other := openOn(t, b.Schema())
	if err := commit(t, other, ns, 10, 20, map[string]string{"k00300": `{"by":"other"}`}); err != nil {
		t.Fatal(err)
	}
	err := b.Update(t.Context(), ns, func(w projections.Writer) error {
		for k, v := range keys("k", 300, 300, "2") {
			if err := w.Put(t.Context(), k, []byte(v)); err != nil {
				return err
			}
		}
		return w.SetCheckpoint(t.Context(), 30)
	})
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, 300, 0)
	maps.Copy(want, keys("k", 300, 300, "2"))
	wantContents(t, b, ns, want)
}

// A value that is not JSON fails the COPY as it fails an upsert: the error
// names the key and nothing of the batch commits.
func TestCopyRefusesInvalidJSON(t *testing.T) {
	b := open(t)
	const ns = "fresh_v1_g1"
	create(t, b, ns)
	bad := keys("k", 0, 300, "1")
	bad["k00123"] = `{"i":123`
	err := commit(t, b, ns, 0, 10, bad)
	if err == nil || !strings.Contains(err.Error(), `"k00123" is not a JSON document`) {
		t.Fatalf("commit of a value that is not JSON: %v", err)
	}
	if errors.Is(err, projections.ErrFenced) {
		t.Fatalf("not a fencing error: %v", err)
	}
	wantContents(t, b, ns, map[string]string{})
	if cp, err := b.Checkpoint(t.Context(), ns); err != nil || cp != 0 {
		t.Fatalf("checkpoint %d, %v; want 0", cp, err)
	}
	// The failed commit wrote nothing, so the key set still holds: the
	// batch retried goes by COPY, and commits.
	good := keys("k", 0, 300, "1")
	if err := commit(t, b, ns, 0, 10, good); err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, 300, 0)
	wantContents(t, b, ns, good)
}
