"""Measure values: run each measure's file over months, fiscal quarters and fiscal years, and store
its values with their completeness and provenance.

For a set of months, `recompute` computes those months and every fiscal quarter and fiscal year
containing one of them: the measure's own file runs once per period type over the temp table
`measure_period` (a quarter's median is the median of the quarter's rows, not of its months').
Each period gets its completeness from its sources' coverage (`aim.measures.coverage`):

- **no data**: the file's rows for the period are replaced by one row per geography the file
  declares, with no value: a count over days nobody reported is unknown, not 0;
- **provisional** / **complete**: the file's rows are kept as they are (a 0 is a real 0).

Per measure and period, `core.aim_measure_period` records the completeness, the definition
(file SHA-256) and the run; `core.aim_measure_source` the rows and batches of each table it read.

Every function takes a psycopg2 cursor and leaves the transaction to the caller. Identifiers read
from files or configuration are quoted with `psycopg2.sql`.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Iterable

import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values

from aim import settings
from aim.measures import calendar, coverage
from aim.measures.files import OUTPUT_COLUMNS, MeasureError, MeasureFile, measure_files, select_files

log = logging.getLogger(__name__)


def missing_sources(cur, measure: MeasureFile) -> list[str]:
    """The tables a measure reads that do not exist yet (their source was never loaded)."""
    missing = []
    for read in measure.reads:
        cur.execute("SELECT to_regclass(%s) IS NULL", (read.name,))
        if cur.fetchone()[0]:
            missing.append(read.name)
    return missing


def loaded_measures(cur, files: Iterable[MeasureFile]) -> tuple[dict[str, MeasureFile], dict[str, str]]:
    """The measures whose source tables all exist (by code), and why each other one is skipped."""
    ready, skipped = {}, {}
    for measure in files:
        missing = missing_sources(cur, measure)
        if missing:
            skipped[measure.code] = f"skipped: {', '.join(missing)} not loaded yet"
            log.warning("measure %s %s", measure.code, skipped[measure.code])
        else:
            ready[measure.code] = measure
    return ready, skipped


def recompute(
    cur,
    measure_codes: Iterable[str] | None,
    start_month: dt.date,
    end_month: dt.date,
    run_id: str,
    *,
    folder: Path | None = None,
    fiscal_start_month: int | None = None,
) -> dict[str, int]:
    """Recompute `measure_codes` (None: every measure file) for the months `start_month` through
    `end_month` and the fiscal quarters and years containing them, replacing what
    `core.aim_measure_value` held for those periods.

    The coverage of the sources read is refreshed first. A measure whose source tables do not
    exist yet is skipped (logged). Values of other periods are untouched. Returns the rows
    written per measure computed.
    """
    start, end = calendar.month_start(start_month), calendar.month_start(end_month)
    if start > end:
        raise ValueError(f"start month {start:%Y-%m} is after end month {end:%Y-%m}")
    ready, _ = loaded_measures(cur, select_files(measure_files(folder), measure_codes, folder))
    coverage.refresh_coverage(cur, coverage.sources_of(ready.values()))
    months = calendar.months_in(start, end)
    return {code: recompute_months(cur, m, months, run_id, fiscal_start_month=fiscal_start_month)
            for code, m in ready.items()}


def recompute_months(
    cur, measure: MeasureFile, months: Iterable[dt.date], run_id: str, *, fiscal_start_month: int | None = None
) -> int:
    """Recompute one measure for `months` and the fiscal quarters and years containing them, from the
    source coverage as it stands (refresh it first). Months after the current one are left out:
    nothing can be known of them yet. Returns the value rows written."""
    periods = calendar.periods_containing([m for m in months if m <= calendar.current_month()], fiscal_start_month)
    if not periods["month"]:
        return 0
    calendar.ensure_periods(cur, periods["fiscal_year"][0][0], periods["fiscal_year"][-1][1], fiscal_start_month)
    sources = sorted(coverage.declared_coverage(measure))
    _record_definition(cur, measure, sources)
    written = 0
    for period_type in calendar.PERIOD_TYPES:
        written += _compute(cur, measure, period_type, periods[period_type], sources, run_id)
    log.info("measure %s: %d values for %d months and their quarters and years", measure.code, written,
             len(periods["month"]))
    return written


def _record_definition(cur, measure: MeasureFile, sources: list[str]) -> None:
    cur.execute(
        """
        INSERT INTO core.aim_measure_file (measure_code, file_name, sha256, aggregation, sources, updated_at)
        VALUES (%s, %s, %s, %s, %s, now())
        ON CONFLICT (measure_code) DO UPDATE
           SET file_name = EXCLUDED.file_name, sha256 = EXCLUDED.sha256, aggregation = EXCLUDED.aggregation,
               sources = EXCLUDED.sources, updated_at = now()
         WHERE (core.aim_measure_file.file_name, core.aim_measure_file.sha256, core.aim_measure_file.aggregation,
                core.aim_measure_file.sources)
               IS DISTINCT FROM (EXCLUDED.file_name, EXCLUDED.sha256, EXCLUDED.aggregation, EXCLUDED.sources)
        """,
        (measure.code, measure.path.name, measure.sha256, measure.aggregation, sources),
    )


def write_measure_period(cur, periods: list[tuple[dt.date, dt.date]]) -> None:
    """(Re)create the temp table `measure_period(period_start, period_end)` a measure file reads."""
    cur.execute("DROP TABLE IF EXISTS measure_period")
    cur.execute("CREATE TEMP TABLE measure_period (period_start date NOT NULL, period_end date NOT NULL) ON COMMIT DROP")
    execute_values(cur, "INSERT INTO measure_period VALUES %s", periods)


def completeness_of_periods(cur, period_type: str, sources: list[str]) -> None:
    """(Re)create the temp table `measure_completeness` for the periods in `measure_period`
    (`sql/coverage/measure_periods.sql`)."""
    cur.execute("DROP TABLE IF EXISTS measure_completeness")
    cur.execute(
        (settings.sql_dir() / "coverage" / "measure_periods.sql").read_text(encoding="utf-8"),
        {"period_type": period_type, "sources": sources},
    )


def _compute(
    cur, measure: MeasureFile, period_type: str, periods: list[tuple[dt.date, dt.date]], sources: list[str], run_id: str
) -> int:
    write_measure_period(cur, periods)
    rows = _run_file(cur, measure)
    cur.execute("DROP TABLE IF EXISTS measure_result")
    cur.execute(
        "CREATE TEMP TABLE measure_result (period_start date, geography_type text, geography_code text, "
        "value numeric, numerator numeric, denominator numeric) ON COMMIT DROP"
    )
    if rows:
        execute_values(cur, "INSERT INTO measure_result VALUES %s", rows, page_size=1000)
    _check_result(cur, measure)
    completeness_of_periods(cur, period_type, sources)
    _record_provenance(cur, measure)
    params = {"code": measure.code, "run_id": run_id, "sha256": measure.sha256,
              "geographies": list(measure.geographies)}
    cur.execute(
        """
        DELETE FROM core.aim_measure_value v USING measure_completeness c
        WHERE v.measure_code = %(code)s AND v.period_id = c.period_id
        """,
        params,
    )
    # a period with data keeps the file's rows (0 is a real 0); one without has no value, per geography
    cur.execute(
        """
        INSERT INTO core.aim_measure_value (measure_code, period_id, geography_type, geography_code,
                                            value, numerator, denominator, data_as_of, run_id, computed_at)
        SELECT %(code)s, c.period_id, r.geography_type, r.geography_code, r.value, r.numerator, r.denominator,
               coalesce(f.data_as_of, ops.clock_now()), %(run_id)s, ops.clock_now()
        FROM measure_result r
        JOIN measure_completeness c ON c.period_start = r.period_start AND c.completeness <> 'no data'
        LEFT JOIN (SELECT period_id, max(data_as_of) AS data_as_of FROM measure_provenance GROUP BY period_id) f
               ON f.period_id = c.period_id
        UNION ALL
        SELECT %(code)s, c.period_id, g.geography_type, g.geography_code, NULL, NULL, NULL,
               ops.clock_now(), %(run_id)s, ops.clock_now()
        FROM measure_completeness c
        JOIN core.aim_geography g ON g.geography_type = ANY(%(geographies)s)
        WHERE c.completeness = 'no data'
        """,
        params,
    )
    written = cur.rowcount
    cur.execute(
        """
        DELETE FROM core.aim_measure_period mp USING measure_completeness c
        WHERE mp.measure_code = %(code)s AND mp.period_id = c.period_id;
        INSERT INTO core.aim_measure_period (measure_code, period_id, completeness, days_in_period, days_covered,
                                             days_settled, definition_sha256, run_id, computed_at)
        SELECT %(code)s, period_id, completeness, days_in_period, days_covered, days_settled, %(sha256)s,
               %(run_id)s, ops.clock_now()
        FROM measure_completeness;
        DELETE FROM core.aim_measure_source ms USING measure_completeness c
        WHERE ms.measure_code = %(code)s AND ms.period_id = c.period_id;
        INSERT INTO core.aim_measure_source (measure_code, period_id, source_table, source_rows, batches, data_as_of)
        SELECT %(code)s, period_id, source_table, source_rows, batches, data_as_of FROM measure_provenance;
        DROP TABLE measure_period, measure_result, measure_completeness, measure_provenance;
        """,
        params,
    )
    return written


def _run_file(cur, measure: MeasureFile) -> list[tuple]:
    """Run the measure's file over `measure_period`; its rows in `OUTPUT_COLUMNS` order."""
    try:
        cur.execute(measure.sql_text)
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        raise  # the connection or server, not the file: worth a retry
    except psycopg2.Error as err:
        raise MeasureError(f"{measure.path.name} (measure {measure.code}) failed: {err}".strip()) from err
    if cur.description is None:
        raise MeasureError(f"{measure.path.name}: returned no rows; its last statement must be a SELECT")
    names = [column.name for column in cur.description]
    if sorted(names) != sorted(OUTPUT_COLUMNS):
        raise MeasureError(f"{measure.path.name}: returns columns {names}; expected exactly {list(OUTPUT_COLUMNS)}")
    order = [names.index(c) for c in OUTPUT_COLUMNS]
    return [tuple(row[i] for i in order) for row in cur.fetchall()]


