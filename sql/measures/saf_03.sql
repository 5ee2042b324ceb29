-- measure: SAF-03
-- name: Fire calls with a unit on scene within 5 minutes 20 seconds of dispatch
-- reads: core.mfd_dispatch_incidents (call_received_at)
-- geographies: citywide, aldermanic_district
-- aggregation: ratio
--
-- Denominator: FIRE incidents with both dispatched_at and on_scene_at recorded and on_scene_at
-- not before dispatched_at. Numerator: those with on_scene_at - dispatched_at <= 320 seconds
-- (exactly 5:20 counts as within). value = 100 * numerator / denominator (percent).
-- Durations are elapsed time: both local times are read in Milwaukee's zone, so a change of the
-- clocks between them counts (across the spring change a wall-clock day is 23 hours).
-- Period: the period containing call_received_at (local time).
-- Rows: one per period and geography with at least one such call; a period or district without
-- any has no row (the share is undefined). An incident without an aldermanic district counts
-- only citywide.
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/saf_03.sql
WITH calls AS (
    SELECT p.period_start,
           f.ald,
           (f.on_scene_at AT TIME ZONE 'America/Chicago') - (f.dispatched_at AT TIME ZONE 'America/Chicago') <= interval '5 minutes 20 seconds' AS within_target
    FROM core.mfd_dispatch_incidents f
    JOIN measure_period p ON f.call_received_at >= p.period_start AND f.call_received_at < p.period_end + 1
    WHERE f.incident_type = 'FIRE'
      AND f.dispatched_at IS NOT NULL
      AND f.on_scene_at IS NOT NULL
      AND f.on_scene_at >= f.dispatched_at
), placed AS (  -- each call once citywide and once in its aldermanic district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code, within_target FROM calls
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text, within_target FROM calls WHERE ald BETWEEN 1 AND 15
), tallied AS (
    SELECT period_start, geography_type, geography_code,
           count(*) FILTER (WHERE within_target)::numeric AS numerator,
           count(*)::numeric AS denominator
    FROM placed
    GROUP BY period_start, geography_type, geography_code
)
SELECT period_start,
       geography_type::text,
       geography_code::text,
       100 * numerator / denominator AS value,
       numerator,
       denominator
FROM tallied
ORDER BY period_start, geography_type <> 'citywide', geography_type, lpad(geography_code, 2, '0');
