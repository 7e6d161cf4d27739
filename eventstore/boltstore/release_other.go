//go:build !linux

package boltstore

import bolt "go.etcd.io/bbolt"

// releasePages does nothing outside Linux: the log's pages stay mapped
// until the kernel reclaims them.
func releasePages(*bolt.DB, *bolt.Tx) {}
