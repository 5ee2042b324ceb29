-- The AIM metrics model, part 3: the analysts' interface in marts.
--
-- core.aim_value_status joins each value to the measure version valid at its period's start,
-- its target and its status, once; the marts views select from it (or from core directly).
-- A version is valid at a period when the period's first day, at midnight in Milwaukee
-- (America/Chicago, the local time of every source), falls in [valid_from, valid_to).

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
    core.aim_status(v.value, t.target_value, m.direction, r.tolerance) AS status,
    (v.computed_at AT TIME ZONE 'America/Chicago')::date <= p.period_end AS is_partial_month,
    v.data_as_of,
    v.computed_at,
    v.run_id
FROM core.aim_measure_value v
JOIN core.aim_period p ON p.period_id = v.period_id
JOIN core.aim_geography g ON g.geography_type = v.geography_type AND g.geography_code = v.geography_code
LEFT JOIN core.aim_measure m
       ON m.measure_code = v.measure_code
      AND m.valid_from <= (p.period_start::timestamp AT TIME ZONE 'America/Chicago')
      AND (m.valid_to IS NULL OR m.valid_to > (p.period_start::timestamp AT TIME ZONE 'America/Chicago'))
LEFT JOIN core.aim_priority pr ON pr.priority_id = m.priority_id
LEFT JOIN core.aim_department d ON d.department_id = m.department_id
LEFT JOIN core.aim_activity a ON a.activity_id = m.activity_id
LEFT JOIN core.aim_status_rule r ON true
LEFT JOIN LATERAL (
    SELECT tg.target_value
    FROM core.aim_target tg
    WHERE tg.measure_code = v.measure_code
      AND tg.fiscal_year = p.fiscal_year
      AND (tg.period_id = v.period_id OR tg.period_id IS NULL)
    ORDER BY tg.period_id NULLS LAST  -- a target for the period itself wins over the annual one
    LIMIT 1
) t ON true;
COMMENT ON VIEW core.aim_value_status IS 'Internal (read through marts): every measure value with the measure version valid at its period''s start, the target for its period (or fiscal year) and its status.';
COMMENT ON COLUMN core.aim_value_status.measure_code IS 'Measure code.';
COMMENT ON COLUMN core.aim_value_status.measure_version IS 'Version of the measure valid at the period''s start; NULL when the measure is not in the registry.';
COMMENT ON COLUMN core.aim_value_status.measure_name IS 'Name in that version.';
COMMENT ON COLUMN core.aim_value_status.priority IS 'Strategic priority in that version.';
COMMENT ON COLUMN core.aim_value_status.department IS 'Owning department in that version.';
COMMENT ON COLUMN core.aim_value_status.activity IS 'Activity in that version.';
COMMENT ON COLUMN core.aim_value_status.unit IS 'Unit in that version.';
COMMENT ON COLUMN core.aim_value_status.direction IS 'higher or lower (is better), in that version.';
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
COMMENT ON COLUMN core.aim_value_status.value IS 'The value.';
COMMENT ON COLUMN core.aim_value_status.numerator IS 'Numerator of a ratio, percentage or rate.';
COMMENT ON COLUMN core.aim_value_status.denominator IS 'Denominator of a ratio, percentage or rate.';
COMMENT ON COLUMN core.aim_value_status.target_value IS 'Target for the period, else for its fiscal year; NULL when none is set.';
COMMENT ON COLUMN core.aim_value_status.tolerance IS 'Tolerance of the status rule.';
COMMENT ON COLUMN core.aim_value_status.status IS 'core.aim_status of value and target.';
COMMENT ON COLUMN core.aim_value_status.is_partial_month IS 'True when the value was computed before its period was over.';
COMMENT ON COLUMN core.aim_value_status.data_as_of IS 'Newest load time of the source rows behind the value.';
COMMENT ON COLUMN core.aim_value_status.computed_at IS 'When the value was computed.';
COMMENT ON COLUMN core.aim_value_status.run_id IS 'The aim_measures run that computed the value.';

-- Every version of every measure.
CREATE VIEW marts.measure_definitions AS
SELECT
    m.measure_code,
    m.version,
    m.name            AS measure_name,
    m.definition,
    m.unit,
    m.direction,
    m.frequency,
    pr.name           AS priority,
    d.name            AS department,
    a.name            AS activity,
    m.valid_from,
    m.valid_to,
    m.valid_to IS NULL AS is_current,
    m.source_batch_id,
    m.recorded_at
