package customer360_test

import (
	"strings"
	"testing"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// Sealed values are kept as they come (the edge reveals them): a sealed
// identifier is listed as its token, once however often it is linked, and
// the erasure blanks the address with the rest of the profile.
func TestSealedValues(t *testing.T) {
	token := func(s string) string { return domain.SealedPrefix + zoe.String() + ":" + s }
	l := projectiontest.NewLog(t)
	var envs []domain.Envelope
	envs = append(envs, l.Add(zoe, at(0), domain.CustomerRegistered{CustomerID: zoe, Name: "x", Address: "y"}))
	envs[0].Event = domain.CustomerRegistered{CustomerID: zoe, Name: token("bmFtZQ"), Address: token("YWRkcmVzcw")}
	for i := range 2 {
		env := l.Add(zoe, at(1+i), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "zoe@example.fr"})
		env.Event = domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: token("ZW1haWw")}
		envs = append(envs, env)
	}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		projectiontest.FoldBatches(t, b, ns, customer360.New(), envs, 0)
		v, err := get(t, b, zoe)
		if err != nil {
			t.Fatal(err)
		}
		if v.Profile.Name != token("bmFtZQ") || v.Profile.Address != token("YWRkcmVzcw") {
			t.Errorf("profile = %+v, want the tokens", v.Profile)
		}
		if len(v.Identifiers) != 1 || v.Identifiers[0].Value != token("ZW1haWw") {
			t.Errorf("identifiers = %+v, want the token once", v.Identifiers)
		}
		projectiontest.FoldBatches(t, b, ns, customer360.New(), []domain.Envelope{l.Add(zoe, at(5), domain.CustomerForgotten{Request: "DSR-9"})}, 0)
		v, err = get(t, b, zoe)
		if err != nil {
			t.Fatal(err)
		}
		if v.Profile != (customer360.Profile{}) || len(v.Identifiers) != 0 || v.Erasure == nil {
			t.Errorf("after the erasure: profile %+v, identifiers %+v, erasure %+v", v.Profile, v.Identifiers, v.Erasure)
		}
		if dump := projectiontest.Dump(t, b, ns); strings.Contains(dump, domain.SealedPrefix) {
			t.Errorf("the erased view still holds tokens:\n%s", dump)
		}
	})
}
