package memstore_test

import (
	"testing"

	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/eventstore/storetest"
)

func TestImport(t *testing.T) {
	s := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = s.Close() })
	storetest.RunImporter(t, s)
}
