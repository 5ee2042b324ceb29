-- The shape each source's staging and core tables were last made to (aim.tables.ensure_tables_once):
-- a hash of what shapes them (the platform's table layout and the source's columns, types, key and
-- descriptions). A run whose configuration has not changed since then does no DDL: ALTER TABLE
-- takes an exclusive lock on the core table, which waits behind an analyst's long query and makes
-- every reader after it wait too, and costs a round trip per column.
CREATE TABLE ops.source_table_shape (
    source       text        PRIMARY KEY,
    shape_sha256 text        NOT NULL,
    made_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.source_table_shape IS
    'The configuration hash each source''s staging and core tables were last made to; unchanged: no DDL in a run.';
