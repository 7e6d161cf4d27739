package duplicates

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// FuzzASCIINameWords checks the ASCII fast path against the Unicode
// folding it stands in for.
func FuzzASCIINameWords(f *testing.F) {
	for _, s := range []string{"", "Ada Lovelace", "  O'Brien-Smith, J.R. 3rd ", "ALL CAPS", "a\tb\nc", "x\x7f\x00y", "Zoë"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := asciiNameWords(s)
		if !ok {
			for i := 0; i < len(s); i++ {
				if s[i] < 0x80 {
					continue
				}
				return // not ASCII: the Unicode path's
			}
			t.Fatalf("asciiNameWords(%q) refused an ASCII name", s)
		}
		if want := unicodeNameWords(s); !slices.Equal(got, want) {
			t.Fatalf("asciiNameWords(%q) = %q, the Unicode folding gives %q", s, got, want)
		}
	})
}

// FuzzCmpID checks that ids compare as their strings do: keys and member
// lists are ordered by the string form.
func FuzzCmpID(f *testing.F) {
	f.Add(make([]byte, 16), []byte("0123456789abcdef"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var x, y uuid.UUID
		copy(x[:], a)
		copy(y[:], b)
		if got, want := cmpID(x, y), strings.Compare(x.String(), y.String()); got != want {
			t.Fatalf("cmpID(%s, %s) = %d, strings compare %d", x, y, got, want)
		}
	})
}
