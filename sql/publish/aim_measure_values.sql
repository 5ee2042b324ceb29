-- Public data set `aim-measure-values`: every AIM measure value by month and geography, with its
-- target and status, one flat table. Months still in progress are left out: a count so far is
-- not the month's figure. Stable order, so unchanged values export byte-identical files.
SELECT priority,
       department,
       measure_code,
       measure_name AS measure,
       unit,
       direction,
       period_start,
       geography_type,
       geography_code,
       value,
       target_value AS target,
       status,
       data_as_of AS as_of
FROM marts.measure_history
WHERE period_type = 'month' AND NOT is_partial_month AND value IS NOT NULL
ORDER BY measure_code, period_start, geography_type, geography_code
