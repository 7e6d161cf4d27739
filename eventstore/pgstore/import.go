package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cxledger/cxledger/eventstore"
)

var _ eventstore.Importer = (*Store)(nil)

// Import implements eventstore.Import in one transaction of its own. Like
// append_batch, it takes the lock on its transaction id before drawing
// positions and the locks of its streams before reading their heads (see
// Ordering in the package documentation), so its positions follow every
// position drawn before it and readers wait for it as for any append.
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
	err := s.withConn(ctx, func(conn *pgx.Conn) (err error) {
		defer func() {
			if err != nil && !conn.IsClosed() {
				// Never hand back a connection holding the position lock.
				_, _ = conn.Exec(context.WithoutCancel(ctx), "select pg_advisory_unlock_all()")
			}
		}()
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock($1, (pg_current_xact_id()::text::int8 % 4294967296 - 2147483648)::int4)`, s.lockClass); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock(k) from (select distinct hashtextextended(u, $1) as k from unnest($2::text[]) as u order by 1) as l`, s.lockClass, streams); err != nil {
				return err
			}
			var last pgtype.Timestamptz
			if err := tx.QueryRow(ctx, s.sql.lastRecorded).Scan(&last); err != nil && !errors.Is(err, pgx.ErrNoRows) {
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
			}
			// Positions only once every check passed: a refused import
			// draws none.
			// One run of the log, drawn under the lock append_batch draws
			// under (three statements, so that the order is certain).
			if _, err := tx.Exec(ctx, `select pg_advisory_lock($1 # 1, 0)`, s.lockClass); err != nil {
				return err
			}
			var positions []int64
			err = tx.QueryRow(ctx, `select array_agg(nextval('`+s.opts.Schema+`.events_position_seq')) from generate_series(1, $1::int)`, len(records)).Scan(&positions)
			if _, uerr := tx.Exec(ctx, `select pg_advisory_unlock($1 # 1, 0)`, s.lockClass); err == nil {
				err = uerr
			}
			if err != nil {
				return err
			}
			slices.Sort(positions)
			var cols insertColumns
			for i, r := range records {
				rec := r
				rec.Position = uint64(positions[i])
				rec.Metadata = rec.Metadata.Normalize()
				cols.add(&rec)
			}
			_, err = tx.Exec(ctx, s.sql.insert, cols.args()...)
			return err
		})
	})
	if err != nil {
		return s.fail(ctx, fmt.Sprintf("import %d records", len(records)), err)
	}
	s.wake.Notify()
	s.notifyOthers()
	return nil
}
