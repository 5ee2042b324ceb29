"""Coverage: for every source a measure reads, which days its data covers and which are settled.

Each source declares its `coverage` (date column, cadence, reporting lag: `aim.sources.Coverage`).
`refresh_coverage` derives, from the rows actually loaded into `core.<source>`, one row per source
and day in `core.source_coverage` (`sql/coverage/source_days.sql` says how). A period of a measure
is then, by `core.period_coverage` (a SQL function, so analysts' views use the same rule):

- **complete** when every day of it is covered and settled, for every source the measure reads;
- **no data** when some source it reads covers none of its days;
- **provisional** otherwise: covered in part, or still within a source's reporting lag.
"""
from __future__ import annotations

import logging
from typing import Iterable

from psycopg2 import sql

from aim import clock, settings
from aim.measures.files import MeasureError, MeasureFile, SourceRead
from aim.sources import Coverage, SourceConfigError, load_source

log = logging.getLogger(__name__)

COMPLETENESS = ("complete", "provisional", "no data")


def column_type(cur, table: str, column: str) -> str | None:
    """The SQL type of `table.column` (`schema.table`), or None when there is no such column."""
    cur.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = %s AND attnum > 0 AND NOT attisdropped",
        (table, column),
    )
    row = cur.fetchone()
    return row[0] if row else None


def local_day(cur, table: str, column: str, *, month: bool = False) -> sql.Composable:
    """SQL for the local (Milwaukee) date a value of `table.column` falls on: a date, a timestamp
    (local wall time), a timestamptz, or 'YYYY-MM' text (its month's first day; NULL when not in
    that form). With `month`, the first day of that date's month."""
    column_type_ = column_type(cur, table, column)
    ident = sql.Identifier(column)
    if column_type_ is None:
        raise MeasureError(f"{table} has no column {column!r}")
    if column_type_ == "date":
        day = ident
    elif column_type_ == "timestamp without time zone":
        day = sql.SQL("{}::date").format(ident)
    elif column_type_ == "timestamp with time zone":
        day = sql.SQL("({} AT TIME ZONE {})::date").format(ident, sql.Literal(clock.LOCAL_TIME_ZONE))
    elif column_type_ == "text" or column_type_.startswith("character"):
        day = sql.SQL("CASE WHEN {0} ~ '^[0-9]{{4}}-[0-9]{{2}}' THEN to_date(left({0}, 7), 'YYYY-MM') END").format(ident)
    else:
        raise MeasureError(f"{table}.{column} is {column_type_}, not a date, timestamp or YYYY-MM text")
    return sql.SQL("date_trunc('month', {})::date").format(day) if month else day


def source_of(read: SourceRead) -> str:
    """The ingest source that loads a table a measure reads: `core.<source>`."""
    return read.table


def declared_coverage(measure: MeasureFile) -> dict[str, Coverage]:
    """Per source the measure's dated reads come from, its declared coverage; MeasureError when a
    source has no configuration or declares no coverage (its periods could not be told apart
    from periods without data)."""
    if not measure.dated_reads:
        raise MeasureError(f"{measure.path.name}: reads no table with a date column, so no period could be told "
                           "to have data; name a source table with its date column in the reads header")
    found: dict[str, Coverage] = {}
    for read in measure.dated_reads:
        source = source_of(read)
        try:
            config = load_source(source) if read.schema == "core" else None
        except (OSError, SourceConfigError) as err:
            raise MeasureError(f"{measure.path.name} reads {read.name}, whose source configuration cannot be read: "
                               f"{err}") from err
        if config is None or config.coverage is None:
            raise MeasureError(
                f"{measure.path.name} reads {read.name}, but {settings.sources_dir() / (source + '.yaml')} declares "
                "no coverage (date_column, cadence, lag_days): without it no period can be called complete"
            )
        found[source] = config.coverage
    return found


def refresh_coverage(cur, sources: dict[str, Coverage]) -> dict[str, int]:
    """Rewrite `core.source_coverage` for `sources` from the rows now in their core tables; only
    changed days are written, so a refresh with nothing new changes nothing. A source whose table
    does not exist yet is left out. Returns the days written or removed per source."""
    changed: dict[str, int] = {}
    template = (settings.sql_dir() / "coverage" / "source_days.sql").read_text(encoding="utf-8")
    for source, coverage in sorted(sources.items()):
        table = f"core.{source}"
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        if not cur.fetchone()[0]:
            continue
        day = local_day(cur, table, coverage.date_column, month=coverage.cadence == "monthly")
        cur.execute("DROP TABLE IF EXISTS coverage_days")
        cur.execute(
            sql.SQL(template).format(table=sql.Identifier("core", source), day=day),
            {"cadence": coverage.cadence, "quiet_days": coverage.quiet_days, "lag_days": coverage.lag_days},
        )
        cur.execute(
            """
            DELETE FROM core.source_coverage c
            WHERE c.source = %(source)s AND NOT EXISTS (SELECT FROM coverage_days d WHERE d.day = c.day)
            """,
            {"source": source},
        )
        removed = cur.rowcount
        cur.execute(
            """
            INSERT INTO core.source_coverage (source, day, source_rows, covered, settled)
            SELECT %(source)s, day, source_rows, covered, settled FROM coverage_days
            ON CONFLICT (source, day) DO UPDATE
               SET source_rows = EXCLUDED.source_rows, covered = EXCLUDED.covered, settled = EXCLUDED.settled
             WHERE (core.source_coverage.source_rows, core.source_coverage.covered, core.source_coverage.settled)
                   IS DISTINCT FROM (EXCLUDED.source_rows, EXCLUDED.covered, EXCLUDED.settled)
            """,
            {"source": source},
        )
        changed[source] = removed + cur.rowcount
        cur.execute("DROP TABLE coverage_days")
        log.info("coverage of %s: %d days changed", source, changed[source])
    return changed


def sources_of(measures: Iterable[MeasureFile]) -> dict[str, Coverage]:
    """The declared coverage of every source the measures read (MeasureError as `declared_coverage`)."""
    found: dict[str, Coverage] = {}
    for measure in measures:
        found.update(declared_coverage(measure))
    return found