def _check_result(cur, measure: MeasureFile) -> None:
    """Refuse a measure's rows for periods not asked for, on unknown geographies, or duplicated."""
    cur.execute(
        """
        SELECT format('%s %s/%s: %s', r.period_start, r.geography_type, r.geography_code,
                      CASE WHEN p.period_start IS NULL THEN 'not the first day of a period in measure_period'
                           ELSE 'not a geography in core.aim_geography' END)
        FROM measure_result r
        LEFT JOIN measure_period p ON p.period_start = r.period_start
        LEFT JOIN core.aim_geography g
               ON g.geography_type = r.geography_type AND g.geography_code = r.geography_code
        WHERE p.period_start IS NULL OR g.geography_type IS NULL
        LIMIT 5
        """
    )
    problems = [row[0] for row in cur.fetchall()]
    cur.execute(
        """
        SELECT format('%s %s/%s: %s rows for one period and geography', period_start, geography_type,
                      geography_code, count(*))
        FROM measure_result GROUP BY period_start, geography_type, geography_code HAVING count(*) > 1 LIMIT 5
        """
    )
    problems += [row[0] for row in cur.fetchall()]
    if problems:
        raise MeasureError(f"{measure.path.name} (measure {measure.code}) returned unusable rows: " + "; ".join(problems))
    cur.execute("SELECT DISTINCT geography_type FROM measure_result")
    undeclared = sorted({row[0] for row in cur.fetchall()} - set(measure.geographies))
    if undeclared:
        log.warning("%s returns geographies %s that its header does not declare", measure.path.name, undeclared)


