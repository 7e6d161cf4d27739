package keyring_test

import (
	"testing"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
)

func newMemory(*testing.T) keyring.Backend { return keyring.NewMemory() }

func TestMemoryBackend(t *testing.T) { keyringtest.RunBackend(t, newMemory) }

func TestMemoryKeyring(t *testing.T) { keyringtest.RunKeyring(t, newMemory) }
