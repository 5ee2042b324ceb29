"""What an incremental `aim_measures` run recomputes: per measure, the months whose source rows
were loaded since the last run, the months whose completeness changed (a reporting lag passed,
a late delivery filled a gap), and the latest months; the whole history of a measure whose file
is new or changed."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterable

from psycopg2 import sql

from aim.measures import calendar, compute, coverage
from aim.measures.files import MeasureFile, measure_files, select_files

LOADED_AT_OVERLAP = dt.timedelta(hours=1)  # covers ingest merges still committing when a run looked
RECENT_MONTHS = 2  # the current and the previous month are recomputed on every incremental run


def _loaded_dated_reads(cur, measure: MeasureFile) -> list[tuple[str, str]]:
    """(table, date column) pairs of a measure whose table exists and carries `_loaded_at`."""
    pairs = []
    for read in measure.dated_reads:
        if coverage.column_type(cur, read.name, "_loaded_at") is not None:
            pairs += [(read.name, column) for column in read.date_columns]
    return pairs


def touched_months(
    cur, since: dt.datetime | None, measure_codes: Iterable[str] | None = None, folder: Path | None = None
) -> dict[str, list[dt.date]]:
    """Per measure code, the months (first days) of its source rows loaded after `since`.

    A row's months are those of each date column its measure's `reads` header names; `since`
    None means every row. Tables that do not exist yet contribute nothing. A row whose date
    changed from one month to another is found in its new month only (core keeps no old values).
    """
    files = select_files(measure_files(folder), measure_codes, folder)
    cache: dict[tuple[str, str], set[dt.date]] = {}
    touched: dict[str, list[dt.date]] = {}
    for measure in files:
        months: set[dt.date] = set()
        for table, column in _loaded_dated_reads(cur, measure):
            if (table, column) not in cache:
                schema, name = table.split(".", 1)
                query = sql.SQL("SELECT DISTINCT {m} FROM {t} WHERE {c} IS NOT NULL").format(
                    m=coverage.local_day(cur, table, column, month=True), t=sql.Identifier(schema, name),
                    c=sql.Identifier(column),
                )
                if since is None:
                    cur.execute(query)
                else:
                    cur.execute(query + sql.SQL(" AND _loaded_at > %s"), (since,))
                cache[(table, column)] = {row[0] for row in cur.fetchall() if row[0] is not None}
            months |= cache[(table, column)]
        touched[measure.code] = sorted(months)
    return touched


def months_with_changed_completeness(cur, measure: MeasureFile) -> list[dt.date]:
    """The months of a measure whose stored completeness (or days covered and settled) no longer
    matches its sources' coverage as it stands: a lag has passed, a gap was filled."""
    cur.execute(
        """
        SELECT p.period_start, p.period_end FROM core.aim_measure_period mp JOIN core.aim_period p USING (period_id)
        WHERE mp.measure_code = %s AND p.period_type = 'month' ORDER BY p.period_start
        """,
        (measure.code,),
    )
    stored = cur.fetchall()
    if not stored:
        return []
    compute.write_measure_period(cur, stored)
    compute.completeness_of_periods(cur, "month", sorted(coverage.declared_coverage(measure)))
    cur.execute(
        """
        SELECT c.period_start FROM measure_completeness c
        JOIN core.aim_measure_period mp ON mp.measure_code = %s AND mp.period_id = c.period_id
        WHERE (mp.completeness, mp.days_covered, mp.days_settled)
              IS DISTINCT FROM (c.completeness, c.days_covered, c.days_settled)
        ORDER BY 1
        """,
        (measure.code,),
    )
    months = [row[0] for row in cur.fetchall()]
    cur.execute("DROP TABLE measure_period, measure_completeness")
    return months


def incremental_plan(
    cur, files: dict[str, MeasureFile], since: dt.datetime | None
) -> tuple[dict[str, list[dt.date]], set[str]]:
    """Per measure, the months to recompute, and the measures recomputed in full.

    In full: every measure on the first run, and a measure whose file is new or changed (every
    month from its first source month through the current one). Otherwise: the months touched
    since `since`, the months whose completeness changed, and the latest `RECENT_MONTHS` months.
    Expects the sources' coverage refreshed.
    """
    cur.execute("SELECT measure_code, sha256 FROM ops.measure_file")
    computed_with = dict(cur.fetchall())
    whole = {code for code, f in files.items() if since is None or computed_with.get(code) != f.sha256}
    plan: dict[str, list[dt.date]] = {}
    if whole:
        for code, months in touched_months(cur, None, sorted(whole)).items():
            if months:
                plan[code] = calendar.months_in(months[0], max(months[-1], calendar.current_month()))
    rest = sorted(set(files) - whole)
    if rest:
        recent = [calendar.add_months(calendar.current_month(), -n) for n in range(RECENT_MONTHS)]
        for code, months in touched_months(cur, since, rest).items():
            changed = months_with_changed_completeness(cur, files[code])
            plan[code] = sorted({*months, *changed, *recent})
    return plan, {code for code in whole if code in plan}
