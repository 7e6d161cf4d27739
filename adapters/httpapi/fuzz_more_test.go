package httpapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cxledger/cxledger/adapters/strictjson"
	"github.com/google/uuid"
)

// tokenCandidates returns what a token file or CXLEDGER_TOKENS value may
// hold as tokens, in any of its formats, as well as a lenient reader can
// tell.
func tokenCandidates(data string) (tokens []string) {
	trimmed := strings.TrimSpace(data)
	if strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[") {
		type entry struct{ Token string }
		var doc struct{ Tokens []entry }
		var list []entry
		_ = json.Unmarshal([]byte(trimmed), &doc)
		_ = json.Unmarshal([]byte(trimmed), &list)
		for _, e := range append(doc.Tokens, list...) {
			tokens = append(tokens, e.Token)
		}
		return tokens
	}
	for _, line := range strings.FieldsFunc(data, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		f := strings.Fields(line)
		if len(f) == 2 {
			tokens = append(tokens, f[1])
		}
		if _, tok, ok := strings.Cut(line, ":"); ok {
			tokens = append(tokens, strings.TrimSpace(tok))
		}
	}
	return tokens
}

// FuzzParseTokens: the token file (and CXLEDGER_TOKENS) is read at start.
// Parsing never panics; its errors never quote a token, even from a line
// in the wrong format; and every token accepted maps to a known role.
func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{
		"# operators\nservice svc-0123456789abcdef\n\nadmin adm-0123456789abcdef\n",
		"analyst short\n",
		"intruder aud-0123456789abcdef\n",
		"service a b c\n",
		`{"tokens":[{"role":"auditor","token":"aud-0123456789abcdef"}]}`,
		`[{"role":"admin","token":"adm-0123456789abcdef"},{"role":"root","token":"x"}]`,
		`{"tokens":[{"role":"admin","token":1}]}`,
		"service:svc-0123456789abcdef, analyst:ana-0123456789abcdef",
		"admin:tooshort,",
		"\xff\xfe service svc-0123456789abcdef",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var file, env Tokens
		fileErr := ParseTokens([]byte(data), &file)
		envErr := ParseTokensEnv(data, &env)
		tokens := tokenCandidates(data)
		for _, err := range []error{fileErr, envErr} {
			if err == nil {
				continue
			}
			for _, tok := range tokens {
				if len(tok) >= MinTokenLength && strings.Contains(err.Error(), tok) {
					t.Fatalf("error quotes a token: %v", err)
				}
			}
		}
		for _, toks := range []*Tokens{&file, &env} {
			for _, tok := range tokens {
				if role, ok := toks.Role(tok); ok && !slices.Contains(Roles, role) {
					t.Fatalf("token maps to unknown role %q", role)
				}
			}
		}
	})
}

