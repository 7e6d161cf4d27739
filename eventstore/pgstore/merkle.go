package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/eventstore"
)

// The Merkle tree over the log (eventstore/notary) lives in the tables
// merkle_hashes and merkle_leaves (migration 002). AppendLeaves takes an
// advisory lock of its own, which appends never take, so storing the tree never
// holds up an append; the lock and the primary keys make concurrent notaries
// (several processes on one schema) take turns, and the loser is told to
// reload.

// errTreeMoved rejects an AppendLeaves that does not continue the stored
// tree.
var errTreeMoved = errors.New("the stored tree moved")

// treeLockKey derives the tree writers' advisory lock from the schema,
// distinct from every lock appends take.
func treeLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cxledger/merkle/" + schema))
	return int64(h.Sum64())
}

// TreeSize returns the number of leaves of the stored Merkle tree (for
// eventstore/notary).
func (s *Store) TreeSize(ctx context.Context) (int64, error) {
	if s.isClosed() {
		return 0, fmt.Errorf("pgstore: tree size: %w", eventstore.ErrClosed)
	}
	var size int64
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `select coalesce(max(leaf) + 1, 0) from `+s.opts.Schema+`.merkle_leaves`).Scan(&size)
	})
	if err != nil {
		return 0, s.fail(ctx, "tree size", err)
	}
	return size, nil
}

// ReadHashes returns the stored Merkle hashes at the given indexes (for
// eventstore/notary), in one query.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("pgstore: read stored hashes: %w", eventstore.ErrClosed)
	}
	if len(indexes) == 0 {
		return []tlog.Hash{}, nil
	}
	found := make(map[int64][]byte, len(indexes))
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, `select idx, hash from `+s.opts.Schema+`.merkle_hashes where idx = any($1::int8[])`, indexes)
		var (
			idx  int64
			hash []byte
		)
		_, err := pgx.ForEachRow(rows, []any{&idx, &hash}, func() error {
			found[idx] = hash
			return nil
		})
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, "read stored hashes", err)
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := found[x]
		if !ok {
			return nil, fmt.Errorf("pgstore: read stored hashes: stored hash %d: not stored", x)
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("pgstore: read stored hashes: stored hash %d has %d bytes", x, len(h))
		}
		copy(out[i][:], h)
	}
	return out, nil
}

// LeafPositions returns the global positions of up to n leaves from leaf
// from (for eventstore/notary).
func (s *Store) LeafPositions(ctx context.Context, from int64, n int) ([]uint64, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("pgstore: leaf positions: %w", eventstore.ErrClosed)
	}
	if from < 0 || n <= 0 {
		return nil, nil
	}
	var out []uint64
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, `select leaf, position from `+s.opts.Schema+`.merkle_leaves
			where leaf >= $1 order by leaf limit $2`, from, n)
		var leaf, pos int64
		want := from
		_, err := pgx.ForEachRow(rows, []any{&leaf, &pos}, func() error {
			if leaf != want {
				return fmt.Errorf("tree leaf %d follows %d", leaf, want-1)
			}
			out = append(out, uint64(pos))
			want++
			return nil
		})
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("leaf positions from %d", from), err)
	}
	return out, nil
}

// LeafIndex returns the leaf holding the event at a global position (for
// eventstore/notary).
func (s *Store) LeafIndex(ctx context.Context, position uint64) (int64, bool, error) {
	if s.isClosed() {
		return 0, false, fmt.Errorf("pgstore: leaf index: %w", eventstore.ErrClosed)
	}
	var leaf int64
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `select leaf from `+s.opts.Schema+`.merkle_leaves where position = $1`, clampInt64(position)).Scan(&leaf)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.fail(ctx, fmt.Sprintf("leaf index of position %d", position), err)
	}
	return leaf, true, nil
}

// AppendLeaves stores new leaves of the Merkle tree in one transaction, as
// eventstore/notary's HashStore promises.
func (s *Store) AppendLeaves(ctx context.Context, from int64, positions []uint64, hashes []tlog.Hash) error {
	op := fmt.Sprintf("append leaves from %d", from)
	if s.isClosed() {
		return fmt.Errorf("pgstore: %s: %w", op, eventstore.ErrClosed)
	}
	if len(positions) == 0 {
		return nil
	}
	if from < 0 {
		return fmt.Errorf("pgstore: %s: negative leaf index", op)
	}
	if want := tlog.StoredHashCount(from+int64(len(positions))) - tlog.StoredHashCount(from); int64(len(hashes)) != want {
		return fmt.Errorf("pgstore: %s: %d hashes for %d leaves, want %d", op, len(hashes), len(positions), want)
	}
	leaves := make([]int64, len(positions))
	pos := make([]int64, len(positions))
	for i, p := range positions {
		if i > 0 && p <= positions[i-1] {
			return fmt.Errorf("pgstore: %s: position %d does not follow %d", op, p, positions[i-1])
		}
		leaves[i], pos[i] = from+int64(i), clampInt64(p)
	}
	base := tlog.StoredHashIndex(0, from)
	idx := make([]int64, len(hashes))
	raw := make([][]byte, len(hashes))
	for i := range hashes {
		idx[i], raw[i] = base+int64(i), hashes[i][:]
	}
	schema := s.opts.Schema
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock($1)`, treeLockKey(schema)); err != nil {
				return err
			}
			var size, last int64
			err := tx.QueryRow(ctx, `select coalesce(max(leaf) + 1, 0), coalesce(max(position), 0) from `+schema+`.merkle_leaves`).Scan(&size, &last)
			if err != nil {
				return err
			}
			if size != from {
				return fmt.Errorf("%w: it has %d leaves (another notary stored leaves first?)", errTreeMoved, size)
			}
			if pos[0] <= last {
				return fmt.Errorf("%w: position %d does not follow the last leaf's, %d", errTreeMoved, pos[0], last)
			}
			if _, err := tx.Exec(ctx, `insert into `+schema+`.merkle_hashes (idx, hash)
				select * from unnest($1::int8[], $2::bytea[])`, idx, raw); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `insert into `+schema+`.merkle_leaves (leaf, position)
				select * from unnest($1::int8[], $2::int8[])`, leaves, pos)
			return err
		})
	})
	if errors.Is(err, errTreeMoved) {
		return fmt.Errorf("pgstore: %s: %w", op, err)
	}
	if err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}
