-- What IT operations reads to see what each pipeline run did.

CREATE TABLE ops.run_log (
    source          text        NOT NULL,
    run_id          text        NOT NULL,
    dag_id          text        NOT NULL,
    batch_id        text,
    logical_date    timestamptz,
    rows_extracted  bigint,
    rows_rejected   bigint,
    rows_loaded     bigint,
    rows_exported   bigint,
    quality_outcome text CHECK (quality_outcome IN ('passed', 'failed')),
    status          text        NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    message         text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    PRIMARY KEY (source, run_id)
);
COMMENT ON TABLE ops.run_log IS 'One row per pipeline run and source: counts, quality outcome, status and the failure message.';
COMMENT ON COLUMN ops.run_log.run_id IS 'Airflow DAG run id.';
COMMENT ON COLUMN ops.run_log.batch_id IS 'The batch this run landed in staging.';
COMMENT ON COLUMN ops.run_log.rows_extracted IS 'Rows read from the source system (new or changed since the watermark).';
COMMENT ON COLUMN ops.run_log.rows_rejected IS 'Rows set aside by row-level quality rules.';
COMMENT ON COLUMN ops.run_log.rows_loaded IS 'Rows inserted or changed in core (unchanged rows are not counted).';
COMMENT ON COLUMN ops.run_log.rows_exported IS 'Rows in the public export written by this run.';
COMMENT ON COLUMN ops.run_log.quality_outcome IS 'passed or failed: the outcome of the batch''s expectation suite.';
COMMENT ON COLUMN ops.run_log.message IS 'Why the run failed: source, batch and reason.';

CREATE TABLE ops.watermark (
    source      text PRIMARY KEY,
    value       text        NOT NULL,
    batch_id    text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.watermark IS 'Per source, the highest watermark value merged into core; the next extraction starts after it.';

CREATE TABLE ops.batch (
    batch_id       text PRIMARY KEY,
    source         text        NOT NULL,
    run_id         text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('landed', 'validated', 'quarantined', 'merged')),
    rows_landed    bigint      NOT NULL DEFAULT 0,
    max_watermark  text,
    landed_at      timestamptz NOT NULL DEFAULT now(),
    merged_at      timestamptz,
    failure        text
);
COMMENT ON TABLE ops.batch IS 'Every batch landed in staging: landed (awaiting checks), validated (checks passed), quarantined (failed a critical check, rows kept in staging) or merged into core.';

CREATE TABLE ops.quality_result (
    result_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    batch_id          text        NOT NULL,
    run_id            text        NOT NULL,
    suite             text        NOT NULL,
    expectation       text        NOT NULL,
    description       text,
    column_name       text,
    kwargs            jsonb       NOT NULL,
    severity          text        NOT NULL CHECK (severity IN ('critical', 'warning')),
    success           boolean     NOT NULL,
    observed_value    jsonb,
    unexpected_count  bigint,
    unexpected_sample jsonb,
    error             text,
    checked_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quality_result_batch ON ops.quality_result (batch_id);
COMMENT ON TABLE ops.quality_result IS 'Every expectation evaluated on every batch, with its observed value and a sample of offending values.';
