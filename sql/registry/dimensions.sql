-- Registry sync, step 3: priorities, departments and activities named by the registry (new ones
-- are added; none is ever removed, older measure versions still point at them).
INSERT INTO core.aim_priority (name)
SELECT DISTINCT priority FROM aim_registry_latest
ON CONFLICT (name) DO NOTHING;

INSERT INTO core.aim_department (name)
SELECT DISTINCT department FROM aim_registry_latest
ON CONFLICT (name) DO NOTHING;

INSERT INTO core.aim_activity (department_id, name)
SELECT DISTINCT d.department_id, r.activity
FROM aim_registry_latest r JOIN core.aim_department d ON d.name = r.department
ON CONFLICT (department_id, name) DO NOTHING;
