-- The warehouse's four layers.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS ops;

COMMENT ON SCHEMA staging IS 'Landed batches exactly as received from source systems (all text), tagged with their batch id; a batch that fails its quality checks stays here, quarantined.';
COMMENT ON SCHEMA core    IS 'Conformed, typed data that passed its quality checks; every row carries the batch and run that last loaded it.';
COMMENT ON SCHEMA marts   IS 'Views for analysts: the stable, documented interface of the warehouse.';
COMMENT ON SCHEMA ops     IS 'Operations: run log, batches, quality results, watermarks, applied migrations.';
