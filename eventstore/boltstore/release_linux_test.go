//go:build linux

package boltstore

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/cxledger/cxledger/eventstore"
)

// mappedKiB is the resident size of this process's mapping of path
// (/proc/self/smaps), in KiB.
func mappedKiB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") {
			in = fields[len(fields)-1] == path
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			n, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// A walk of the whole log does not keep the log resident: ReadAll
// releases the mapped pages every releaseEvery bytes, and the records it
// returned are intact (they are copies; the pages come back from the page
// cache when read again).
func TestReadAllReleasesMappedPages(t *testing.T) {
	defer func(n int64) { releaseEvery = n }(releaseEvery)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := openTest(t, path, Options{NoSync: true})
	body := []byte(`{"body":"` + strings.Repeat("x", 4000) + `"}`)
	const n = 4096 // 16 MB of records
	for i := 0; i < n; i += 256 {
		var evs []eventstore.EventData
		for range 256 {
			evs = append(evs, eventstore.EventData{ID: uuid.New(), Type: "NoteAdded", Data: body})
		}
		mustAppend(t, s, "customer-"+uuid.NewString(), eventstore.NoStream, evs...)
	}
	scan := func() int {
		t.Helper()
		events := 0
		for after := uint64(0); ; {
			recs, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				return events
			}
			for _, r := range recs {
				if string(r.Data) != string(body) {
					t.Fatalf("position %d: data changed", r.Position)
				}
			}
			events, after = events+len(recs), recs[len(recs)-1].Position
		}
	}

	releaseEvery = 1 << 62 // never
	if got := scan(); got != n {
		t.Fatalf("read %d events, want %d", got, n)
	}
	kept := mappedKiB(t, path)
	if kept < 12<<10 {
		t.Fatalf("without releasing, %d KiB of the log are resident after a walk of 16 MB: the measure is wrong", kept)
	}

	releaseEvery = 1 << 20
	s.scanned.Store(0)
	if err := s.db.View(func(tx *bolt.Tx) error { ReleasePages(s.db, tx); return nil }); err != nil { // start from nothing resident
		t.Fatal(err)
	}
	if got := scan(); got != n {
		t.Fatalf("read %d events, want %d", got, n)
	}
	if after := mappedKiB(t, path); after > 4<<10 {
		t.Errorf("releasing every MiB, %d KiB of the log are resident after the walk (%d KiB without releasing)", after, kept)
	}
}
