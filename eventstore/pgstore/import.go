package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cxledger/cxledger/eventstore"
)

var _ eventstore.Importer = (*Store)(nil)

// Import implements eventstore.Importer in one transaction of its own. It
// takes the append lock like the group-commit writer does, so its positions
// are numbered after every committed append and become visible in order
// (see the package documentation); the writer's batches simply wait.
func (s *Store) Import(ctx context.Context, records []eventstore.Record) error {
	if len(records) == 0 {
		return nil
	}
	if s.isClosed() {
		return fmt.Errorf("pgstore: import: %w", eventstore.ErrClosed)
	}
	if err := eventstore.ValidateImport(records, s.opts.MaxEventSize); err != nil {
		return fmt.Errorf("pgstore: import: %w", err)
	}
	streams := make([]string, 0, len(records))
	ids := make([]pgtype.UUID, len(records))
	seenStream := make(map[string]bool)
	for i, r := range records {
		if !seenStream[r.Stream] {
			seenStream[r.Stream] = true
			streams = append(streams, r.Stream)
		}
		ids[i] = pgtype.UUID{Bytes: r.ID, Valid: true}
	}
	var pos int64
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "select pg_advisory_xact_lock($1)", s.lockKey); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, s.sql.maxPosition).Scan(&pos); err != nil {
				return err
			}
			var last pgtype.Timestamptz
			if err := tx.QueryRow(ctx, `select recorded_at from `+s.opts.Schema+`.events where position = $1`, pos).Scan(&last); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			heads := make(map[string]int64, len(streams))
			rows, _ := tx.Query(ctx, s.sql.heads, streams)
			var (
				stream string
				head   pgtype.Int8
			)
			if _, err := pgx.ForEachRow(rows, []any{&stream, &head}, func() error {
				heads[stream] = -1
				if head.Valid {
					heads[stream] = head.Int64
				}
				return nil
			}); err != nil {
				return err
			}
			rows, _ = tx.Query(ctx, s.sql.byIDs, ids)
			stored, err := pgx.CollectRows(rows, scanRecord)
			if err != nil {
				return err
			}
			if len(stored) > 0 {
				return fmt.Errorf("%w: %s", eventstore.ErrDuplicateEvent, stored[0].ID)
			}
			var cols insertColumns
			dup := make(map[uuid.UUID]bool, len(records))
			for i, r := range records {
				if err := eventstore.CheckExpected(r.Stream, eventstore.ImportExpected(r.Version), heads[r.Stream]); err != nil {
					return fmt.Errorf("record %d (%s): %w", i, r.ID, err)
				}
				heads[r.Stream] = int64(r.Version)
				if dup[r.ID] {
					return fmt.Errorf("%w: %s appears twice", eventstore.ErrDuplicateEvent, r.ID)
				}
				dup[r.ID] = true
				if i == 0 && last.Valid && r.RecordedAt.Before(last.Time) {
					return fmt.Errorf("%w: record %d (%s): RecordedAt %v is before the log's last %v", eventstore.ErrInvalidEvent, i, r.ID, r.RecordedAt, last.Time.UTC())
				}
				pos++
				rec := r
				rec.Position = uint64(pos)
				rec.Metadata = rec.Metadata.Normalize()
				cols.add(&rec)
			}
			if _, err := tx.Exec(ctx, s.sql.insert, cols.args()...); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "select pg_notify($1, $2)", s.channel, strconv.FormatInt(pos, 10))
			return err
		})
	})
	if err != nil {
		return s.fail(ctx, fmt.Sprintf("import %d records", len(records)), err)
	}
	s.wake.Notify()
	return nil
}
