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
	"time"

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

// fill writes n 4 kB values to namespace ns, without releasing pages.
func fill(t *testing.T, b *Backend, ns string, n int) {
	t.Helper()
	ctx := context.Background()
	value := []byte(`"` + strings.Repeat("v", 4000) + `"`)
	for i := 0; i < n; i += 1000 {
		err := b.Update(ctx, ns, func(w projections.Writer) error {
			for j := i; j < min(i+1000, n); j++ {
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
}

// Open of a file without a stored freelist walks every page to find the
// free ones; it leaves none of them resident.
func TestOpenReleasesMappedPages(t *testing.T) {
	defer func(n int64) { releaseEvery = n }(releaseEvery)
	releaseEvery = 1 << 62
	path := filepath.Join(t.TempDir(), FileName)
	b, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, b, "ns", 6000) // 24 MB
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	before := rssFileKiB(t)
	b, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if grown := rssFileKiB(t) - before; grown > 8<<10 {
		t.Errorf("RssFile grew by %d KiB across Open of a 24 MB file: want under 8 MiB", grown)
	}
}

// releaseEveryTick (what Drop runs beside its walk of the dropped
// namespace) releases the file's pages while it runs.
func TestReleaseEveryTick(t *testing.T) {
	defer func(n int64, d time.Duration) { releaseEvery, releaseTick = n, d }(releaseEvery, releaseTick)
	releaseEvery, releaseTick = 1<<62, time.Millisecond
	b, err := Open(filepath.Join(t.TempDir(), FileName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fill(t, b, "ns", 6000)
	ctx := context.Background()
	scan := func() {
		t.Helper()
		err := b.View(ctx, "ns", func(r projections.Reader) error {
			return r.Scan(ctx, "", "", func(string, []byte) (bool, error) { return true, nil })
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	scan()
	resident := rssFileKiB(t)
	stop := b.releaseEveryTick()
	deadline := time.Now().Add(10 * time.Second)
	for resident-rssFileKiB(t) < 20<<10 {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("RssFile %d KiB after a scan of 24 MB, still %d KiB after 10 s of releases", resident, rssFileKiB(t))
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	scan() // what was released reads back
}

// A switch ends a rebuild: it releases what the rebuild's last batches
// left mapped.
func TestSwitchReleasesMappedPages(t *testing.T) {
	defer func(n int64) { releaseEvery = n }(releaseEvery)
	releaseEvery = 1 << 62
	ctx := context.Background()
	b, err := Open(filepath.Join(t.TempDir(), FileName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fill(t, b, "ns_g1", 6000)
	err = b.View(ctx, "ns_g1", func(r projections.Reader) error {
		return r.Scan(ctx, "", "", func(string, []byte) (bool, error) { return true, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	resident := rssFileKiB(t)
	if err := b.Switch(ctx, "ns", "", "ns_g1"); err != nil {
		t.Fatal(err)
	}
	if after := rssFileKiB(t); resident-after < 20<<10 {
		t.Errorf("RssFile %d KiB after a scan of 24 MB, %d KiB after the switch: want at least 20 MiB less", resident, after)
	}
}
