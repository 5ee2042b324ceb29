-- Addresses generalized to the block wherever the house number stands, not only at the start:
-- 'COLUMBIA ST MARYS HOSPITAL,MKE at 2301 N LAKE DR,MKE', '#2846 N 1ST ST' and '2846-2848 N 1ST ST'
-- were published as they came. Every house number (or range of them) followed by a street now
-- becomes its hundred block. (Issue 11 goes further: free text is never generalized, a value
-- with no block becomes NULL.)

CREATE OR REPLACE FUNCTION ops.generalize_address(address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- '2846 N 1ST ST' -> '2800 BLOCK N 1ST ST'; '12 E WELLS ST' -> '0 BLOCK E WELLS ST'
    SELECT regexp_replace(
               regexp_replace(address,
                              '\m([0-9]+)[0-9]{2}[A-Z]?(-[0-9]+[A-Z]?)?\s+(?=\S)', '\100 BLOCK ', 'g'),
               '\m[0-9]{1,2}[A-Z]?(-[0-9]+[A-Z]?)?\s+(?=[A-Z])', '0 BLOCK ', 'g')
$$;
COMMENT ON FUNCTION ops.generalize_address(text) IS
    'An address generalized to its block wherever its house number stands: 2846 N 1ST ST becomes 2800 BLOCK N 1ST ST. Exports apply it to columns classed generalize.';
