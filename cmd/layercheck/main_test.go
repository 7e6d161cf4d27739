package main

import "testing"

func TestViolation(t *testing.T) {
	m := module + "/"
	tests := []struct {
		from, imp string
		ok        bool
	}{
		{m + "domain", "github.com/google/uuid", true},
		{m + "domain", m + "eventstore", false},
		{m + "eventstore", m + "domain", false},
		{m + "eventstore/boltstore", m + "eventstore", true},
		{m + "eventstore/boltstore", m + "eventstore/storetest", true},
		{m + "eventstore/boltstore", m + "eventstore/pgstore", false},
		{m + "eventstore/boltstore", m + "domain", false},
		{m + "eventstore/pgstore", m + "eventstore/pgstore/pgtest", true},
		{m + "projections", m + "domain", true},
		{m + "projections", m + "adapters/httpapi", false},
		{m + "projections/readmodel", m + "projections", true},
		{m + "adapters/httpapi", m + "projections", true},
		{m + "adapters/httpapi", m + "cmd/cxledger", false},
		{m + "cmd/cxledger", m + "adapters/httpapi", true},
		{m + "domain/sub", m + "domain", true},
	}
	for _, tt := range tests {
		got := violation(tt.from, tt.imp) == ""
		if got != tt.ok {
			t.Errorf("violation(%s, %s): allowed=%v, want %v (%s)", rel(tt.from), rel(tt.imp), got, tt.ok, violation(tt.from, tt.imp))
		}
	}
}
