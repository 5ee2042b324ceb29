-- Stale-data watch: how fresh each source's data is, checked hourly by the watch_freshness DAG
-- (aim.freshness), against the promise its configuration makes (dags/sources/<source>.yaml,
-- `freshness.max_age_days`).
--
-- A source's data is as of the newest day it delivered data for: by its coverage date column
-- (core.<source>, Milwaukee's date; a monthly source: the first day of its newest month; rows dated
-- after today do not count), or, for a source without coverage, the day of its last successful run
-- that loaded rows (ops.run_log). Every check is kept; ops.source_freshness is the latest per
-- source, and marts.source_freshness shows it to analysts.

CREATE TABLE ops.freshness_check (
    check_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at      timestamptz NOT NULL,
    run_id          text,
    source          text        NOT NULL,
    data_as_of      date,
    as_of_basis     text        NOT NULL CHECK (as_of_basis IN ('coverage date', 'last load')),
    age_days        integer,
    max_age_days    integer     CHECK (max_age_days >= 0),
    last_success_at timestamptz,
    status          text        NOT NULL CHECK (status IN ('fresh', 'stale', 'no data', 'no promise')),
    message         text        NOT NULL,
    alert_channels  text[],
    CHECK ((status = 'no promise') = (max_age_days IS NULL)),
    CHECK (status <> 'no data' OR data_as_of IS NULL),
    CHECK (status NOT IN ('fresh', 'stale') OR data_as_of IS NOT NULL),
    CHECK ((data_as_of IS NULL) = (age_days IS NULL)),
    CHECK (alert_channels IS NULL OR status = 'stale')
);
CREATE INDEX freshness_check_source ON ops.freshness_check (source, check_id DESC);
COMMENT ON TABLE ops.freshness_check IS 'One row per source per freshness check (the watch_freshness DAG, hourly): how fresh its data is against the promise of its configuration, and whether IT operations was alerted. The latest check per source: ops.source_freshness.';
COMMENT ON COLUMN ops.freshness_check.check_id IS 'Order of the checks (later checks have higher ids).';
COMMENT ON COLUMN ops.freshness_check.checked_at IS 'When the check ran, by the platform''s clock (ops.clock_now()).';
COMMENT ON COLUMN ops.freshness_check.run_id IS 'The watch_freshness DAG run that made the check; NULL when run outside Airflow.';
COMMENT ON COLUMN ops.freshness_check.source IS 'The source, e.g. mpd_crime_incidents (dags/sources/<source>.yaml).';
COMMENT ON COLUMN ops.freshness_check.data_as_of IS 'The newest day (Milwaukee date) the source delivered data for: the newest day of its coverage date column, up to today (a monthly source: the first day of its newest month), or the day of its last successful run that loaded rows (see as_of_basis); NULL when it has none.';
COMMENT ON COLUMN ops.freshness_check.as_of_basis IS 'How data_as_of was found: coverage date (the newest date of the source''s coverage date column in core.<source>) or last load (the last successful ingest run that loaded rows, for a source without coverage).';
COMMENT ON COLUMN ops.freshness_check.age_days IS 'Days from data_as_of to the day of the check (Milwaukee date); NULL without data.';
COMMENT ON COLUMN ops.freshness_check.max_age_days IS 'The promise: the source''s freshness.max_age_days when checked; NULL when it makes none.';
COMMENT ON COLUMN ops.freshness_check.last_success_at IS 'When the source''s last successful ingest run ended (ops.run_log), whether or not it loaded rows; NULL when none has succeeded.';
COMMENT ON COLUMN ops.freshness_check.status IS 'fresh (age_days within max_age_days), stale (older), no data (a promise, but nothing loaded yet) or no promise (the source declares no freshness).';
COMMENT ON COLUMN ops.freshness_check.message IS 'The status in words, e.g. newest data is for 2026-11-20, 10 days old; promised within 2 days.';
COMMENT ON COLUMN ops.freshness_check.alert_channels IS 'A stale check that alerted IT operations (the first of a stale episode, or the next one while no alert of the episode was delivered): the channels that delivered the alert, empty when none did; NULL when this check sent no alert.';

