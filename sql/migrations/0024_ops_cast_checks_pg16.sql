-- ops.casts_to on PostgreSQL 16 and later asks pg_input_is_valid, which tests the input without
-- an exception block (a subtransaction per call on 15). The answer is the cast's own, as in 0016.
-- (The quality gate calls it only for a batch where a whole-batch cast fails: aim.row_scan.)

CREATE OR REPLACE FUNCTION ops.casts_to(value text, type_name text) RETURNS boolean
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
    IF current_setting('server_version_num')::integer >= 160000 THEN  -- planned only when reached: 15 never plans it
        -- One call site per type: pg_input_is_valid keeps the first type it was called with for
        -- the rest of the session at each call site, so a call site must not see two types.
        CASE type_name
            WHEN 'smallint' THEN RETURN pg_input_is_valid(value, 'smallint');
            WHEN 'integer' THEN RETURN pg_input_is_valid(value, 'integer');
            WHEN 'bigint' THEN RETURN pg_input_is_valid(value, 'bigint');
            WHEN 'numeric' THEN RETURN pg_input_is_valid(value, 'numeric');
            WHEN 'double precision' THEN RETURN pg_input_is_valid(value, 'double precision');
            WHEN 'boolean' THEN RETURN pg_input_is_valid(value, 'boolean');
            WHEN 'date' THEN RETURN pg_input_is_valid(value, 'date');
            WHEN 'timestamp' THEN RETURN pg_input_is_valid(value, 'timestamp');
            WHEN 'timestamptz' THEN RETURN pg_input_is_valid(value, 'timestamptz');
        END CASE;
    END IF;
    -- The commonest shapes cast for certain: answer them without entering the exception block.
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
