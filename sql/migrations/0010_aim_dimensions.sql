-- The AIM (Accountability in Management) metrics model, part 1: who owns what, which measures
-- exist (with their history), the calendar, the geographies, the targets and the status rule.
-- Filled by aim.measures.sync_registry (from core.bmo_aim_registry) and aim.measures.ensure_periods.

CREATE TABLE core.aim_priority (
    priority_id smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> '')
);
COMMENT ON TABLE core.aim_priority IS 'The city''s strategic priorities that AIM measures serve, as named in the budget office''s AIM registry.';
COMMENT ON COLUMN core.aim_priority.priority_id IS 'Surrogate key.';
COMMENT ON COLUMN core.aim_priority.name IS 'Priority name as in the registry (spaces trimmed), e.g. "Safety and security for all neighborhoods and residents".';

CREATE TABLE core.aim_department (
    department_id smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name <> '')
);
COMMENT ON TABLE core.aim_department IS 'City departments that own AIM measures, as named in the AIM registry.';
COMMENT ON COLUMN core.aim_department.department_id IS 'Surrogate key.';
COMMENT ON COLUMN core.aim_department.name IS 'Department name as in the registry (spaces trimmed), e.g. "Police".';

CREATE TABLE core.aim_activity (
    activity_id   smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    department_id smallint NOT NULL REFERENCES core.aim_department,
    name          text NOT NULL CHECK (name <> ''),
    UNIQUE (department_id, name)
);
COMMENT ON TABLE core.aim_activity IS 'Departmental activities (services) that AIM measures describe; an activity belongs to one department.';
COMMENT ON COLUMN core.aim_activity.activity_id IS 'Surrogate key.';
COMMENT ON COLUMN core.aim_activity.department_id IS 'The department that carries out the activity.';
COMMENT ON COLUMN core.aim_activity.name IS 'Activity name as in the registry (spaces trimmed), e.g. "Code enforcement".';

