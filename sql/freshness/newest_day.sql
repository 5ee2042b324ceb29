-- The newest day a source delivered data for, by its coverage date column: the latest Milwaukee
-- date of {table}'s rows up to %(today)s (rows dated after today are not data for a day yet).
-- Filled in by aim.freshness: {table} is the source's core table, {day} the local date of a row
-- from its `coverage.date_column` (for a monthly source: the first day of the row's month), as
-- aim.measures.coverage.local_day writes it for sql/coverage/source_days.sql.
SELECT max({day}) AS data_as_of
FROM {table}
WHERE {day} <= %(today)s;
