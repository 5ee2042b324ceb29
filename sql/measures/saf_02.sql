-- measure: SAF-02
-- name: Violent crime incidents per 1,000 residents
-- reads: core.mpd_crime_incidents (reported_at)
-- reference: core.ref_geography_stat (population)
-- geographies: citywide, aldermanic_district
--
-- Counts incidents flagged homicide, sex_offense, robbery or assault_offense (an incident with
-- several of these flags counts once), per 1,000 residents of the geography:
-- numerator = incidents, denominator = population, value = 1000 * numerator / denominator.
-- Month: the month of reported_at (local time).
-- Population: core.ref_geography_stat, stat 'population' (one figure per geography and
-- stat, the table's key).
-- Rows: one per month of the window and geography that has a population figure (0 incidents
-- give value 0); a geography without a population figure has no row. An incident without an
-- aldermanic district counts only citywide.
--
-- Run in psql:
--   CREATE TEMP TABLE measure_window AS SELECT date '2026-01-01' AS period_start, date '2026-10-01' AS period_end;
--   \i sql/measures/saf_02.sql
WITH months AS (
    SELECT m::date AS period_start
    FROM measure_window w,
         generate_series(date_trunc('month', w.period_start), date_trunc('month', w.period_end), interval '1 month') AS m
), geographies AS (
    SELECT 'citywide' AS geography_type, 'all' AS geography_code
    UNION ALL
    SELECT 'aldermanic_district', d::text FROM generate_series(1, 15) AS d
), incidents AS (
    SELECT date_trunc('month', i.reported_at)::date AS period_start, i.ald
    FROM core.mpd_crime_incidents i
    CROSS JOIN measure_window w
    WHERE i.reported_at >= date_trunc('month', w.period_start)
      AND i.reported_at < date_trunc('month', w.period_end) + interval '1 month'
      AND (i.homicide OR i.sex_offense OR i.robbery OR i.assault_offense)
), placed AS (  -- each incident once citywide and once in its aldermanic district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code FROM incidents
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text FROM incidents WHERE ald BETWEEN 1 AND 15
), counted AS (
    SELECT period_start, geography_type, geography_code, count(*) AS incidents
    FROM placed
    GROUP BY period_start, geography_type, geography_code
), rated AS (
    SELECT m.period_start, g.geography_type, g.geography_code,
           coalesce(c.incidents, 0)::numeric AS numerator,
           population.value AS denominator
    FROM months m
    CROSS JOIN geographies g
    LEFT JOIN counted c USING (period_start, geography_type, geography_code)
    JOIN core.ref_geography_stat population
      ON population.geography_type = g.geography_type
     AND population.geography_code = g.geography_code
     AND population.stat = 'population'
     AND population.value > 0
)
SELECT period_start,
       geography_type::text,
       geography_code::text,
       1000 * numerator / denominator AS value,
       numerator,
       denominator::numeric
FROM rated
ORDER BY period_start, geography_type <> 'citywide', geography_type, lpad(geography_code, 2, '0');
