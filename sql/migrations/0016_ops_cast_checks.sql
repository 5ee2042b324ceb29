-- Cast checks for staged text: does a value convert to a warehouse column type the way the
-- merge's `value::type` converts it? PostgreSQL 15 has no pg_input_is_valid, so the cast is tried
-- in an exception block. The quality gate's generated rules (aim.generated_checks) use it to set
-- aside the rows whose values would stop the merge, before the merge ever sees them.
--
-- The answer follows the session's settings like the merge's cast does (DateStyle for 01/02/2026,
-- TimeZone for a timestamptz without an offset): the function is STABLE, not IMMUTABLE.
--
--   SELECT ops.casts_to('32768', 'smallint');      -- false: out of range
--   SELECT ops.casts_to('2026-02-30', 'date');     -- false: no such day
--   SELECT ops.casts_to(' Yes ', 'boolean');       -- true, as ' Yes '::boolean is

CREATE FUNCTION ops.casts_to(value text, type_name text) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF type_name NOT IN ('text', 'smallint', 'integer', 'bigint', 'numeric', 'double precision',
                         'boolean', 'date', 'timestamp', 'timestamptz') THEN
        RAISE EXCEPTION 'ops.casts_to: no cast check for type %', quote_literal(type_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF value IS NULL OR type_name = 'text' THEN
        RETURN true;  -- NULL casts to NULL, text to itself
    END IF;
    -- The commonest shapes cast for certain: answer them without entering the exception block,
    -- which costs a subtransaction per call.
    IF (type_name = 'smallint' AND value ~ '^-?[0-9]{1,4}$')
       OR (type_name = 'integer' AND value ~ '^-?[0-9]{1,9}$')
       OR (type_name = 'bigint' AND value ~ '^-?[0-9]{1,18}$')
       OR (type_name IN ('numeric', 'double precision') AND value ~ '^-?[0-9]{1,15}([.][0-9]{1,15})?$')
       OR (type_name = 'boolean' AND value IN ('0', '1', 't', 'f', 'true', 'false')) THEN
        RETURN true;
    END IF;
    BEGIN
        CASE type_name
            WHEN 'smallint' THEN PERFORM value::smallint;
            WHEN 'integer' THEN PERFORM value::integer;
            WHEN 'bigint' THEN PERFORM value::bigint;
            WHEN 'numeric' THEN PERFORM value::numeric;
            WHEN 'double precision' THEN PERFORM value::double precision;
            WHEN 'boolean' THEN PERFORM value::boolean;
            WHEN 'date' THEN PERFORM value::date;
            WHEN 'timestamp' THEN PERFORM value::timestamp;
            WHEN 'timestamptz' THEN PERFORM value::timestamptz;
        END CASE;
    EXCEPTION WHEN others THEN
        RETURN false;  -- whatever the cast refuses (syntax, range, a field out of range), the merge refuses
    END;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION ops.casts_to(text, text) IS
    'Whether value::type_name succeeds in this session (NULL casts); type_name is a warehouse column type '
    '(text, smallint, integer, bigint, numeric, double precision, boolean, date, timestamp, timestamptz).';
