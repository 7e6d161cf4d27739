//go:build linux

package boltstore

import (
	"os"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ReleasePages drops db's whole file mapping from this process's resident
// set (MADV_DONTNEED); the read-model file (projections/boltrm) uses it
// too. bbolt maps the file read-only and shared and writes
// with pwrite, so the pages stay in the page cache and the next read
// faults them back unchanged: only this process's RSS forgets them. It must
// run inside tx: an open transaction holds bbolt's mmap lock, so the
// mapping cannot move meanwhile.
func ReleasePages(db *bolt.DB, tx *bolt.Tx) {
	n := uintptr(tx.Size()) &^ uintptr(os.Getpagesize()-1)
	if n == 0 {
		return
	}
	// A raw syscall on the mapping's address: bbolt hands out the address
	// as a uintptr, and making a Go pointer of it is what vet forbids.
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, db.Info().Data, n, unix.MADV_DONTNEED)
}
