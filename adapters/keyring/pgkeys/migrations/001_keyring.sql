-- The keyring's tables. {{.schema}} is the store's schema, a lowercase
-- identifier checked by Open. Names start with cxledger_, a prefix read
-- models may not take, so no read-model view can collide with them.

-- One row per customer: the wrapped data key while it lives, then a
-- tombstone (wrapped null, destroyed_at set) for good.
create table {{.schema}}.cxledger_keys (
    customer     uuid primary key,
    wrapped      bytea,
    created_at   timestamptz not null default now(),
    destroyed_at timestamptz,
    check ((wrapped is null) = (destroyed_at is not null))
);

-- The master key's check value (name 'kcv').
create table {{.schema}}.cxledger_keyring_meta (
    name  text primary key,
    value bytea not null
);
