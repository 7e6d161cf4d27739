-- Concurrent appends: positions from a sequence, one round trip per batch,
-- and a reader-side high-water mark (see the package documentation,
-- "Ordering").
--
-- Until this migration every append took one advisory lock per schema and
-- numbered its events max(position)+1 under it, so that positions became
-- visible strictly in order; but the lock was held through COMMIT, so
-- appends of different streams, and of different processes, serialised on
-- it. From here on:
--
--   * an append transaction first takes an exclusive advisory lock on its
--     own transaction id, (lock_class, xid mod 2^32), held until it ends;
--   * then the advisory locks of the streams it writes, in key order (so two
--     batches never deadlock), decides each append against its stream's
--     head read after those locks, and only then draws positions from
--     events_position_seq, one consecutive run per batch (a session lock
--     held only while drawing): a conflict or an idempotent retry draws
--     none;
--   * a reader reads the sequence (h), then (a later statement) the xid
--     locks held at that moment, from pg_locks, and waits on each: every
--     transaction that drew a position <= h took its lock before drawing
--     and holds it until it ends, so once these waits return every position
--     <= h is committed or rolled back, and a read of "position <= h" in a
--     new snapshot sees all of them that committed. Positions above h are
--     left for the next read. (The transactions in progress listed by a
--     snapshot would not do: it omits those whose xid is above every
--     completed one's, which is exactly a young appender's.)
--
-- Positions can now have gaps (an append that fails in the database after
-- drawing), which the contract allows; the sequence never goes back.

create sequence {{.schema}}.events_position_seq as bigint minvalue 1;
select setval('{{.schema}}.events_position_seq', coalesce((select max(position) from {{.schema}}.events), 0) + 1, false);

-- append_batch decides and writes a batch of appends in one statement: with
-- the COMMIT of its implicit transaction, one round trip. The r_* arrays
-- hold one entry per append (its stream, its expected version as
-- eventstore.ExpectedVersion encodes it: -2 any, -1 no stream, -4 stream
-- exists, n exact, and its number of events), the e_* arrays one per event,
-- appends one after the other. Each append is answered by one row, in order:
--   status 0: written; head is the stream's new version, last_position the
--             position of its last event;
--   status 1: version conflict; head is the stream's version (-1: none);
--   status 2: some of its event ids are stored already: nothing written, the
--             caller tells an idempotent retry from a duplicate.
-- A later append of the batch sees the earlier ones' events, as if they had
-- committed separately. The work is set-based: a fixed number of statements
-- per batch, whatever its number of appends and events; the decisions are
-- made on arrays in memory.
create function {{.schema}}.append_batch(
    lock_class int4, r_stream text[], r_expected int8[], r_count int4[],
    e_stream text[], e_id uuid[], e_type text[], e_occurred timestamptz[],
    e_actor text[], e_channel text[], e_correlation text[], e_causation text[],
    e_schema_version int8[], e_data text[])
returns table (status int2, head int8, last_position int8)
language plpgsql volatile
as $$
declare
    nreq int := coalesce(array_length(r_stream, 1), 0);
    nev int := coalesce(array_length(e_id, 1), 0);
    stored uuid[];
    heads int8[];
    ev_off int8[] := array_fill(null::int8, array[nev]); -- offset of the event's position in the batch's run; null: not written
    ev_version int8[] := array_fill(null::int8, array[nev]);
    r_status int2[] := array_fill(0::int2, array[nreq]);
    r_head int8[] := array_fill(null::int8, array[nreq]);
    r_last int8[] := array_fill(null::int8, array[nreq]);
    total int8 := 0;
    first int8;
    recorded timestamptz;
    i int;
    j int;
    v int;
    n int;
    lo int;
    hi int := 0;
    cur int8;
    want int8;
