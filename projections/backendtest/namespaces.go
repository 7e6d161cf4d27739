package backendtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cxledger/cxledger/projections"
)

func (s *suite) namespaceTests() []test {
	return []test{
		{"Isolation", func(t *testing.T, ctx context.Context, b projections.Backend) {
			// One namespace's name is a prefix of the other's.
			put(t, ctx, b, "orders", 3, kv{"o:1", `{"ns":"orders"}`}, kv{"o:2", `{"ns":"orders"}`})
			put(t, ctx, b, "orders_v2", 7, kv{"o:1", `{"ns":"orders_v2"}`})
			if d := equalKV(dump(t, ctx, b, "orders"), []kv{{"o:1", `{"ns":"orders"}`}, {"o:2", `{"ns":"orders"}`}}); d != "" {
				t.Errorf("orders: %s", d)
			}
			if d := equalKV(dump(t, ctx, b, "orders_v2"), []kv{{"o:1", `{"ns":"orders_v2"}`}}); d != "" {
				t.Errorf("orders_v2: %s", d)
			}
			if checkpoint(t, ctx, b, "orders") != 3 || checkpoint(t, ctx, b, "orders_v2") != 7 {
				t.Errorf("checkpoints mixed up")
			}
		}},
		{"ListInNameOrder", func(t *testing.T, ctx context.Context, b projections.Backend) {
			for _, ns := range []string{"b", "ab", "a_b", "a", "a1"} {
				put(t, ctx, b, ns, 1)
			}
			if err := b.Activate(ctx, "rm", "c"); err != nil { // Activate creates its namespace
				t.Fatal(err)
			}
			got, err := b.Namespaces(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"a", "a1", "a_b", "ab", "b", "c"}; !slices.Equal(got, want) {
				t.Fatalf("Namespaces = %v, want %v", got, want)
			}
		}},
		{"Drop", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "timeline_v1", 9, kv{"t:1", `{}`})
			put(t, ctx, b, "timeline_v2", 4, kv{"t:1", `{"v":2}`})
			if err := b.Drop(ctx, "timeline_v1"); err != nil {
				t.Fatalf("Drop: %v", err)
			}
			if err := b.Drop(ctx, "timeline_v1"); err != nil {
				t.Fatalf("Drop of a dropped namespace: %v", err)
			}
			if err := b.Drop(ctx, "never_existed"); err != nil {
				t.Fatalf("Drop of a missing namespace: %v", err)
			}
			if got := checkpoint(t, ctx, b, "timeline_v1"); got != 0 {
				t.Errorf("checkpoint after Drop = %d, want 0", got)
			}
			if got := dump(t, ctx, b, "timeline_v1"); len(got) != 0 {
				t.Errorf("dropped namespace still reads %d pairs", len(got))
			}
			if got, _ := b.Namespaces(ctx); !slices.Equal(got, []string{"timeline_v2"}) {
				t.Errorf("Namespaces after Drop = %v", got)
			}
			if v, _ := get(t, ctx, b, "timeline_v2", "t:1"); v != `{"v":2}` {
				t.Errorf("Drop touched another namespace: %q", v)
			}
			// A namespace created again after a Drop starts empty.
			put(t, ctx, b, "timeline_v1", 1, kv{"t:2", `{}`})
			if got := dump(t, ctx, b, "timeline_v1"); len(got) != 1 || got[0].Key != "t:2" {
				t.Errorf("recreated namespace holds %v", keysOf(got))
			}
		}},
	}
}

