package backendtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/projections"
)

func (s *suite) readWriteTests() []test {
	return []test{
		{"PutGetOverwrite", func(t *testing.T, ctx context.Context, b projections.Backend) {
			id := uuid.New()
			k := customerKey(id)
			if _, ok := get(t, ctx, b, "customers", k); ok {
				t.Fatalf("Get(%q) on an empty backend found a value", k)
			}
			put(t, ctx, b, "customers", 1, kv{k, customerDoc(id, "Zoë Ångström", 1)})
			if v, ok := get(t, ctx, b, "customers", k); !ok || v != customerDoc(id, "Zoë Ångström", 1) {
				t.Fatalf("Get(%q) = %q, %v; want the stored document", k, v, ok)
			}
			put(t, ctx, b, "customers", 2, kv{k, customerDoc(id, "Zoë Ångström", 2)})
			if v, _ := get(t, ctx, b, "customers", k); v != customerDoc(id, "Zoë Ångström", 2) {
				t.Fatalf("after overwrite Get(%q) = %q", k, v)
			}
			if got := dump(t, ctx, b, "customers"); len(got) != 1 {
				t.Fatalf("overwrite left %d pairs, want 1", len(got))
			}
		}},
		{"Delete", func(t *testing.T, ctx context.Context, b projections.Backend) {
			a, c := uuid.New(), uuid.New()
			put(t, ctx, b, "customers", 1, kv{customerKey(a), customerDoc(a, "Ada Obi", 1)}, kv{customerKey(c), customerDoc(c, "Chen Wei", 1)})
			err := b.Update(ctx, "customers", func(w projections.Writer) error {
				if err := w.Delete(ctx, customerKey(a)); err != nil {
					return err
				}
				// Deleting a missing key is not an error.
				return w.Delete(ctx, customerKey(uuid.New()))
			})
			if err != nil {
				t.Fatalf("Update with deletes: %v", err)
			}
			if _, ok := get(t, ctx, b, "customers", customerKey(a)); ok {
				t.Fatalf("deleted key still found")
			}
			if _, ok := get(t, ctx, b, "customers", customerKey(c)); !ok {
				t.Fatalf("key not deleted is gone")
			}
		}},
		{"WriteSorted", func(t *testing.T, ctx context.Context, b projections.Backend) {
			// A backend whose writer takes a batch sorted (the engine's
			// commits) stores it as the same puts and deletes would, after
			// the writes made before it in the transaction.
			a, c, d := uuid.New(), uuid.New(), uuid.New()
			put(t, ctx, b, "customers", 1, kv{customerKey(a), customerDoc(a, "Ada Obi", 1)}, kv{customerKey(c), customerDoc(c, "Chen Wei", 1)})
			sorted := false
			err := b.Update(ctx, "customers", func(w projections.Writer) error {
				sw, ok := w.(projections.SortedWriter)
				if !ok {
					return nil
				}
				sorted = true
				if err := w.Put(ctx, customerKey(d), []byte(customerDoc(d, "Dara Ní", 1))); err != nil {
					return err
				}
				kvs := []projections.KV{
					{Key: customerKey(a)}, // delete
					{Key: customerKey(c), Value: []byte(customerDoc(c, "Chen Wei", 2))},
					{Key: customerKey(d), Value: []byte(customerDoc(d, "Dara Ní", 2))},
					{Key: customerKey(uuid.New())}, // delete of a missing key
				}
				slices.SortFunc(kvs, func(x, y projections.KV) int { return strings.Compare(x.Key, y.Key) })
				if err := sw.WriteSorted(ctx, kvs); err != nil {
					return err
				}
				return w.SetCheckpoint(ctx, 2)
			})
			if err != nil {
				t.Fatalf("Update with WriteSorted: %v", err)
			}
			if !sorted {
				t.Skip("the backend's writer is not a projections.SortedWriter")
			}
			want := []kv{{customerKey(c), customerDoc(c, "Chen Wei", 2)}, {customerKey(d), customerDoc(d, "Dara Ní", 2)}}
			slices.SortFunc(want, func(x, y kv) int { return strings.Compare(x.Key, y.Key) })
			if diff := equalKV(dump(t, ctx, b, "customers"), want); diff != "" {
				t.Fatalf("after WriteSorted: %s", diff)
			}
			if cp := checkpoint(t, ctx, b, "customers"); cp != 2 {
				t.Fatalf("checkpoint %d, want 2", cp)
			}
		}},
		{"ValuesByteForByte", func(t *testing.T, ctx context.Context, b projections.Backend) {
			// Layouts a JSON re-encoder would change: spacing, field order,
			// duplicate keys, escapes, number spellings, a large document.
			values := []string{
				`{"b":1,"a":2}`,
				"{ \"name\" :\t\"Zoë\" ,\n \"n\": 1.0 }",
				`{"a":1,"a":2}`,
				`"\u00e9\ud83d\ude00 \/ \\ \" plain é😀"`,
				`[1e3, -0, 0.10, 12345678901234567890123]`,
				`null`,
				`{"emptyObj":{},"emptyArr":[],"s":""}`,
				`"` + strings.Repeat("x", 1<<20) + `"`,
			}
			var pairs []kv
			for i, v := range values {
				pairs = append(pairs, kv{fmt.Sprintf("doc:%02d", i), v})
			}
			put(t, ctx, b, "docs", 1, pairs...)
			for _, p := range pairs {
				if v, ok := get(t, ctx, b, "docs", p.Key); !ok || v != p.Value {
					t.Errorf("Get(%q) = %.80q, %v; want %.80q byte for byte", p.Key, v, ok, p.Value)
				}
			}
			if d := equalKV(dump(t, ctx, b, "docs"), pairs); d != "" {
				t.Errorf("Scan: %s", d)
			}
		}},
		{"PutCopiesValue", func(t *testing.T, ctx context.Context, b projections.Backend) {
			// The engine encodes into buffers it may reuse once Put returns.
			buf := []byte(`{"v":"first"}`)
			err := b.Update(ctx, "docs", func(w projections.Writer) error {
				if err := w.Put(ctx, "k", buf); err != nil {
					return err
				}
				copy(buf, `{"v":"XXXXX"}`)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := get(t, ctx, b, "docs", "k"); v != `{"v":"first"}` {
				t.Fatalf("Get = %q: the backend kept the caller's buffer", v)
			}
		}},
		{"ReadOwnWrites", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "pipeline", 1, kv{"deal:1", `{"stage":"lead"}`}, kv{"deal:2", `{"stage":"won"}`}, kv{"deal:4", `{"stage":"lost"}`})
			err := b.Update(ctx, "pipeline", func(w projections.Writer) error {
				steps := []func() error{
					func() error { return w.Put(ctx, "deal:3", []byte(`{"stage":"new"}`)) },
					func() error { return w.Put(ctx, "deal:1", []byte(`{"stage":"qualified"}`)) },
					func() error { return w.Delete(ctx, "deal:2") },
					func() error { return w.Put(ctx, "deal:5", []byte(`{"stage":"gone"}`)) },
					func() error { return w.Delete(ctx, "deal:5") },
					func() error { return w.Delete(ctx, "deal:4") },
					func() error { return w.Put(ctx, "deal:4", []byte(`{"stage":"reopened"}`)) },
				}
				for _, step := range steps {
					if err := step(); err != nil {
						return err
					}
				}
				want := map[string]string{"deal:1": `{"stage":"qualified"}`, "deal:3": `{"stage":"new"}`, "deal:4": `{"stage":"reopened"}`}
				for _, k := range []string{"deal:1", "deal:2", "deal:3", "deal:4", "deal:5"} {
					v, ok, err := w.Get(ctx, k)
					if err != nil {
						return err
					}
					if string(v) != want[k] || ok != (want[k] != "") {
						return fmt.Errorf("inside Update Get(%q) = %q, %v; want %q", k, v, ok, want[k])
					}
				}
				got, err := scanAll(ctx, w, "deal:", "")
				if err != nil {
					return err
				}
				wantScan := []kv{{"deal:1", want["deal:1"]}, {"deal:3", want["deal:3"]}, {"deal:4", want["deal:4"]}}
				if d := equalKV(got, wantScan); d != "" {
					return fmt.Errorf("inside Update Scan: %s", d)
				}
				// Writes after a Scan are seen too.
				if err := w.Put(ctx, "deal:0", []byte(`{"stage":"late"}`)); err != nil {
					return err
				}
				got, err = scanAll(ctx, w, "deal:", "")
				if err != nil {
					return err
				}
				if len(got) != 4 || got[0].Key != "deal:0" {
					return fmt.Errorf("inside Update second Scan: keys %v, want deal:0 first of 4", keysOf(got))
				}
				return w.SetCheckpoint(ctx, 2)
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []kv{{"deal:0", `{"stage":"late"}`}, {"deal:1", `{"stage":"qualified"}`}, {"deal:3", `{"stage":"new"}`}, {"deal:4", `{"stage":"reopened"}`}}
			if d := equalKV(dump(t, ctx, b, "pipeline"), want); d != "" {
				t.Fatalf("after commit: %s", d)
			}
		}},
		{"ManyPutsOneUpdate", func(t *testing.T, ctx context.Context, b projections.Backend) {
			// More rows than a backend would send in one statement.
			const n = 12_345
			var pairs []kv
			for i := range n {
				id := uuid.New()
				pairs = append(pairs, kv{customerKey(id), customerDoc(id, "Bulk Customer", i)})
			}
			put(t, ctx, b, "customers", n, pairs...)
			slices.SortFunc(pairs, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
			if d := equalKV(dump(t, ctx, b, "customers"), pairs); d != "" {
				t.Fatal(d)
			}
		}},
		{"ViewIsSnapshot", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "customers", 1, kv{"a", `{"v":1}`}, kv{"b", `{"v":1}`})
			err := b.View(ctx, "customers", func(r projections.Reader) error {
				if v, _, err := r.Get(ctx, "a"); err != nil || string(v) != `{"v":1}` {
					return fmt.Errorf("first Get = %q, %v", v, err)
				}
				// A commit from elsewhere while the View is open.
				done := make(chan error, 1)
				go func() {
					done <- b.Update(ctx, "customers", func(w projections.Writer) error {
						if err := w.Put(ctx, "b", []byte(`{"v":2}`)); err != nil {
							return err
						}
						return w.SetCheckpoint(ctx, 2)
					})
				}()
				if err := <-done; err != nil {
					return fmt.Errorf("concurrent Update: %w", err)
				}
				v, _, err := r.Get(ctx, "b")
				if err != nil {
					return err
				}
				if string(v) != `{"v":1}` {
					return fmt.Errorf("the View saw a commit made after it began: b = %s", v)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := get(t, ctx, b, "customers", "b"); v != `{"v":2}` {
				t.Fatalf("after the View, b = %s, want the committed {\"v\":2}", v)
			}
		}},
		{"CallbackErrorReturned", func(t *testing.T, ctx context.Context, b projections.Backend) {
			err := b.View(ctx, "customers", func(projections.Reader) error { return errBoom })
			if !errors.Is(err, errBoom) {
				t.Fatalf("View returned %v, want the callback's error in the chain", err)
			}
		}},
	}
}

func (s *suite) scanTests() []test {
	// Byte order, not code-point-aware collation: upper before lower case,
	// '/' and ':' before letters, multi-byte UTF-8 after ASCII, and keys
	// that are prefixes of one another.
	keys := []string{
		"A", "Z", "a", "a/", "a/b", "a:", "a:1", "a:10", "a:2", "ab", "abc", "b",
		"cust", "cust:", "customer", "customer:", "customer:0", "customer:ä", "customers",
		"z", "~", "\u007f", "é", "ée", "ö", "€", "日本", "日本語", "😀", "\U0010ffff", "\U0010ffffa",
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted) // Go compares strings byte by byte
	fill := func(t *testing.T, ctx context.Context, b projections.Backend) []kv {
		pairs := make([]kv, 0, len(sorted))
		shuffled := slices.Clone(keys)
		slices.Reverse(shuffled)
		var in []kv
		for _, k := range shuffled {
			in = append(in, kv{k, keyDoc(k)})
		}
		put(t, ctx, b, "scan", 1, in...)
		for _, k := range sorted {
			pairs = append(pairs, kv{k, keyDoc(k)})
		}
		return pairs
	}
	filter := func(pairs []kv, prefix, after string) []kv {
		var out []kv
		for _, p := range pairs {
			if strings.HasPrefix(p.Key, prefix) && p.Key > after {
				out = append(out, p)
			}
		}
		return out
	}
	check := func(t *testing.T, ctx context.Context, b projections.Backend, all []kv, prefix, after string) {
		t.Helper()
		var got []kv
		err := b.View(ctx, "scan", func(r projections.Reader) error {
			var err error
			got, err = scanAll(ctx, r, prefix, after)
			return err
		})
		if err != nil {
			t.Fatalf("Scan(%q, %q): %v", prefix, after, err)
		}
		if d := equalKV(got, filter(all, prefix, after)); d != "" {
			t.Errorf("Scan(prefix %q, after %q): %s", prefix, after, d)
		}
	}
	return []test{
		{"ByteOrder", func(t *testing.T, ctx context.Context, b projections.Backend) {
			check(t, ctx, b, fill(t, ctx, b), "", "")
		}},
		{"Prefixes", func(t *testing.T, ctx context.Context, b projections.Backend) {
			all := fill(t, ctx, b)
			for _, p := range []string{"a", "a:", "a:1", "cust", "cust:", "customer", "customer:", "é", "日本", "\U0010ffff", "\u007f", "nothing", "~~"} {
				check(t, ctx, b, all, p, "")
			}
		}},
		{"After", func(t *testing.T, ctx context.Context, b projections.Backend) {
			all := fill(t, ctx, b)
			cases := [][2]string{
				{"", "a"}, {"", "a:"}, {"", "customer"}, {"", "é"}, {"", "\U0010ffff"}, {"", "\U0010ffffa"},
				{"a", "a"}, {"a", "a:1"}, {"a", "a:15"}, {"a", "0"}, {"a", "b"},
				{"cust", "cust"}, {"customer", "customer:0"}, {"customer:", "customer:0"},
			}
			for _, c := range cases {
				check(t, ctx, b, all, c[0], c[1])
			}
		}},
		{"Paging", func(t *testing.T, ctx context.Context, b projections.Backend) {
			var pairs []kv
			for i := range 1000 {
				id := uuid.New()
				pairs = append(pairs, kv{customerKey(id), customerDoc(id, "Pág Ínã", i)})
			}
			put(t, ctx, b, "scan", 1, pairs...)
			put(t, ctx, b, "scan", 2, kv{"customes", `1`}, kv{"customer;", `2`}) // neighbours outside the prefix
			slices.SortFunc(pairs, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
			// Page by 7 with after = the last key seen, as a query API does.
			var got []kv
			after := ""
			for {
				var page []kv
				err := b.View(ctx, "scan", func(r projections.Reader) error {
					return r.Scan(ctx, "customer:", after, func(k string, v []byte) (bool, error) {
						page = append(page, kv{k, string(v)})
						return len(page) < 7, nil
					})
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > 7 {
					t.Fatalf("Scan called fn %d times after it returned false", len(page)-7)
				}
				got = append(got, page...)
				if len(page) < 7 {
					break
				}
				after = page[len(page)-1].Key
			}
			if d := equalKV(got, pairs); d != "" {
				t.Fatal(d)
			}
		}},
		{"EarlyStopAndError", func(t *testing.T, ctx context.Context, b projections.Backend) {
			fill(t, ctx, b)
			err := b.View(ctx, "scan", func(r projections.Reader) error {
				calls := 0
				if err := r.Scan(ctx, "", "", func(string, []byte) (bool, error) {
					calls++
					return calls < 3, nil
				}); err != nil {
					return err
				}
				if calls != 3 {
					return fmt.Errorf("fn called %d times, want 3 (stop on false)", calls)
				}
				calls = 0
				err := r.Scan(ctx, "", "", func(string, []byte) (bool, error) {
					calls++
					return true, errBoom
				})
				if !errors.Is(err, errBoom) || calls != 1 {
					return fmt.Errorf("scan with failing fn: err %v after %d calls, want errBoom after 1", err, calls)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"EmptyAndMissingNamespace", func(t *testing.T, ctx context.Context, b projections.Backend) {
			err := b.View(ctx, "never_written", func(r projections.Reader) error {
				got, err := scanAll(ctx, r, "", "")
				if err != nil || len(got) != 0 {
					return fmt.Errorf("scan of a missing namespace: %d pairs, %v", len(got), err)
				}
				if _, ok, err := r.Get(ctx, "x"); ok || err != nil {
					return fmt.Errorf("get in a missing namespace: %v, %v", ok, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
	}
}

// keyDoc is a JSON document naming its key (json.Marshal, not %q: Go's
// quoting is not JSON's for control characters and astral runes).
func keyDoc(k string) string {
	b, _ := json.Marshal(map[string]string{"key": k})
	return string(b)
}
