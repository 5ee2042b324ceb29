-- Registry sync, step 1: the budget office's workbook rows, cleaned.
-- aim_registry_clean: every row with a measure code; text trimmed, repeated spaces collapsed,
-- empty cells NULL, the code upper case, the unit lower case, the direction 'higher'/'lower'
-- (NULL when it is neither: the check step names it). aim_registry_latest: per measure, its row
-- for the latest fiscal year (the attributes a measure has now).
DROP TABLE IF EXISTS aim_registry_clean, aim_registry_latest, aim_registry_changed, aim_registry_target;

CREATE TEMP TABLE aim_registry_clean ON COMMIT DROP AS
WITH cells AS (
    SELECT nullif(regexp_replace(btrim(measure_code), '\s+', ' ', 'g'), '') AS measure_code,
           nullif(regexp_replace(btrim(priority), '\s+', ' ', 'g'), '')     AS priority,
           nullif(regexp_replace(btrim(department), '\s+', ' ', 'g'), '')   AS department,
           nullif(regexp_replace(btrim(activity), '\s+', ' ', 'g'), '')     AS activity,
           nullif(regexp_replace(btrim(measure_name), '\s+', ' ', 'g'), '') AS name,
           nullif(regexp_replace(btrim(definition), '\s+', ' ', 'g'), '')   AS definition,
           nullif(regexp_replace(btrim(unit), '\s+', ' ', 'g'), '')         AS unit,
           nullif(regexp_replace(btrim(direction), '\s+', ' ', 'g'), '')    AS direction,
           nullif(regexp_replace(btrim(frequency), '\s+', ' ', 'g'), '')    AS frequency,
           target_fiscal_year, target_value, _batch_id, _loaded_at
    FROM core.bmo_aim_registry
)
SELECT upper(measure_code) AS measure_code, target_fiscal_year AS fiscal_year, target_value,
       priority, department, activity, name, definition, lower(unit) AS unit,
       CASE lower(direction)
            WHEN 'higher is better' THEN 'higher' WHEN 'higher' THEN 'higher'
            WHEN 'lower is better' THEN 'lower' WHEN 'lower' THEN 'lower' END AS direction,
       direction AS direction_as_given, frequency, _batch_id, _loaded_at
FROM cells
WHERE measure_code IS NOT NULL;

CREATE TEMP TABLE aim_registry_latest ON COMMIT DROP AS
SELECT DISTINCT ON (measure_code) *
FROM aim_registry_clean
ORDER BY measure_code, fiscal_year DESC NULLS LAST, _loaded_at DESC;
