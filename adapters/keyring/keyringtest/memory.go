package keyringtest

import (
	"context"
	"testing"

	"github.com/cxledger/cxledger/adapters/keyring"
)

// Memory returns a keyring over an in-memory key store with a fixed test
// master key, closed when the test ends: what tests above the keyring use
// to seal and reveal.
func Memory(t testing.TB) *keyring.Keyring {
	t.Helper()
	var mk keyring.MasterKey
	copy(mk[:], "a cxledger test master key, 32 b")
	k, err := keyring.Open(context.Background(), mk, keyring.NewMemory(), keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}
