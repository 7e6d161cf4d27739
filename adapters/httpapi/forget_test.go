package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections/timeline"
	"github.com/google/uuid"
)

// The API with a keyring: stored events are sealed, every answer that
// shows them reveals them, and POST /v1/customers/{id}/forget (admin only)
// erases the customer everywhere the API looks, repeatably.
func TestForgetOverHTTP(t *testing.T) {
	keys := keyringtest.Memory(t)
	h := start(t, func(c *httpapi.Config) { c.Keyring = keys })
	id := uuid.New()
	email := "zoe.httpsecret@example.com"
	if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers", registerBody(id, email)); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	other := h.register(t)
	customer := "/v1/customers/" + id.String()

	recs, err := h.store.ReadAll(context.Background(), eventstore.ReadAllOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if strings.Contains(string(r.Data), "Zoë") || strings.Contains(string(r.Data), "httpsecret") {
			t.Fatalf("stored in plaintext: %s", r.Data)
		}
	}
	if r := h.call(t, httpapi.RoleService, "GET", customer+"/events", ""); r.status != 200 || !strings.Contains(string(r.body), "Zoë Ñúñez") || !strings.Contains(string(r.body), email) {
		t.Fatalf("stream before the erasure: %d %s", r.status, r.body)
	}
	// The global feed is served sealed: personal data is revealed only
	// through per-customer routes, whose reads are in the access log.
	if r := h.call(t, httpapi.RoleAnalyst, "GET", "/v1/events", ""); r.status != 200 || strings.Contains(string(r.body), email) || !strings.Contains(string(r.body), "enc:v1:") {
		t.Fatalf("feed before the erasure: %d %s", r.status, r.body)
	}
	if r := h.call(t, httpapi.RoleService, "GET", "/v1/customers?identifier=email:"+email+"&minPosition=4", ""); r.status != 200 || !strings.Contains(string(r.body), id.String()) || !strings.Contains(string(r.body), `"value":"`+email+`"`) {
		t.Fatalf("lookup before the erasure: %d %s", r.status, r.body)
	}

	body := `{"request":"DSR-2026-0099","reason":"Zoë asked by mail"}`
	for _, role := range []httpapi.Role{httpapi.RoleService, httpapi.RoleAnalyst, httpapi.RoleAuditor} {
		if r := h.call(t, role, "POST", customer+"/forget", body); r.status != http.StatusForbidden {
			t.Fatalf("%s may forget: %d", role, r.status)
		}
	}
	for _, bad := range []string{`{}`, `{"request":"x","extra":1}`, `not json`} {
		if r := h.call(t, httpapi.RoleAdmin, "POST", customer+"/forget", bad); r.status/100 != 4 {
			t.Fatalf("forget with %s: %d", bad, r.status)
		}
	}
	if r := h.call(t, httpapi.RoleAdmin, "POST", "/v1/customers/"+uuid.NewString()+"/forget", body); r.status != http.StatusNotFound {
		t.Fatalf("forget of an unknown customer: %d %s", r.status, r.body)
	}
	r := h.call(t, httpapi.RoleAdmin, "POST", customer+"/forget", body)
	var res httpapi.ForgetResponse
	if r.status != 200 || json.Unmarshal(r.body, &res) != nil || !res.Appended || !res.KeyDestroyed || res.Position == nil {
		t.Fatalf("forget: %d %s", r.status, r.body)
	}
	if r := h.call(t, httpapi.RoleAdmin, "POST", customer+"/forget", body); r.status != 200 || !strings.Contains(string(r.body), `"appended":false`) {
		t.Fatalf("forget again: %d %s", r.status, r.body)
	}
	pos := "minPosition=" + jsonNumber(*res.Position)

	for _, c := range []struct {
		role httpapi.Role
		path string
		name bool // the answer is about the forgotten customer only
	}{
		{httpapi.RoleService, customer + "/events", true},
		{httpapi.RoleService, customer + "?" + pos, true},
		{httpapi.RoleAuditor, customer + "/timeline?" + pos, true},
	} {
		r := h.call(t, c.role, "GET", c.path, "")
		if r.status != 200 || c.name && strings.Contains(string(r.body), "Zoë") || strings.Contains(string(r.body), "httpsecret") || strings.Contains(string(r.body), "enc:v1:"+id.String()) {
			t.Errorf("GET %s after the erasure: %d %s", c.path, r.status, r.body)
		}
	}
	if r := h.call(t, httpapi.RoleService, "GET", customer+"/events", ""); !strings.Contains(string(r.body), `"name":"`+keyring.Erased+`"`) {
		t.Errorf("the stream does not show the erasure: %s", r.body)
	}
	var view query.CustomerView
	if r := h.call(t, httpapi.RoleService, "GET", customer+"?"+pos, ""); json.Unmarshal(r.body, &view) != nil || view.Erasure == nil || view.Erasure.Request != "DSR-2026-0099" {
		t.Errorf("view after the erasure: %s", r.body)
	}
	var tl timeline.Result
	if r := h.call(t, httpapi.RoleAuditor, "GET", customer+"/timeline?"+pos, ""); json.Unmarshal(r.body, &tl) != nil || len(tl.Entries) != 3 || !tl.Entries[0].Erased {
		t.Errorf("timeline after the erasure: %s", r.body)
	}
	if r := h.call(t, httpapi.RoleService, "GET", "/v1/customers?identifier=email:"+email+"&"+pos, ""); r.status != http.StatusNotFound {
		t.Errorf("lookup of the forgotten e-mail: %d %s", r.status, r.body)
	}
	if r := h.call(t, httpapi.RoleService, "POST", customer+"/events", callBody("any", uuid.New())); r.status != http.StatusConflict {
		t.Errorf("append after the erasure: %d %s", r.status, r.body)
	}
	// The other customer still reads in plaintext.
	if r := h.call(t, httpapi.RoleService, "GET", "/v1/customers/"+other.String()+"/events", ""); !strings.Contains(string(r.body), "Zoë Ñúñez") {
		t.Errorf("the other customer: %s", r.body)
	}

	// The feeds serve the events as stored: sealed, never plaintext.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url+"/v1/events/live?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+tokens[httpapi.RoleAuditor])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	seen := 0
	for seen < 4 && sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		seen++
		if strings.Contains(line, "Zoë") || strings.Contains(line, "httpsecret") || !strings.Contains(line, "enc:v1:") {
			t.Errorf("live feed: %s", line)
		}
	}
	if seen < 4 {
		t.Fatalf("live feed: %d events, %v", seen, sc.Err())
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }
