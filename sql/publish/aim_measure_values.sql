-- Public data set `aim-measure-values`: every AIM measure value by month, fiscal quarter and fiscal
-- year and by geography, with its target, status and completeness, one flat table. A period
-- without source data is a row with no value and status "no data" (never a 0); a provisional
-- period (covered in part, or still within its sources' reporting lag) has a value and status
-- "provisional" (no call against the target until it is complete). A citywide month carries the
-- owning department's note on it, when there is one (marts.measure_commentary). Stable order, so
-- unchanged values export byte-identical files.
SELECT h.priority,
       h.department,
       h.measure_code,
       h.measure_name AS measure,
       unit,
       direction,
       period_type,
       h.period_start,
       period_end,
       h.period_label,
       geography_type,
       geography_code,
       value,
       target_value AS target,
       status,
       completeness,
       days_covered,
       days_in_period,
       data_as_of AS as_of,
       c.reason AS commentary_reason,
       c.action AS commentary_action,
       c.outlook AS commentary_outlook,
       c.updated_at AS commentary_updated_at
FROM marts.measure_history h
LEFT JOIN marts.measure_commentary c
       ON c.measure_code = h.measure_code AND c.period_start = h.period_start
      AND h.period_type = 'month' AND h.geography_type = 'citywide'
ORDER BY h.measure_code, period_type, h.period_start, geography_type, geography_code
