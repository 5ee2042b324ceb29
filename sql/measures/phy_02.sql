-- measure: PHY-02
-- name: Median days to close a 311 request
-- reads: core.dpw_service_requests (closed_at)
-- geographies: citywide, aldermanic_district
-- aggregation: median
--
-- The median of closed_at - created_at, in days (seconds / 86400, fractional), over requests
-- of every type closed in the period (closed_at not NULL) (percentile_cont(0.5): the mean of the
-- two middle durations when their number is even). numerator and denominator are NULL (a median).
-- Durations are elapsed time: both local times are read in Milwaukee's zone, so a change of the
-- clocks between them counts (across the spring change a wall-clock day is 23 hours).
-- Period: the period containing closed_at (local time).
-- Rows: one per period and geography with at least one request closed; a period or district
-- without any has no row (the median is undefined). A request without an aldermanic district
-- counts only citywide.
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/phy_02.sql
WITH closed AS (
    SELECT p.period_start,
           r.ald,
           (r.closed_at AT TIME ZONE 'America/Chicago') - (r.created_at AT TIME ZONE 'America/Chicago') AS time_to_close
    FROM core.dpw_service_requests r
    JOIN measure_period p ON r.closed_at >= p.period_start AND r.closed_at < p.period_end + 1
    WHERE r.created_at IS NOT NULL
), placed AS (  -- each request once citywide and once in its aldermanic district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code, time_to_close FROM closed
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text, time_to_close FROM closed WHERE ald BETWEEN 1 AND 15
), medians AS (  -- the median of intervals is an interval, exact to the microsecond
    SELECT period_start, geography_type, geography_code,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY time_to_close) AS median_time_to_close
    FROM placed
    GROUP BY period_start, geography_type, geography_code
)
SELECT period_start,
       geography_type::text,
       geography_code::text,
       extract(epoch FROM median_time_to_close) / 86400 AS value,
       NULL::numeric AS numerator,
       NULL::numeric AS denominator
FROM medians
ORDER BY period_start, geography_type <> 'citywide', geography_type, lpad(geography_code, 2, '0');
