-- measure: SAF-04
-- name: Median EMS response time
-- reads: core.mfd_dispatch_incidents (call_received_at)
-- geographies: citywide, aldermanic_district
-- aggregation: median
--
-- The median, in minutes, of on_scene_at - dispatched_at over EMS incidents with both times
-- recorded and on_scene_at not before dispatched_at (percentile_cont(0.5): the mean of the two
-- middle times when their number is even). numerator and denominator are NULL (a median).
-- Durations are elapsed time: both local times are read in Milwaukee's zone, so a change of the
-- clocks between them counts (across the spring change a wall-clock day is 23 hours).
-- Period: the period containing call_received_at (local time).
-- Rows: one per period and geography with at least one such incident; a period or district
-- without any has no row (the median is undefined). An incident without an aldermanic district
-- counts only citywide.
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/saf_04.sql
WITH responses AS (
    SELECT p.period_start,
           e.ald,
           (e.on_scene_at AT TIME ZONE 'America/Chicago') - (e.dispatched_at AT TIME ZONE 'America/Chicago') AS response
    FROM core.mfd_dispatch_incidents e
    JOIN measure_period p ON e.call_received_at >= p.period_start AND e.call_received_at < p.period_end + 1
    WHERE e.incident_type = 'EMS'
      AND e.dispatched_at IS NOT NULL
      AND e.on_scene_at IS NOT NULL
      AND e.on_scene_at >= e.dispatched_at
), placed AS (  -- each incident once citywide and once in its aldermanic district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code, response FROM responses
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text, response FROM responses WHERE ald BETWEEN 1 AND 15
), medians AS (  -- the median of intervals is an interval, exact to the microsecond
    SELECT period_start, geography_type, geography_code,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY response) AS median_response
    FROM placed
    GROUP BY period_start, geography_type, geography_code
)
SELECT period_start,
       geography_type::text,
       geography_code::text,
       extract(epoch FROM median_response) / 60 AS value,
       NULL::numeric AS numerator,
       NULL::numeric AS denominator
FROM medians
ORDER BY period_start, geography_type <> 'citywide', geography_type, lpad(geography_code, 2, '0');
