package projections

import (
	"context"
	"slices"
	"testing"
)

// The overlay must read exactly as the backend's own writer would after the
// same writes: Get and Scan see the batch's puts and deletes merged into the
// snapshot in key order, and a Scan stopped early stops.
func TestOverlayMergesBatchWritesIntoSnapshot(t *testing.T) {
	ctx := context.Background()
	snapshot := map[string]string{"a/1": `1`, "a/3": `3`, "a/5": `5`, "b/1": `9`}
	writes := []struct {
		key, value string // value "" deletes
	}{{"a/2", `2`}, {"a/3", ""}, {"a/5", `50`}, {"a/6", `6`}, {"a/0", ""}, {"c/1", `7`}}

	mem := NewMemory()
	defer mem.Close()
	if err := mem.Update(ctx, "ns", func(w Writer) error {
		for k, v := range snapshot {
			if err := w.Put(ctx, k, []byte(v)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	type kv struct{ k, v string }
	scan := func(r Reader, prefix, after string, limit int) []kv {
		t.Helper()
		var got []kv
		err := r.Scan(ctx, prefix, after, func(k string, v []byte) (bool, error) {
			got = append(got, kv{k, string(v)})
			return len(got) < limit, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	cases := []struct {
		prefix, after string
		limit         int
	}{{"a/", "", 100}, {"a/", "a/2", 100}, {"a/", "", 2}, {"", "", 100}, {"c/", "", 100}, {"a/", "a/5", 1}, {"z/", "", 100}}

	// want: the same writes made through the backend's own writer.
	want := map[int][]kv{}
	var wantGets []string
	err := mem.View(ctx, "ns", func(r Reader) error {
		ov := newOverlay()
		ov.r = r
		for _, w := range writes {
			if w.value == "" {
				_ = ov.Delete(ctx, w.key)
			} else {
				_ = ov.Put(ctx, w.key, []byte(w.value))
			}
		}
		if err := mem.Update(ctx, "ns", func(bw Writer) error { return ov.writeTo(ctx, bw) }); err != nil {
			return err
		}
		if err := mem.View(ctx, "ns", func(after Reader) error {
			for i, c := range cases {
				want[i] = scan(after, c.prefix, c.after, c.limit)
			}
			for _, k := range []string{"a/1", "a/2", "a/3", "a/5", "a/0", "c/1"} {
				v, ok, err := after.Get(ctx, k)
				if err != nil {
					return err
				}
				wantGets = append(wantGets, k+"="+string(v)+map[bool]string{true: "", false: "<absent>"}[ok])
			}
			return nil
		}); err != nil {
			return err
		}
		for i, c := range cases {
			if got := scan(ov, c.prefix, c.after, c.limit); !slices.Equal(got, want[i]) {
				t.Errorf("Scan(%q, %q, limit %d) = %v, want %v", c.prefix, c.after, c.limit, got, want[i])
			}
		}
		var gets []string
		for _, k := range []string{"a/1", "a/2", "a/3", "a/5", "a/0", "c/1"} {
			v, ok, err := ov.Get(ctx, k)
			if err != nil {
				return err
			}
			gets = append(gets, k+"="+string(v)+map[bool]string{true: "", false: "<absent>"}[ok])
		}
		if !slices.Equal(gets, wantGets) {
			t.Errorf("Gets = %v, want %v", gets, wantGets)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want[0]) != 4 { // a/1, a/2, a/5=50, a/6
		t.Fatalf("reference scan of a/ = %v, want 4 entries", want[0])
	}
}
