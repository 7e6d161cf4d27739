package recommend

import (
	"math"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/projections"
)

func TestSegment(t *testing.T) {
	long := strings.Repeat("𝄞", 150)      // 600 bytes: hashed
	longSlash := strings.Repeat("/", 150) // 450 bytes escaped: hashed
	for _, tc := range []struct{ in, want string }{
		{"BEANS-1KG", "BEANS-1KG"},
		{"A/B", "A%2FB"},
		{"50% ~ off", "50%25 %7E off"},
		{"Küche\x00\x1f\x7f", "Küche%00%1F%7F"},
		{"bad\xffutf8", "bad%FFutf8"},
		{"𝄞", "𝄞"},
	} {
		if got := segment(tc.in); got != tc.want {
			t.Errorf("segment(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	seen := map[string]string{}
	for _, in := range []string{long, long + "x", longSlash, longSlash + "/", strings.Repeat("a", 400), strings.Repeat("a", 401), "\xff" + strings.Repeat("é", 300)} {
		s := segment(in)
		if len(s) > maxSegment || strings.Contains(s, "/") {
			t.Errorf("segment of %d bytes: %d bytes %q", len(in), len(s), s)
		}
		if other, ok := seen[s]; ok {
			t.Errorf("segment(%q) = segment(%q)", in, other)
		}
		seen[s] = in
		// The longest key holds two of the longest segments.
		if err := projections.CheckKey(pairKey(categories, in, in)); err != nil {
			t.Errorf("pair key of %d-byte items: %v", len(in), err)
		}
		if err := projections.CheckKey(boughtKey("6b7bb795-9363-4d27-8279-1bc399c39ebb", categories, in)); err != nil {
			t.Error(err)
		}
	}
	if got := segment(strings.Repeat("a", 400)); got != strings.Repeat("a", 400) {
		t.Errorf("400 bytes are kept as they are: %q", got)
	}
	if got := segment(strings.Repeat("a", 401)); !strings.HasPrefix(got, strings.Repeat("a", segmentPrefix)+"~") || len(got) != segmentPrefix+33 {
		t.Errorf("401 bytes: %q", got)
	}
	// Cut at an escape boundary, never inside %2F.
	if got := segment(longSlash); !strings.HasPrefix(got, strings.Repeat("%2F", segmentPrefix/3)+"~") {
		t.Errorf("slashes: %q", got)
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct{ part, whole, want int64 }{
		{21, 50, 42}, {2, 3, 67}, {1, 3, 33}, {1, 8, 13}, {3, 8, 38}, {1, 200, 1}, {1, 201, 0}, {0, 5, 0}, {5, 5, 100},
		{math.MaxInt64 / 2, math.MaxInt64, 50},
	} {
		if got := percent(tc.part, tc.whole); got != tc.want {
			t.Errorf("percent(%d, %d) = %d, want %d", tc.part, tc.whole, got, tc.want)
		}
	}
}

func TestCmpFrac(t *testing.T) {
	for _, tc := range []struct {
		a, b, c, d int64
		want       int
	}{
		{1, 2, 2, 4, 0}, {2, 3, 1, 2, 1}, {1, 3, 1, 2, -1},
		{math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64 - 2, math.MaxInt64 - 1, 1},
	} {
		if got := cmpFrac(tc.a, tc.b, tc.c, tc.d); got != tc.want {
			t.Errorf("cmpFrac(%d/%d, %d/%d) = %d, want %d", tc.a, tc.b, tc.c, tc.d, got, tc.want)
		}
	}
}
