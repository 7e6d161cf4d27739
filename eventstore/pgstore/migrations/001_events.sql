-- The global log. {{.schema}} is the store's schema (Options.Schema), a plain
-- lowercase identifier checked by Open, so it needs no quoting.
--
-- position is assigned by the appender under the store's advisory lock, not by
-- a sequence: see the package documentation for why that makes positions
-- gapless and visible strictly in order.
--
-- data is json, not jsonb: json keeps the document byte for byte (the store
-- promises to return exactly what it was given), and analysts can still use
-- ->, ->> and json_* functions on it.
--
-- There is no separate streams table: a stream's head is max(version) over the
-- (stream, version) unique index, one index probe, which saves a second row
-- write per append. That unique index, and the one on event_id, are the
-- database-level guard of optimistic concurrency and idempotency even against
-- a writer that bypasses the store.
create table {{.schema}}.events (
    position       bigint      not null primary key check (position > 0),
    event_id       uuid        not null,
    stream         text        not null,
    version        bigint      not null check (version >= 0),
    type           text        not null,
    recorded_at    timestamptz not null,
    occurred_at    timestamptz,
    actor          text        not null default '',
    channel        text        not null default '',
    correlation_id text        not null default '',
    causation_id   text        not null default '',
    schema_version bigint      not null default 0,
    data           json        not null,
    constraint events_event_id_key unique (event_id),
    constraint events_stream_version_key unique (stream, version)
);

-- Filtered reads and subscriptions by event type walk this index in position
-- order instead of scanning the whole log.
create index events_type_position_idx on {{.schema}}.events (type, position);

comment on table {{.schema}}.events is
    'cxledger global event log; written only by eventstore/pgstore, which assigns positions under an advisory lock';
