-- Department commentary on the AIM measures: why a value moved, what is being done, when to expect
-- change, per measure and month. The departments' notes arrive through the budget office's
-- commentary workbook (source bmo_measure_commentary, core.bmo_measure_commentary: the notes as they stand
-- now); the aim_measures DAG keeps every version of every note here (sql/commentary/versions.sql),
-- so an edited note keeps its history.

CREATE TABLE core.aim_commentary (
    commentary_version_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    measure_code    text        NOT NULL CHECK (measure_code ~ '^[A-Z]{3}-[0-9]{2}$'),
    period_start    date        NOT NULL CHECK (extract(day FROM period_start) = 1),
    version         integer     NOT NULL CHECK (version >= 1),
    reason          text,
    action          text,
    outlook         text,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    source_batch_id text        NOT NULL,
    run_id          text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (measure_code, period_start, version),
    CHECK (coalesce(reason, action, outlook) IS NOT NULL),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE UNIQUE INDEX aim_commentary_one_current ON core.aim_commentary (measure_code, period_start) WHERE valid_to IS NULL;
COMMENT ON TABLE core.aim_commentary IS 'Every version of every department note on an AIM measure and month (type 2 history): an edit in the commentary workbook closes the current version (valid_to) and opens the next; a note whose text is cleared is closed with no successor (withdrawn). Written by the aim_measures DAG from core.bmo_measure_commentary.';
COMMENT ON COLUMN core.aim_commentary.commentary_version_id IS 'Surrogate key of this version of the note.';
COMMENT ON COLUMN core.aim_commentary.recorded_at IS 'When this version was written to the warehouse.';
COMMENT ON COLUMN core.aim_commentary.measure_code IS 'The measure the note is about, e.g. SAF-01.';
COMMENT ON COLUMN core.aim_commentary.period_start IS 'First day of the month the note is about.';
COMMENT ON COLUMN core.aim_commentary.version IS 'Version of the note: 1 for the first text seen, +1 for each edit.';
COMMENT ON COLUMN core.aim_commentary.reason IS 'Why the value moved, in the department''s words.';
COMMENT ON COLUMN core.aim_commentary.action IS 'What the department is doing about it.';
COMMENT ON COLUMN core.aim_commentary.outlook IS 'When to expect change.';
COMMENT ON COLUMN core.aim_commentary.valid_from IS 'When this version was loaded (the workbook row''s _loaded_at).';
COMMENT ON COLUMN core.aim_commentary.valid_to IS 'When the next version was loaded, or the note withdrawn (exclusive); NULL for the current version.';
COMMENT ON COLUMN core.aim_commentary.source_batch_id IS 'The commentary batch (core.bmo_measure_commentary._batch_id) this version was read from.';
COMMENT ON COLUMN core.aim_commentary.run_id IS 'The aim_measures DAG run that recorded this version.';

CREATE VIEW marts.measure_commentary_history AS
SELECT c.measure_code,
       m.measure_name,
       m.department,
       c.period_start,
       to_char(c.period_start, 'YYYY-MM') AS period_label,
       c.version,
       c.reason,
       c.action,
       c.outlook,
       c.valid_from,
       c.valid_to,
       c.valid_to IS NULL AS is_current
FROM core.aim_commentary c
LEFT JOIN marts.measure_definitions m ON m.measure_code = c.measure_code AND m.is_current;
COMMENT ON VIEW marts.measure_commentary_history IS 'Every version of every department note on an AIM measure and month, oldest first by version: what the scorecard said, and when.';
COMMENT ON COLUMN marts.measure_commentary_history.measure_code IS 'The measure the note is about, e.g. SAF-01.';
COMMENT ON COLUMN marts.measure_commentary_history.measure_name IS 'The measure''s current name (marts.measure_definitions).';
COMMENT ON COLUMN marts.measure_commentary_history.period_start IS 'First day of the month the note is about.';
COMMENT ON COLUMN marts.measure_commentary_history.period_label IS 'The month the note is about, YYYY-MM.';
COMMENT ON COLUMN marts.measure_commentary_history.version IS 'Version of the note: 1 for the first text, +1 for each edit.';
COMMENT ON COLUMN marts.measure_commentary_history.reason IS 'Why the value moved, in the department''s words.';
COMMENT ON COLUMN marts.measure_commentary_history.action IS 'What the department is doing about it.';
COMMENT ON COLUMN marts.measure_commentary_history.outlook IS 'When to expect change.';
COMMENT ON COLUMN marts.measure_commentary_history.is_current IS 'True for the version shown now; false for an edited or withdrawn one.';
COMMENT ON COLUMN marts.measure_commentary_history.department IS 'The department that owns the measure now (marts.measure_definitions).';
COMMENT ON COLUMN marts.measure_commentary_history.valid_from IS 'When this version was loaded.';
COMMENT ON COLUMN marts.measure_commentary_history.valid_to IS 'When it was replaced by an edit or withdrawn; NULL while it is the current note.';

CREATE VIEW marts.measure_commentary AS
SELECT h.measure_code,
       h.measure_name,
       h.department,
       h.period_start,
       h.period_label,
       h.reason,
       h.action,
       h.outlook,
       h.version,
       h.valid_from AS updated_at,
       (SELECT min(f.valid_from) FROM core.aim_commentary f
        WHERE f.measure_code = h.measure_code AND f.period_start = h.period_start) AS first_published_at
FROM marts.measure_commentary_history h
WHERE h.is_current;
COMMENT ON VIEW marts.measure_commentary IS 'The department notes shown now, one per measure and month: why the value moved (reason), what is being done (action), when to expect change (outlook). Earlier versions: marts.measure_commentary_history.';
COMMENT ON COLUMN marts.measure_commentary.measure_code IS 'The measure the note is about, e.g. SAF-01.';
COMMENT ON COLUMN marts.measure_commentary.measure_name IS 'The measure''s current name (marts.measure_definitions).';
COMMENT ON COLUMN marts.measure_commentary.period_start IS 'First day of the month the note is about.';
COMMENT ON COLUMN marts.measure_commentary.period_label IS 'The month the note is about, YYYY-MM.';
COMMENT ON COLUMN marts.measure_commentary.reason IS 'Why the value moved, in the department''s words.';
COMMENT ON COLUMN marts.measure_commentary.action IS 'What the department is doing about it.';
COMMENT ON COLUMN marts.measure_commentary.outlook IS 'When to expect change.';
COMMENT ON COLUMN marts.measure_commentary.department IS 'The department that owns the measure now (marts.measure_definitions).';
COMMENT ON COLUMN marts.measure_commentary.version IS 'Version of the note: above 1 when it was edited since it was first published.';
COMMENT ON COLUMN marts.measure_commentary.updated_at IS 'When this version of the note was loaded.';
COMMENT ON COLUMN marts.measure_commentary.first_published_at IS 'When the first version of the note was loaded.';

-- The commentary's quality suite asks whether a note's measure code is in the AIM registry. Before
-- the registry's first load there is no core.bmo_aim_registry: then no code is (the note is set
-- aside with that reason), instead of the check failing on a missing table.
CREATE FUNCTION ops.registry_has_measure(code text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF to_regclass('core.bmo_aim_registry') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT FROM core.bmo_aim_registry r
                   WHERE upper(btrim(r.measure_code)) = upper(btrim(code)));
END
$$;
COMMENT ON FUNCTION ops.registry_has_measure(text) IS 'Whether the AIM registry (core.bmo_aim_registry) lists the measure code (trimmed, any case); false while the registry has never loaded.';
