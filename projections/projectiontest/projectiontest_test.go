package projectiontest_test

import (
	"testing"

	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// The same writes give the same digest on every backend: values are kept
// byte for byte and keys ordered by bytes everywhere.
func TestBackendsAgree(t *testing.T) {
	ctx := t.Context()
	digests := map[string]string{}
	for name, b := range map[string]projections.Backend{
		"memory": projectiontest.Memory(t), "bolt": projectiontest.Bolt(t), "postgres": projectiontest.Postgres(t),
	} {
		err := b.Update(ctx, "customer360_v1_g1", func(w projections.Writer) error {
			for _, kv := range [][2]string{
				{"customer:b", `{"name": "Zoë",  "tags":["vip"]}`},
				{"customer:a", `{"name":"Åsa"}`},
				{"customer:é", `{"n":1.50e+2}`},
				{"customer:Z", `null`},
			} {
				if err := w.Put(ctx, kv[0], []byte(kv[1])); err != nil {
					return err
				}
			}
			return w.SetCheckpoint(ctx, 4)
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := b.Activate(ctx, "customer360", "customer360_v1_g1"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := projections.Digest(ctx, b, "customer360")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		digests[name] = d
	}
	if len(digests) != 3 || digests["memory"] != digests["bolt"] || digests["memory"] != digests["postgres"] {
		t.Fatalf("digests differ across backends: %v", digests)
	}
}
