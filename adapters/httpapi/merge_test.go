package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/query"
)

// The duplicates list proposes two records of one Gmail mailbox; a merge
// with stale versions is 409; a merge makes the absorbed id redirect (308,
// Location) to the survivor, whose view has both histories and who no
// longer pairs with it; an unmerge undoes it.
func TestDuplicatesMergeAndUnmerge(t *testing.T) {
	h := start(t, nil)
	a, b := uuid.New(), uuid.New()
	for id, email := range map[uuid.UUID]string{a: "zoe.nguyen@gmail.com", b: "ZoeNguyen+shop@gmail.com"} {
		if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers", registerBody(id, email)); r.status != http.StatusCreated && r.status != http.StatusOK {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
	}
	if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+b.String()+"/events", callBody("any", uuid.New())); r.status != http.StatusOK {
		t.Fatalf("append: %d %s", r.status, r.body)
	}
	r := h.call(t, httpapi.RoleAnalyst, "GET", fmt.Sprintf("/v1/identity/duplicates?minPosition=%d", h.head(t)), "")
	var page query.DuplicatesPage
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 || len(page.Pairs) != 1 {
		t.Fatalf("duplicates: %d %s", r.status, r.body)
	}
	if p := page.Pairs[0]; p.Score != 0.9 || p.Reasons[0].Kind != "email" || !strings.Contains(p.Reasons[0].Rule, "provider") {
		t.Errorf("pair %+v", p)
	}

	stale := fmt.Sprintf(`{"absorbed":%q,"reason":"same gmail","expectedVersion":0,"absorbedExpectedVersion":0}`, b)
	if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+a.String()+"/merge", stale); r.status != http.StatusConflict {
		t.Fatalf("merge with a stale version: %d %s", r.status, r.body)
	}
	if r := h.call(t, httpapi.RoleAuditor, "POST", "/v1/customers/"+a.String()+"/merge", stale); r.status != http.StatusForbidden {
		t.Fatalf("auditor merge: %d", r.status)
	}
	r = h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+a.String()+"/merge", fmt.Sprintf(`{"absorbed":%q,"reason":"same gmail","expectedVersion":1,"absorbedExpectedVersion":2}`, b))
	var merged httpapi.MergeResponse
	if err := json.Unmarshal(r.body, &merged); err != nil || r.status != http.StatusOK || merged.MergeID == uuid.Nil {
		t.Fatalf("merge: %d %s", r.status, r.body)
	}
	pos := h.head(t)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/customers/%s?minPosition=%d", h.url, b, pos), nil)
	req.Header.Set("Authorization", "Bearer "+tokens[httpapi.RoleService])
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("/v1/customers/%s?minPosition=%d", a, pos); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("absorbed read: %d Location %q; want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	r = h.call(t, httpapi.RoleService, "GET", fmt.Sprintf("/v1/customers/%s?minPosition=%d", b, pos), "") // followed
	var v query.CustomerView
	if err := json.Unmarshal(r.body, &v); err != nil || r.status != 200 || v.CustomerID != a || len(v.Identifiers) != 2 || v.Touches["phone"] != 1 {
		t.Fatalf("survivor view: %d %s", r.status, r.body)
	}
	r = h.call(t, httpapi.RoleAnalyst, "GET", fmt.Sprintf("/v1/identity/duplicates?minPosition=%d", pos), "")
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Pairs) != 0 {
		t.Errorf("duplicates after the merge: %s", r.body)
	}

	r = h.call(t, httpapi.RoleAdmin, "POST", "/v1/customers/"+a.String()+"/unmerge", fmt.Sprintf(`{"absorbed":%q,"reason":"two people","mergeId":%q}`, b, merged.MergeID))
	if r.status != http.StatusOK {
		t.Fatalf("unmerge: %d %s", r.status, r.body)
	}
	r = h.call(t, httpapi.RoleService, "GET", fmt.Sprintf("/v1/customers/%s?minPosition=%d", b, h.head(t)), "")
	if err := json.Unmarshal(r.body, &v); err != nil || r.status != 200 || v.CustomerID != b {
		t.Fatalf("absorbed after unmerge: %d %s", r.status, r.body)
	}
}
