-- measure: SAF-01
-- name: Reported Part 1 crime incidents
-- reads: core.mpd_crime_incidents (reported_at)
-- geographies: citywide, aldermanic_district, police_district
-- aggregation: sum
--
-- Counts incidents flagged with at least one Part 1 offense: homicide, sex_offense, robbery,
-- assault_offense, burglary, theft, locked_vehicle, vehicle_theft or arson. An incident with
-- several flags counts once; criminal damage alone is not a Part 1 offense and does not count.
-- Period: the period containing reported_at (local time).
-- Rows: one per period of measure_period and geography (15 aldermanic and 7 police districts), 0
-- when nothing was reported; numerator and denominator are NULL (a count). An incident without
-- an aldermanic (police) district counts citywide and in the other district, if it has one.
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/saf_01.sql
WITH geographies AS (
    SELECT 'citywide' AS geography_type, 'all' AS geography_code
    UNION ALL
    SELECT 'aldermanic_district', d::text FROM generate_series(1, 15) AS d
    UNION ALL
    SELECT 'police_district', d::text FROM generate_series(1, 7) AS d
), incidents AS (
    SELECT p.period_start, i.ald, i.police
    FROM core.mpd_crime_incidents i
    JOIN measure_period p ON i.reported_at >= p.period_start AND i.reported_at < p.period_end + 1
    WHERE (i.homicide OR i.sex_offense OR i.robbery OR i.assault_offense OR i.burglary
           OR i.theft OR i.locked_vehicle OR i.vehicle_theft OR i.arson)
), placed AS (  -- each incident once citywide, once in its aldermanic and once in its police district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code FROM incidents
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text FROM incidents WHERE ald BETWEEN 1 AND 15
    UNION ALL
    SELECT period_start, 'police_district', police::text FROM incidents WHERE police BETWEEN 1 AND 7
), counted AS (
    SELECT period_start, geography_type, geography_code, count(*) AS incidents
    FROM placed
    GROUP BY period_start, geography_type, geography_code
)
SELECT p.period_start,
       g.geography_type::text,
       g.geography_code::text,
       coalesce(c.incidents, 0)::numeric AS value,
       NULL::numeric AS numerator,
       NULL::numeric AS denominator
FROM measure_period p
CROSS JOIN geographies g
LEFT JOIN counted c USING (period_start, geography_type, geography_code)
ORDER BY p.period_start, g.geography_type <> 'citywide', g.geography_type, lpad(g.geography_code, 2, '0');
