-- measure: CHI-02
-- name: Share of tested children with an elevated blood lead level
-- reads: core.mhd_lead_tests (month)
-- geographies: citywide
-- aggregation: ratio
--
-- numerator = sum of children_elevated, denominator = sum of children_tested, over every ZIP
-- code and age group of the period with both counts reported; value = 100 * numerator /
-- denominator (percent). Citywide only (ZIP codes do not map to aldermanic districts).
-- Period: the period containing the row's month column ('YYYY-MM' text, month 01 to 12); a
-- value not in that form is in no period.
-- Rows: one per period of measure_period with children tested (denominator > 0); a period
-- without any has no row (the share is undefined).
--
-- Run in psql (measure_period may hold several periods, e.g. the twelve months of a year):
--   CREATE TEMP TABLE measure_period AS SELECT date '2026-01-01' AS period_start, date '2026-03-31' AS period_end;
--   \i sql/measures/chi_02.sql
WITH lead_tests AS (  -- the first day of each row's month (NULL when not 'YYYY-MM', so to_date never sees it)
    SELECT CASE WHEN t.month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$' THEN to_date(t.month, 'YYYY-MM') END AS month_start,
           t.children_tested,
           t.children_elevated
    FROM core.mhd_lead_tests t
), tallied AS (
    SELECT p.period_start,
           sum(t.children_elevated)::numeric AS numerator,
           sum(t.children_tested)::numeric AS denominator
    FROM measure_period p
    JOIN lead_tests t ON t.month_start BETWEEN p.period_start AND p.period_end
    WHERE t.children_tested IS NOT NULL
      AND t.children_elevated IS NOT NULL
    GROUP BY p.period_start
)
SELECT period_start,
       'citywide'::text AS geography_type,
       'all'::text AS geography_code,
       100 * numerator / denominator AS value,
       numerator,
       denominator
FROM tallied
WHERE denominator > 0
ORDER BY period_start;
