-- measure: ECO-02
-- name: Median days from order to compliance
-- reads: core.dns_code_enforcement_orders (complied_on)
-- geographies: citywide, aldermanic_district
-- aggregation: median
--
-- The median of complied_on - issued_on, in days, over orders complied with (complied_on not
-- NULL) in the period (percentile_cont(0.5): the mean of the two middle values when their number
-- is even). numerator and denominator are NULL (a median).
-- Period: the period containing complied_on.
-- Rows: one per period and geography with at least one order complied with; a period or district
-- without any has no row (the median is undefined). An order without an aldermanic district
-- counts only citywide.
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/eco_02.sql
WITH complied AS (
    SELECT p.period_start,
           o.ald,
           o.complied_on - o.issued_on AS days_to_comply
    FROM core.dns_code_enforcement_orders o
    JOIN measure_period p ON o.complied_on BETWEEN p.period_start AND p.period_end
    WHERE o.issued_on IS NOT NULL
), placed AS (  -- each order once citywide and once in its aldermanic district
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code, days_to_comply FROM complied
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text, days_to_comply FROM complied WHERE ald BETWEEN 1 AND 15
), medians AS (
    SELECT period_start, geography_type, geography_code,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY days_to_comply) AS median_days
    FROM placed
    GROUP BY period_start, geography_type, geography_code
)
SELECT period_start,
       geography_type::text,
       geography_code::text,
       median_days::numeric AS value,
       NULL::numeric AS numerator,
       NULL::numeric AS denominator
FROM medians
ORDER BY period_start, geography_type <> 'citywide', geography_type, lpad(geography_code, 2, '0');
