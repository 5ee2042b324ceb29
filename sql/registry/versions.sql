-- Registry sync, step 4: new measure versions (SCD type 2).
-- aim_registry_changed: measures whose latest registry row differs from their current version
-- (name, definition, unit, direction, frequency, priority, department, activity), or that are new.
-- The new version takes effect when the changed row was loaded (never before the old one did; a
-- measure seen for the first time is valid from -infinity); the current version is closed, not
-- deleted. Returns the version numbers written.
CREATE TEMP TABLE aim_registry_changed ON COMMIT DROP AS
SELECT r.measure_code, r.name, r.definition, r.unit, r.direction, r.frequency,
       p.priority_id, d.department_id, a.activity_id, r._batch_id, r._loaded_at,
       m.measure_version_id AS current_version_id, m.valid_from AS current_valid_from,
       (SELECT max(version) FROM core.aim_measure x WHERE x.measure_code = r.measure_code) AS last_version,
       (SELECT max(valid_to) FROM core.aim_measure x WHERE x.measure_code = r.measure_code) AS last_valid_to
FROM aim_registry_latest r
JOIN core.aim_priority p ON p.name = r.priority
JOIN core.aim_department d ON d.name = r.department
JOIN core.aim_activity a ON a.department_id = d.department_id AND a.name = r.activity
LEFT JOIN core.aim_measure m ON m.measure_code = r.measure_code AND m.valid_to IS NULL
WHERE m.measure_version_id IS NULL
   OR (m.name, m.definition, m.unit, m.direction, m.frequency, m.priority_id, m.department_id, m.activity_id)
      IS DISTINCT FROM
      (r.name, r.definition, r.unit, r.direction, r.frequency, p.priority_id, d.department_id, a.activity_id);

UPDATE aim_registry_changed
   SET _loaded_at = CASE
       WHEN current_version_id IS NOT NULL THEN greatest(_loaded_at, current_valid_from)
       WHEN last_version IS NOT NULL THEN greatest(_loaded_at, last_valid_to)
       ELSE '-infinity' END;

UPDATE core.aim_measure m SET valid_to = c._loaded_at
FROM aim_registry_changed c WHERE m.measure_version_id = c.current_version_id;

INSERT INTO core.aim_measure (measure_code, version, name, definition, unit, direction, frequency,
                              priority_id, department_id, activity_id, valid_from, source_batch_id, run_id)
SELECT measure_code, coalesce(last_version, 0) + 1, name, definition, unit, direction, frequency,
       priority_id, department_id, activity_id, _loaded_at, _batch_id, %(run_id)s
FROM aim_registry_changed
RETURNING version;
