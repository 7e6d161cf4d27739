-- Ownership across processes (see projections/lease.go): leases judged by
-- the database clock, fenced commits, checkpoints that never move
-- backwards, and namespaces retired by a switch.

-- One row per lease. The epoch is the fencing token: it grows each time
-- the lease changes hands or is taken again after expiring, and a release
-- keeps it (the row stays, expired), so no later owner reuses a token.
create table {{.schema}}.rm__leases (
    name       text collate "C" primary key,
    owner      text not null,
    epoch      bigint not null check (epoch > 0),
    expires_at timestamptz not null
);

-- A namespace an Activate switched away from: no fenced Commit may write
-- it again, even before it is dropped.
alter table {{.schema}}.rm__namespaces add column retired boolean not null default false;

-- Checkpoints only grow. A rebuild writes a new namespace instead, so no
-- legitimate write ever lowers one; a stale writer that tries is refused
-- here even if the engine's own checks were bypassed.
create function {{.schema}}.rm__checkpoint_forward() returns trigger
language plpgsql as $$
begin
    if new.checkpoint < old.checkpoint then
        raise exception 'checkpoint of namespace % would move backwards from % to %',
            old.ns, old.checkpoint, new.checkpoint
            using errcode = 'check_violation', constraint = 'rm__checkpoint_forward';
    end if;
    return new;
end
$$;

create trigger rm__checkpoint_forward
    before update of checkpoint on {{.schema}}.rm__namespaces
    for each row execute function {{.schema}}.rm__checkpoint_forward();

comment on table {{.schema}}.rm__leases is
    'cxledger leases: which process owns each projection, reactor and relay; written only by projections/pgrm';
