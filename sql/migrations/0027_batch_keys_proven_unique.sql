-- Whether the quality gate proved the batch's key unique on this landing. The gate's generated
-- key check is critical and compares keys as the merge does, so a batch the gate validated has no
-- key twice, and its merge skips its own duplicate check (a GROUP BY over the whole batch). A
-- batch released by review (`make release`), or marked validated any other way, keeps false and
-- is checked by the merge as before. Landing the batch again resets it.
ALTER TABLE ops.batch ADD COLUMN keys_proven_unique boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN ops.batch.keys_proven_unique IS
    'True when the quality gate validated this landing: its key is unique in the batch, and the merge does not check it again.';