FROM core.aim_measure m
JOIN core.aim_priority pr ON pr.priority_id = m.priority_id
JOIN core.aim_department d ON d.department_id = m.department_id
JOIN core.aim_activity a ON a.activity_id = m.activity_id;
COMMENT ON VIEW marts.measure_definitions IS 'Every version of every AIM measure, with the interval it was valid in. A new version appears when the budget office changes a measure''s name, definition, unit, direction, frequency, priority, department or activity in the AIM registry.';
COMMENT ON COLUMN marts.measure_definitions.measure_code IS 'Measure code, e.g. SAF-01 (stable across versions).';
COMMENT ON COLUMN marts.measure_definitions.version IS 'Version number: 1, 2, ... in order of change.';
COMMENT ON COLUMN marts.measure_definitions.measure_name IS 'Measure name in this version.';
COMMENT ON COLUMN marts.measure_definitions.definition IS 'How the measure is computed, in this version.';
COMMENT ON COLUMN marts.measure_definitions.unit IS 'count, percent (0-100), rate (per 1,000 residents or households), minutes or days.';
COMMENT ON COLUMN marts.measure_definitions.direction IS 'higher: higher is better; lower: lower is better.';
COMMENT ON COLUMN marts.measure_definitions.frequency IS 'How often the measure is reported, e.g. Monthly.';
COMMENT ON COLUMN marts.measure_definitions.priority IS 'The city''s strategic priority the measure serves.';
COMMENT ON COLUMN marts.measure_definitions.department IS 'The department that owns the measure.';
COMMENT ON COLUMN marts.measure_definitions.activity IS 'The departmental activity the measure describes.';
COMMENT ON COLUMN marts.measure_definitions.valid_from IS 'When this version took effect (-infinity for the first version: it covers all earlier history).';
COMMENT ON COLUMN marts.measure_definitions.valid_to IS 'When the next version took effect (exclusive); NULL for the current version.';
COMMENT ON COLUMN marts.measure_definitions.is_current IS 'True for the version in force now.';
COMMENT ON COLUMN marts.measure_definitions.source_batch_id IS 'The registry batch this version was read from (see ops.batch).';
COMMENT ON COLUMN marts.measure_definitions.recorded_at IS 'When the warehouse recorded this version.';

-- Every value, with the version valid at its period's start, its target and its status.
CREATE VIEW marts.measure_history AS
SELECT
    measure_code, measure_version, measure_name, priority, department, unit, direction,
    period_type, period_start, period_end, period_label, fiscal_year, fiscal_quarter,
    geography_type, geography_code, geography_name,
    value, numerator, denominator, target_value, status, is_partial_month, data_as_of, computed_at
FROM core.aim_value_status;
COMMENT ON VIEW marts.measure_history IS 'Every computed AIM measure value (each month, and quarter or fiscal year where computed), for every geography, with the measure version valid at the start of the period, the target for that period''s fiscal year and the status against it.';
COMMENT ON COLUMN marts.measure_history.measure_code IS 'Measure code, e.g. SAF-01.';
COMMENT ON COLUMN marts.measure_history.measure_version IS 'The measure version valid at the start of the period (see marts.measure_definitions); NULL when the measure is not in the registry.';
COMMENT ON COLUMN marts.measure_history.measure_name IS 'Measure name in that version.';
COMMENT ON COLUMN marts.measure_history.priority IS 'Strategic priority in that version.';
COMMENT ON COLUMN marts.measure_history.department IS 'Owning department in that version.';
COMMENT ON COLUMN marts.measure_history.unit IS 'Unit of value and target_value: count, percent, rate, minutes or days.';
COMMENT ON COLUMN marts.measure_history.direction IS 'higher or lower (is better), in that version; decides the status.';
COMMENT ON COLUMN marts.measure_history.period_type IS 'month, quarter or fiscal_year.';
COMMENT ON COLUMN marts.measure_history.period_start IS 'First day of the period.';
COMMENT ON COLUMN marts.measure_history.period_end IS 'Last day of the period (inclusive).';
COMMENT ON COLUMN marts.measure_history.period_label IS 'Display label: 2026-01, FY2026 Q1, FY2026.';
COMMENT ON COLUMN marts.measure_history.fiscal_year IS 'Fiscal year of the period, named by the calendar year it ends in.';
COMMENT ON COLUMN marts.measure_history.fiscal_quarter IS 'Fiscal quarter (1-4) of the period; NULL for a fiscal year.';
COMMENT ON COLUMN marts.measure_history.geography_type IS 'citywide, aldermanic_district or police_district.';
COMMENT ON COLUMN marts.measure_history.geography_code IS 'all for citywide; the district number (as text) otherwise.';
COMMENT ON COLUMN marts.measure_history.geography_name IS 'Display name, e.g. "Aldermanic district 3".';
COMMENT ON COLUMN marts.measure_history.value IS 'The measure''s value for the period and geography, in its unit; NULL when it cannot be computed (e.g. a percentage of nothing).';
COMMENT ON COLUMN marts.measure_history.numerator IS 'For a percentage or rate: what was counted; NULL otherwise.';
COMMENT ON COLUMN marts.measure_history.denominator IS 'For a percentage or rate: what it is out of (cases, residents, households); NULL otherwise.';
COMMENT ON COLUMN marts.measure_history.target_value IS 'The target for the period (or, usually, for its fiscal year); NULL when none is set.';
COMMENT ON COLUMN marts.measure_history.status IS 'on track, within tolerance (not on track but within the tolerance of core.aim_status_rule, 5% of the target by default), off track, no target (no target for the fiscal year) or no value.';
COMMENT ON COLUMN marts.measure_history.is_partial_month IS 'True when the value was computed before the period was over (e.g. the current month): it covers part of the period only, so compare it with the target with care.';
COMMENT ON COLUMN marts.measure_history.data_as_of IS 'How fresh the value is: the newest load time of the source rows it was computed from.';
COMMENT ON COLUMN marts.measure_history.computed_at IS 'When the value was computed.';

