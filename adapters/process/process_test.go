package process

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Roles
		err  string
	}{
		{"all", All(), ""},
		{"api", Roles{API: true}, ""},
		{"projections, reactors ,relay", Roles{Projections: true, Reactors: true, Relay: true}, ""},
		{"api,projections,reactors,relay,delivery", All(), ""},
		{"api,projections,reactors,relay", Roles{API: true, Projections: true, Reactors: true, Relay: true}, ""},
		{"delivery", Roles{Delivery: true}, ""},
		{"", Roles{}, "no role"},
		{" , ", Roles{}, "no role"},
		{"api,api", Roles{}, `"api" listed twice`},
		{"api,web", Roles{}, `unknown role "web"`},
		{"API", Roles{}, `unknown role "API"`},
	} {
		got, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q): %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if back, err := Parse(got.String()); err != nil || back != got {
			t.Errorf("Parse(%q.String() = %q) = %+v, %v", tc.in, got.String(), back, err)
		}
	}
	if _, err := Parse(""); !errors.Is(err, ErrNoRole) {
		t.Errorf("Parse(\"\"): %v, want ErrNoRole", err)
	}
	if s := (Roles{}).String(); s != "none" {
		t.Errorf("zero Roles: %q", s)
	}
}
