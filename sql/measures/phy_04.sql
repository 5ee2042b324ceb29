-- measure: PHY-04
-- name: Street light outages repaired within 5 days
-- reads: core.dpw_service_requests (created_at)
-- geographies: citywide, aldermanic_district
-- aggregation: ratio
--
-- Denominator: STREET LIGHT OUT requests created in the period at least 5 days before the query
-- runs (created_at <= now - 5 days, Milwaukee time): only a request that old can be judged, so
-- the latest 5 days' requests are left out until they are. Numerator: those repaired within 5
-- days, i.e. closed_at not NULL and closed_at - created_at <= 5 days (closing the request is
-- taken as the repair; exactly 5 days counts as within).
-- value = 100 * numerator / denominator (percent).
-- Durations are elapsed time: both local times are read in Milwaukee's zone, so a change of the
-- clocks between them counts (across the spring change a wall-clock day is 23 hours).
-- Period: the period containing created_at (local time).
-- Rows: one per period and geography with at least one request old enough; a period or district
-- without any has no row (the share is undefined). A request without an aldermanic district
-- counts only citywide.
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/phy_04.sql
WITH requests AS (
    SELECT p.period_start,
           r.ald,
           r.closed_at IS NOT NULL AND (r.closed_at AT TIME ZONE 'America/Chicago') - (r.created_at AT TIME ZONE 'America/Chicago') <= interval '5 days' AS repaired_in_time
    FROM core.dpw_service_requests r
    JOIN measure_period p ON r.created_at >= p.period_start AND r.created_at < p.period_end + 1
    WHERE r.request_type = 'STREET LIGHT OUT'
      AND r.created_at <= ops.local_now() - interval '5 days'
), placed AS (  -- each request once citywide and once in its aldermanic district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code, repaired_in_time FROM requests
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text, repaired_in_time FROM requests WHERE ald BETWEEN 1 AND 15
), tallied AS (
    SELECT period_start, geography_type, geography_code,
           count(*) FILTER (WHERE repaired_in_time)::numeric AS numerator,
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
