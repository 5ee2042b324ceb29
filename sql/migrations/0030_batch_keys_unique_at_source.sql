-- Whether the source itself guarantees that this landing holds each key once: a PostgreSQL table
-- whose primary key's columns are all key columns, of the configured types (or text for a text
-- key), read by one COPY statement (one snapshot). The quality gate then does not group the batch
-- by its key to find it out (0.5 s at 1M rows); it still marks the batch each_key_once when it
-- validates it. Should it be wrong all the same, the merge fails on the doubled key (unique
-- violation or MERGE's cardinality error) instead of one row winning by chance.
ALTER TABLE ops.batch ADD COLUMN keys_unique_at_source boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN ops.batch.keys_unique_at_source IS
    'True when the source guaranteed each key once in this landing (a primary key within the configured key, read in one snapshot).';
