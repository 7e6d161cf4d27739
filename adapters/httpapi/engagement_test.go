package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/projections/attribution"
	"github.com/cxledger/cxledger/projections/recommend"
)

func purchaseBody(at string, skus ...string) string {
	var lines []string
	for _, s := range skus {
		lines = append(lines, fmt.Sprintf(`{"sku":%q,"category":"coffee","quantity":1,"unitAmount":1000}`, s))
	}
	return fmt.Sprintf(`{"events":[{"type":"PurchaseCompleted","data":{"orderId":%q,"amount":%d,"currency":"EUR","lines":[%s]},"metadata":{"occurredAt":%q,"actor":"service:shop"}}]}`,
		uuid.New(), 1000*len(skus), strings.Join(lines, ","), at)
}

// Three buyers of BEANS also bought MUG; a fourth customer who bought
// BEANS is offered MUG: 3 of the 4 BEANS buyers (75%). A campaign send two days
// before one of the purchases is credited with it.
func TestRecommendationsAndCampaignsRoutes(t *testing.T) {
	h := start(t, nil)
	post := func(id uuid.UUID, body string) {
		t.Helper()
		if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+id.String()+"/events", body); r.status != http.StatusOK {
			t.Fatalf("append: %d %s", r.status, r.body)
		}
	}
	for range 3 {
		post(h.register(t), purchaseBody("2026-03-05T10:00:00Z", "BEANS", "MUG"))
	}
	zoe := h.register(t)
	post(zoe, `{"events":[{"type":"ConsentGranted","data":{"channel":"email","purpose":"marketing"},"metadata":{"occurredAt":"2026-03-01T00:00:00Z","actor":"service:web"}},{"type":"CampaignTouched","data":{"campaign":"spring","channel":"email","action":"sent"},"metadata":{"occurredAt":"2026-03-03T10:00:00Z","actor":"service:marketing"}}]}`)
	post(zoe, purchaseBody("2026-03-05T10:00:00Z", "BEANS"))

	r := h.call(t, httpapi.RoleService, "GET", fmt.Sprintf("/v1/customers/%s/recommendations?minPosition=%d", zoe, h.head(t)), "")
	var rec recommend.Recommendations
	if err := json.Unmarshal(r.body, &rec); err != nil || r.status != 200 || len(rec.Products) == 0 {
		t.Fatalf("recommendations: %d %s", r.status, r.body)
	}
	if p := rec.Products[0]; p.Item != "MUG" || p.Affinity == nil || p.Affinity.Anchor != "BEANS" || !strings.Contains(p.Reason, "bought BEANS; 75% of BEANS buyers also bought MUG (3 of 4)") {
		t.Errorf("first recommendation %+v", p)
	}
	if r := h.call(t, httpapi.RoleService, "GET", "/v1/customers/"+zoe.String()+"/recommendations?minConfidence=2", ""); r.status != http.StatusBadRequest {
		t.Errorf("minConfidence=2: %d", r.status)
	}

	// The attribution model is its own read model: wait for it too.
	r = h.call(t, httpapi.RoleAnalyst, "GET", fmt.Sprintf("/v1/analytics/campaigns?campaign=spring&minPosition=%d", h.head(t)), "")
	var rep attribution.Report
	if err := json.Unmarshal(r.body, &rep); err != nil || r.status != 200 || len(rep.Campaigns) != 1 {
		t.Fatalf("campaigns: %d %s", r.status, r.body)
	}
	if c := rep.Campaigns[0]; c.Campaign != "spring" || c.Touches.Sent != 1 || c.LastTouch.Purchases != 1 || c.FirstTouch.Purchases != 1 {
		t.Errorf("spring = %+v", c)
	}
}
