package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

// 'cxledger analytics fit' fits the model as of the analysis date an
// analyst names and pins it; 'analytics model' prints what is stored; the
// view then scores by it. A replay refits the model.
func TestAnalyticsFitAndModel(t *testing.T) {
	for name, store := range storeFlags(t) {
		t.Run(name, func(t *testing.T) {
			with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }
			must := func(args ...string) string {
				t.Helper()
				code, out, errOut := cli(t, "", with(args...)...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, errOut)
				}
				return out
			}
			customer := decodeAppended(t, must("append", "--type", "CustomerRegistered", "--event", `{"name":"Zoë Ñúñez"}`)).CustomerID.String()
			for _, at := range []string{"2014-11-03T10:00:00Z", "2014-12-01T10:00:00Z"} {
				must("append", "--customer", customer, "--type", "PurchaseCompleted", "--occurred-at", at, "--event",
					`{"orderId":"`+uuid.NewString()+`","amount":1250,"currency":"EUR","lines":[{"sku":"TEA-GREEN","quantity":2,"unitAmount":625}]}`)
			}
			must("replay")
			type model struct {
				AsOf     time.Time `json:"asOf"`
				Pinned   bool      `json:"pinned"`
				Buyers   int       `json:"buyers"`
				Position uint64    `json:"position"`
			}
			var m model
			if err := json.Unmarshal([]byte(must("analytics", "model")), &m); err != nil || m.Pinned || m.Buyers != 1 || m.Position == 0 {
				t.Fatalf("model after replay: %+v, %v", m, err)
			}
			if err := json.Unmarshal([]byte(must("analytics", "fit", "--as-of", "2014-12-31")), &m); err != nil || !m.Pinned || !m.AsOf.Equal(time.Date(2014, 12, 31, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("fit as of 2014-12-31: %+v, %v", m, err)
			}
			var v struct {
				Score struct {
					RecencyDays int `json:"recencyDays"`
					Model       struct {
						AsOf time.Time `json:"asOf"`
					} `json:"model"`
				} `json:"score"`
			}
			if err := json.Unmarshal([]byte(must("view", customer)), &v); err != nil || v.Score.RecencyDays != 30 || !v.Score.Model.AsOf.Equal(m.AsOf) {
				t.Fatalf("view: %+v, %v", v, err)
			}
			for _, args := range [][]string{
				{"analytics"},
				{"analytics", "refit"},
				{"analytics", "fit", "--as-of", "2014-12-31", "--calibration-end", "2014-12-31"},
				{"analytics", "fit", "--as-of", "last week"},
				{"analytics", "fit", "extra"},
			} {
				if code, _, errOut := cli(t, "", with(args...)...); code != 2 {
					t.Errorf("%v: exit %d (%s), want 2", args, code, errOut)
				}
			}
		})
	}
}
