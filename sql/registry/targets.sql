-- Registry sync, step 5: annual targets, exactly the registry's (per measure and fiscal year, the
-- latest row's value; a row with an empty value sets no target). Returns nothing; the row count
-- is the targets written or changed.
CREATE TEMP TABLE aim_registry_target ON COMMIT DROP AS
SELECT * FROM (
    SELECT DISTINCT ON (measure_code, fiscal_year) measure_code, fiscal_year, target_value, _batch_id
    FROM aim_registry_clean WHERE fiscal_year IS NOT NULL
    ORDER BY measure_code, fiscal_year, _loaded_at DESC
) latest
WHERE target_value IS NOT NULL;

INSERT INTO core.aim_target (measure_code, fiscal_year, period_id, target_value, source_batch_id, run_id)
SELECT measure_code, fiscal_year, NULL, target_value, _batch_id, %(run_id)s FROM aim_registry_target
ON CONFLICT ON CONSTRAINT aim_target_key DO UPDATE
   SET target_value = EXCLUDED.target_value, source_batch_id = EXCLUDED.source_batch_id,
       run_id = EXCLUDED.run_id, updated_at = now()
 WHERE core.aim_target.target_value IS DISTINCT FROM EXCLUDED.target_value;
