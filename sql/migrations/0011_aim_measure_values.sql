-- The AIM metrics model, part 2: computed measure values, reference statistics for rates, and
-- the measures DAG's own bookkeeping in ops.

CREATE TABLE core.aim_measure_value (
    measure_code   text        NOT NULL,
    period_id      integer     NOT NULL REFERENCES core.aim_period,
    geography_type text        NOT NULL,
    geography_code text        NOT NULL,
    value          numeric,
    numerator      numeric,
    denominator    numeric,
    data_as_of     timestamptz NOT NULL,
    run_id         text        NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_code, period_id, geography_type, geography_code),
    FOREIGN KEY (geography_type, geography_code) REFERENCES core.aim_geography
);
CREATE INDEX aim_measure_value_period ON core.aim_measure_value (period_id);
COMMENT ON TABLE core.aim_measure_value IS 'Computed AIM measure values, one per measure, period and geography, written by the aim_measures DAG from sql/measures/<code>.sql. A recompute replaces the rows of its measure and months, so values are never duplicated.';
COMMENT ON COLUMN core.aim_measure_value.measure_code IS 'Measure code, e.g. SAF-01.';
COMMENT ON COLUMN core.aim_measure_value.period_id IS 'The period (core.aim_period) the value is for.';
COMMENT ON COLUMN core.aim_measure_value.geography_type IS 'citywide, aldermanic_district or police_district.';
COMMENT ON COLUMN core.aim_measure_value.geography_code IS 'all for citywide; otherwise the district number.';
COMMENT ON COLUMN core.aim_measure_value.value IS 'The measure''s value in its unit (count, percent 0-100, rate, minutes, days); NULL when it cannot be computed (e.g. a percentage of nothing).';
COMMENT ON COLUMN core.aim_measure_value.numerator IS 'For a ratio, percentage or rate: what was counted (e.g. orders complied by the due date); NULL otherwise.';
COMMENT ON COLUMN core.aim_measure_value.denominator IS 'For a ratio, percentage or rate: what it is out of (e.g. orders due, residents); NULL otherwise.';
COMMENT ON COLUMN core.aim_measure_value.data_as_of IS 'The newest _loaded_at of the source rows of that month the value was computed from; the computation time when the month had no source rows.';
COMMENT ON COLUMN core.aim_measure_value.run_id IS 'The aim_measures DAG run that computed the value.';
COMMENT ON COLUMN core.aim_measure_value.computed_at IS 'When the value was computed.';

CREATE TABLE core.ref_geography_stat (
    geography_type text     NOT NULL,
    geography_code text     NOT NULL,
    stat           text     NOT NULL CHECK (stat IN ('population', 'households')),
    value          numeric  NOT NULL CHECK (value > 0),
    source         text     NOT NULL,
    as_of_year     smallint NOT NULL,
    PRIMARY KEY (geography_type, geography_code, stat),
    FOREIGN KEY (geography_type, geography_code) REFERENCES core.aim_geography
);
COMMENT ON TABLE core.ref_geography_stat IS 'Reference statistics per geography (population, households), the denominators of rates such as "per 1,000 residents". Read the source column: some figures are demo approximations to be replaced with census tables. No police-district figures yet.';
COMMENT ON COLUMN core.ref_geography_stat.geography_type IS 'citywide or aldermanic_district.';
COMMENT ON COLUMN core.ref_geography_stat.geography_code IS 'all for citywide; the district number otherwise.';
COMMENT ON COLUMN core.ref_geography_stat.stat IS 'population (residents) or households (occupied housing units).';
COMMENT ON COLUMN core.ref_geography_stat.value IS 'The figure.';
COMMENT ON COLUMN core.ref_geography_stat.source IS 'Where the figure comes from, and whether it is an approximation.';
COMMENT ON COLUMN core.ref_geography_stat.as_of_year IS 'Year the figure describes.';
INSERT INTO core.ref_geography_stat (geography_type, geography_code, stat, value, source, as_of_year)
VALUES
    ('citywide', 'all', 'population', 577222,
     '2020 decennial census, City of Milwaukee (U.S. Census Bureau)', 2020),
    ('citywide', 'all', 'households', 230889,
     'demo approximation: 577,222 residents / 2.5 persons per household; to be replaced with 2020 census table H1 (occupied housing units)', 2020);
