-- Commentary sync: every version of every department note (core.aim_commentary, type 2 history)
-- from the notes as they stand in the commentary workbook (core.bmo_measure_commentary).
-- aim_commentary_latest: the workbook's notes, text trimmed (spaces and tabs collapsed, line breaks
-- kept), empty parts NULL, the code upper case, the month as its first day. A note whose text
-- differs from its current version (or that is new) gets a new version, valid from when its row
-- was loaded (never before the version it replaces); the current version is closed, not deleted. A
-- note whose parts are all empty is withdrawn: its current version is closed with no successor.
-- Returns one row per version written or closed: (measure_code, period_start, version, withdrawn).
DROP TABLE IF EXISTS aim_commentary_latest, aim_commentary_changed;

CREATE TEMP TABLE aim_commentary_latest ON COMMIT DROP AS
SELECT upper(btrim(measure_code)) AS measure_code,
       to_date(btrim(period) || '-01', 'YYYY-MM-DD') AS period_start,
       nullif(regexp_replace(btrim(reason), '[ \t]+', ' ', 'g'), '')  AS reason,
       nullif(regexp_replace(btrim(action), '[ \t]+', ' ', 'g'), '')  AS action,
       nullif(regexp_replace(btrim(outlook), '[ \t]+', ' ', 'g'), '') AS outlook,
       _batch_id, _loaded_at
FROM core.bmo_measure_commentary
WHERE btrim(period) ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'
  AND upper(btrim(measure_code)) ~ '^[A-Z]{3}-[0-9]{2}$';

CREATE TEMP TABLE aim_commentary_changed ON COMMIT DROP AS
SELECT l.*, coalesce(l.reason, l.action, l.outlook) IS NULL AS withdrawn,
       c.commentary_version_id AS current_version_id, c.valid_from AS current_valid_from,
       (SELECT max(version) FROM core.aim_commentary x
        WHERE x.measure_code = l.measure_code AND x.period_start = l.period_start) AS last_version,
       (SELECT max(valid_to) FROM core.aim_commentary x
        WHERE x.measure_code = l.measure_code AND x.period_start = l.period_start) AS last_valid_to
FROM aim_commentary_latest l
LEFT JOIN core.aim_commentary c
       ON c.measure_code = l.measure_code AND c.period_start = l.period_start AND c.valid_to IS NULL
WHERE CASE WHEN c.commentary_version_id IS NULL THEN coalesce(l.reason, l.action, l.outlook) IS NOT NULL
           ELSE (c.reason, c.action, c.outlook) IS DISTINCT FROM (l.reason, l.action, l.outlook) END;

UPDATE aim_commentary_changed
   SET _loaded_at = greatest(_loaded_at, coalesce(current_valid_from, last_valid_to, _loaded_at));

UPDATE core.aim_commentary c SET valid_to = ch._loaded_at
FROM aim_commentary_changed ch WHERE c.commentary_version_id = ch.current_version_id;

WITH written AS (
    INSERT INTO core.aim_commentary (measure_code, period_start, version, reason, action, outlook, valid_from,
                                     source_batch_id, run_id)
    SELECT measure_code, period_start, coalesce(last_version, 0) + 1, reason, action, outlook, _loaded_at,
           _batch_id, %(run_id)s
    FROM aim_commentary_changed
    WHERE NOT withdrawn
    RETURNING measure_code, period_start, version
)
SELECT measure_code, period_start, version, false AS withdrawn FROM written
UNION ALL
SELECT measure_code, period_start, last_version, true FROM aim_commentary_changed WHERE withdrawn;
