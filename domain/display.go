package domain

import (
	"fmt"
	"strings"
	"unicode"
)

// ForDisplay returns s ready to be shown to a person: every character that
// changes how the text around it is read without being seen itself is
// replaced by a visible mark naming it ("[U+202E]"). Those are the bidi
// controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C), which
// can make "gnp.exe" read "exe.png" or reorder a timeline summary, the
// zero-width characters (U+200B–U+200D, U+2060, U+FEFF), which make two
// different names look alike, and control characters (C0, DEL, C1), which
// a terminal may act on.
//
// Stored data keeps these characters — they are the customer's data — and
// only the text rendered for people (timeline and audit summaries, problem
// documents) goes through ForDisplay; that is the one place the rule lives.
// The marks are ASCII, so ForDisplay is idempotent.
func ForDisplay(s string) string {
	i := strings.IndexFunc(s, hiddenInDisplay)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if hiddenInDisplay(r) {
			fmt.Fprintf(&b, "[%U]", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// hiddenInDisplay reports the runes ForDisplay marks.
func hiddenInDisplay(r rune) bool {
	switch {
	case r < 0x80:
		return r < 0x20 || r == 0x7f
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return true // bidi controls
	case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF:
		return true // zero-width
	}
	return unicode.IsControl(r)
}
