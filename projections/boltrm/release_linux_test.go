//go:build linux

package boltrm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/projections"
)

// rssFileKiB is this process's resident file-backed memory
// (/proc/self/status RssFile), in KiB.
func rssFileKiB(t *testing.T) int {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// A commit that brings the values written past releaseEvery drops the
// read-model file's pages from the process's resident set, and so does a
// Drop; what was written reads back intact.
func TestCommitsReleaseMappedPages(t *testing.T) {
	defer func(n int64) { releaseEvery = n }(releaseEvery)
	releaseEvery = 1 << 62 // not while filling
	ctx := context.Background()
	b, err := Open(filepath.Join(t.TempDir(), FileName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	value := []byte(`"` + strings.Repeat("v", 4000) + `"`)
	const n = 6000 // 24 MB of values
	for i := 0; i < n; i += 1000 {
		err := b.Update(ctx, "ns", func(w projections.Writer) error {
			for j := i; j < i+1000; j++ {
				if err := w.Put(ctx, fmt.Sprintf("k/%06d", j), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	scan := func() {
		t.Helper()
		count := 0
		err := b.View(ctx, "ns", func(r projections.Reader) error {
			return r.Scan(ctx, "k/0", "", func(_ string, v []byte) (bool, error) {
				if string(v) != string(value) {
					return false, fmt.Errorf("value %d changed", count)
				}
				count++
				return true, nil
			})
		})
		if err != nil || count != n {
			t.Fatalf("scan: %d values, %v", count, err)
		}
	}
	scan() // every page of the file resident
	resident := rssFileKiB(t)

	releaseEvery = 1
	if err := b.Update(ctx, "ns", func(w projections.Writer) error { return w.Put(ctx, "k/last", value) }); err != nil {
		t.Fatal(err)
	}
	if after := rssFileKiB(t); resident-after < 20<<10 {
		t.Errorf("RssFile %d KiB after a scan of 24 MB, %d KiB after the releasing commit: want at least 20 MiB less", resident, after)
	}
	scan()

	// Dropping a namespace reads all its pages to free them; they go too.
	releaseEvery = 1 << 62
	resident = rssFileKiB(t)
	if err := b.Drop(ctx, "ns"); err != nil {
		t.Fatal(err)
	}
	if after := rssFileKiB(t); resident-after < 20<<10 {
		t.Errorf("RssFile %d KiB before dropping the namespace, %d KiB after: want at least 20 MiB less", resident, after)
	}
}
