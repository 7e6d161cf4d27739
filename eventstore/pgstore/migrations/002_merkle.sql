-- The Merkle tree over the global log, kept by eventstore/notary for fast
-- proofs (see pgstore's merkle.go). It is a cache of what the events
-- determine: the events alone rebuild it, and the verifier trusts it only
-- after it reproduces a signed checkpoint.
--
-- merkle_hashes holds golang.org/x/mod/sumdb/tlog's stored hashes, by their
-- dense index (tlog.StoredHashIndex); merkle_leaves maps each leaf (the i-th
-- event in position order) to its global position. Both only grow at the
-- end, in transactions that hold the notary's own advisory lock, never the
-- append lock: appends never wait for them.
--
-- No foreign key to events: the tree must outlive, and so reveal, a row
-- removed or renumbered behind the store's back.
create table {{.schema}}.merkle_hashes (
    idx  bigint not null primary key check (idx >= 0),
    hash bytea  not null check (octet_length(hash) = 32)
);

create table {{.schema}}.merkle_leaves (
    leaf     bigint not null primary key check (leaf >= 0),
    position bigint not null check (position > 0),
    constraint merkle_leaves_position_key unique (position)
);

comment on table {{.schema}}.merkle_hashes is
    'cxledger Merkle tree over the event log: tlog stored hashes by index; written only by eventstore/notary through pgstore';
comment on table {{.schema}}.merkle_leaves is
    'cxledger Merkle tree over the event log: leaf index to global position; written only by eventstore/notary through pgstore';
