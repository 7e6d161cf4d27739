package timeline

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The hand-written encoding must give exactly encoding/json's bytes, so
// that stored timelines do not change (and the read model's Version with
// them): every field, the omitted empty ones, every escape.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `quote " back \ slash`, "<b>&amp;</b>", "tab\tnl\ncr\r", "\b\f\x00\x01\x1f\x7f",
		"ünïcødé 日本語 🎉", "bad \xff\xfe utf8 \xc3", "line\u2028sep\u2029", "enc:v1:AbC-_="}
	times := []time.Time{
		time.Date(2026, 12, 7, 2, 8, 9, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 100, time.FixedZone("CET", 3600)),
		time.Date(2000, 6, 1, 0, 0, 0, 5, time.FixedZone("odd", -(5*3600+30*60))),
		time.Date(2000, 6, 1, 0, 0, 0, 5, time.FixedZone("secs", 3600+7)),
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
		{},
	}
	n := 0
	for i, s := range strs {
		for j, at := range times {
			r := &record{Entry: Entry{
				EventID: uuid.New(), Type: s, Summary: strs[(i+1)%len(strs)], Actor: strs[(i+2)%len(strs)],
				Channel: strs[(i+3)%len(strs)], Source: strs[(i+j)%len(strs)], OccurredAt: at, RecordedAt: times[(i+j+1)%len(times)],
				CorrelationID: strs[(j+4)%len(strs)], CausationID: strs[(i*j)%len(strs)], StreamVersion: uint64(i * j * 1000003),
				Position: uint64(1)<<uint(i+j*5) - 1, Erased: (i+j)%2 == 0,
			}, Redacted: strs[(i+j+5)%len(strs)]}
			want, werr := json.Marshal(r)
			got, gerr := r.AppendJSON([]byte("prefix"))
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("errors differ: encoding/json %v, AppendJSON %v", werr, gerr)
			}
			if werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Fatalf("record %d/%d:\n got %s\nwant prefix%s", i, j, got, want)
			}
			n++
		}
	}
	if n != len(strs)*len(times) {
		t.Fatalf("%d cases", n)
	}
}