CREATE TABLE core.aim_measure (
    measure_version_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    measure_code       text        NOT NULL CHECK (measure_code ~ '^[A-Z]{3}-[0-9]{2}$'),
    version            integer     NOT NULL CHECK (version >= 1),
    name               text        NOT NULL,
    definition         text        NOT NULL,
    unit               text        NOT NULL CHECK (unit IN ('count', 'percent', 'rate', 'minutes', 'days')),
    direction          text        NOT NULL CHECK (direction IN ('higher', 'lower')),
    frequency          text        NOT NULL,
    priority_id        smallint    NOT NULL REFERENCES core.aim_priority,
    department_id      smallint    NOT NULL REFERENCES core.aim_department,
    activity_id        smallint    NOT NULL REFERENCES core.aim_activity,
    valid_from         timestamptz NOT NULL,
    valid_to           timestamptz,
    source_batch_id    text        NOT NULL,
    run_id             text        NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (measure_code, version),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE UNIQUE INDEX aim_measure_one_current ON core.aim_measure (measure_code) WHERE valid_to IS NULL;
COMMENT ON TABLE core.aim_measure IS 'AIM measures with their full history (slowly changing dimension, type 2): one row per version. A change of name, definition, unit, direction, frequency, priority, department (owner) or activity in the registry closes the current version (valid_to) and opens the next; older versions stay for the periods they were valid in.';
COMMENT ON COLUMN core.aim_measure.measure_version_id IS 'Surrogate key of this version.';
COMMENT ON COLUMN core.aim_measure.measure_code IS 'Measure code, e.g. SAF-01: stable across versions.';
COMMENT ON COLUMN core.aim_measure.version IS 'Version number, 1 for the first version seen, +1 for each change.';
COMMENT ON COLUMN core.aim_measure.name IS 'Measure name in this version.';
COMMENT ON COLUMN core.aim_measure.definition IS 'How the measure is computed, in this version.';
COMMENT ON COLUMN core.aim_measure.unit IS 'count, percent (0-100), rate (per 1,000 residents or households), minutes or days.';
COMMENT ON COLUMN core.aim_measure.direction IS 'higher (higher is better) or lower (lower is better); decides the status against a target.';
COMMENT ON COLUMN core.aim_measure.frequency IS 'How often the measure is reported, e.g. Monthly.';
COMMENT ON COLUMN core.aim_measure.priority_id IS 'The strategic priority the measure serves.';
COMMENT ON COLUMN core.aim_measure.department_id IS 'The department that owns the measure.';
COMMENT ON COLUMN core.aim_measure.activity_id IS 'The departmental activity the measure describes.';
COMMENT ON COLUMN core.aim_measure.valid_from IS 'When this version took effect: -infinity for the first version (it stands for all history before the first recorded change), otherwise when the changed registry row was loaded (its _loaded_at).';
COMMENT ON COLUMN core.aim_measure.valid_to IS 'When the next version took effect (exclusive); NULL for the current version.';
COMMENT ON COLUMN core.aim_measure.source_batch_id IS 'The registry batch (core.bmo_aim_registry._batch_id) this version was read from.';
COMMENT ON COLUMN core.aim_measure.run_id IS 'The aim_measures DAG run that recorded this version.';
COMMENT ON COLUMN core.aim_measure.recorded_at IS 'When this version was written to the warehouse.';

CREATE TABLE core.aim_period (
    period_id      integer  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period_type    text     NOT NULL CHECK (period_type IN ('month', 'quarter', 'fiscal_year')),
    period_start   date     NOT NULL CHECK (extract(day FROM period_start) = 1),
    period_end     date     NOT NULL CHECK (period_end >= period_start),
    fiscal_year    smallint NOT NULL,
    fiscal_quarter smallint CHECK (fiscal_quarter BETWEEN 1 AND 4),
    label          text     NOT NULL,
    UNIQUE (period_type, period_start),
    CHECK ((period_type = 'fiscal_year') = (fiscal_quarter IS NULL))
);
COMMENT ON TABLE core.aim_period IS 'Reporting periods: months, fiscal quarters and fiscal years. The fiscal year starts in the month AIM_FISCAL_YEAR_START_MONTH (default 1, the calendar year) and is named by the calendar year it ends in. Written by aim.measures.ensure_periods.';
COMMENT ON COLUMN core.aim_period.period_id IS 'Surrogate key.';
COMMENT ON COLUMN core.aim_period.period_type IS 'month, quarter (fiscal quarter) or fiscal_year.';
COMMENT ON COLUMN core.aim_period.period_start IS 'First day of the period.';
COMMENT ON COLUMN core.aim_period.period_end IS 'Last day of the period (inclusive).';
COMMENT ON COLUMN core.aim_period.fiscal_year IS 'Fiscal year the period belongs to, named by the calendar year it ends in.';
COMMENT ON COLUMN core.aim_period.fiscal_quarter IS 'Fiscal quarter (1-4) of a month or quarter; NULL for a fiscal year.';
COMMENT ON COLUMN core.aim_period.label IS 'Display label: 2026-01 (month), FY2026 Q1 (quarter), FY2026 (fiscal year).';

CREATE TABLE core.aim_geography (
    geography_type text NOT NULL CHECK (geography_type IN ('citywide', 'aldermanic_district', 'police_district')),
    geography_code text NOT NULL,
    name           text NOT NULL,
    PRIMARY KEY (geography_type, geography_code)
);
COMMENT ON TABLE core.aim_geography IS 'Geographies a measure is reported for: the city as a whole, its 15 aldermanic districts and its 7 police districts.';
COMMENT ON COLUMN core.aim_geography.geography_type IS 'citywide, aldermanic_district or police_district.';
COMMENT ON COLUMN core.aim_geography.geography_code IS 'all for citywide; the district number as text (1-15 aldermanic, 1-7 police).';
COMMENT ON COLUMN core.aim_geography.name IS 'Display name, e.g. "Aldermanic district 3".';
INSERT INTO core.aim_geography (geography_type, geography_code, name)
SELECT 'citywide', 'all', 'City of Milwaukee'
UNION ALL
SELECT 'aldermanic_district', n::text, 'Aldermanic district ' || n FROM generate_series(1, 15) AS n
UNION ALL
SELECT 'police_district', n::text, 'Police district ' || n FROM generate_series(1, 7) AS n;

CREATE TABLE core.aim_target (
    measure_code    text        NOT NULL,
    fiscal_year     smallint    NOT NULL,
    period_id       integer     REFERENCES core.aim_period,
    target_value    numeric     NOT NULL,
    source_batch_id text,
    run_id          text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT aim_target_key UNIQUE NULLS NOT DISTINCT (measure_code, fiscal_year, period_id)
);
COMMENT ON TABLE core.aim_target IS 'Targets per measure and fiscal year, from the AIM registry. An annual target (period_id NULL) applies to every period of the fiscal year; a target for a specific period, where one exists, takes precedence. A measure and year without a row has no target (its status is "no target", never a guess).';
COMMENT ON COLUMN core.aim_target.measure_code IS 'Measure code, e.g. SAF-01.';
COMMENT ON COLUMN core.aim_target.fiscal_year IS 'Fiscal year the target is for.';
COMMENT ON COLUMN core.aim_target.period_id IS 'NULL: the annual target, compared with every period of the year; otherwise the one period the target is for.';
COMMENT ON COLUMN core.aim_target.target_value IS 'The target, in the measure''s unit.';
COMMENT ON COLUMN core.aim_target.source_batch_id IS 'The registry batch (core.bmo_aim_registry._batch_id) the target was read from.';
COMMENT ON COLUMN core.aim_target.run_id IS 'The aim_measures DAG run that last changed the target.';
COMMENT ON COLUMN core.aim_target.updated_at IS 'When the target was last changed.';

CREATE TABLE core.aim_status_rule (
    rule_id   boolean PRIMARY KEY DEFAULT true CHECK (rule_id),
    tolerance numeric NOT NULL CHECK (tolerance >= 0 AND tolerance < 1),
    note      text    NOT NULL
);
COMMENT ON TABLE core.aim_status_rule IS 'The rule that turns a value and its target into a status (one row). on track: the target is met (value >= target when higher is better, value <= target when lower is better); within tolerance: not on track, but within tolerance x |target| of it; off track: further away; no target: the measure has no target for the period''s fiscal year.';
COMMENT ON COLUMN core.aim_status_rule.rule_id IS 'Always true: the table holds one row.';
COMMENT ON COLUMN core.aim_status_rule.tolerance IS 'How far from the target, as a share of the target (0.05 = 5%), a value still counts as within tolerance.';
COMMENT ON COLUMN core.aim_status_rule.note IS 'Who set the tolerance and why.';
INSERT INTO core.aim_status_rule (tolerance, note)
VALUES (0.05, 'Default of the AIM program: within 5% of the target counts as within tolerance. Change with UPDATE core.aim_status_rule SET tolerance = ..., note = ...');

CREATE FUNCTION core.aim_status(value numeric, target numeric, direction text, tolerance numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN target IS NULL THEN 'no target'
        WHEN value IS NULL THEN 'no value'
        WHEN direction = 'higher' THEN CASE
            WHEN value >= target THEN 'on track'
            WHEN value >= target - abs(target) * coalesce(tolerance, 0) THEN 'within tolerance'
            ELSE 'off track' END
        WHEN direction = 'lower' THEN CASE
            WHEN value <= target THEN 'on track'
            WHEN value <= target + abs(target) * coalesce(tolerance, 0) THEN 'within tolerance'
            ELSE 'off track' END
    END
$$;
COMMENT ON FUNCTION core.aim_status(numeric, numeric, text, numeric) IS 'Status of a value against its target: ''no target'' when the target is NULL; ''no value'' when the value is NULL; for direction higher: ''on track'' when value >= target, ''within tolerance'' when value >= target - tolerance x |target|, else ''off track''; for direction lower: ''on track'' when value <= target, ''within tolerance'' when value <= target + tolerance x |target|, else ''off track''. The tolerance boundary itself is within tolerance. NULL for an unknown direction.';
