-- measure: PHY-03
-- name: Missed garbage pickups per 1,000 households
-- reads: core.dpw_service_requests (created_at)
-- reference: core.ref_geography_stat (households)
-- geographies: citywide, aldermanic_district
-- aggregation: sum
--
-- numerator = MISSED GARBAGE PICKUP requests created in the period, denominator = households of
-- the geography, value = 1000 * numerator / denominator. The households figure is the same for
-- every period, so a quarter's value is the sum of its months'.
-- Period: the period containing created_at (local time).
-- Households: core.ref_geography_stat, stat 'households' (one figure per geography and
-- stat, the table's key).
-- Rows: one per period of measure_period and geography that has a households figure (no
-- requests give value 0); a geography without a households figure has no row. A request
-- without an aldermanic district counts only citywide.
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/phy_03.sql
WITH geographies AS (
    SELECT 'citywide' AS geography_type, 'all' AS geography_code
    UNION ALL
    SELECT 'aldermanic_district', d::text FROM generate_series(1, 15) AS d
), requests AS (
    SELECT p.period_start, r.ald
    FROM core.dpw_service_requests r
    JOIN measure_period p ON r.created_at >= p.period_start AND r.created_at < p.period_end + 1
    WHERE r.request_type = 'MISSED GARBAGE PICKUP'
), placed AS (  -- each request once citywide and once in its aldermanic district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code FROM requests
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text FROM requests WHERE ald BETWEEN 1 AND 15
), counted AS (
    SELECT period_start, geography_type, geography_code, count(*) AS requests
    FROM placed
    GROUP BY period_start, geography_type, geography_code
), rated AS (
    SELECT p.period_start, g.geography_type, g.geography_code,
           coalesce(c.requests, 0)::numeric AS numerator,
           households.value AS denominator
    FROM measure_period p
    CROSS JOIN geographies g
    LEFT JOIN counted c USING (period_start, geography_type, geography_code)
    JOIN core.ref_geography_stat households
      ON households.geography_type = g.geography_type
     AND households.geography_code = g.geography_code
     AND households.stat = 'households'
     AND households.value > 0
)
SELECT period_start,
       geography_type::text,
       geography_code::text,
       1000 * numerator / denominator AS value,
       numerator,
       denominator::numeric
FROM rated
ORDER BY period_start, geography_type <> 'citywide', geography_type, lpad(geography_code, 2, '0');
