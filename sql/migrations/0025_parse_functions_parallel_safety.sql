-- ops.try_timestamp, ops.try_numeric and ops.casts_to were declared PARALLEL SAFE, but on
-- PostgreSQL 15 they catch the cast's error in an exception block, which starts a subtransaction,
-- and PostgreSQL forbids subtransactions in a parallel query: on a batch big enough for a
-- parallel plan, a check calling them failed with "cannot start subtransactions during a
-- parallel operation". On 15 they are now PARALLEL UNSAFE (such a statement runs in one process).
--
-- On PostgreSQL 16 and later, pg_input_is_valid tests the input without an exception block, so
-- try_timestamp and try_numeric become plain SQL functions (inlined into the query: no call per
-- row) and all three are PARALLEL SAFE for real. Same answers either way.

DO $$
BEGIN
    IF current_setting('server_version_num')::integer >= 160000 THEN
        EXECUTE $f$
            CREATE OR REPLACE FUNCTION ops.try_timestamp(value text) RETURNS timestamp
            LANGUAGE sql STABLE PARALLEL SAFE AS
            'SELECT CASE WHEN pg_input_is_valid(value, ''timestamp'') THEN value::timestamp END'
        $f$;
        EXECUTE $f$
            CREATE OR REPLACE FUNCTION ops.try_numeric(value text) RETURNS numeric
            LANGUAGE sql STABLE PARALLEL SAFE AS
            'SELECT CASE WHEN pg_input_is_valid(value, ''numeric'') THEN value::numeric END'
        $f$;
        ALTER FUNCTION ops.casts_to(text, text) PARALLEL SAFE;  -- 0024: pg_input_is_valid, no exception block
    ELSE
        ALTER FUNCTION ops.try_timestamp(text) PARALLEL UNSAFE;
        ALTER FUNCTION ops.try_numeric(text) PARALLEL UNSAFE;
        ALTER FUNCTION ops.casts_to(text, text) PARALLEL UNSAFE;
    END IF;
END;
$$;
