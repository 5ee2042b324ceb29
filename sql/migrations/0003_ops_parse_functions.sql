-- Parsing helpers for quality checks on staged text: NULL where the text does not parse,
-- instead of an error that would abort the whole check.

CREATE FUNCTION ops.try_timestamp(value text) RETURNS timestamp
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN value::timestamp;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ops.try_timestamp(text) IS 'The text as a timestamp, or NULL when it does not parse.';

CREATE FUNCTION ops.try_numeric(value text) RETURNS numeric
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN value::numeric;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ops.try_numeric(text) IS 'The text as a number, or NULL when it does not parse.';
