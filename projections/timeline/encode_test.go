package timeline

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The hand-written encoding must give exactly encoding/json's bytes, so
// that stored timelines do not change (and the read model's Version with
// them): every field, the omitted empty ones, every escape.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `quote " back \ slash`, "<b>&amp;</b>", "tab\tnl\ncr\r", "\b\f\x00\x01\x1f\x7f",
		"ünïcødé 日本語 🎉", "bad \xff\xfe utf8 \xc3", "line\u2028sep\u2029", "enc:v1:AbC-_="}
	n := 0
	for i, s := range strs {
		for j := range strs {
			r := &ref{Type: s, Channel: strs[j], Source: strs[(i+j)%len(strs)]}
			want, werr := json.Marshal(r)
			got, gerr := r.AppendJSON([]byte("prefix"))
			if werr != nil || gerr != nil {
				t.Fatalf("errors: encoding/json %v, AppendJSON %v", werr, gerr)
			}
			if !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Fatalf("ref %d/%d:\n got %s\nwant prefix%s", i, j, got, want)
			}
			n++
		}
	}
	if n != len(strs)*len(strs) {
		t.Fatalf("%d cases", n)
	}
}
