-- The platform's clock inside the warehouse, for checks written in SQL (the expectation suites).
-- It is the server's now(), unless the session's `aim.now` setting holds a moment: the platform
-- sets it on every connection when AIM_NOW is set (aim.clock, aim.db.normalize_url), so a run
-- "as of" a moment, and every test, sees one time in Python and in SQL alike.

CREATE FUNCTION ops.clock_now() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(current_setting('aim.now', true), '')::timestamptz, now())
$$;
COMMENT ON FUNCTION ops.clock_now() IS
    'The platform''s current moment: the session setting aim.now when set (AIM_NOW), else now().';

CREATE FUNCTION ops.local_now() RETURNS timestamp
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT ops.clock_now() AT TIME ZONE 'America/Chicago'
$$;
COMMENT ON FUNCTION ops.local_now() IS
    'Milwaukee''s wall-clock time now, by the platform''s clock (ops.clock_now()).';

-- A measure value is partial when it was computed before its month was over: by the platform's clock.
ALTER TABLE core.aim_measure_value ALTER COLUMN computed_at SET DEFAULT ops.clock_now();
