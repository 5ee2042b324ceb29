-- Where each batch's Great Expectations Data Docs page is published (relative to the export root).
ALTER TABLE ops.batch ADD COLUMN data_docs text;
COMMENT ON COLUMN ops.batch.data_docs IS 'Path, under the export root, of the GX Data Docs page of this batch''s validation (quality/<source>/validations/...).';
