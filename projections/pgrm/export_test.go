package pgrm

// CopyStats returns the rows b sent by COPY and the COPYs it rolled back.
func (b *Backend) CopyStats() (rows, refused int64) { return b.copied.Load(), b.refused.Load() }
