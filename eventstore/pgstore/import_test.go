package pgstore_test

import (
	"testing"

	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/storetest"
)

func TestImport(t *testing.T) {
	storetest.RunImporter(t, openStore(t, "", pgstore.Options{}))
}
