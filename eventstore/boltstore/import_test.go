package boltstore

import (
	"path/filepath"
	"testing"

	"github.com/cxledger/cxledger/eventstore/storetest"
)

func TestImport(t *testing.T) {
	storetest.RunImporter(t, openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{}))
}
