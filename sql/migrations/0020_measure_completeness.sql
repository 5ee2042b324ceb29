-- Every published number is true: source coverage, completeness of measure values, quarter and
-- fiscal-year values, and provenance.
--
-- core.source_coverage says, per source and day, whether the source delivered data for the day
-- and whether the day is settled (aim.measures.coverage fills it from the rows loaded, by each
-- source's declared coverage). A measure value's period is complete, provisional or 'no data'
-- (core.aim_measure_period); a period without data has no value and no status, never 0; a
-- provisional one has a value but no status yet. Each value records the definition it was
-- computed with, its run, and the source rows and batches behind it.
--
-- Measure values computed before this migration carry no completeness: they are removed, and
-- ops.measure_file is emptied so the next aim_measures run recomputes every measure's history.

DELETE FROM core.aim_measure_value;
DELETE FROM ops.measure_file;

CREATE TABLE core.source_coverage (
    source      text    NOT NULL,
    day         date    NOT NULL,
    source_rows bigint  NOT NULL,
    covered     boolean NOT NULL,
    settled     boolean NOT NULL,
    PRIMARY KEY (source, day),
    CHECK (covered OR NOT settled)
);
COMMENT ON TABLE core.source_coverage IS 'Per source and day (local date, from the source''s first day with data through today): whether the source delivered data for the day and whether the day is settled. Derived from the rows loaded into core.<source> by the source''s declared coverage (date column, cadence, lag_days, quiet_days in dags/sources/<source>.yaml); rewritten by every aim_measures run.';
COMMENT ON COLUMN core.source_coverage.source IS 'The source, e.g. mpd_crime_incidents (its rows are in core.<source>).';
COMMENT ON COLUMN core.source_coverage.day IS 'The day (Milwaukee local date).';
COMMENT ON COLUMN core.source_coverage.source_rows IS 'Rows of the source placed on the day by its coverage date column (a monthly source: the month''s rows, on its first day).';
COMMENT ON COLUMN core.source_coverage.covered IS 'The source delivered data for the day: rows on the day (monthly source: in its month), or the day lies in a short gap (at most quiet_days) between days with rows.';
COMMENT ON COLUMN core.source_coverage.settled IS 'Covered, and the source kept delivering for lag_days days after it without a gap: its late records have had time to arrive.';

-- Per source and period (core.aim_period: months, fiscal quarters, fiscal years): the one rule
-- that makes a period complete, provisional or 'no data' for a source.
CREATE VIEW core.source_period_coverage AS
SELECT s.source,
       p.period_id,
       p.period_type,
       p.period_start,
       p.period_end,
       p.label                                                   AS period_label,
       (p.period_end - p.period_start + 1)                       AS days_in_period,
       (count(c.day) FILTER (WHERE c.covered))::integer          AS days_covered,
       (count(c.day) FILTER (WHERE c.settled))::integer          AS days_settled,
       coalesce(sum(c.source_rows), 0)::bigint                   AS source_rows,
       CASE WHEN count(c.day) FILTER (WHERE c.covered) = 0 THEN 'no data'
            WHEN count(c.day) FILTER (WHERE c.settled) = p.period_end - p.period_start + 1 THEN 'complete'
            ELSE 'provisional' END                               AS completeness
FROM (SELECT DISTINCT source FROM core.source_coverage) s
CROSS JOIN core.aim_period p
LEFT JOIN core.source_coverage c ON c.source = s.source AND c.day BETWEEN p.period_start AND p.period_end
GROUP BY s.source, p.period_id;
COMMENT ON VIEW core.source_period_coverage IS 'Per source and period: days covered and settled, and the completeness rule: complete when every day of the period is covered and settled, no data when no day is covered, provisional otherwise (covered in part, or within the reporting lag).';
COMMENT ON COLUMN core.source_period_coverage.source IS 'The source.';
COMMENT ON COLUMN core.source_period_coverage.period_id IS 'The period (core.aim_period).';
COMMENT ON COLUMN core.source_period_coverage.period_type IS 'month, quarter or fiscal_year.';
COMMENT ON COLUMN core.source_period_coverage.period_start IS 'First day of the period.';
COMMENT ON COLUMN core.source_period_coverage.period_end IS 'Last day of the period.';
COMMENT ON COLUMN core.source_period_coverage.period_label IS 'Display label of the period.';
COMMENT ON COLUMN core.source_period_coverage.days_in_period IS 'Days in the period.';
COMMENT ON COLUMN core.source_period_coverage.days_covered IS 'Days of the period the source delivered data for.';
COMMENT ON COLUMN core.source_period_coverage.days_settled IS 'Days of the period that are covered and past the source''s reporting lag.';
COMMENT ON COLUMN core.source_period_coverage.source_rows IS 'Rows of the source placed in the period.';
COMMENT ON COLUMN core.source_period_coverage.completeness IS 'complete, provisional or no data.';

-- What each measure's values were last computed with: its SQL file and how it combines over time.
CREATE TABLE core.aim_measure_file (
    measure_code text        PRIMARY KEY,
    file_name    text        NOT NULL,
    sha256       text        NOT NULL,
    aggregation  text        NOT NULL CHECK (aggregation IN ('sum', 'ratio', 'median')),
    sources      text[]      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE core.aim_measure_file IS 'Per measure, the definition file (sql/measures/<code>.sql) its latest values were computed with, as its header declares it.';
COMMENT ON COLUMN core.aim_measure_file.measure_code IS 'Measure code, e.g. SAF-01.';
COMMENT ON COLUMN core.aim_measure_file.file_name IS 'The measure''s SQL file in sql/measures/, e.g. saf_01.sql.';
COMMENT ON COLUMN core.aim_measure_file.sha256 IS 'SHA-256 of the file''s content: the definition version.';
COMMENT ON COLUMN core.aim_measure_file.aggregation IS 'How the measure combines over months: sum (a quarter is the sum of its months; its annual target is scaled to the period), ratio (numerator and denominator re-divided), median (recomputed from the rows).';
COMMENT ON COLUMN core.aim_measure_file.sources IS 'The sources (core tables) the measure reads by date.';
COMMENT ON COLUMN core.aim_measure_file.updated_at IS 'When the file was last recorded.';

-- Per measure and period: completeness and the computation (one row per computed period).
CREATE TABLE core.aim_measure_period (
    measure_code      text        NOT NULL,
    period_id         integer     NOT NULL REFERENCES core.aim_period,
    completeness      text        NOT NULL CHECK (completeness IN ('complete', 'provisional', 'no data')),
    days_in_period    integer     NOT NULL,
    days_covered      integer     NOT NULL,
    days_settled      integer     NOT NULL,
    definition_sha256 text        NOT NULL,
    run_id            text        NOT NULL,
    computed_at       timestamptz NOT NULL,
    PRIMARY KEY (measure_code, period_id)
);
COMMENT ON TABLE core.aim_measure_period IS 'Per measure and period computed: how complete its sources'' data is, and which definition and run computed its values. A period of a measure is complete when every source it reads is complete for it, no data when any source has nothing for it, provisional otherwise.';
COMMENT ON COLUMN core.aim_measure_period.measure_code IS 'Measure code.';
COMMENT ON COLUMN core.aim_measure_period.period_id IS 'The period (core.aim_period).';
COMMENT ON COLUMN core.aim_measure_period.completeness IS 'complete, provisional or no data.';
COMMENT ON COLUMN core.aim_measure_period.days_in_period IS 'Days in the period.';
COMMENT ON COLUMN core.aim_measure_period.days_covered IS 'Days of the period covered by every source the measure reads (the least covered source).';
COMMENT ON COLUMN core.aim_measure_period.days_settled IS 'Days of the period settled in every source the measure reads.';
COMMENT ON COLUMN core.aim_measure_period.definition_sha256 IS 'SHA-256 of the measure''s SQL file the values were computed with.';
COMMENT ON COLUMN core.aim_measure_period.run_id IS 'The aim_measures run that computed them.';
COMMENT ON COLUMN core.aim_measure_period.computed_at IS 'When they were computed.';

-- Per measure, period and source table: the rows and batches behind the period's values.
CREATE TABLE core.aim_measure_source (
    measure_code text        NOT NULL,
    period_id    integer     NOT NULL REFERENCES core.aim_period,
    source_table text        NOT NULL,
    source_rows  bigint      NOT NULL,
    batches      text[]      NOT NULL,
    data_as_of   timestamptz,
    PRIMARY KEY (measure_code, period_id, source_table)
);
COMMENT ON TABLE core.aim_measure_source IS 'Provenance: per measure, period and source table it reads by date, the rows of that table placed in the period (by the date columns of the measure''s reads header) and the ingest batches that loaded them.';
COMMENT ON COLUMN core.aim_measure_source.measure_code IS 'Measure code.';
COMMENT ON COLUMN core.aim_measure_source.period_id IS 'The period (core.aim_period).';
COMMENT ON COLUMN core.aim_measure_source.source_table IS 'The table read, e.g. core.mpd_crime_incidents.';
COMMENT ON COLUMN core.aim_measure_source.source_rows IS 'Rows of the table in the period (before the measure''s own filters).';
COMMENT ON COLUMN core.aim_measure_source.batches IS 'The ingest batches (ops.batch) that loaded those rows, in order.';
COMMENT ON COLUMN core.aim_measure_source.data_as_of IS 'The newest load time of those rows; NULL when the period has none.';

-- The values joined once to their version, period, completeness, target and status.
DROP VIEW marts.values_by_district, marts.scorecard, marts.measure_history, core.aim_value_status;

CREATE VIEW core.aim_value_status AS
SELECT
    v.measure_code,
    m.version                       AS measure_version,
    m.name                          AS measure_name,
    pr.name                         AS priority,
    d.name                          AS department,
    a.name                          AS activity,
    m.unit,
    m.direction,
    f.aggregation,
    v.period_id,
    p.period_type,
    p.period_start,
    p.period_end,
    p.label                         AS period_label,
    p.fiscal_year,
    p.fiscal_quarter,
    v.geography_type,
    v.geography_code,
    g.name                          AS geography_name,
    v.value,
    v.numerator,
    v.denominator,
    t.target_value,
    r.tolerance,
    CASE coalesce(mp.completeness, 'provisional')
         WHEN 'no data' THEN 'no data'
         WHEN 'provisional' THEN 'provisional'
         ELSE core.aim_status(v.value, t.target_value, m.direction, r.tolerance) END AS status,
    coalesce(mp.completeness, 'provisional') AS completeness,
    mp.days_in_period,
    mp.days_covered,
    mp.days_settled,
    v.data_as_of,
    v.computed_at,
    v.run_id
FROM core.aim_measure_value v
JOIN core.aim_period p ON p.period_id = v.period_id
JOIN core.aim_geography g ON g.geography_type = v.geography_type AND g.geography_code = v.geography_code
LEFT JOIN core.aim_measure_period mp ON mp.measure_code = v.measure_code AND mp.period_id = v.period_id
LEFT JOIN core.aim_measure_file f ON f.measure_code = v.measure_code
LEFT JOIN core.aim_measure m
       ON m.measure_code = v.measure_code
      AND m.valid_from <= (p.period_start::timestamp AT TIME ZONE 'America/Chicago')
      AND (m.valid_to IS NULL OR m.valid_to > (p.period_start::timestamp AT TIME ZONE 'America/Chicago'))
LEFT JOIN core.aim_priority pr ON pr.priority_id = m.priority_id
LEFT JOIN core.aim_department d ON d.department_id = m.department_id
LEFT JOIN core.aim_activity a ON a.activity_id = m.activity_id
LEFT JOIN core.aim_status_rule r ON true
LEFT JOIN LATERAL (
    -- a target set for the period itself wins; otherwise the fiscal year's, which the registry
    -- states per month (the measures' frequency): a quarter or a year of a measure that sums over
    -- months has it times 3 or 12
    SELECT CASE WHEN tg.period_id IS NULL AND f.aggregation = 'sum'
                THEN tg.target_value * CASE p.period_type WHEN 'quarter' THEN 3 WHEN 'fiscal_year' THEN 12 ELSE 1 END
                ELSE tg.target_value END AS target_value
    FROM core.aim_target tg
    WHERE tg.measure_code = v.measure_code
      AND tg.fiscal_year = p.fiscal_year
      AND (tg.period_id = v.period_id OR tg.period_id IS NULL)
    ORDER BY tg.period_id NULLS LAST
    LIMIT 1
) t ON true;
COMMENT ON VIEW core.aim_value_status IS 'Internal (read through marts): every measure value with the measure version valid at its period''s start, its completeness, the target for its period and its status.';
COMMENT ON COLUMN core.aim_value_status.measure_code IS 'Measure code.';
COMMENT ON COLUMN core.aim_value_status.measure_version IS 'Version of the measure valid at the period''s start; NULL when the measure is not in the registry.';
COMMENT ON COLUMN core.aim_value_status.measure_name IS 'Name in that version.';
COMMENT ON COLUMN core.aim_value_status.priority IS 'Strategic priority in that version.';
COMMENT ON COLUMN core.aim_value_status.department IS 'Owning department in that version.';
COMMENT ON COLUMN core.aim_value_status.activity IS 'Activity in that version.';
COMMENT ON COLUMN core.aim_value_status.unit IS 'Unit in that version.';
COMMENT ON COLUMN core.aim_value_status.direction IS 'higher or lower (is better), in that version.';
COMMENT ON COLUMN core.aim_value_status.aggregation IS 'How the measure combines over months: sum, ratio or median.';
COMMENT ON COLUMN core.aim_value_status.period_id IS 'The period (core.aim_period).';
COMMENT ON COLUMN core.aim_value_status.period_type IS 'month, quarter or fiscal_year.';
COMMENT ON COLUMN core.aim_value_status.period_start IS 'First day of the period.';
COMMENT ON COLUMN core.aim_value_status.period_end IS 'Last day of the period.';
COMMENT ON COLUMN core.aim_value_status.period_label IS 'Display label of the period.';
COMMENT ON COLUMN core.aim_value_status.fiscal_year IS 'Fiscal year of the period.';
COMMENT ON COLUMN core.aim_value_status.fiscal_quarter IS 'Fiscal quarter of the period.';
COMMENT ON COLUMN core.aim_value_status.geography_type IS 'citywide, aldermanic_district or police_district.';
COMMENT ON COLUMN core.aim_value_status.geography_code IS 'all, or the district number.';
COMMENT ON COLUMN core.aim_value_status.geography_name IS 'Display name of the geography.';
COMMENT ON COLUMN core.aim_value_status.value IS 'The value; NULL when the period has no data.';
COMMENT ON COLUMN core.aim_value_status.numerator IS 'Numerator of a ratio, percentage or rate.';
COMMENT ON COLUMN core.aim_value_status.denominator IS 'Denominator of a ratio, percentage or rate.';
COMMENT ON COLUMN core.aim_value_status.target_value IS 'Target for the period: one set for the period itself, else the fiscal year''s (per month; times 3 for a quarter and 12 for a year when the measure sums over months); NULL when none is set.';
COMMENT ON COLUMN core.aim_value_status.tolerance IS 'Tolerance of the status rule.';
COMMENT ON COLUMN core.aim_value_status.status IS 'no data or provisional by completeness; for a complete period, core.aim_status of value and target.';
COMMENT ON COLUMN core.aim_value_status.completeness IS 'complete, provisional or no data (core.aim_measure_period; provisional when not recorded).';
COMMENT ON COLUMN core.aim_value_status.days_in_period IS 'Days in the period.';
COMMENT ON COLUMN core.aim_value_status.days_covered IS 'Days of the period the measure''s sources delivered data for.';
COMMENT ON COLUMN core.aim_value_status.days_settled IS 'Days of the period past the sources'' reporting lag.';
COMMENT ON COLUMN core.aim_value_status.data_as_of IS 'Newest load time of the source rows behind the value.';
COMMENT ON COLUMN core.aim_value_status.computed_at IS 'When the value was computed.';
COMMENT ON COLUMN core.aim_value_status.run_id IS 'The aim_measures run that computed the value.';

-- Every value: months, fiscal quarters and fiscal years.
CREATE VIEW marts.measure_history AS
SELECT
    measure_code, measure_version, measure_name, priority, department, unit, direction, aggregation,
    period_type, period_start, period_end, period_label, fiscal_year, fiscal_quarter,
    geography_type, geography_code, geography_name,
    value, numerator, denominator, target_value, status,
    completeness, days_in_period, days_covered, days_settled, data_as_of, computed_at
FROM core.aim_value_status;
COMMENT ON VIEW marts.measure_history IS 'Every AIM measure value, by month, fiscal quarter and fiscal year, for every geography, with the measure version valid at the start of the period, its completeness, the target for the period and the status against it. A period without source data has a row with no value and status no data; a provisional period has a value but no on/off-track status yet.';
COMMENT ON COLUMN marts.measure_history.measure_code IS 'Measure code, e.g. SAF-01.';
COMMENT ON COLUMN marts.measure_history.measure_version IS 'The measure version valid at the start of the period (see marts.measure_definitions); NULL when the measure is not in the registry.';
COMMENT ON COLUMN marts.measure_history.measure_name IS 'Measure name in that version.';
COMMENT ON COLUMN marts.measure_history.priority IS 'Strategic priority in that version.';
COMMENT ON COLUMN marts.measure_history.department IS 'Owning department in that version.';
COMMENT ON COLUMN marts.measure_history.unit IS 'Unit of value and target_value: count, percent, rate, minutes or days.';
COMMENT ON COLUMN marts.measure_history.direction IS 'higher or lower (is better), in that version; decides the status.';
COMMENT ON COLUMN marts.measure_history.aggregation IS 'How a quarter or year is computed: sum (counts and per-resident rates add up over months), ratio (numerator and denominator re-divided), median (recomputed from the rows).';
COMMENT ON COLUMN marts.measure_history.period_type IS 'month, quarter (fiscal quarter) or fiscal_year.';
COMMENT ON COLUMN marts.measure_history.period_start IS 'First day of the period.';
COMMENT ON COLUMN marts.measure_history.period_end IS 'Last day of the period (inclusive).';
COMMENT ON COLUMN marts.measure_history.period_label IS 'Display label: 2026-01, FY2026 Q1, FY2026.';
COMMENT ON COLUMN marts.measure_history.fiscal_year IS 'Fiscal year of the period, named by the calendar year it ends in.';
COMMENT ON COLUMN marts.measure_history.fiscal_quarter IS 'Fiscal quarter (1-4) of the period; NULL for a fiscal year.';
COMMENT ON COLUMN marts.measure_history.geography_type IS 'citywide, aldermanic_district or police_district.';
COMMENT ON COLUMN marts.measure_history.geography_code IS 'all for citywide; the district number (as text) otherwise.';
COMMENT ON COLUMN marts.measure_history.geography_name IS 'Display name, e.g. "Aldermanic district 3".';
COMMENT ON COLUMN marts.measure_history.value IS 'The measure''s value for the period and geography, in its unit; NULL when the period has no data, or when it cannot be computed (e.g. a percentage of nothing). Never 0 for want of data.';
COMMENT ON COLUMN marts.measure_history.numerator IS 'For a percentage or rate: what was counted; NULL otherwise.';
COMMENT ON COLUMN marts.measure_history.denominator IS 'For a percentage or rate: what it is out of (cases, residents, households); NULL otherwise.';
COMMENT ON COLUMN marts.measure_history.target_value IS 'The target for the period: the fiscal year''s target (stated per month), times 3 for a quarter and 12 for a year when the measure sums over months; a target set for the period itself wins. NULL when none is set.';
COMMENT ON COLUMN marts.measure_history.status IS 'For a complete period: on track, within tolerance (not on track but within the tolerance of core.aim_status_rule, 5% of the target by default), off track, no target or no value. Otherwise: provisional (a value, but no call against the target until the period is complete) or no data.';
COMMENT ON COLUMN marts.measure_history.completeness IS 'complete (every day of the period delivered and past the sources'' reporting lag), provisional (covered in part, or still within the lag: the value may change) or no data (a source has nothing for the period).';
COMMENT ON COLUMN marts.measure_history.days_in_period IS 'Days in the period.';
COMMENT ON COLUMN marts.measure_history.days_covered IS 'Days of the period the sources delivered data for (the least covered source).';
COMMENT ON COLUMN marts.measure_history.days_settled IS 'Days of the period past the sources'' reporting lag.';
COMMENT ON COLUMN marts.measure_history.data_as_of IS 'How fresh the value is: the newest load time of the source rows it was computed from.';
COMMENT ON COLUMN marts.measure_history.computed_at IS 'When the value was computed.';

-- Per measure (current version) and geography, the latest complete month with a value.
CREATE VIEW marts.scorecard AS
WITH latest AS (
    SELECT DISTINCT ON (s.measure_code, s.geography_type, s.geography_code)
           s.measure_code, s.geography_type, s.geography_code, s.period_id, s.value, s.numerator,
           s.denominator, s.target_value, s.status, s.completeness, s.data_as_of, s.computed_at
    FROM core.aim_value_status s
    WHERE s.period_type = 'month' AND s.value IS NOT NULL
    -- the latest complete month; a provisional month only when no complete month has a value
    ORDER BY s.measure_code, s.geography_type, s.geography_code, s.completeness <> 'complete', s.period_start DESC
)
SELECT
    m.measure_code,
    m.version                                 AS measure_version,
    m.name                                    AS measure_name,
    pr.name                                   AS priority,
    d.name                                    AS department,
    a.name                                    AS activity,
    m.unit,
    m.direction,
    m.frequency,
    coalesce(l.geography_type, 'citywide')    AS geography_type,
    coalesce(l.geography_code, 'all')         AS geography_code,
    coalesce(g.name, 'City of Milwaukee')     AS geography_name,
    p.period_start,
    p.label                                   AS period_label,
    p.fiscal_year,
    l.value,
    l.numerator,
    l.denominator,
    l.target_value,
    coalesce(l.status, 'no value')            AS status,
    l.completeness,
    l.data_as_of,
    l.computed_at
FROM core.aim_measure m
JOIN core.aim_priority pr ON pr.priority_id = m.priority_id
JOIN core.aim_department d ON d.department_id = m.department_id
JOIN core.aim_activity a ON a.activity_id = m.activity_id
LEFT JOIN latest l ON l.measure_code = m.measure_code
LEFT JOIN core.aim_period p ON p.period_id = l.period_id
LEFT JOIN core.aim_geography g ON g.geography_type = l.geography_type AND g.geography_code = l.geography_code
WHERE m.valid_to IS NULL;
COMMENT ON VIEW marts.scorecard IS 'The AIM scorecard: for every current measure and every geography it is reported for, its latest complete month with a value (a provisional month only when no complete month has one), that value, the target and the status. A measure without any value yet has one citywide row with status no value.';
COMMENT ON COLUMN marts.scorecard.measure_code IS 'Measure code, e.g. SAF-01.';
COMMENT ON COLUMN marts.scorecard.measure_version IS 'The current version of the measure (see marts.measure_definitions).';
COMMENT ON COLUMN marts.scorecard.measure_name IS 'Measure name.';
COMMENT ON COLUMN marts.scorecard.priority IS 'The city''s strategic priority the measure serves.';
COMMENT ON COLUMN marts.scorecard.department IS 'The department that owns the measure.';
COMMENT ON COLUMN marts.scorecard.activity IS 'The departmental activity the measure describes.';
COMMENT ON COLUMN marts.scorecard.unit IS 'Unit of value and target_value: count, percent (0-100), rate, minutes or days.';
COMMENT ON COLUMN marts.scorecard.direction IS 'higher: higher is better; lower: lower is better.';
COMMENT ON COLUMN marts.scorecard.frequency IS 'How often the measure is reported.';
COMMENT ON COLUMN marts.scorecard.geography_type IS 'citywide, aldermanic_district or police_district.';
COMMENT ON COLUMN marts.scorecard.geography_code IS 'all for citywide; the district number (as text) otherwise.';
COMMENT ON COLUMN marts.scorecard.geography_name IS 'Display name, e.g. "Police district 5".';
COMMENT ON COLUMN marts.scorecard.period_start IS 'First day of the month shown; NULL when there is none.';
COMMENT ON COLUMN marts.scorecard.period_label IS 'That month, e.g. 2026-06.';
COMMENT ON COLUMN marts.scorecard.fiscal_year IS 'Fiscal year of that month.';
COMMENT ON COLUMN marts.scorecard.value IS 'The value for that month, in the measure''s unit.';
COMMENT ON COLUMN marts.scorecard.numerator IS 'For a percentage or rate: what was counted; NULL otherwise.';
COMMENT ON COLUMN marts.scorecard.denominator IS 'For a percentage or rate: what it is out of; NULL otherwise.';
COMMENT ON COLUMN marts.scorecard.target_value IS 'The target for that month (its fiscal year''s, or one set for the month); NULL when none is set.';
COMMENT ON COLUMN marts.scorecard.status IS 'on track, within tolerance (not on track but within 5% of the target by default, see core.aim_status_rule), off track, no target (none set for that fiscal year: never guessed), provisional (the month is not complete yet: no call against the target) or no value (no value computed yet).';
COMMENT ON COLUMN marts.scorecard.completeness IS 'complete or provisional (see marts.measure_history); NULL when there is no value.';
COMMENT ON COLUMN marts.scorecard.data_as_of IS 'How fresh the value is: the newest load time of the source rows it was computed from.';
COMMENT ON COLUMN marts.scorecard.computed_at IS 'When the value was computed.';

-- Aldermanic district values, one row per measure, period and district.
CREATE VIEW marts.values_by_district AS
SELECT
    s.measure_code,
    s.measure_name,
    s.unit,
    s.direction,
    s.period_type,
    s.period_start,
    s.period_label,
    s.fiscal_year,
    s.geography_code::smallint AS district,
    s.value,
    s.numerator,
    s.denominator,
    s.target_value,
    s.status,
    c.value                    AS citywide_value,
    s.completeness,
    s.data_as_of
FROM core.aim_value_status s
LEFT JOIN core.aim_measure_value c
       ON c.measure_code = s.measure_code AND c.period_id = s.period_id
      AND c.geography_type = 'citywide' AND c.geography_code = 'all'
WHERE s.geography_type = 'aldermanic_district';
COMMENT ON VIEW marts.values_by_district IS 'AIM measure values by aldermanic district (1-15), one row per measure, period and district, with the citywide value beside it: ready to pivot (districts as columns) or rank.';
COMMENT ON COLUMN marts.values_by_district.measure_code IS 'Measure code, e.g. SAF-02.';
COMMENT ON COLUMN marts.values_by_district.measure_name IS 'Measure name in the version valid at the period''s start.';
COMMENT ON COLUMN marts.values_by_district.unit IS 'Unit of the values: count, percent, rate, minutes or days.';
COMMENT ON COLUMN marts.values_by_district.direction IS 'higher or lower (is better): which end of a ranking is best.';
COMMENT ON COLUMN marts.values_by_district.period_type IS 'month, quarter or fiscal_year.';
COMMENT ON COLUMN marts.values_by_district.period_start IS 'First day of the period.';
COMMENT ON COLUMN marts.values_by_district.period_label IS 'Display label of the period, e.g. 2026-03.';
COMMENT ON COLUMN marts.values_by_district.fiscal_year IS 'Fiscal year of the period.';
COMMENT ON COLUMN marts.values_by_district.district IS 'Aldermanic district number, 1-15.';
COMMENT ON COLUMN marts.values_by_district.value IS 'The district''s value for the period; NULL when the period has no data.';
COMMENT ON COLUMN marts.values_by_district.numerator IS 'For a percentage or rate: what was counted in the district.';
COMMENT ON COLUMN marts.values_by_district.denominator IS 'For a percentage or rate: what it is out of in the district.';
COMMENT ON COLUMN marts.values_by_district.target_value IS 'The (citywide) target for the period; NULL when none is set.';
COMMENT ON COLUMN marts.values_by_district.status IS 'The district''s value against the target: on track, within tolerance, off track, no target, no value, provisional or no data.';
COMMENT ON COLUMN marts.values_by_district.citywide_value IS 'The citywide value of the same measure and period, for comparison.';
COMMENT ON COLUMN marts.values_by_district.completeness IS 'complete, provisional or no data (see marts.measure_history).';
COMMENT ON COLUMN marts.values_by_district.data_as_of IS 'Newest load time of the source rows behind the value.';

-- Coverage of every source, by period.
CREATE VIEW marts.source_coverage AS
SELECT source, period_type, period_start, period_end, period_label, days_in_period, days_covered,
       days_settled, source_rows, completeness
FROM core.source_period_coverage spc
WHERE EXISTS (SELECT FROM core.source_coverage c  -- periods from the source's first day through today
              WHERE c.source = spc.source AND c.day >= spc.period_start)
  AND EXISTS (SELECT FROM core.source_coverage c
              WHERE c.source = spc.source AND c.day <= spc.period_end);
COMMENT ON VIEW marts.source_coverage IS 'For every source the measures read, and every month, fiscal quarter and fiscal year from its first day with data through today: the days its data covers, the days settled (past its reporting lag) and whether the period is complete, provisional or has no data. A measure''s period is as complete as the least complete source it reads.';
COMMENT ON COLUMN marts.source_coverage.source IS 'The source, e.g. mpd_crime_incidents.';
COMMENT ON COLUMN marts.source_coverage.period_type IS 'month, quarter or fiscal_year.';
COMMENT ON COLUMN marts.source_coverage.period_start IS 'First day of the period.';
COMMENT ON COLUMN marts.source_coverage.period_end IS 'Last day of the period.';
COMMENT ON COLUMN marts.source_coverage.period_label IS 'Display label: 2026-01, FY2026 Q1, FY2026.';
COMMENT ON COLUMN marts.source_coverage.days_in_period IS 'Days in the period.';
COMMENT ON COLUMN marts.source_coverage.days_covered IS 'Days of the period the source delivered data for.';
COMMENT ON COLUMN marts.source_coverage.days_settled IS 'Days covered and past the source''s reporting lag (records for them have had time to arrive).';
COMMENT ON COLUMN marts.source_coverage.source_rows IS 'Rows of the source dated in the period.';
COMMENT ON COLUMN marts.source_coverage.completeness IS 'complete (every day covered and settled), provisional (covered in part, or within the lag) or no data.';

-- Where a number comes from: one row per value and source table.
CREATE VIEW marts.measure_provenance AS
SELECT
    s.measure_code,
    s.measure_version,
    s.measure_name,
    s.period_type,
    s.period_start,
    s.period_label,
    s.geography_type,
    s.geography_code,
    s.value,
    s.status,
    s.completeness,
    'sql/measures/' || f.file_name AS definition_file,
    mp.definition_sha256,
    f.aggregation,
    mp.run_id,
    mp.computed_at,
    ms.source_table,
    ms.source_rows,
    ms.batches,
    ms.data_as_of
FROM core.aim_value_status s
LEFT JOIN core.aim_measure_period mp ON mp.measure_code = s.measure_code AND mp.period_id = s.period_id
LEFT JOIN core.aim_measure_file f ON f.measure_code = s.measure_code
LEFT JOIN core.aim_measure_source ms ON ms.measure_code = s.measure_code AND ms.period_id = s.period_id;
COMMENT ON VIEW marts.measure_provenance IS 'Where a number comes from: for every measure value, the definition (SQL file and its SHA-256, registry version), the run that computed it, and per source table the rows in the period and the ingest batches that loaded them.';
COMMENT ON COLUMN marts.measure_provenance.measure_code IS 'Measure code.';
COMMENT ON COLUMN marts.measure_provenance.measure_version IS 'Registry version of the measure valid at the period''s start (marts.measure_definitions).';
COMMENT ON COLUMN marts.measure_provenance.measure_name IS 'Measure name in that version.';
COMMENT ON COLUMN marts.measure_provenance.period_type IS 'month, quarter or fiscal_year.';
COMMENT ON COLUMN marts.measure_provenance.period_start IS 'First day of the period.';
COMMENT ON COLUMN marts.measure_provenance.period_label IS 'Display label of the period.';
COMMENT ON COLUMN marts.measure_provenance.geography_type IS 'citywide, aldermanic_district or police_district.';
COMMENT ON COLUMN marts.measure_provenance.geography_code IS 'all, or the district number.';
COMMENT ON COLUMN marts.measure_provenance.value IS 'The value.';
COMMENT ON COLUMN marts.measure_provenance.status IS 'Its status (see marts.measure_history).';
COMMENT ON COLUMN marts.measure_provenance.completeness IS 'complete, provisional or no data.';
COMMENT ON COLUMN marts.measure_provenance.definition_file IS 'The SQL file that defines the measure, in the project repository.';
COMMENT ON COLUMN marts.measure_provenance.definition_sha256 IS 'SHA-256 of that file when the value was computed: the definition version.';
COMMENT ON COLUMN marts.measure_provenance.aggregation IS 'How the measure combines over months: sum, ratio or median.';
COMMENT ON COLUMN marts.measure_provenance.run_id IS 'The aim_measures run that computed the value.';
COMMENT ON COLUMN marts.measure_provenance.computed_at IS 'When it was computed.';
COMMENT ON COLUMN marts.measure_provenance.source_table IS 'A table the measure reads, e.g. core.mpd_crime_incidents.';
COMMENT ON COLUMN marts.measure_provenance.source_rows IS 'Rows of that table dated in the period (before the measure''s own filters).';
COMMENT ON COLUMN marts.measure_provenance.batches IS 'The ingest batches that loaded those rows.';
COMMENT ON COLUMN marts.measure_provenance.data_as_of IS 'The newest load time of those rows.';
