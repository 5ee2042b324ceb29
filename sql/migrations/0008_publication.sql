-- Open data publication: privacy helpers and the record of every data set release.

CREATE FUNCTION ops.generalize_address(address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- '2846 N 1ST ST' -> '2800 BLOCK N 1ST ST'; an address without a house number is kept
    SELECT CASE
        WHEN address ~ '^\s*[0-9]+[A-Z]?\s+\S'
        THEN (floor(substring(address FROM '^\s*([0-9]+)')::numeric / 100) * 100)::bigint::text
             || ' BLOCK ' || regexp_replace(address, '^\s*[0-9]+[A-Z]?\s+', '')
        ELSE address
    END
$$;
COMMENT ON FUNCTION ops.generalize_address(text) IS 'An address generalized to its block: 2846 N 1ST ST becomes 2800 BLOCK N 1ST ST. Exports apply it to columns classed generalize.';

CREATE TABLE ops.dataset_release (
    dataset      text        NOT NULL,
    run_id       text        NOT NULL,
    sha256       text        NOT NULL,
    rows         bigint      NOT NULL,
    released_at  timestamptz NOT NULL DEFAULT now(),
    archive_path text        NOT NULL,
    PRIMARY KEY (dataset, sha256)
);
COMMENT ON TABLE ops.dataset_release IS 'Every distinct content of every published data set (by the SHA-256 of its CSV): when it was first released, by which run, and its archive snapshot. The catalog''s modified date is the latest release.';

CREATE TABLE ops.dataset_inventory (
    dataset_id          text PRIMARY KEY,
    title               text    NOT NULL,
    department          text    NOT NULL,
    steward             text    NOT NULL,
    sensitivity         text    NOT NULL,
    release_status      text    NOT NULL,
    release_priority    integer NOT NULL,
    accrual_periodicity text    NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.dataset_inventory IS 'The open data inventory (dags/datasets/*.yaml) as of the last publication; its public rows are the open-data-inventory data set.';
