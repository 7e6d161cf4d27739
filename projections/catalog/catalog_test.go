package catalog

import (
	"slices"
	"testing"

	"github.com/cxledger/cxledger/projections"
)

func TestAllAreValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range All(Deps{}) {
		if err := projections.ValidateProjection(p); err != nil {
			t.Error(err)
		}
		if seen[p.Name()] {
			t.Errorf("read model %s listed twice", p.Name())
		}
		seen[p.Name()] = true
	}
	if len(seen) != 11 {
		t.Errorf("%d read models, want 11", len(seen))
	}
}

func TestSelect(t *testing.T) {
	got, unknown := Select(Deps{}, "timeline", "nope", "identity", "nope")
	var names []string
	for _, p := range got {
		names = append(names, p.Name())
	}
	if !slices.Equal(names, []string{"identity", "timeline"}) || !slices.Equal(unknown, []string{"nope"}) {
		t.Fatalf("Select = %v, unknown %v", names, unknown)
	}
	if all, unknown := Select(Deps{}); len(all) != len(All(Deps{})) || unknown != nil {
		t.Fatalf("Select() = %d read models, unknown %v", len(all), unknown)
	}
}
