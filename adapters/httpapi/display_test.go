package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/google/uuid"
)

// TestTimelineNeutralizesHiddenCharacters: a name and a note carrying a
// bidi override and a zero-width space are stored as sent (they are
// data), while the timeline, text for people, shows them as marks.
func TestTimelineNeutralizesHiddenCharacters(t *testing.T) {
	h := start(t, nil)
	id := uuid.New()
	name := "Ana \u202eztinaM\u202c"
	body := fmt.Sprintf(`{"customerId":%q,"name":%q,"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}`, id, name)
	if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers", body); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	r := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+id.String()+"/events",
		`{"events":[{"type":"NoteAdded","data":{"body":"paid\u200b in full \u2066ok\u2069"},"metadata":{"occurredAt":"2026-01-03T10:00:00Z","actor":"user:marta"}}]}`)
	if r.status != http.StatusOK {
		t.Fatalf("append: %d %s", r.status, r.body)
	}
	var appended httpapi.AppendResponse
	if err := json.Unmarshal(r.body, &appended); err != nil {
		t.Fatal(err)
	}

	stream := h.call(t, httpapi.RoleService, "GET", "/v1/customers/"+id.String()+"/events", "")
	if stream.status != http.StatusOK || !strings.Contains(string(stream.body), "\u202e") || !strings.Contains(string(stream.body), "\u200b") {
		t.Fatalf("the stored events lost their characters: %d %s", stream.status, stream.body)
	}

	tl := h.call(t, httpapi.RoleAuditor, "GET", fmt.Sprintf("/v1/customers/%s/timeline?minPosition=%d", id, appended.Position), "")
	if tl.status != http.StatusOK {
		t.Fatalf("timeline: %d %s", tl.status, tl.body)
	}
	if i := bytes.IndexFunc(tl.body, isHiddenRune); i >= 0 {
		t.Errorf("timeline shows a hidden character raw: %s", tl.body)
	}
	for _, want := range []string{"Customer registered: Ana [U+202E]ztinaM[U+202C]", "Note: paid[U+200B] in full [U+2066]ok[U+2069]"} {
		if !strings.Contains(string(tl.body), want) {
			t.Errorf("timeline lacks %q: %s", want, tl.body)
		}
	}
}
