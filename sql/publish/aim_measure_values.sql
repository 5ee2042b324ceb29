-- Public data set `aim-measure-values`: every AIM measure value by month, fiscal quarter and fiscal
-- year and by geography, with its target, status and completeness, one flat table. A period
-- without source data is a row with no value and status "no data" (never a 0); a provisional
-- period (covered in part, or still within its sources' reporting lag) has a value and status
-- "provisional" (no call against the target until it is complete). Stable order, so unchanged
-- values export byte-identical files.
SELECT priority,
       department,
       measure_code,
       measure_name AS measure,
       unit,
       direction,
       period_type,
       period_start,
       period_end,
       period_label,
       geography_type,
       geography_code,
       value,
       target_value AS target,
       status,
       completeness,
       days_covered,
       days_in_period,
       data_as_of AS as_of
FROM marts.measure_history
ORDER BY measure_code, period_type, period_start, geography_type, geography_code
