package pgstore

// SetAfterInsertHook makes every later batch of s call f after inserting its
// rows and before committing: the window in which a late commit would be
// skipped by a reader that did not wait for appends in flight.
// A nil f removes the hook.
func SetAfterInsertHook(s *Store, f func()) {
	if f == nil {
		s.afterInsert.Store(nil)
		return
	}
	s.afterInsert.Store(&f)
}
