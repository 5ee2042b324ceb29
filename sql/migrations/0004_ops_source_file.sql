-- File sources: every version of every file seen, so each is loaded exactly once.

CREATE TABLE ops.source_file (
    source        text        NOT NULL,
    file_key      text        NOT NULL,
    sha256        text        NOT NULL,
    size_bytes    bigint      NOT NULL,
    rows_landed   bigint,
    batch_id      text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('landed', 'quarantined', 'merged')),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    merged_at     timestamptz,
    PRIMARY KEY (source, file_key, sha256)
);
COMMENT ON TABLE ops.source_file IS 'Each version (key and SHA-256) of each file a file source delivered: landed in a batch, quarantined with it, or merged. A merged version is never loaded again; a corrected file with the same name is a new version.';

