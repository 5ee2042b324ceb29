-- measure: SAF-01
-- name: Reported Part 1 crime incidents
-- reads: core.mpd_crime_incidents (reported_at)
-- geographies: citywide, aldermanic_district, police_district
--
-- Counts incidents flagged with at least one Part 1 offense: homicide, sex_offense, robbery,
-- assault_offense, burglary, theft, locked_vehicle, vehicle_theft or arson. An incident with
-- several flags counts once; criminal damage alone is not a Part 1 offense and does not count.
-- Month: the month of reported_at (local time).
-- Rows: one per month of the window and geography (15 aldermanic and 7 police districts), 0 when
-- nothing was reported; numerator and denominator are NULL (a count). An incident without an
-- aldermanic (police) district counts citywide and in the other district, if it has one.
--
-- Run in psql:
--   CREATE TEMP TABLE measure_window AS SELECT date '2026-01-01' AS period_start, date '2026-10-01' AS period_end;
--   \i sql/measures/saf_01.sql
WITH months AS (
    SELECT m::date AS period_start
    FROM measure_window w,
         generate_series(date_trunc('month', w.period_start), date_trunc('month', w.period_end), interval '1 month') AS m
), geographies AS (
    SELECT 'citywide' AS geography_type, 'all' AS geography_code
    UNION ALL
    SELECT 'aldermanic_district', d::text FROM generate_series(1, 15) AS d
    UNION ALL
    SELECT 'police_district', d::text FROM generate_series(1, 7) AS d
), incidents AS (
    SELECT date_trunc('month', i.reported_at)::date AS period_start, i.ald, i.police
    FROM core.mpd_crime_incidents i
    CROSS JOIN measure_window w
    WHERE i.reported_at >= date_trunc('month', w.period_start)
      AND i.reported_at < date_trunc('month', w.period_end) + interval '1 month'
      AND (i.homicide OR i.sex_offense OR i.robbery OR i.assault_offense OR i.burglary
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
SELECT m.period_start,
       g.geography_type::text,
       g.geography_code::text,
       coalesce(c.incidents, 0)::numeric AS value,
       NULL::numeric AS numerator,
       NULL::numeric AS denominator
FROM months m
CROSS JOIN geographies g
LEFT JOIN counted c USING (period_start, geography_type, geography_code)
ORDER BY m.period_start, g.geography_type <> 'citywide', g.geography_type, lpad(g.geography_code, 2, '0');
