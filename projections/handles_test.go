package projections_test

import (
	"testing"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/customer360"
)

func TestHandles(t *testing.T) {
	all := customer360.New()
	some := analytics.NewChannels(analytics.Config{})
	for _, tc := range []struct {
		p    projections.Projection
		typ  string
		want bool
	}{
		{all, domain.TypeCallLogged, true},
		{all, domain.TypeCustomerForgotten, true},
		{all, "AccessRecorded", false},
		{some, domain.TypeCallLogged, true},
		{some, domain.TypePurchaseCompleted, false},
		{some, "AccessRecorded", false},
	} {
		if got := projections.Handles(tc.p)(tc.typ); got != tc.want {
			t.Errorf("Handles(%s)(%s) = %v, want %v", tc.p.Name(), tc.typ, got, tc.want)
		}
	}
}
