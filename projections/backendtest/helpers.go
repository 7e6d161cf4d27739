package backendtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/projections"
)

// errBoom is what a failing callback returns; the suite checks that the
// backend hands it back unchanged in the chain.
var errBoom = errors.New("backendtest: callback failed on purpose")

// kv is one stored pair.
type kv struct {
	Key   string
	Value string
}

// customerDoc is a realistic read-model value: a customer document with
// unicode, nesting and an exact layout (field order, spacing, escapes) that
// a backend must return byte for byte.
func customerDoc(id uuid.UUID, name string, n int) string {
	return fmt.Sprintf(`{"id":%q,"name":%q,"email":"%s@example.com","tags":["vip","северо-запад"],"note":"café \u00e9 😀","orders":%d,"ltv":1.50e+2,"consent":{"email":true,"sms":null}}`,
		id, name, strings.ToLower(strings.ReplaceAll(name, " ", ".")), n)
}

// customerKey is a read-model key as projections build them.
func customerKey(id uuid.UUID) string { return "customer:" + id.String() }

// put stores pairs in ns in one Update and sets the checkpoint.
func put(t *testing.T, ctx context.Context, b projections.Backend, ns string, checkpoint uint64, pairs ...kv) {
	t.Helper()
	err := b.Update(ctx, ns, func(w projections.Writer) error {
		for _, p := range pairs {
			if err := w.Put(ctx, p.Key, []byte(p.Value)); err != nil {
				return fmt.Errorf("put %q: %w", p.Key, err)
			}
		}
		return w.SetCheckpoint(ctx, checkpoint)
	})
	if err != nil {
		t.Fatalf("Update(%s): %v", ns, err)
	}
}

// get reads one key of ns through View.
func get(t *testing.T, ctx context.Context, b projections.Backend, ns, key string) (string, bool) {
	t.Helper()
	var v []byte
	var ok bool
	err := b.View(ctx, ns, func(r projections.Reader) error {
		var err error
		v, ok, err = r.Get(ctx, key)
		return err
	})
	if err != nil {
		t.Fatalf("View(%s) Get(%q): %v", ns, key, err)
	}
	return string(v), ok
}

// scanAll collects a Scan of r, copying values (they are valid only during
// the callback).
func scanAll(ctx context.Context, r projections.Reader, prefix, after string) ([]kv, error) {
	var out []kv
	err := r.Scan(ctx, prefix, after, func(k string, v []byte) (bool, error) {
		out = append(out, kv{k, string(v)})
		return true, nil
	})
	return out, err
}

// dump returns every pair of ns, in scan order.
func dump(t *testing.T, ctx context.Context, b projections.Backend, ns string) []kv {
	t.Helper()
	var out []kv
	err := b.View(ctx, ns, func(r projections.Reader) error {
		var err error
		out, err = scanAll(ctx, r, "", "")
		return err
	})
	if err != nil {
		t.Fatalf("View(%s) Scan: %v", ns, err)
	}
	return out
}

func checkpoint(t *testing.T, ctx context.Context, b projections.Backend, ns string) uint64 {
	t.Helper()
	pos, err := b.Checkpoint(ctx, ns)
	if err != nil {
		t.Fatalf("Checkpoint(%s): %v", ns, err)
	}
	return pos
}

// equalKV reports the first difference between two pair lists, or "".
func equalKV(got, want []kv) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("pair %d: got %q=%.60q, want %q=%.60q", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d pairs, want %d (keys %v vs %v)", len(got), len(want), keysOf(got), keysOf(want))
	}
	return ""
}

func keysOf(pairs []kv) []string {
	keys := make([]string, 0, len(pairs))
	for _, p := range pairs {
		keys = append(keys, p.Key)
	}
	if len(keys) > 20 {
		keys = append(keys[:20], "…")
	}
	return keys
}
