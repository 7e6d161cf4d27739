package duplicates_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/duplicates"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// sealKeys stands for the keyring: names are stored as "sealed:" tokens,
// a forgotten customer's tokens no longer open, and blind indexes are
// hashes that hold no letter of the value.
type sealKeys struct{ forgotten map[uuid.UUID]bool }

func (k sealKeys) Open(_ context.Context, c uuid.UUID, stored string) (string, bool, error) {
	plain, ok := strings.CutPrefix(stored, "sealed:")
	if !ok {
		return stored, true, nil
	}
	return plain, !k.forgotten[c], nil
}

func (sealKeys) Blind(kind domain.IdentifierKind, v string) string {
	h := sha256.Sum256([]byte(string(kind) + "\x00" + v))
	return hex.EncodeToString(h[:])
}

// A name is found by the prefixes of its words (folded, in any order),
// never by a substring; a rename moves it and erasure removes it; the
// index holds no plaintext name with keys; results page by id.
func TestSearch(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		keys := sealKeys{forgotten: map[uuid.UUID]bool{}}
		w := &world{l: projectiontest.NewLog(t), ids: map[string]uuid.UUID{}}
		w.reg("zoe", "sealed:Nguyễn, Zoé", "", "fr-FR")
		w.reg("zoe2", "sealed:Zoe Ng", "", "")
		w.reg("marta", "sealed:Marta Kowalska", "", "")
		w.reg("gone", "sealed:Zora Nguyen", "", "")
		w.reg("renamed", "sealed:Zoltan Nagy", "", "")
		w.l.Add(w.ids["renamed"], at, domain.ProfileUpdated{Name: new("sealed:Pierre Durand")})
		keys.forgotten[w.ids["gone"]] = true
		w.l.Add(w.ids["gone"], at, domain.CustomerForgotten{})
		r := projectiontest.Fold(t, b, duplicates.New(keys), w.l.Envelopes())

		ctx := context.Background()
		tests := []struct {
			q    string
			want []string
		}{
			{"zo", []string{"zoe", "zoe2"}},
			{"Zoé", []string{"zoe", "zoe2"}},
			{"ngu", []string{"zoe"}},
			{"zo ng", []string{"zoe", "zoe2"}},
			{"nguyen zoe", []string{"zoe"}},
			{"guye", nil},   // a substring, not a prefix
			{"zoltan", nil}, // renamed away
			{"durand p", []string{"renamed"}},
			{"zora", nil}, // forgotten
			{"kowalskaxyz", nil},
		}
		for _, tt := range tests {
			ids, more, err := duplicates.Search(ctx, r, keys, tt.q, uuid.Nil, 10)
			if err != nil {
				t.Fatalf("Search(%q): %v", tt.q, err)
			}
			var want []uuid.UUID
			for _, n := range tt.want {
				want = append(want, w.ids[n])
			}
			slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
			if !slices.Equal(ids, want) || more {
				t.Errorf("Search(%q) = %v (more %v), want %v", tt.q, ids, more, tt.want)
			}
		}

		first, more, err := duplicates.Search(ctx, r, keys, "zo", uuid.Nil, 1)
		if err != nil || len(first) != 1 || !more {
			t.Fatalf("page 1 = %v, %v, %v", first, more, err)
		}
		second, more, err := duplicates.Search(ctx, r, keys, "zo", first[0], 1)
		if err != nil || len(second) != 1 || more || second[0] == first[0] {
			t.Fatalf("page 2 = %v, %v, %v", second, more, err)
		}

		for _, q := range []string{"", "z", " . "} {
			if _, _, err := duplicates.Search(ctx, r, keys, q, uuid.Nil, 10); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("Search(%q) err = %v, want ErrInvalid", q, err)
			}
		}

		// The fake tokens are plaintext; the index keys must not be.
		entries := 0
		for line := range strings.Lines(projectiontest.Dump(t, b, r.(projectiontest.NamespaceReader).Namespace)) {
			if !strings.HasPrefix(line, "n/") {
				continue
			}
			entries++
			for _, plain := range []string{"nguyen", "zo", "marta", "kowal"} {
				if strings.Contains(strings.ToLower(line), plain) {
					t.Errorf("index entry %q holds %q", line, plain)
				}
			}
		}
		if entries == 0 {
			t.Error("no name-search entries in the read model")
		}
	})
}