// FuzzDecodeRegisterRequest: whatever the body, the registration decoder
// never panics, every error maps to a 4xx problem, and what it accepts is
// a registration and identifier links that validate and encode.
func FuzzDecodeRegisterRequest(f *testing.F) {
	for _, s := range []string{
		`{"customerId":"0f8c7d2e-3b4a-4c5d-9e6f-7a8b9c0d1e2f","eventId":"7d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a","name":"Ana Ñúñez","country":"ES","identifiers":[{"kind":"email","value":"ana@example.com"},{"kind":"phone","value":"+34 911 23 45 67"}],"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}`,
		`{"name":"Zoë","metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}`,
		`{"name":"","identifiers":[{"kind":"fax","value":"1"}],"metadata":{}}`,
		`{"name":"x","metadata":{"occurredAt":20260102,"actor":"service:crm"}}`,
		`{"name":"x","customerId":"nope"}`,
		`{"name":"caf` + "\xe9" + `"}`,
		`{"name":"Ana","NAME":"Bruno","metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}`,
		`{"name":"Ana\udbff","metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}`,
		`{"nmae":"x"}`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	fixed := uuid.MustParse("0190f5a4-7b9e-7c3a-9d2e-4b1f6a8c0d11")
	f.Fuzz(func(t *testing.T, body []byte) {
		id, tps, err := DecodeRegisterRequest(bytes.NewReader(body), now, func() uuid.UUID { return fixed })
		if err != nil {
			if p, internal := problemFor(err); internal || p.Status < 400 || p.Status > 499 {
				t.Fatalf("error %v maps to %d (internal %v)", err, p.Status, internal)
			}
			return
		}
		if id == uuid.Nil || len(tps) == 0 {
			t.Fatalf("accepted a registration of %s with %d events", id, len(tps))
		}
		if err := strictjson.Check(body); err != nil {
			t.Fatalf("accepted a body strictjson refuses: %v", err)
		}
		seen := map[uuid.UUID]bool{}
		for i, tp := range tps {
			if err := tp.Event.Validate(); err != nil {
				t.Fatalf("event %d accepted but invalid: %v", i, err)
			}
			if err := tp.Metadata.Validate(now); err != nil {
				t.Fatalf("event %d metadata accepted but invalid: %v", i, err)
			}
			if tp.ID == uuid.Nil || seen[tp.ID] {
				t.Fatalf("event %d has id %s, nil or repeated", i, tp.ID)
			}
			seen[tp.ID] = true
		}
	})
}

// FuzzDecodeForgetRequest: the erasure request decoder never panics, every
// error maps to a 4xx problem, and what it accepts is strict JSON with a
// request reference, and a CustomerForgotten that validates.
func FuzzDecodeForgetRequest(f *testing.F) {
	for _, s := range []string{
		`{"request":"DSR-2026-001","reason":"art. 17 request by e-mail"}`,
		`{"request":"DSR-1","request":"DSR-2"}`, `{"request":"DSR-1","Reason":"a","reason":"b"}`,
		`{"request":"DSR-\ud800"}`, "{\"request\":\"DSR\",\"reason\":\"caf\xe9\"}",
		`{"request":" "}`, `{}`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeForgetRequest(bytes.NewReader(body))
		if err != nil {
			if p, internal := problemFor(err); internal || p.Status < 400 || p.Status > 499 {
				t.Fatalf("error %v maps to %d (internal %v)", err, p.Status, internal)
			}
			return
		}
		if err := strictjson.Check(body); err != nil {
			t.Fatalf("accepted a body strictjson refuses: %v", err)
		}
		if strings.TrimSpace(req.Request) == "" || !utf8.ValidString(req.Reason) {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// FuzzDecodeFitRequest: whatever the body of POST /v1/analytics/model/fit,
// the decoder never panics, every error maps to a 4xx problem, and what it
// accepts has a horizon within bounds and a calibration end before the
// analysis date's day.
func FuzzDecodeFitRequest(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"asOf":"2014-12-31"}`, `{"asOf":"2014-12-31","calibrationEnd":"2014-06-30","horizonDays":90}`,
		`{"asOf":"2014-12-31T23:59:59+14:00","calibrationEnd":"2014-12-31T00:00:00-12:00"}`,
		`{"calibrationEnd":"2030-01-01"}`, `{"horizonDays":-1}`, `{"horizonDays":1e9}`, `{"asOf":7}`,
		`{"asof":"2014-12-31"}`, `{"asOfDate":"x"}`, `null`, `[]`, ``, `{"asOf":"caf` + "\xe9" + `"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		opts, err := decodeFitRequest(bytes.NewReader(body), now)
		if err != nil {
			if p, internal := problemFor(err); internal || p.Status < 400 || p.Status > 499 {
				t.Fatalf("error %v maps to %d (internal %v)", err, p.Status, internal)
			}
			return
		}
		if opts.Horizon < 0 || opts.Horizon > 3660 {
			t.Fatalf("accepted horizon %d", opts.Horizon)
		}
		asOf := opts.AsOf
		if asOf.IsZero() {
			asOf = now
		}
		if !opts.CalibrationEnd.IsZero() && !opts.CalibrationEnd.UTC().Truncate(24*time.Hour).Before(asOf.UTC().Truncate(24*time.Hour)) {
			t.Fatalf("accepted calibration end %v with analysis date %v", opts.CalibrationEnd, asOf)
		}
	})
}
