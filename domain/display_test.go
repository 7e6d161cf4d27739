package domain_test

import (
	"testing"

	"github.com/cxledger/cxledger/domain"
)

func TestForDisplay(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Ana Ñúñez ✉ 🙂", "Ana Ñúñez ✉ 🙂"},
		{"", ""},
		{"invoice\u202Efdp.exe", "invoice[U+202E]fdp.exe"},
		{"\u2066x\u2069 \u200E\u200F\u061C", "[U+2066]x[U+2069] [U+200E][U+200F][U+061C]"},
		{"A\u200Bna", "A[U+200B]na"},
		{"\uFEFFBOM \u2060 \u200C\u200D", "[U+FEFF]BOM [U+2060] [U+200C][U+200D]"},
		{"bell\a esc\x1b[31m del\x7f c1\u0085", "bell[U+0007] esc[U+001B][31m del[U+007F] c1[U+0085]"},
		{"already [U+202E] marked", "already [U+202E] marked"},
	}
	for _, tc := range tests {
		got := domain.ForDisplay(tc.in)
		if got != tc.want {
			t.Errorf("ForDisplay(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := domain.ForDisplay(got); again != got {
			t.Errorf("not idempotent: %q → %q", got, again)
		}
	}
}

func FuzzForDisplay(f *testing.F) {
	f.Add("invoice\u202Efdp.exe\u200B\x00")
	f.Fuzz(func(t *testing.T, s string) {
		out := domain.ForDisplay(s)
		for _, r := range out {
			switch {
			case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C,
				r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF, r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
				t.Fatalf("ForDisplay(%q) = %q keeps %U", s, out, r)
			}
		}
		if domain.ForDisplay(out) != out {
			t.Fatalf("not idempotent on %q", s)
		}
	})
}
