-- Quality gates: rows set aside by row-level rules, and the review of quarantined batches.

CREATE TABLE ops.rejected_row (
    rejected_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text        NOT NULL,
    batch_id     text        NOT NULL,
    run_id       text        NOT NULL,
    rule         text        NOT NULL,
    origin       text,
    row_data     jsonb       NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejected_row_batch ON ops.rejected_row (batch_id);
COMMENT ON TABLE ops.rejected_row IS 'Rows a row-level rule (an unparseable date, a negative count, text in a number) set aside from a batch, with the rule and the row as landed; the rest of the batch went on.';
COMMENT ON COLUMN ops.rejected_row.rule IS 'The rule that rejected the row (its description in the suite).';
COMMENT ON COLUMN ops.rejected_row.origin IS 'The file or API page the row came from.';
COMMENT ON COLUMN ops.rejected_row.row_data IS 'The row exactly as landed in staging.';

ALTER TABLE ops.batch DROP CONSTRAINT batch_status_check;
ALTER TABLE ops.batch ADD CONSTRAINT batch_status_check
    CHECK (status IN ('landed', 'validated', 'quarantined', 'merged', 'discarded'));
ALTER TABLE ops.batch
    ADD COLUMN rows_rejected bigint NOT NULL DEFAULT 0,
    ADD COLUMN warnings      integer NOT NULL DEFAULT 0,
    ADD COLUMN reviewed_by   text,
    ADD COLUMN reviewed_at   timestamptz,
    ADD COLUMN review_note   text;
COMMENT ON COLUMN ops.batch.rows_rejected IS 'Rows set aside by row-level rules (see ops.rejected_row).';
COMMENT ON COLUMN ops.batch.warnings IS 'Warning-level checks that failed; the batch went on.';
COMMENT ON COLUMN ops.batch.reviewed_by IS 'Who released or discarded the quarantined batch (make release / make discard).';
COMMENT ON COLUMN ops.batch.review_note IS 'Why the batch was released or discarded.';

ALTER TABLE ops.source_file DROP CONSTRAINT source_file_status_check;
ALTER TABLE ops.source_file ADD CONSTRAINT source_file_status_check
    CHECK (status IN ('landed', 'quarantined', 'merged', 'discarded'));
COMMENT ON COLUMN ops.source_file.status IS 'landed, quarantined, merged (never loaded again), or discarded after review (never loaded again; a corrected file is a new version).';

ALTER TABLE ops.run_log ADD COLUMN warnings integer;
COMMENT ON COLUMN ops.run_log.warnings IS 'Warning-level checks that failed in this run; the batch went on.';