begin
    -- Statements are few on purpose: each costs a plan execution and a
    -- snapshot. First the lock on this transaction's id, then (target list
    -- order) the streams' locks.
    perform pg_advisory_xact_lock(lock_class, (pg_current_xact_id()::text::int8 % 4294967296 - 2147483648)::int4),
        (select count(pg_advisory_xact_lock(l.k))
            from (select distinct hashtextextended(s, lock_class) as k from unnest(r_stream) s order by 1) l);
    -- Read after the locks, in a snapshot taken after them.
    select (select array_agg(event_id) from {{.schema}}.events where event_id = any (e_id)),
           (select array_agg(coalesce((select max(e.version) from {{.schema}}.events e where e.stream = u.s), -1) order by u.o)
                from unnest(r_stream) with ordinality as u(s, o))
        into stored, heads;
    for i in 1 .. nreq loop
        n := r_count[i];
        lo := hi + 1;
        hi := hi + n;
        if stored is not null and e_id[lo:hi] && stored then
            r_status[i] := 2;
            continue;
        end if;
        j := array_position(r_stream, r_stream[i]); -- the stream's running head is kept at its first append
        cur := heads[j];
        want := r_expected[i];
        if not (case want when -2 then true when -1 then cur = -1 when -4 then cur >= 0 else cur = want end) then
            r_status[i] := 1;
            r_head[i] := cur;
            continue;
        end if;
        for v in 1 .. n loop
            ev_off[lo + v - 1] := total;
            ev_version[lo + v - 1] := cur + v;
            total := total + 1;
        end loop;
        heads[j] := cur + n;
        r_head[i] := cur + n;
        r_last[i] := total - 1;
    end loop;
    if total > 0 then
        -- The batch's positions are one run of the log: drawn under a
        -- session lock held only while drawing (never through COMMIT), so no
        -- concurrent draw interleaves. Nothing between lock and unlock can
        -- fail short of the session ending, which releases it.
        -- Every draw takes the lock, a single one too: a draw between
        -- another batch's nextval and setval would take a value of its run.
        -- RecordedAt is the server's clock read under the same lock, so it
        -- never decreases along the log, across processes too (unless the
        -- server's clock steps back).
        select nextval('{{.schema}}.events_position_seq'), clock_timestamp() into first, recorded
            from (select pg_advisory_lock(lock_class # 1, 0)) l;
        if total > 1 then
            perform setval('{{.schema}}.events_position_seq', first + total - 1);
        end if;
        perform pg_advisory_unlock(lock_class # 1, 0);
        insert into {{.schema}}.events (position, event_id, stream, version, type, recorded_at, occurred_at,
            actor, channel, correlation_id, causation_id, schema_version, data)
        select first + u.uoff, u.uid, u.ustream, u.uversion, u.utype, recorded, u.uocc, u.uact, u.uch, u.ucor, u.ucau, u.usv, u.udata::json
        from unnest(ev_off, ev_version, e_stream, e_id, e_type, e_occurred, e_actor,
                e_channel, e_correlation, e_causation, e_schema_version, e_data)
            as u(uoff, uversion, ustream, uid, utype, uocc, uact, uch, ucor, ucau, usv, udata)
        where u.uoff is not null;
    end if;
    for i in 1 .. nreq loop
        status := r_status[i];
        head := r_head[i];
        last_position := first + r_last[i];
        return next;
    end loop;
end
$$;

-- visible_horizon returns h such that every position <= h is committed or
-- will never be: the sequence's last value, after waiting for every
-- transaction that may still hold a position at or below it. It must run
-- outside any transaction that has itself drawn positions.
create function {{.schema}}.visible_horizon(lock_class int4)
returns int8
language plpgsql volatile
as $$
declare
    h int8;
    x int8;
begin
    select case when is_called then last_value else last_value - 1 end into h from {{.schema}}.events_position_seq;
    -- A new statement, after h was read: the appenders holding their xid
    -- lock now (the lock table is read as it is, not through a snapshot).
    for x in select l.objid::int8 from pg_locks l
            where l.locktype = 'advisory' and l.objsubid = 2 and l.mode = 'ExclusiveLock' and l.granted
              and l.database = (select oid from pg_database where datname = current_database())
              and l.classid::int8 = (lock_class::int8 & 4294967295) loop
        perform pg_advisory_xact_lock_shared(lock_class, (x - case when x >= 2147483648 then 4294967296 else 0 end)::int4);
    end loop;
    return h;
end
$$;

-- read_all is ReadAll in one round trip: the horizon, then the page in a
-- snapshot taken after it (each statement of a volatile function takes its
-- own).
create function {{.schema}}.read_all(lock_class int4, after int8, lim int, types text[])
returns setof {{.schema}}.events
language plpgsql volatile
as $$
declare
    h int8 := {{.schema}}.visible_horizon(lock_class);
begin
    if types is null then
        return query select * from {{.schema}}.events
            where position > after and position <= h order by position limit lim;
    else
        return query select * from {{.schema}}.events
            where position > after and position <= h and type = any (types) order by position limit lim;
    end if;
end
$$;

-- head is the position of the last committed event at or below the horizon.
create function {{.schema}}.head(lock_class int4)
returns int8
language plpgsql volatile
as $$
declare
    h int8 := {{.schema}}.visible_horizon(lock_class);
begin
    return coalesce((select max(position) from {{.schema}}.events where position <= h), 0);
end
$$;

comment on table {{.schema}}.events is
    'cxledger global event log; written only by eventstore/pgstore (append_batch), positions from events_position_seq, read through read_all/head';