-- The latest check of each source, with when its current stale episode began.
CREATE VIEW ops.source_freshness AS
SELECT DISTINCT ON (c.source)
       c.source,
       c.status,
       c.data_as_of,
       c.as_of_basis,
       c.age_days,
       c.max_age_days,
       c.last_success_at,
       c.message,
       CASE WHEN c.status = 'stale' THEN (
           SELECT min(s.checked_at) FROM ops.freshness_check s
           WHERE s.source = c.source
             AND s.check_id > coalesce((SELECT max(n.check_id) FROM ops.freshness_check n
                                        WHERE n.source = c.source AND n.status <> 'stale'), 0))
       END AS stale_since,
       c.checked_at,
       c.run_id
FROM ops.freshness_check c
ORDER BY c.source, c.check_id DESC;
COMMENT ON VIEW ops.source_freshness IS 'Per source, its latest freshness check (ops.freshness_check): the newest day it delivered data for, against its promise.';
COMMENT ON COLUMN ops.source_freshness.source IS 'The source.';
COMMENT ON COLUMN ops.source_freshness.status IS 'fresh, stale, no data or no promise.';
COMMENT ON COLUMN ops.source_freshness.data_as_of IS 'The newest day the source delivered data for (see ops.freshness_check.data_as_of).';
COMMENT ON COLUMN ops.source_freshness.as_of_basis IS 'coverage date or last load: how data_as_of was found.';
COMMENT ON COLUMN ops.source_freshness.age_days IS 'Days from data_as_of to the day of the check.';
COMMENT ON COLUMN ops.source_freshness.max_age_days IS 'The promise in days; NULL when the source makes none.';
COMMENT ON COLUMN ops.source_freshness.last_success_at IS 'When the source''s last successful ingest run ended.';
COMMENT ON COLUMN ops.source_freshness.message IS 'The status in words.';
COMMENT ON COLUMN ops.source_freshness.stale_since IS 'A stale source: the first check of its current stale episode; NULL otherwise.';
COMMENT ON COLUMN ops.source_freshness.checked_at IS 'When the latest check ran.';
COMMENT ON COLUMN ops.source_freshness.run_id IS 'The watch_freshness run of the latest check.';

-- The same for analysts (marts views are readable by aim_analyst: migration 0013's default privileges).
CREATE VIEW marts.source_freshness AS
SELECT source, status, data_as_of, age_days, max_age_days, last_success_at, stale_since, checked_at
FROM ops.source_freshness;
COMMENT ON VIEW marts.source_freshness IS 'Per source, how fresh its data was at the latest hourly check: the newest day it delivered data for, against the age its configuration promises.';
COMMENT ON COLUMN marts.source_freshness.source IS 'The source, e.g. mpd_crime_incidents.';
COMMENT ON COLUMN marts.source_freshness.status IS 'fresh (within its promise), stale (older), no data (nothing loaded yet) or no promise.';
COMMENT ON COLUMN marts.source_freshness.data_as_of IS 'The newest day (Milwaukee date) the source delivered data for; for a monthly source, the first day of its newest month.';
COMMENT ON COLUMN marts.source_freshness.age_days IS 'Days from data_as_of to the day of the check.';
COMMENT ON COLUMN marts.source_freshness.max_age_days IS 'The promise: the newest data is at most this many days old; NULL when the source makes none.';
COMMENT ON COLUMN marts.source_freshness.last_success_at IS 'When the source''s last successful ingest run ended.';
COMMENT ON COLUMN marts.source_freshness.stale_since IS 'A stale source: since when it has been stale; NULL otherwise.';
COMMENT ON COLUMN marts.source_freshness.checked_at IS 'When the check ran.';
