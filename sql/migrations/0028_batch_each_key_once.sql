-- Whether the quality gate found each key of this landing in one row only: not only each key and
-- watermark pair (keys_proven_unique), but the key alone. A record an incremental source gave
-- twice (edited while a run read it) is two rows with one key; only then does the merge have to
-- sort the batch to keep each record's latest version (1.1 s at 1M rows). A batch released by
-- review keeps false and is sorted as before. Landing the batch again resets it.
ALTER TABLE ops.batch ADD COLUMN each_key_once boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN ops.batch.each_key_once IS
    'True when the quality gate validated this landing and found each key in one row only: the merge need not pick a latest version.';
