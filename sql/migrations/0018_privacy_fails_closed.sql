-- Privacy that fails closed (issue 11).
--
-- 1. Addresses generalize to '<hundred> BLOCK <street>' or to NULL, never to their input: the
--    generalizer of 0015 returned a value with no house number at its start unchanged, so free
--    text and irregular addresses were published verbatim, and it kept a ZIP+4 after the street.
--    Only the block and the street are kept; units, names, cities and ZIP codes are cut.
-- 2. Published ids are opaque: ops.public_id gives each record of a source whose key is not
--    public (a derived key is a hash of the row's content, reversible by hashing candidates) a
--    number from a sequence, stable from one release to the next.

CREATE OR REPLACE FUNCTION ops.generalize_address(address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- the first house number (or range: 2846-2848, #2846, 2846A) followed by a street, wherever it
    -- stands; the street is at most six words, ends at a unit (APT, #, STE ...), a city, a comma or a
    -- ZIP code, and at its first street type (ST, AV, DR ...) when it has one
    SELECT (m[1]::bigint / 100 * 100)::text || ' BLOCK '
           || regexp_replace(regexp_replace(m[2], '\s+', ' ', 'g'),
                             '^(\S+ \S+.*?\m(?:ST|AV|AVE|BL|BLVD|DR|PL|CT|LA|LN|RD|WY|WAY|PKWY|PK|TER|TR|CIR|SQ|HWY)\M).*$', '\1')
    FROM (SELECT regexp_match(upper(address),
        '(?:^|[^0-9A-Z])#?([0-9]{1,6})[A-Z]?(?:\s*-\s*[0-9]{1,6}[A-Z]?)?\s+'
        || '((?:[NSEW]\.?\s+)?(?:[0-9]+(?:ST|ND|RD|TH)|(?!(?:APT|UNIT|STE|SUITE|FL|FLOOR|RM|ROOM|LOT|BLDG|REAR|UPPER|LOWER|MKE|MILWAUKEE|WI|WISCONSIN)\M)[A-Z][A-Z''.]*)(?:\s+(?:[0-9]+(?:ST|ND|RD|TH)|(?!(?:APT|UNIT|STE|SUITE|FL|FLOOR|RM|ROOM|LOT|BLDG|REAR|UPPER|LOWER|MKE|MILWAUKEE|WI|WISCONSIN)\M)[A-Z][A-Z''.]*)){0,5})'
        || '\s*(?:$|[,;#(&/]|\s[0-9A-Z])') AS m) AS found
$$;
COMMENT ON FUNCTION ops.generalize_address(text) IS
    'An address as its hundred block and street (2846 N 1ST ST, APT 3 becomes 2800 BLOCK N 1ST ST), or NULL when it has no house number followed by a street. Exports apply it to columns classed generalize_address.';

CREATE TABLE IF NOT EXISTS ops.public_id (
    source      text NOT NULL,
    natural_key text NOT NULL,
    record_id   bigint GENERATED ALWAYS AS IDENTITY,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, natural_key),
    UNIQUE (record_id)
);
COMMENT ON TABLE ops.public_id IS
    'The opaque record_id published in place of a key that is not public (a derived key, a key classed drop): assigned once per source and key, in key order, never reused.';
