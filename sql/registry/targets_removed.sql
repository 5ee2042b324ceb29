-- Registry sync, step 6: annual targets the registry no longer has are removed (a target set for
-- one period, period_id not NULL, is not the registry's and is kept).
DELETE FROM core.aim_target t
WHERE t.period_id IS NULL
  AND NOT EXISTS (SELECT FROM aim_registry_target r
                  WHERE r.measure_code = t.measure_code AND r.fiscal_year = t.fiscal_year);
