package projections

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Namespaces. Each build of a read model writes its own namespace,
// "<name>_v<version>_g<generation>": the version is the projection's schema
// version, the generation counts builds of that read model (every rebuild
// takes the next one), so that a new build never reuses the namespace of a
// live or dropped one. Namespaces name PostgreSQL tables and bbolt buckets:
// lower-case letters, digits and underscores, well under PostgreSQL's 63
// bytes (a name has at most 30).

// NamespaceFor returns the namespace of generation gen of version version of
// the read model name.
func NamespaceFor(name string, version, gen int) string {
	return name + "_v" + strconv.Itoa(version) + "_g" + strconv.Itoa(gen)
}

var namespaceSuffix = regexp.MustCompile(`^([1-9][0-9]{0,8})_g([1-9][0-9]{0,8})$`)

// parseNamespace reports whether ns is a namespace of the read model name,
// and which version and generation. It accepts exactly what NamespaceFor
// writes: the name's namespaces cannot be confused with those of a read
// model whose name starts with it ("orders" and "orders_v2"), because what
// follows the prefix must be digits, "_g", digits, and nothing else.
func parseNamespace(name, ns string) (version, gen int, ok bool) {
	rest, ok := strings.CutPrefix(ns, name+"_v")
	if !ok {
		return 0, 0, false
	}
	m := namespaceSuffix.FindStringSubmatch(rest)
	if m == nil {
		return 0, 0, false
	}
	version, _ = strconv.Atoi(m[1])
	gen, _ = strconv.Atoi(m[2])
	return version, gen, true
}

// ErrNotActive is returned when a read model has no active namespace yet:
// its projection has never been started on this backend.
var ErrNotActive = errors.New("read model not built yet")

// View runs fn on a consistent snapshot of the read model name as it is
// served now (its active namespace). It needs only the backend, not a
// running engine, so that a query service can read what another process
// projects.
//
// If a rebuild switches the read model to a new namespace while fn runs,
// fn may have read the old namespace as it was being dropped; View then
// calls fn again on the new one. fn should therefore build its result
// afresh on each call (assign, do not append to outer state).
func View(ctx context.Context, b Backend, name string, fn func(Reader) error) error {
	ns, err := b.Active(ctx, name)
	if err != nil {
		return fmt.Errorf("view %s: %w", name, err)
	}
	for attempt := 0; ; attempt++ {
		if ns == "" {
			return fmt.Errorf("view %s: %w", name, ErrNotActive)
		}
		ferr := b.View(ctx, ns, fn)
		now, err := b.Active(ctx, name)
		if err != nil {
			return fmt.Errorf("view %s: %w", name, err)
		}
		// A switch is rare and quick; three tries outlast any sane rate of
		// rebuilds.
		if now == ns || attempt == 2 {
			return ferr
		}
		ns = now
	}
}

// Digest returns a SHA-256 over every key and value of the read model name
// (its active namespace) in key order, as hex. Equal state gives an equal
// digest on every backend; the checkpoint is not part of it, so an
// incremental build and a full rebuild of the same events compare equal.
func Digest(ctx context.Context, b Backend, name string) (string, error) {
	var sum string
	err := View(ctx, b, name, func(r Reader) error {
		s, err := digest(ctx, r)
		sum = s
		return err
	})
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", name, err)
	}
	return sum, nil
}

// digest hashes every key and value of r, each prefixed by its length so
// that no two different states hash the same stream of bytes.
func digest(ctx context.Context, r Reader) (string, error) {
	h := sha256.New()
	var n [8]byte
	write := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	err := r.Scan(ctx, "", "", func(key string, value []byte) (bool, error) {
		write([]byte(key))
		write(value)
		return true, nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// digestNamespace is Digest of one namespace, whether active or not.
func digestNamespace(ctx context.Context, b Backend, ns string) (string, error) {
	var sum string
	err := b.View(ctx, ns, func(r Reader) error {
		s, err := digest(ctx, r)
		sum = s
		return err
	})
	return sum, err
}
