//go:build !linux

package boltstore

import bolt "go.etcd.io/bbolt"

// ReleasePages does nothing outside Linux: a file's pages stay mapped
// until the kernel reclaims them.
func ReleasePages(*bolt.DB, *bolt.Tx) {}