def _record_provenance(cur, measure: MeasureFile) -> None:
    """Fill `measure_provenance(period_id, source_table, source_rows, batches, data_as_of)`: per period
    of `measure_completeness` and table read by date, the rows placed in the period by any of the
    read's date columns, the batches that loaded them and their newest load time."""
    cur.execute(
        "CREATE TEMP TABLE measure_provenance (period_id integer, source_table text, source_rows bigint, "
        "batches text[], data_as_of timestamptz) ON COMMIT DROP"
    )
    for read in measure.dated_reads:
        days = [coverage.local_day(cur, read.name, column) for column in read.date_columns]
        names = [sql.Identifier(f"day_{i}") for i in range(len(days))]
        cur.execute(
            sql.SQL(
                """
                INSERT INTO measure_provenance
                SELECT c.period_id, %(table)s, coalesce(sum(d.source_rows), 0),
                       coalesce(array_agg(DISTINCT d._batch_id ORDER BY d._batch_id)
                                FILTER (WHERE d._batch_id IS NOT NULL), '{{}}'),
                       max(d.loaded_at)
                FROM measure_completeness c
                LEFT JOIN (SELECT {days}, _batch_id, count(*) AS source_rows, max(_loaded_at) AS loaded_at
                           FROM {table} GROUP BY {groups}) d  -- rows by day and batch first: few to place
                       ON {in_period}
                GROUP BY c.period_id
                """
            ).format(
                days=sql.SQL(", ").join(sql.SQL("{} AS {}").format(day, name) for day, name in zip(days, names)),
                table=read.identifier,
                groups=sql.SQL(", ").join(sql.SQL(str(i + 1)) for i in range(len(days) + 1)),
                in_period=sql.SQL(" OR ").join(
                    sql.SQL("d.{} BETWEEN c.period_start AND c.period_end").format(name) for name in names
                ),
            ),
            {"table": read.name},
        )
