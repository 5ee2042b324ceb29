-- Registry sync, step 2: the measures whose latest row cannot become a measure version, and why.
-- One row per measure; `problems` is empty when the row is usable. The sync refuses the whole
-- registry when any row has a problem, naming every measure and field.
SELECT measure_code, concat_ws('; ',
           CASE WHEN measure_code !~ '^[A-Z]{3}-[0-9]{2}$' THEN 'measure code is not like SAF-01' END,
           CASE WHEN priority IS NULL THEN 'priority is empty' END,
           CASE WHEN department IS NULL THEN 'department is empty' END,
           CASE WHEN activity IS NULL THEN 'activity is empty' END,
           CASE WHEN name IS NULL THEN 'measure name is empty' END,
           CASE WHEN definition IS NULL THEN 'definition is empty' END,
           CASE WHEN frequency IS NULL THEN 'frequency is empty' END,
           CASE WHEN unit IS NULL OR unit NOT IN ('count', 'percent', 'rate', 'minutes', 'days')
                THEN format('unit %L is not count, percent, rate, minutes or days', unit) END,
           CASE WHEN direction IS NULL
                THEN format('direction %L is not Higher/Lower is better', direction_as_given) END) AS problems
FROM aim_registry_latest
ORDER BY measure_code;
