-- measure: ECO-01
-- name: Code enforcement orders complied with by their due date
-- reads: core.dns_code_enforcement_orders (compliance_due_on)
-- geographies: citywide, aldermanic_district
-- aggregation: ratio
--
-- Denominator: orders whose compliance_due_on falls in the period and is before today (the day
-- the query runs, Milwaukee time): due and past, so the outcome is known. An order due today
-- or later is not counted yet. Numerator: those with complied_on not NULL and
-- complied_on <= compliance_due_on. value = 100 * numerator / denominator (percent).
-- Period: the period containing compliance_due_on.
-- Rows: one per period and geography with at least one order due and past; a period or district
-- without any (including the current period's days not yet past, and future periods) has no row.
-- An order without an aldermanic district counts only citywide.
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/eco_01.sql
WITH orders AS (
    SELECT p.period_start,
           o.ald,
           o.complied_on IS NOT NULL AND o.complied_on <= o.compliance_due_on AS complied_on_time
    FROM core.dns_code_enforcement_orders o
    JOIN measure_period p ON o.compliance_due_on BETWEEN p.period_start AND p.period_end
    WHERE o.compliance_due_on < ops.local_now()::date
), placed AS (  -- each order once citywide and once in its aldermanic district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code, complied_on_time FROM orders
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text, complied_on_time FROM orders WHERE ald BETWEEN 1 AND 15
), tallied AS (
    SELECT period_start, geography_type, geography_code,
           count(*) FILTER (WHERE complied_on_time)::numeric AS numerator,
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
