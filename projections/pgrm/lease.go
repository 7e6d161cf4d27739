package pgrm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cxledger/cxledger/projections"
)

// Leases live in rm__leases, one row per lease, and every expiry is judged
// by the database's clock (clock_timestamp()), never by a process's: two
// processes with skewed clocks still agree on who holds a lease. See
// projections/lease.go for the model and Commit for the fence.

// micros is ttl in whole microseconds, PostgreSQL's timestamp precision.
func micros(ttl time.Duration) int64 { return ttl.Microseconds() }

// AcquireLease implements projections.Leases in one statement: insert the
// lease, or take it over if it expired (next epoch), or extend it if owner
// holds it already (same epoch).
func (b *Backend) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (l projections.Lease, err error) {
	defer wrap(&err, "acquire lease %s", name)
	if err := projections.CheckLeaseArgs(name, owner, ttl); err != nil {
		return projections.Lease{}, err
	}
	if err := b.check(ctx); err != nil {
		return projections.Lease{}, err
	}
	var epoch int64
	err = b.pool.QueryRow(ctx, `insert into `+b.meta("leases")+` as l (name, owner, epoch, expires_at)
		values ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond')
		on conflict (name) do update set
			owner = excluded.owner,
			epoch = case when l.owner = excluded.owner and l.expires_at > clock_timestamp() then l.epoch else l.epoch + 1 end,
			expires_at = excluded.expires_at
		where l.expires_at <= clock_timestamp() or l.owner = excluded.owner
		returning epoch`, name, owner, micros(ttl)).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		var holder string
		var holderEpoch int64
		var left float64
		qerr := b.pool.QueryRow(ctx, `select owner, epoch, extract(epoch from expires_at - clock_timestamp())
			from `+b.meta("leases")+` where name = $1`, name).Scan(&holder, &holderEpoch, &left)
		if qerr != nil {
			return projections.Lease{}, fmt.Errorf("%w (holder unknown: %v)", projections.ErrLeaseHeld, qerr)
		}
		return projections.Lease{}, fmt.Errorf("%w (owner %s, epoch %d, %.1fs left)", projections.ErrLeaseHeld, holder, holderEpoch, left)
	}
	if err != nil {
		return projections.Lease{}, err
	}
	return projections.Lease{Name: name, Owner: owner, Epoch: epoch}, nil
}

// RenewLease implements projections.Leases.
func (b *Backend) RenewLease(ctx context.Context, l projections.Lease, ttl time.Duration) (err error) {
	defer wrap(&err, "renew lease %s", l.Name)
	if err := projections.CheckLeaseArgs(l.Name, l.Owner, ttl); err != nil {
		return err
	}
	if err := b.check(ctx); err != nil {
		return err
	}
	tag, err := b.pool.Exec(ctx, `update `+b.meta("leases")+`
		set expires_at = clock_timestamp() + $4 * interval '1 microsecond'
		where name = $1 and owner = $2 and epoch = $3 and expires_at > clock_timestamp()`,
		l.Name, l.Owner, l.Epoch, micros(ttl))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("epoch %d: %w", l.Epoch, projections.ErrLeaseLost)
	}
	return nil
}

// ReleaseLease implements projections.Leases: the row stays, expired, so
// the next owner takes the next epoch.
func (b *Backend) ReleaseLease(ctx context.Context, l projections.Lease) (err error) {
	defer wrap(&err, "release lease %s", l.Name)
	if err := b.check(ctx); err != nil {
		return err
	}
	_, err = b.pool.Exec(ctx, `update `+b.meta("leases")+` set expires_at = clock_timestamp()
		where name = $1 and owner = $2 and epoch = $3 and expires_at > clock_timestamp()`, l.Name, l.Owner, l.Epoch)
	return err
}

// ListLeases implements projections.Leases.
func (b *Backend) ListLeases(ctx context.Context) (list []projections.LeaseInfo, err error) {
	defer wrap(&err, "list leases")
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	rows, err := b.pool.Query(ctx, `select name, owner, epoch, expires_at > clock_timestamp(),
		(extract(epoch from expires_at - clock_timestamp()) * 1000000)::bigint
		from `+b.meta("leases")+` order by name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (projections.LeaseInfo, error) {
		var li projections.LeaseInfo
		var us int64
		err := row.Scan(&li.Name, &li.Owner, &li.Epoch, &li.Held, &us)
		li.ExpiresIn = time.Duration(us) * time.Microsecond
		return li, err
	})
}

// Listen implements projections.Notifier: it LISTENs on NotifyChannel on a
// connection of its own (outside the pool: held for as long as ctx lives)
// and calls fn with the namespace and checkpoint of every fenced commit to
// this schema, from any process, until ctx ends. A dropped connection is
// reconnected with capped backoff, and fn is then called with ns "" (the
// notifications sent meanwhile are lost: re-read what you wait for).
func (b *Backend) Listen(ctx context.Context, fn func(ns string, checkpoint uint64)) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	cfg := b.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "cxledger-pgrm-listen"
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := b.listenOnce(ctx, cfg, fn)
		if ctx.Err() != nil {
			return nil
		}
		if b.closed.Load() {
			return ErrClosed
		}
		_ = err // reconnect; the caller re-reads on the "" call
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (b *Backend) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, fn func(string, uint64)) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "listen "+NotifyChannel); err != nil {
		return err
	}
	fn("", 0) // (re)connected: whatever committed before is read afresh
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		schema, rest, ok1 := strings.Cut(n.Payload, " ")
		ns, cp, ok2 := strings.Cut(rest, " ")
		if !ok1 || !ok2 || schema != b.schema {
			continue
		}
		if pos, err := strconv.ParseUint(cp, 10, 64); err == nil {
			fn(ns, pos)
		}
	}
}