-- Per measure (current version) and geography, the latest month with a value.
CREATE VIEW marts.scorecard AS
WITH latest AS (
    SELECT DISTINCT ON (v.measure_code, v.geography_type, v.geography_code)
           v.measure_code, v.geography_type, v.geography_code, v.period_id,
           v.value, v.numerator, v.denominator, v.data_as_of, v.computed_at,
           (v.computed_at AT TIME ZONE 'America/Chicago')::date <= p.period_end AS is_partial_month
    FROM core.aim_measure_value v
    JOIN core.aim_period p ON p.period_id = v.period_id
    WHERE p.period_type = 'month' AND v.value IS NOT NULL
    -- the latest complete month; a month in progress only when no complete month has a value
    ORDER BY v.measure_code, v.geography_type, v.geography_code,
             (v.computed_at AT TIME ZONE 'America/Chicago')::date <= p.period_end, p.period_start DESC
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
    t.target_value,
    CASE WHEN l.value IS NULL THEN 'no value'
         ELSE core.aim_status(l.value, t.target_value, m.direction, r.tolerance) END AS status,
    l.is_partial_month,
    l.data_as_of,
    l.computed_at
FROM core.aim_measure m
JOIN core.aim_priority pr ON pr.priority_id = m.priority_id
JOIN core.aim_department d ON d.department_id = m.department_id
JOIN core.aim_activity a ON a.activity_id = m.activity_id
LEFT JOIN latest l ON l.measure_code = m.measure_code
LEFT JOIN core.aim_period p ON p.period_id = l.period_id
LEFT JOIN core.aim_geography g ON g.geography_type = l.geography_type AND g.geography_code = l.geography_code
LEFT JOIN core.aim_status_rule r ON true
LEFT JOIN LATERAL (
    SELECT tg.target_value
    FROM core.aim_target tg
    WHERE tg.measure_code = m.measure_code
      AND tg.fiscal_year = p.fiscal_year
      AND (tg.period_id = l.period_id OR tg.period_id IS NULL)
    ORDER BY tg.period_id NULLS LAST
    LIMIT 1
) t ON true
WHERE m.valid_to IS NULL;
COMMENT ON VIEW marts.scorecard IS 'The AIM scorecard: for every current measure and every geography it is reported for, its latest complete month with a value (a month still in progress only when no complete month has one: is_partial_month), that value, the target for that month''s fiscal year and the status. A measure without any value yet has one citywide row with status no value.';
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
COMMENT ON COLUMN marts.scorecard.period_start IS 'First day of the latest month with a value for this measure and geography; NULL when there is none.';
COMMENT ON COLUMN marts.scorecard.period_label IS 'That month, e.g. 2026-06.';
COMMENT ON COLUMN marts.scorecard.fiscal_year IS 'Fiscal year of that month.';
COMMENT ON COLUMN marts.scorecard.value IS 'The value for that month, in the measure''s unit.';
COMMENT ON COLUMN marts.scorecard.numerator IS 'For a percentage or rate: what was counted; NULL otherwise.';
COMMENT ON COLUMN marts.scorecard.denominator IS 'For a percentage or rate: what it is out of; NULL otherwise.';
COMMENT ON COLUMN marts.scorecard.target_value IS 'The target for that month''s fiscal year (or for the month itself, where set); NULL when none is set.';
COMMENT ON COLUMN marts.scorecard.status IS 'on track, within tolerance (not on track but within 5% of the target by default, see core.aim_status_rule), off track, no target (no target set for that fiscal year: never guessed) or no value (no value computed yet).';
COMMENT ON COLUMN marts.scorecard.is_partial_month IS 'True when the value was computed before its month was over (the current month): a count so far, not the month''s total; compare it with the target with care. NULL when there is no value.';
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
    s.is_partial_month,
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
COMMENT ON COLUMN marts.values_by_district.value IS 'The district''s value for the period.';
COMMENT ON COLUMN marts.values_by_district.numerator IS 'For a percentage or rate: what was counted in the district.';
COMMENT ON COLUMN marts.values_by_district.denominator IS 'For a percentage or rate: what it is out of in the district.';
COMMENT ON COLUMN marts.values_by_district.target_value IS 'The (citywide) target for the period''s fiscal year; NULL when none is set.';
COMMENT ON COLUMN marts.values_by_district.status IS 'The district''s value against the target: on track, within tolerance, off track, no target or no value.';
COMMENT ON COLUMN marts.values_by_district.citywide_value IS 'The citywide value of the same measure and period, for comparison.';
COMMENT ON COLUMN marts.values_by_district.is_partial_month IS 'True when the value was computed before the period was over.';
COMMENT ON COLUMN marts.values_by_district.data_as_of IS 'Newest load time of the source rows behind the value.';