INSERT INTO core.ref_geography_stat (geography_type, geography_code, stat, value, source, as_of_year)
SELECT 'aldermanic_district', n::text, 'population', 38481,
       'demo approximation: aldermanic districts are drawn to equal population after each census (577,222 / 15)', 2020
FROM generate_series(1, 15) AS n
UNION ALL
SELECT 'aldermanic_district', n::text, 'households', 15393,
       'demo approximation: aldermanic districts are drawn to equal population after each census (230,889 approximated households / 15); to be replaced with 2020 census table H1 by district', 2020
FROM generate_series(1, 15) AS n;

CREATE TABLE ops.measure_run (
    run_id               text        PRIMARY KEY,
    dag_id               text        NOT NULL,
    mode                 text        CHECK (mode IN ('incremental', 'backfill')),
    status               text        NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    start_month          date,
    end_month            date,
    changes_since        timestamptz,
    changes_through      timestamptz,
    registry             jsonb,
    measures             jsonb,
    rows_written         bigint,
    message              text,
    started_at           timestamptz NOT NULL DEFAULT now(),
    ended_at             timestamptz
);
COMMENT ON TABLE ops.measure_run IS 'One row per aim_measures DAG run: what it recomputed and why, its status and failure. The next incremental run recomputes the months whose source rows were loaded after the last successful incremental run''s changes_through.';
COMMENT ON COLUMN ops.measure_run.run_id IS 'Airflow DAG run id.';
COMMENT ON COLUMN ops.measure_run.dag_id IS 'aim_measures.';
COMMENT ON COLUMN ops.measure_run.mode IS 'backfill (a range of months given as start_month/end_month) or incremental (the months touched by newly loaded source rows).';
COMMENT ON COLUMN ops.measure_run.status IS 'running, success or failed.';
COMMENT ON COLUMN ops.measure_run.start_month IS 'Backfill: first month requested. Incremental: first month recomputed.';
COMMENT ON COLUMN ops.measure_run.end_month IS 'Backfill: last month requested. Incremental: last month recomputed.';
COMMENT ON COLUMN ops.measure_run.changes_since IS 'Incremental: source rows loaded after this time were looked at (NULL: all rows, the first run).';
COMMENT ON COLUMN ops.measure_run.changes_through IS 'Incremental: the time the run looked at the sources; the next incremental run starts from it (less a safety overlap).';
COMMENT ON COLUMN ops.measure_run.registry IS 'What the registry sync changed: measures, new versions, targets.';
COMMENT ON COLUMN ops.measure_run.measures IS 'Per measure code, the values written (or why it was skipped).';
COMMENT ON COLUMN ops.measure_run.rows_written IS 'Measure values written by the run, all measures together.';
COMMENT ON COLUMN ops.measure_run.message IS 'Why the run failed: task and reason.';
COMMENT ON COLUMN ops.measure_run.started_at IS 'When the run started (its latest attempt).';
COMMENT ON COLUMN ops.measure_run.ended_at IS 'When the run succeeded or failed.';

CREATE TABLE ops.measure_file (
    measure_code text        PRIMARY KEY,
    file_name    text        NOT NULL,
    sha256       text        NOT NULL,
    run_id       text        NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.measure_file IS 'Per measure, the version (SHA-256) of its sql/measures file that its whole history was last computed with; an incremental run recomputes the whole history of a measure whose file is new or changed.';
COMMENT ON COLUMN ops.measure_file.measure_code IS 'Measure code, e.g. SAF-01.';
COMMENT ON COLUMN ops.measure_file.file_name IS 'The measure''s SQL file, e.g. saf_01.sql.';
COMMENT ON COLUMN ops.measure_file.sha256 IS 'SHA-256 of the file''s content.';
COMMENT ON COLUMN ops.measure_file.run_id IS 'The aim_measures run that computed the whole history with it.';
COMMENT ON COLUMN ops.measure_file.computed_at IS 'When that run computed it.';