func (s *suite) switchTests() []test {
	tests := []test{
		{"ActivateAndActive", func(t *testing.T, ctx context.Context, b projections.Backend) {
			if ns, err := b.Active(ctx, "customer360"); err != nil || ns != "" {
				t.Fatalf("Active of an unknown read model = %q, %v; want \"\"", ns, err)
			}
			put(t, ctx, b, "customer360_v1", 5, kv{"c:1", `{"v":1}`})
			if err := b.Activate(ctx, "customer360", "customer360_v1"); err != nil {
				t.Fatal(err)
			}
			if ns, err := b.Active(ctx, "customer360"); err != nil || ns != "customer360_v1" {
				t.Fatalf("Active = %q, %v; want customer360_v1", ns, err)
			}
			if err := b.Activate(ctx, "customer360", "customer360_v2"); err != nil {
				t.Fatal(err)
			}
			if ns, _ := b.Active(ctx, "customer360"); ns != "customer360_v2" {
				t.Fatalf("Active after switch = %q, want customer360_v2", ns)
			}
			if ns, _ := b.Active(ctx, "timeline"); ns != "" {
				t.Fatalf("Activate of one read model moved another: timeline → %q", ns)
			}
			// Activate keeps the namespace's data and checkpoint.
			if err := b.Activate(ctx, "customer360", "customer360_v1"); err != nil {
				t.Fatal(err)
			}
			if v, _ := get(t, ctx, b, "customer360_v1", "c:1"); v != `{"v":1}` || checkpoint(t, ctx, b, "customer360_v1") != 5 {
				t.Fatalf("Activate changed the namespace: %q, checkpoint %d", v, checkpoint(t, ctx, b, "customer360_v1"))
			}
		}},
		{"SwitchUnderReaders", func(t *testing.T, ctx context.Context, b projections.Backend) {
			s.switchUnderReaders(t, ctx, b, false)
		}},
	}
	if s.features.FollowsDrop {
		tests = append(tests,
			test{"ViewOfDroppedFollowsActive", func(t *testing.T, ctx context.Context, b projections.Backend) {
				put(t, ctx, b, "pipeline_v1", 5, kv{"d:1", `{"gen":1}`})
				put(t, ctx, b, "pipeline_v2", 5, kv{"d:1", `{"gen":2}`})
				for _, ns := range []string{"pipeline_v1", "pipeline_v2"} {
					if err := b.Activate(ctx, "pipeline", ns); err != nil {
						t.Fatal(err)
					}
				}
				if err := b.Drop(ctx, "pipeline_v1"); err != nil {
					t.Fatal(err)
				}
				if v, _ := get(t, ctx, b, "pipeline_v1", "d:1"); v != `{"gen":2}` {
					t.Fatalf("View of the dropped generation read %q, want the active one's {\"gen\":2}", v)
				}
			}},
			test{"SwitchAndDropUnderReaders", func(t *testing.T, ctx context.Context, b projections.Backend) {
				s.switchUnderReaders(t, ctx, b, true)
			}},
		)
	}
	return tests
}

