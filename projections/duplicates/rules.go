package duplicates

import (
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/cxledger/cxledger/domain"
)

// MatchEmail returns the form under which two canonical e-mail addresses
// (domain.NormalizeEmail: trimmed, lower-case) reach the same mailbox, by
// the provider's rules: Gmail (gmail.com, googlemail.com) ignores dots in
// the local part and everything from a '+' on, and googlemail.com is
// gmail.com; every other provider only folds case, which the canonical
// form already did. exact reports whether no provider rule applied.
func MatchEmail(canonical string) (match string, exact bool) {
	local, dom, ok := strings.Cut(canonical, "@")
	if !ok {
		return canonical, true
	}
	switch dom {
	case "gmail.com", "googlemail.com":
		if i := strings.IndexByte(local, '+'); i >= 0 {
			local = local[:i]
		}
		local = strings.ReplaceAll(local, ".", "")
		m := local + "@gmail.com"
		return m, m == canonical
	}
	return canonical, true
}

// FoldName returns a name as name matching compares it: letters and
// digits only, lower-case, accents removed, words sorted ("Nguyễn, Zoé"
// and "zoe nguyen" both give "nguyen zoe").
func FoldName(name string) string {
	return strings.Join(nameWords(name), " ")
}

func nameWords(s string) []string {
	if words, ok := asciiNameWords(s); ok {
		return words
	}
	return unicodeNameWords(s)
}

// unicodeNameWords splits s into folded words: accents dropped (NFD, then
// no combining marks), lower-case, split at anything but a letter or
// digit, sorted.
func unicodeNameWords(s string) []string {
	var words []string
	var w strings.Builder
	flush := func() {
		if w.Len() > 0 {
			words = append(words, w.String())
			w.Reset()
		}
	}
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			w.WriteRune(unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
	slices.Sort(words)
	return words
}

// asciiNameWords is nameWords for a name of ASCII letters, digits and
// punctuation, without the Unicode normalization (the identity on ASCII,
// and most of a replay's duplicate-detection CPU before this path); ok is
// false when s holds any other byte.
func asciiNameWords(s string) (words []string, ok bool) {
	start := -1
	var buf []byte
	for i := 0; i <= len(s); i++ {
		var c byte
		if i < len(s) {
			c = s[i]
			if c >= 0x80 {
				return nil, false
			}
		}
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		switch {
		case alnum && start < 0:
			start = len(buf)
			fallthrough
		case alnum:
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf = append(buf, c)
		case start >= 0:
			words = append(words, string(buf[start:]))
			start = -1
		}
	}
	slices.Sort(words)
	return words, true
}

// foldContext is the company (or, without one, the locale) two names must
// share to be compared: a name alone is far too common to propose a merge.
func foldContext(company, locale string) string {
	if c := FoldName(company); c != "" {
		return "company:" + c
	}
	if locale != "" {
		return "locale:" + strings.ToLower(locale)
	}
	return ""
}

// nameBlocks are the keys under which a customer's name is compared with
// others: the context and the first three letters of each word of at
// least three, so that a typo in one word still meets the other word.
func nameBlocks(name, ctx string) []string {
	if ctx == "" {
		return nil
	}
	var keys []string
	for _, w := range nameWords(name) {
		if r := []rune(w); len(r) >= 3 {
			k := ctx + "/" + string(r[:3])
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// NameSimilarity compares two names word by word, from 0 to 1: the words
// are folded and sorted (FoldName), and with as many words on both sides
// it is the least Similarity of the aligned words, a word of fewer than
// four letters counting only when equal ("Li" is not "Lu"); with
// different word counts, the Similarity of the folded names times 0.95.
func NameSimilarity(a, b string) float64 {
	return wordSimilarity(nameWords(a), nameWords(b))
}

// wordSimilarity is NameSimilarity over names already split by nameWords,
// so that a name compared with a whole block is normalized once.
func wordSimilarity(wa, wb []string) float64 {
	if len(wa) == 0 || len(wb) == 0 {
		return 0
	}
	if len(wa) != len(wb) {
		return 0.95 * Similarity(strings.Join(wa, " "), strings.Join(wb, " "))
	}
	least := 1.0
	for i := range wa {
		s := Similarity(wa[i], wb[i])
		if wa[i] != wb[i] && min(len([]rune(wa[i])), len([]rune(wb[i]))) < 4 {
			s = 0
		}
		least = min(least, s)
	}
	return least
}

// Similarity is the Jaro-Winkler similarity of two folded names, from 0
// (nothing in common) to 1 (equal).
func Similarity(a, b string) float64 {
	ra, rb := []rune(a), []rune(b)
	if len(ra) == 0 || len(rb) == 0 {
		if len(ra) == len(rb) {
			return 1
		}
		return 0
	}
	window := max(len(ra), len(rb))/2 - 1
	window = max(window, 0)
	ma, mb := make([]bool, len(ra)), make([]bool, len(rb))
	matches := 0
	for i := range ra {
		lo, hi := max(0, i-window), min(len(rb), i+window+1)
		for j := lo; j < hi; j++ {
			if !mb[j] && ra[i] == rb[j] {
				ma[i], mb[j] = true, true
				matches++
				break
			}
		}
	}
	if matches == 0 {
		return 0
	}
	transpositions, j := 0, 0
	for i := range ra {
		if !ma[i] {
			continue
		}
		for !mb[j] {
			j++
		}
		if ra[i] != rb[j] {
			transpositions++
		}
		j++
	}
	m := float64(matches)
	jaro := (m/float64(len(ra)) + m/float64(len(rb)) + (m-float64(transpositions)/2)/m) / 3
	prefix := 0
	for prefix < min(4, len(ra), len(rb)) && ra[prefix] == rb[prefix] {
		prefix++
	}
	return jaro + float64(prefix)*0.1*(1-jaro)
}

// Scores and threshold of the rules (see the README's "Identity
// resolution and merges").
const (
	// NameThreshold is the least NameSimilarity of two names that
	// proposes a pair, when they share the company (or the locale).
	NameThreshold = 0.9
	scoreExternal = 1.0
	scoreEmail    = 0.98
	// scoreEmailRule: equal only by a provider's rule (dots, +tag).
	scoreEmailRule = 0.9
	scorePhone     = 0.85
	// name matches weigh their similarity by how telling the context is.
	weightNameCompany = 0.7
	weightNameLocale  = 0.5
)

// identifierScore is the score and rule of a shared identifier.
func identifierScore(kind domain.IdentifierKind, exact bool) (float64, string) {
	switch kind {
	case domain.IdentifierExternal:
		return scoreExternal, "same external id"
	case domain.IdentifierPhone:
		return scorePhone, "same phone number (E.164)"
	}
	if exact {
		return scoreEmail, "same e-mail address"
	}
	return scoreEmailRule, "same mailbox by the provider's rules (dots and +tag ignored)"
}

// combine is the score of several independent reasons: the chance that at
// least one is right (noisy-or), rounded to three decimals so that it
// prints and compares the same everywhere.
func combine(scores []float64) float64 {
	miss := 1.0
	for _, s := range scores {
		miss *= 1 - s
	}
	return float64(int((1-miss)*1000+0.5)) / 1000
}
