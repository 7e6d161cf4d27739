package timeline

import (
	"fmt"
	"testing"
	"time"
)

// The keys written by hand equal the format they were first written with
// (fmt's zero padding), so stored timelines keep their order and cursors.
func TestSortKeyMatchesPaddedDecimal(t *testing.T) {
	for _, tc := range []struct {
		at      time.Time
		version uint64
	}{
		{time.Time{}, 0},
		{time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), 1},
		{time.Unix(0, 0).UTC(), 7},
		{time.Date(2026, 12, 7, 2, 8, 9, 123456789, time.UTC), 18446744073709551615},
		{time.Date(2026, 12, 7, 2, 8, 9, 999999999, time.FixedZone("x", 3600)), 1 << 40},
		{time.Date(-5, 1, 1, 0, 0, 0, 5, time.UTC), 10},
	} {
		sec := tc.at.Unix() + unixToInternal
		if sec < 0 {
			sec = 0
		}
		want := fmt.Sprintf("%020d%09d", sec, tc.at.Nanosecond()) + "/" + fmt.Sprintf("%020d", tc.version)
		if got := sortKey(tc.at, tc.version); got != want || len(got) != sortKeyLen {
			t.Errorf("sortKey(%v, %d) = %q, want %q", tc.at, tc.version, got, want)
		}
	}
}
