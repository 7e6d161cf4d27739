package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/google/uuid"
)

// BenchmarkDecodeAppendRequest decodes a 100-event append with and without
// event ids: without, the body is read a second time to tell an omitted id
// from the nil uuid (which is refused).
func BenchmarkDecodeAppendRequest(b *testing.B) {
	for _, withIDs := range []bool{true, false} {
		name := "ids=given"
		if !withIDs {
			name = "ids=omitted"
		}
		b.Run(name, func(b *testing.B) {
			events := make([]string, 100)
			for i := range events {
				id := uuid.Nil
				if withIDs {
					id = uuid.New()
				}
				events[i] = event(id, "CallLogged", `{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected","summary":"Asked about delivery of order #10472 — livraison prévue demain"}`)
			}
			body := appendBody(`"any"`, events...)
			now := time.Now()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := httpapi.DecodeAppendRequest(strings.NewReader(body), now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
