-- measure: CHI-01
-- name: Children tested for lead
-- reads: core.mhd_lead_tests (month)
-- geographies: citywide
--
-- The sum of children_tested over every ZIP code and age group of the month (ZIP codes do not
-- map to aldermanic districts, so the measure is citywide only).
-- Month: the row's month column ('YYYY-MM' text); a value not in that form matches no month.
-- Rows: one per month of the window, 0 when no children were reported tested; numerator and
-- denominator are NULL (a count).
--
-- Run in psql:
--   CREATE TEMP TABLE measure_window AS SELECT date '2026-01-01' AS period_start, date '2026-10-01' AS period_end;
--   \i sql/measures/chi_01.sql
WITH months AS (
    SELECT m::date AS period_start
    FROM measure_window w,
         generate_series(date_trunc('month', w.period_start), date_trunc('month', w.period_end), interval '1 month') AS m
), tested AS (
    SELECT m.period_start, sum(t.children_tested) AS children_tested
    FROM months m
    JOIN core.mhd_lead_tests t ON t.month = to_char(m.period_start, 'YYYY-MM')
    GROUP BY m.period_start
)
SELECT m.period_start,
       'citywide'::text AS geography_type,
       'all'::text AS geography_code,
       coalesce(t.children_tested, 0)::numeric AS value,
       NULL::numeric AS numerator,
       NULL::numeric AS denominator
FROM months m
LEFT JOIN tested t USING (period_start)
ORDER BY m.period_start;
