package projections

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// The rules every read-model backend enforces alike, so that a projection
// valid on one backend is valid on all of them.

// MaxKeyLen is the longest read-model key, in bytes: PostgreSQL's B-tree
// index entries must fit a third of a page, and a fixed limit well below
// that makes the failure a clear message at Put on every backend.
const MaxKeyLen = 1024

// storageNamePattern is the rule for namespaces and read-model names in a
// backend: PostgreSQL builds table names rm_<ns> (63-byte identifiers) and
// needs no quoting for such names.
var storageNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,59}$`)

// CheckName reports whether s may name a namespace or a read model in a
// backend; kind names what s is in the error.
func CheckName(kind, s string) error {
	if !storageNamePattern.MatchString(s) {
		return fmt.Errorf("%s %q: want lower-case letters, digits and underscores, starting with a letter, at most 60 bytes", kind, s)
	}
	return nil
}

// CheckKey reports whether every backend can store key: non-empty, at most
// MaxKeyLen bytes, valid UTF-8 without NUL (PostgreSQL text holds no NUL).
func CheckKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case len(key) > MaxKeyLen:
		return fmt.Errorf("key of %d bytes, more than %d", len(key), MaxKeyLen)
	case !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("key %q: want valid UTF-8 without NUL", key)
	}
	return nil
}

// reservedNames and reservedPrefixes are read-model names that would make a
// PostgreSQL view collide with the ledger's own tables in the same schema,
// now or later.
var (
	reservedNames    = []string{"events", "schema_version"}
	reservedPrefixes = []string{"rm_", "cxledger"}
)

// Reserved returns why name cannot name a read model, or "".
func Reserved(name string) string {
	if slices.Contains(reservedNames, name) {
		return fmt.Sprintf("read-model name %q is reserved for the ledger's own tables", name)
	}
	for _, prefix := range reservedPrefixes {
		if strings.HasPrefix(name, prefix) {
			return fmt.Sprintf("read-model name %q: the prefix %q is reserved for the ledger's own tables", name, prefix)
		}
	}
	return ""
}
