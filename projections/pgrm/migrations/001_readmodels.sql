-- Read-model bookkeeping. {{.schema}} is the backend's schema
-- (Options.Schema), a lowercase identifier checked by Open, so it needs no
-- quoting. The tables of the namespaces themselves, rm_<namespace>, are
-- created at run time, one per namespace.
--
-- The bookkeeping tables are named rm__*: namespaces start with a letter, so
-- no namespace table rm_<ns> can take these names.

-- One row per namespace: it exists exactly as long as the namespace's table
-- (both are created and dropped in one transaction). Update locks the row,
-- so that two Updates of one namespace, or an Update and a Drop, take turns.
create table {{.schema}}.rm__namespaces (
    ns         text collate "C" primary key,
    checkpoint bigint not null default 0 check (checkpoint >= 0)
);

-- Which namespace serves the reads of each read model. Activate also points
-- the view {{.schema}}.<name> at the namespace's table, for analysts.
create table {{.schema}}.rm__active (
    name text collate "C" primary key,
    ns   text collate "C" not null
);

-- The read model a namespace was last activated for, kept after the
-- namespace is dropped: a reader that resolved the read model to a
-- namespace just before a rebuild switched over and dropped it is sent to
-- the read model's active namespace instead of failing.
create table {{.schema}}.rm__served (
    ns   text collate "C" primary key,
    name text collate "C" not null
);

comment on table {{.schema}}.rm__namespaces is
    'cxledger read-model namespaces and their checkpoints; written only by projections/pgrm';
comment on table {{.schema}}.rm__active is
    'cxledger read model -> namespace serving its reads (and its view); written only by projections/pgrm';
