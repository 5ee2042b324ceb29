-- measure: CHI-01
-- name: Children tested for lead
-- reads: core.mhd_lead_tests (month)
-- geographies: citywide
-- aggregation: sum
--
-- The sum of children_tested over every ZIP code and age group of the period (ZIP codes do not
-- map to aldermanic districts, so the measure is citywide only).
-- Period: the period containing the row's month column ('YYYY-MM' text, month 01 to 12); a
-- value not in that form is in no period.
-- Rows: one per period of measure_period, 0 when no children were reported tested; numerator
-- and denominator are NULL (a count).
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/chi_01.sql
WITH lead_tests AS (  -- the first day of each row's month (NULL when not 'YYYY-MM', so to_date never sees it)
    SELECT CASE WHEN t.month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$' THEN to_date(t.month, 'YYYY-MM') END AS month_start,
           t.children_tested
    FROM core.mhd_lead_tests t
), tested AS (
    SELECT p.period_start, sum(t.children_tested) AS children_tested
    FROM measure_period p
    JOIN lead_tests t ON t.month_start BETWEEN p.period_start AND p.period_end
    GROUP BY p.period_start
)
SELECT p.period_start,
       'citywide'::text AS geography_type,
       'all'::text AS geography_code,
       coalesce(t.children_tested, 0)::numeric AS value,
       NULL::numeric AS numerator,
       NULL::numeric AS denominator
FROM measure_period p
LEFT JOIN tested t USING (period_start)
ORDER BY p.period_start;
