-- Ingest runs no longer publish: publish_open_data is publication's one owner (issue 12), and what
-- it released is in ops.dataset_release (each data set's content, rows and run). The ingest run
-- log's export count would stay empty forever, so it goes.

ALTER TABLE ops.run_log DROP COLUMN rows_exported;
