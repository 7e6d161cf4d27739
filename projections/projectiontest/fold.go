package projectiontest

import (
	"context"
	"testing"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/google/uuid"
)

// Fold applies events to p in a fresh namespace of b, in one batch, and
// returns a Reader of the result that reads through one View per call.
func Fold(t testing.TB, b projections.Backend, p projections.Projection, events []domain.Envelope) projections.Reader {
	t.Helper()
	ns := p.Name() + "_" + uuid.NewString()[:8]
	if err := projections.ApplyBatch(context.Background(), b, ns, p, events); err != nil {
		t.Fatal(err)
	}
	return NamespaceReader{Backend: b, Namespace: ns}
}

// NamespaceReader reads one namespace of a backend, one View per call, so a
// query function can be handed the namespace as a plain Reader.
type NamespaceReader struct {
	Backend   projections.Backend
	Namespace string
}

// Get implements projections.Reader.
func (v NamespaceReader) Get(ctx context.Context, key string) (value []byte, ok bool, err error) {
	err = v.Backend.View(ctx, v.Namespace, func(r projections.Reader) error {
		var raw []byte
		raw, ok, err = r.Get(ctx, key)
		value = append([]byte(nil), raw...)
		return err
	})
	return value, ok, err
}

// Scan implements projections.Reader.
func (v NamespaceReader) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	return v.Backend.View(ctx, v.Namespace, func(r projections.Reader) error {
		return r.Scan(ctx, prefix, after, fn)
	})
}
