-- measure: SAF-02
-- name: Violent crime incidents per 1,000 residents
-- reads: core.mpd_crime_incidents (reported_at)
-- reference: core.ref_geography_stat (population)
-- geographies: citywide, aldermanic_district
-- aggregation: sum
--
-- Counts incidents flagged homicide, sex_offense, robbery or assault_offense (an incident with
-- several of these flags counts once), per 1,000 residents of the geography:
-- numerator = incidents, denominator = population, value = 1000 * numerator / denominator.
-- The population is the same for every period, so a quarter's value is the sum of its months'.
-- Period: the period containing reported_at (local time).
-- Population: core.ref_geography_stat, stat 'population' (one figure per geography and
-- stat, the table's key).
-- Rows: one per period of measure_period and geography that has a population figure (0
-- incidents give value 0); a geography without a population figure has no row. An incident
-- without an aldermanic district counts only citywide.
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/saf_02.sql
WITH geographies AS (
    SELECT 'citywide' AS geography_type, 'all' AS geography_code
    UNION ALL
    SELECT 'aldermanic_district', d::text FROM generate_series(1, 15) AS d
), incidents AS (
    SELECT p.period_start, i.ald
    FROM core.mpd_crime_incidents i
    JOIN measure_period p ON i.reported_at >= p.period_start AND i.reported_at < p.period_end + 1
    WHERE (i.homicide OR i.sex_offense OR i.robbery OR i.assault_offense)
), placed AS (  -- each incident once citywide and once in its aldermanic district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code FROM incidents
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text FROM incidents WHERE ald BETWEEN 1 AND 15
), counted AS (
    SELECT period_start, geography_type, geography_code, count(*) AS incidents
    FROM placed
    GROUP BY period_start, geography_type, geography_code
), rated AS (
    SELECT p.period_start, g.geography_type, g.geography_code,
           coalesce(c.incidents, 0)::numeric AS numerator,
           population.value AS denominator
    FROM measure_period p
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
