-- A batch whose merge failed (a value that does not cast, a constraint) is `failed`: it is listed
-- for review with the quarantined ones, keeps its rows in staging, and can be discarded. Its file
-- versions carry the same status, so they are not landed again with the next batch.
ALTER TABLE ops.batch DROP CONSTRAINT batch_status_check;
ALTER TABLE ops.batch ADD CONSTRAINT batch_status_check
    CHECK (status IN ('landed', 'validated', 'quarantined', 'failed', 'merged', 'discarded'));
COMMENT ON COLUMN ops.batch.status IS
    'landed, validated (passed its critical checks, or released after review), quarantined (failed a critical check), '
    'failed (its merge failed), merged, or discarded after review.';

ALTER TABLE ops.source_file DROP CONSTRAINT source_file_status_check;
ALTER TABLE ops.source_file ADD CONSTRAINT source_file_status_check
    CHECK (status IN ('landed', 'quarantined', 'failed', 'merged', 'discarded'));
COMMENT ON COLUMN ops.source_file.status IS
    'The status of the batch this version was landed in: landed, quarantined or failed (waiting for review: not '
    'landed again), merged (never loaded again), or discarded after review (never loaded again; a corrected file is '
    'a new version).';
