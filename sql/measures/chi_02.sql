-- measure: CHI-02
-- name: Share of tested children with an elevated blood lead level
-- reads: core.mhd_lead_tests (month)
-- geographies: citywide
--
-- numerator = sum of children_elevated, denominator = sum of children_tested, over every ZIP
-- code and age group of the month with both counts reported; value = 100 * numerator /
-- denominator (percent). Citywide only (ZIP codes do not map to aldermanic districts).
-- Month: the row's month column ('YYYY-MM' text); a value not in that form matches no month.
-- Rows: one per month of the window with children tested (denominator > 0); a month without
-- any has no row (the share is undefined).
--
-- Run in psql:
--   CREATE TEMP TABLE measure_window AS SELECT date '2026-01-01' AS period_start, date '2026-10-01' AS period_end;
--   \i sql/measures/chi_02.sql
WITH months AS (
    SELECT m::date AS period_start
    FROM measure_window w,
         generate_series(date_trunc('month', w.period_start), date_trunc('month', w.period_end), interval '1 month') AS m
), tallied AS (
    SELECT m.period_start,
           sum(t.children_elevated)::numeric AS numerator,
           sum(t.children_tested)::numeric AS denominator
    FROM months m
    JOIN core.mhd_lead_tests t ON t.month = to_char(m.period_start, 'YYYY-MM')
    WHERE t.children_tested IS NOT NULL
      AND t.children_elevated IS NOT NULL
    GROUP BY m.period_start
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