// switchUnderReaders rebuilds a read model several times while readers
// resolve it (Active, then View) and read it whole: every read must see
// one complete generation, never a mix, never an error, and a reader never
// goes back to an older generation. With drop, each old generation is
// dropped right after the switch, as the engine does.
func (s *suite) switchUnderReaders(t *testing.T, ctx context.Context, b projections.Backend, drop bool) {
	const name, keys, generations, readers = "customer360", 200, 5, 4
	fillGen := func(gen int) string {
		ns := fmt.Sprintf("customer360_v%d", gen)
		var pairs []kv
		for i := range keys {
			pairs = append(pairs, kv{fmt.Sprintf("c:%04d", i), fmt.Sprintf(`{"gen":%d,"i":%d}`, gen, i)})
		}
		put(t, ctx, b, ns, uint64(gen), pairs...)
		return ns
	}
	if err := b.Activate(ctx, name, fillGen(1)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range readers {
		g.Go(func() error {
			last := 1
			for !stop.Load() {
				ns, err := b.Active(gctx, name)
				if err != nil {
					return fmt.Errorf("resolve with Active: %w", err)
				}
				gen, n := 0, 0
				err = b.View(gctx, ns, func(r projections.Reader) error {
					return r.Scan(gctx, "c:", "", func(k string, v []byte) (bool, error) {
						var g int
						if _, err := fmt.Sscanf(string(v), `{"gen":%d,`, &g); err != nil {
							return false, fmt.Errorf("value %q: %w", v, err)
						}
						if gen == 0 {
							gen = g
						} else if g != gen {
							return false, fmt.Errorf("read %s mixes generations %d and %d at %s", ns, gen, g, k)
						}
						n++
						return true, nil
					})
				})
				if err != nil {
					return fmt.Errorf("View(%s): %w", ns, err)
				}
				if n != keys {
					return fmt.Errorf("View(%s) read %d keys of generation %d, want %d", ns, n, gen, keys)
				}
				if gen < last {
					return fmt.Errorf("reader went back from generation %d to %d", last, gen)
				}
				last = gen
				reads.Add(1)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer stop.Store(true)
		for gen := 2; gen <= generations; gen++ {
			time.Sleep(5 * time.Millisecond) // let readers read the current one
			old := fmt.Sprintf("customer360_v%d", gen-1)
			if err := b.Activate(gctx, name, fillGen(gen)); err != nil {
				return fmt.Errorf("activate generation %d: %w", gen, err)
			}
			if drop {
				if err := b.Drop(gctx, old); err != nil {
					return fmt.Errorf("drop %s: %w", old, err)
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if reads.Load() == 0 {
		t.Fatal("no reads happened during the switches")
	}
	if ns, _ := b.Active(ctx, name); ns != fmt.Sprintf("customer360_v%d", generations) {
		t.Fatalf("Active = %q after the last switch", ns)
	}
	t.Logf("%d whole reads across %d switches", reads.Load(), generations-1)
}

func (s *suite) validationTests() []test {
	if !s.features.Validates {
		return []test{{"Skipped", func(t *testing.T, _ context.Context, _ projections.Backend) {
			t.Skip("backend does not promise Validates: invalid names, keys and values not checked")
		}}}
	}
	return []test{
		{"Names", func(t *testing.T, ctx context.Context, b projections.Backend) {
			for _, bad := range []string{"", "Customers", "1st", "_x", "a-b", "a b", "a;drop", "ö", strings.Repeat("a", 61)} {
				if err := b.Update(ctx, bad, func(projections.Writer) error { return nil }); err == nil {
					t.Errorf("Update accepted namespace %q", bad)
				}
				if err := b.Activate(ctx, bad, "ok"); err == nil {
					t.Errorf("Activate accepted read-model name %q", bad)
				}
				if err := b.Activate(ctx, "ok", bad); err == nil {
					t.Errorf("Activate accepted namespace %q", bad)
				}
			}
			put(t, ctx, b, strings.Repeat("a", 60), 1, kv{"k", `1`})
		}},
		{"KeysAndValues", func(t *testing.T, ctx context.Context, b projections.Backend) {
			cases := []struct {
				key, value string
			}{
				{"", `1`},
				{"nul\x00key", `1`},
				{"bad\xffutf8", `1`},
				{strings.Repeat("k", 1025), `1`},
				{"k", `{"unterminated":`},
				{"k", `not json`},
				{"k", ``},
				{"k", "\"bad \xff utf8\""},
			}
			for _, c := range cases {
				err := b.Update(ctx, "docs", func(w projections.Writer) error {
					if err := w.Put(ctx, c.key, []byte(c.value)); err != nil {
						return err
					}
					return w.SetCheckpoint(ctx, 1)
				})
				if err == nil {
					t.Errorf("Put(%.20q, %.20q) accepted", c.key, c.value)
				}
			}
			if got := checkpoint(t, ctx, b, "docs"); got != 0 {
				t.Errorf("an invalid Put committed (checkpoint %d)", got)
			}
			put(t, ctx, b, "docs", 1, kv{strings.Repeat("k", 1024), `1`})
		}},
	}
}
