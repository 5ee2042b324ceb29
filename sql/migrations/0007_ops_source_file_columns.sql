-- What a file had beyond the columns its source reads: recorded, shown as a warning, ignored.
ALTER TABLE ops.source_file ADD COLUMN extra_columns text[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN ops.source_file.extra_columns IS 'Columns the file had that the source configuration does not read (ignored; a warning of the batch''s quality gate).';
