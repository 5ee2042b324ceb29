"""AIM measures in the warehouse: the registry sync, the calendar, and measure values.

- `sync_registry` turns the budget office's registry (`core.bmo_aim_registry`) into priorities,
  departments, activities, versioned measures (`core.aim_measure`, SCD type 2) and targets.
- `ensure_periods` writes the months, fiscal quarters and fiscal years of a range.
- `touched_months` finds, per measure, the months whose source rows were loaded after a time.
- `recompute` runs each measure's SQL file for a window of months and replaces its values.

A measure is one SQL file, `sql/measures/<code>.sql` (`saf_01.sql` for SAF-01; the folder is
AIM_MEASURES_DIR), whose header says what it reads:

    -- measure: SAF-01
    -- reads: core.mpd_crime_incidents (reported_at)
    -- geographies: citywide, aldermanic_district, police_district

It reads the one-row temp table `measure_window(period_start date, period_end date)` (first and
last month, inclusive) and returns exactly the columns `OUTPUT_COLUMNS`, one row per month and
geography inside the window. A measure that depends on the time now reads `ops.local_now()`, the
platform's clock (`aim.clock`) in Milwaukee time.

Every function takes a psycopg2 cursor and leaves the transaction to the caller: what one call
does is committed or rolled back as a whole. Identifiers read from files or configuration are
quoted with `psycopg2.sql`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values

from aim import clock, settings

log = logging.getLogger(__name__)

LOCAL_TIME_ZONE = clock.LOCAL_TIME_ZONE  # the sources' local time: a timestamptz belongs to its Milwaukee month
OUTPUT_COLUMNS = ("period_start", "geography_type", "geography_code", "value", "numerator", "denominator")
GEOGRAPHY_TYPES = ("citywide", "aldermanic_district", "police_district")
REGISTRY_TABLE = "core.bmo_aim_registry"

_HEADER = re.compile(r"^\s*--\s*(measure|reads|geographies)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_CODE = re.compile(r"^[A-Z]{3}-[0-9]{2}$")
_FILE_NAME = re.compile(r"^[a-z]{3}_[0-9]{2}\.sql$")
_READ = re.compile(r"([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?\s*(?:\(([^)]*)\))?")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class MeasureError(RuntimeError):
    """A measure file that cannot be used or that returned unusable rows; the message names the file."""


class RegistryError(ValueError):
    """Registry rows that cannot become measures; the message names the measure codes and fields."""


# --------------------------------------------------------------------------- measure files


@dataclass(frozen=True)
class SourceRead:
    """A table a measure reads, and the date columns that place its rows in months."""

    schema: str
    table: str
    date_columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)


@dataclass(frozen=True)
class MeasureFile:
    """One measure's SQL file and what its header declares."""

    code: str
    path: Path
    reads: tuple[SourceRead, ...]
    geographies: tuple[str, ...]

    @property
    def sql_text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def code_for_file_name(file_name: str) -> str:
    """The measure code a file name stands for: `saf_01.sql` -> `SAF-01`."""
    return Path(file_name).stem.upper().replace("_", "-")


def file_name_for_code(code: str) -> str:
    """The file name of a measure code: `SAF-01` -> `saf_01.sql`."""
    return code.lower().replace("-", "_") + ".sql"


def parse_measure_file(path: Path) -> MeasureFile:
    """Read a measure file's header (`-- measure:`, `-- reads:`, `-- geographies:`).

    `reads` may be given on several lines, or as a comma-separated list, each table with its
    date columns in parentheses: `core.dns_code_enforcement_orders (issued_on, complied_on)`;
    a table without parentheses (a reference table) has no months of its own.
    """
    path = Path(path)
    if not _FILE_NAME.match(path.name):
        raise MeasureError(f"{path}: measure files are named like saf_01.sql (the code in lower case, '-' as '_')")
    code, reads, geographies = None, [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADER.match(line)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key == "measure":
            code = value.strip().upper()
        elif key == "reads":
            reads += _parse_reads(path, value)
        else:
            geographies += [g.strip() for g in value.split(",") if g.strip()]
    expected = code_for_file_name(path.name)
    if code is None:
        code = expected
    if code != expected or not _CODE.match(code):
        raise MeasureError(f"{path}: header says measure {code!r}; the file name says {expected!r}")
    unknown = sorted(set(geographies) - set(GEOGRAPHY_TYPES))
    if unknown:
        raise MeasureError(f"{path}: unknown geographies {unknown}; expected some of {list(GEOGRAPHY_TYPES)}")
    if not reads:
        raise MeasureError(f"{path}: no '-- reads: core.<table> (<date column>)' header line")
    return MeasureFile(code, path, tuple(reads), tuple(geographies) or GEOGRAPHY_TYPES)


def _parse_reads(path: Path, text: str) -> list[SourceRead]:
    reads = []
    for part in _split_outside_parentheses(text):
        match = _READ.fullmatch(part)
        if not match:
            raise MeasureError(f"{path}: cannot read {part!r} in the reads header; expected 'core.table (date_column)'")
        first, second, columns = match.groups()
        schema, table = (first, second) if second else ("core", first)
        names = tuple(c.strip() for c in (columns or "").split(",") if c.strip())
        bad = [c for c in names if not _IDENTIFIER.match(c)]
        if bad:
            raise MeasureError(f"{path}: date columns in the reads header must be plain column names, got {bad}")
        reads.append(SourceRead(schema, table, names))
    return reads


def _split_outside_parentheses(text: str) -> list[str]:
    """'a (x, y), b' -> ['a (x, y)', 'b']."""
    parts, depth, current = [], 0, []
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def measure_files(folder: Path | None = None) -> dict[str, MeasureFile]:
    """Every measure file in `folder` (default: settings.measures_dir()), by measure code, in code order."""
    folder = Path(folder or settings.measures_dir())
    if not folder.is_dir():
        return {}
    files = [parse_measure_file(p) for p in sorted(folder.glob("*.sql"))]
    return {f.code: f for f in sorted(files, key=lambda f: f.code)}


def source_tables(files: Iterable[MeasureFile]) -> list[str]:
    """The `schema.table` names the measure files read, sorted."""
    return sorted({read.name for f in files for read in f.reads})


def _select(
    files: dict[str, MeasureFile], measure_codes: Iterable[str] | None, folder: Path | None = None
) -> list[MeasureFile]:
    if measure_codes is None:
        return list(files.values())
    unknown = sorted(set(measure_codes) - set(files))
    if unknown:
        raise MeasureError(f"no measure file for {unknown} in {folder or settings.measures_dir()}")
    return [files[c] for c in sorted(set(measure_codes))]


# --------------------------------------------------------------------------- months and periods


def month_start(day: dt.date) -> dt.date:
    """The first day of the month of `day`."""
    return dt.date(day.year, day.month, 1)


def add_months(month: dt.date, count: int) -> dt.date:
    """The first day of the month `count` months after the month of `month`."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_month(text: str) -> dt.date:
    """'YYYY-MM' as the first day of that month; ValueError otherwise."""
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text or ""):
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}")
    return dt.date(int(text[:4]), int(text[5:]), 1)


def months_in(start: dt.date, end: dt.date) -> list[dt.date]:
    """First days of the months from `start` through `end`, inclusive."""
    months, month = [], month_start(start)
    while month <= end:
        months.append(month)
        month = add_months(month, 1)
    return months


def month_ranges(months: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Runs of consecutive months as (first, last) pairs: [Jan, Feb, May] -> [(Jan, Feb), (May, May)]."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for month in sorted(set(months)):
        if ranges and add_months(ranges[-1][1], 1) == month:
            ranges[-1] = (ranges[-1][0], month)
        else:
            ranges.append((month, month))
    return ranges


def fiscal_year_of(month: dt.date, fiscal_start_month: int) -> tuple[int, int]:
    """(fiscal year, fiscal quarter) of a month; the fiscal year is named by the calendar year it ends in."""
    year = month.year + (1 if fiscal_start_month > 1 and month.month >= fiscal_start_month else 0)
    return year, (month.month - fiscal_start_month) % 12 // 3 + 1


def _fiscal_year_start(fiscal_year: int, fiscal_start_month: int) -> dt.date:
    return dt.date(fiscal_year - (1 if fiscal_start_month > 1 else 0), fiscal_start_month, 1)


def periods_for(start: dt.date, end: dt.date, fiscal_start_month: int) -> list[tuple]:
    """The month, fiscal quarter and fiscal year periods covering `start`..`end`, as
    (period_type, period_start, period_end, fiscal_year, fiscal_quarter, label) tuples."""
    periods: dict[tuple[str, dt.date], tuple] = {}
    for month in months_in(start, end):
        year, quarter = fiscal_year_of(month, fiscal_start_month)
        last_day = add_months(month, 1) - dt.timedelta(days=1)
        periods[("month", month)] = ("month", month, last_day, year, quarter, f"{month:%Y-%m}")
        year_start = _fiscal_year_start(year, fiscal_start_month)
        quarter_start = add_months(year_start, 3 * (quarter - 1))
        periods[("quarter", quarter_start)] = (
            "quarter", quarter_start, add_months(quarter_start, 3) - dt.timedelta(days=1), year, quarter,
            f"FY{year} Q{quarter}",
        )
        periods[("fiscal_year", year_start)] = (
            "fiscal_year", year_start, add_months(year_start, 12) - dt.timedelta(days=1), year, None, f"FY{year}",
        )
    return sorted(periods.values(), key=lambda p: (p[1], p[0]))


def ensure_periods(cur, start: dt.date, end: dt.date, fiscal_start_month: int | None = None) -> int:
    """Make sure `core.aim_period` has the months from `start` through `end`, and the fiscal quarters
    and fiscal years they fall in; returns the number of period rows written (0 when all existed).

    `fiscal_start_month` defaults to settings.fiscal_year_start_month(). An existing month whose
    fiscal year or quarter no longer matches it is corrected; quarters and years of another
    fiscal calendar are left as they are (changing the fiscal calendar is a migration).
    """
    fiscal_start_month = fiscal_start_month or settings.fiscal_year_start_month()
    rows = periods_for(month_start(start), month_start(end), fiscal_start_month)
    if not rows:
        return 0
    written = execute_values(
        cur,
        """
        INSERT INTO core.aim_period (period_type, period_start, period_end, fiscal_year, fiscal_quarter, label)
        VALUES %s
        ON CONFLICT (period_type, period_start) DO UPDATE
           SET period_end = EXCLUDED.period_end, fiscal_year = EXCLUDED.fiscal_year,
               fiscal_quarter = EXCLUDED.fiscal_quarter, label = EXCLUDED.label
         WHERE (core.aim_period.period_end, core.aim_period.fiscal_year, core.aim_period.fiscal_quarter,
                core.aim_period.label)
               IS DISTINCT FROM (EXCLUDED.period_end, EXCLUDED.fiscal_year, EXCLUDED.fiscal_quarter, EXCLUDED.label)
        RETURNING 1
        """,
        rows,
        fetch=True,
    )
    return len(written)


# --------------------------------------------------------------------------- registry


def _table_exists(cur, name: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
    return cur.fetchone()[0]


def _clean(column: str) -> sql.Composable:
    """A registry text cell with surrounding and repeated spaces removed; NULL when empty."""
    return sql.SQL("nullif(regexp_replace(btrim({}), '\\s+', ' ', 'g'), '')").format(sql.Identifier(column))


def sync_registry(cur, run_id: str) -> dict[str, int]:
    """Bring priorities, departments, activities, measures and targets in line with `core.bmo_aim_registry`.

    Values are trimmed ('Higher is better' becomes 'higher'). A measure's attributes come from its
    row for the latest fiscal year. A measure seen for the first time gets version 1 (valid from
    -infinity); a measure whose name, definition, unit, direction, frequency, priority,
    department or activity changed gets a new version valid from the load time of the changed
    row, and its previous version is closed (valid_to) but kept. Annual targets are upserted from
    every row with a value and removed where the registry no longer has one. Idempotent: a second
    run with the same registry changes nothing. Returns counts of what changed.
    """
    counts = {"measures": 0, "new_measures": 0, "new_versions": 0, "targets_written": 0, "targets_removed": 0}
    if not _table_exists(cur, REGISTRY_TABLE):
        log.warning("%s does not exist yet: no registry to sync", REGISTRY_TABLE)
        return counts

    cur.execute("DROP TABLE IF EXISTS aim_registry_clean, aim_registry_latest, aim_registry_changed, aim_registry_target")
    cur.execute(
        sql.SQL(
            """
            CREATE TEMP TABLE aim_registry_clean ON COMMIT DROP AS
            SELECT upper({code}) AS measure_code, target_fiscal_year AS fiscal_year, target_value,
                   {priority} AS priority, {department} AS department, {activity} AS activity,
                   {name} AS name, {definition} AS definition, lower({unit}) AS unit,
                   CASE lower({direction})
                        WHEN 'higher is better' THEN 'higher' WHEN 'higher' THEN 'higher'
                        WHEN 'lower is better' THEN 'lower' WHEN 'lower' THEN 'lower' END AS direction,
                   {direction} AS direction_as_given, {frequency} AS frequency, _batch_id, _loaded_at
            FROM core.bmo_aim_registry
            WHERE {code} IS NOT NULL
            """
        ).format(
            code=_clean("measure_code"), priority=_clean("priority"), department=_clean("department"),
            activity=_clean("activity"), name=_clean("measure_name"), definition=_clean("definition"),
            unit=_clean("unit"), direction=_clean("direction"), frequency=_clean("frequency"),
        )
    )
    cur.execute(
        """
        CREATE TEMP TABLE aim_registry_latest ON COMMIT DROP AS
        SELECT DISTINCT ON (measure_code) *
        FROM aim_registry_clean
        ORDER BY measure_code, fiscal_year DESC NULLS LAST, _loaded_at DESC
        """
    )
    _check_registry(cur)

    cur.execute(
        "INSERT INTO core.aim_priority (name) SELECT DISTINCT priority FROM aim_registry_latest "
        "ON CONFLICT (name) DO NOTHING"
    )
    cur.execute(
        "INSERT INTO core.aim_department (name) SELECT DISTINCT department FROM aim_registry_latest "
        "ON CONFLICT (name) DO NOTHING"
    )
    cur.execute(
        """
        INSERT INTO core.aim_activity (department_id, name)
        SELECT DISTINCT d.department_id, r.activity
        FROM aim_registry_latest r JOIN core.aim_department d ON d.name = r.department
        ON CONFLICT (department_id, name) DO NOTHING
        """
    )
    # Measures whose latest registry row differs from their current version (or that are new).
    cur.execute(
        """
        CREATE TEMP TABLE aim_registry_changed ON COMMIT DROP AS
        SELECT r.measure_code, r.name, r.definition, r.unit, r.direction, r.frequency,
               p.priority_id, d.department_id, a.activity_id, r._batch_id, r._loaded_at,
               m.measure_version_id AS current_version_id, m.valid_from AS current_valid_from,
               (SELECT max(version) FROM core.aim_measure x WHERE x.measure_code = r.measure_code) AS last_version,
               (SELECT max(valid_to) FROM core.aim_measure x WHERE x.measure_code = r.measure_code) AS last_valid_to
        FROM aim_registry_latest r
        JOIN core.aim_priority p ON p.name = r.priority
        JOIN core.aim_department d ON d.name = r.department
        JOIN core.aim_activity a ON a.department_id = d.department_id AND a.name = r.activity
        LEFT JOIN core.aim_measure m ON m.measure_code = r.measure_code AND m.valid_to IS NULL
        WHERE m.measure_version_id IS NULL
           OR (m.name, m.definition, m.unit, m.direction, m.frequency, m.priority_id, m.department_id, m.activity_id)
              IS DISTINCT FROM
              (r.name, r.definition, r.unit, r.direction, r.frequency, p.priority_id, d.department_id, a.activity_id)
        """
    )
    # The new version takes effect when the changed row was loaded (never before the old one did).
    cur.execute(
        """
        UPDATE aim_registry_changed
           SET _loaded_at = CASE
               WHEN current_version_id IS NOT NULL THEN greatest(_loaded_at, current_valid_from)
               WHEN last_version IS NOT NULL THEN greatest(_loaded_at, last_valid_to)
               ELSE '-infinity' END
        """
    )
    cur.execute(
        """
        UPDATE core.aim_measure m SET valid_to = c._loaded_at
        FROM aim_registry_changed c WHERE m.measure_version_id = c.current_version_id
        """
    )
    cur.execute(
        """
        INSERT INTO core.aim_measure (measure_code, version, name, definition, unit, direction, frequency,
                                      priority_id, department_id, activity_id, valid_from, source_batch_id, run_id)
        SELECT measure_code, coalesce(last_version, 0) + 1, name, definition, unit, direction, frequency,
               priority_id, department_id, activity_id, _loaded_at, _batch_id, %s
        FROM aim_registry_changed
        RETURNING version
        """,
        (run_id,),
    )
    versions = [row[0] for row in cur.fetchall()]
    counts["new_measures"] = versions.count(1)
    counts["new_versions"] = len(versions) - counts["new_measures"]

    # Annual targets: exactly the registry's (latest row per measure and fiscal year, with a value).
    cur.execute(
        """
        CREATE TEMP TABLE aim_registry_target ON COMMIT DROP AS
        SELECT * FROM (
            SELECT DISTINCT ON (measure_code, fiscal_year) measure_code, fiscal_year, target_value, _batch_id
            FROM aim_registry_clean WHERE fiscal_year IS NOT NULL
            ORDER BY measure_code, fiscal_year, _loaded_at DESC
        ) latest
        WHERE target_value IS NOT NULL
        """
    )
    cur.execute(
        """
        INSERT INTO core.aim_target (measure_code, fiscal_year, period_id, target_value, source_batch_id, run_id)
        SELECT measure_code, fiscal_year, NULL, target_value, _batch_id, %s FROM aim_registry_target
        ON CONFLICT ON CONSTRAINT aim_target_key DO UPDATE
           SET target_value = EXCLUDED.target_value, source_batch_id = EXCLUDED.source_batch_id,
               run_id = EXCLUDED.run_id, updated_at = now()
         WHERE core.aim_target.target_value IS DISTINCT FROM EXCLUDED.target_value
        """,
        (run_id,),
    )
    counts["targets_written"] = cur.rowcount
    cur.execute(
        """
        DELETE FROM core.aim_target t
        WHERE t.period_id IS NULL
          AND NOT EXISTS (SELECT FROM aim_registry_target r
                          WHERE r.measure_code = t.measure_code AND r.fiscal_year = t.fiscal_year)
        """
    )
    counts["targets_removed"] = cur.rowcount
    cur.execute("DROP TABLE aim_registry_clean, aim_registry_latest, aim_registry_changed, aim_registry_target")
    cur.execute("SELECT count(*) FROM core.aim_measure WHERE valid_to IS NULL")
    counts["measures"] = cur.fetchone()[0]
    log.info("registry synced: %s", counts)
    return counts


def _check_registry(cur) -> None:
    """Refuse registry rows that cannot become a measure version, naming each measure and field."""
    cur.execute(
        """
        SELECT measure_code, concat_ws('; ',
                   CASE WHEN measure_code !~ '^[A-Z]{3}-[0-9]{2}$' THEN 'measure code is not like SAF-01' END,
                   CASE WHEN priority IS NULL THEN 'priority is empty' END,
                   CASE WHEN department IS NULL THEN 'department is empty' END,
                   CASE WHEN activity IS NULL THEN 'activity is empty' END,
                   CASE WHEN name IS NULL THEN 'measure name is empty' END,
                   CASE WHEN definition IS NULL THEN 'definition is empty' END,
                   CASE WHEN frequency IS NULL THEN 'frequency is empty' END,
                   CASE WHEN unit IS NULL OR unit NOT IN ('count', 'percent', 'rate', 'minutes', 'days')
                        THEN format('unit %L is not count, percent, rate, minutes or days', unit) END,
                   CASE WHEN direction IS NULL
                        THEN format('direction %L is not Higher/Lower is better', direction_as_given) END)
        FROM aim_registry_latest
        ORDER BY measure_code
        """
    )
    problems = [f"{code}: {problem}" for code, problem in cur.fetchall() if problem]
    if problems:
        raise RegistryError(f"{REGISTRY_TABLE} has rows that cannot become measures: " + "; ".join(problems))


# --------------------------------------------------------------------------- source months


def _column_type(cur, read: SourceRead, column: str) -> str | None:
    cur.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = %s AND attnum > 0 AND NOT attisdropped",
        (read.name, column),
    )
    row = cur.fetchone()
    return row[0] if row else None


def _month_expression(cur, measure: MeasureFile, read: SourceRead, column: str) -> sql.Composable:
    """SQL for the first day of the (local) month of a date column: date, timestamp, timestamptz or 'YYYY-MM' text."""
    column_type = _column_type(cur, read, column)
    ident = sql.Identifier(column)
    if column_type is None:
        raise MeasureError(f"{measure.path.name}: {read.name} has no column {column!r} (named in its reads header)")
    if column_type in ("date", "timestamp without time zone"):
        return sql.SQL("date_trunc('month', {})::date").format(ident)
    if column_type == "timestamp with time zone":
        return sql.SQL("date_trunc('month', {} AT TIME ZONE {})::date").format(ident, sql.Literal(LOCAL_TIME_ZONE))
    if column_type == "text" or column_type.startswith("character"):
        return sql.SQL("CASE WHEN {0} ~ '^[0-9]{{4}}-[0-9]{{2}}' THEN to_date(left({0}, 7), 'YYYY-MM') END").format(ident)
    raise MeasureError(f"{measure.path.name}: {read.name}.{column} is {column_type}, not a date, timestamp or YYYY-MM text")


def _dated_reads(cur, measure: MeasureFile) -> list[tuple[SourceRead, str]]:
    """(table, date column) pairs of a measure that exist and carry `_loaded_at`."""
    pairs = []
    for read in measure.reads:
        if not read.date_columns or not _table_exists(cur, read.name) or _column_type(cur, read, "_loaded_at") is None:
            continue
        pairs += [(read, column) for column in read.date_columns]
    return pairs


def missing_sources(cur, measure: MeasureFile) -> list[str]:
    """The tables a measure reads that do not exist yet (their source was never loaded)."""
    return [read.name for read in measure.reads if not _table_exists(cur, read.name)]


def touched_months(
    cur, since: dt.datetime | None, measure_codes: Iterable[str] | None = None, folder: Path | None = None
) -> dict[str, list[dt.date]]:
    """Per measure code, the months (first days) of its source rows loaded after `since`.

    A row's months are those of each date column its measure's `reads` header names; `since`
    None means every row. Tables that do not exist yet contribute nothing. A row whose date
    changed from one month to another is found in its new month only (core keeps no old values).
    """
    files = _select(measure_files(folder), measure_codes, folder)
    cache: dict[tuple[str, str], set[dt.date]] = {}
    touched: dict[str, list[dt.date]] = {}
    for measure in files:
        months: set[dt.date] = set()
        for read, column in _dated_reads(cur, measure):
            key = (read.name, column)
            if key not in cache:
                month = _month_expression(cur, measure, read, column)
                query = sql.SQL("SELECT DISTINCT {m} FROM {t} WHERE {c} IS NOT NULL").format(
                    m=month, t=read.identifier, c=sql.Identifier(column)
                )
                if since is None:
                    cur.execute(query)
                else:
                    cur.execute(query + sql.SQL(" AND _loaded_at > %s"), (since,))
                cache[key] = {row[0] for row in cur.fetchall() if row[0] is not None}
            months |= cache[key]
        touched[measure.code] = sorted(months)
    return touched


# --------------------------------------------------------------------------- recompute


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
    """Recompute the monthly values of `measure_codes` (None: every measure file) for the months
    `start_month` through `end_month`, replacing what `core.aim_measure_value` held for them.

    For each measure: the temp table `measure_window` is created, the measure's file runs, its
    rows are checked (columns, months inside the window, known geographies, one row per month and
    geography), then the measure's values for the window's months are deleted and the new rows
    inserted, in the caller's transaction. Values outside the window are untouched. A measure
    whose source tables do not exist yet is skipped (logged). Returns the rows written per
    measure computed.
    """
    start, end = month_start(start_month), month_start(end_month)
    if start > end:
        raise ValueError(f"start month {start:%Y-%m} is after end month {end:%Y-%m}")
    files = _select(measure_files(folder), measure_codes, folder)
    ensure_periods(cur, start, end, fiscal_start_month)
    written: dict[str, int] = {}
    for measure in files:
        missing = missing_sources(cur, measure)
        if missing:
            log.warning("measure %s skipped: %s not loaded yet", measure.code, ", ".join(missing))
            continue
        written[measure.code] = _recompute_measure(cur, measure, start, end, run_id)
        log.info("measure %s: %d values for %s..%s", measure.code, written[measure.code], f"{start:%Y-%m}", f"{end:%Y-%m}")
    return written


def _recompute_measure(cur, measure: MeasureFile, start: dt.date, end: dt.date, run_id: str) -> int:
    cur.execute("DROP TABLE IF EXISTS measure_window, measure_result, measure_freshness")
    cur.execute("CREATE TEMP TABLE measure_window (period_start date NOT NULL, period_end date NOT NULL) ON COMMIT DROP")
    cur.execute("INSERT INTO measure_window VALUES (%s, %s)", (start, end))
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
    rows = [tuple(row[i] for i in order) for row in cur.fetchall()]

    cur.execute(
        "CREATE TEMP TABLE measure_result (period_start date, geography_type text, geography_code text, "
        "value numeric, numerator numeric, denominator numeric) ON COMMIT DROP"
    )
    if rows:
        execute_values(cur, "INSERT INTO measure_result VALUES %s", rows, page_size=1000)
    _check_result(cur, measure)
    _record_freshness(cur, measure, start, end)

    cur.execute(
        """
        DELETE FROM core.aim_measure_value v USING core.aim_period p
        WHERE v.period_id = p.period_id AND p.period_type = 'month'
          AND p.period_start BETWEEN %s AND %s AND v.measure_code = %s
        """,
        (start, end, measure.code),
    )
    cur.execute(
        """
        INSERT INTO core.aim_measure_value (measure_code, period_id, geography_type, geography_code,
                                            value, numerator, denominator, data_as_of, run_id, computed_at)
        SELECT %s, p.period_id, r.geography_type, r.geography_code, r.value, r.numerator, r.denominator,
               coalesce(f.loaded_at, ops.clock_now()), %s, ops.clock_now()  -- the platform's clock decides partial months
        FROM measure_result r
        JOIN core.aim_period p ON p.period_type = 'month' AND p.period_start = r.period_start
        LEFT JOIN (SELECT month, max(loaded_at) AS loaded_at FROM measure_freshness GROUP BY month) f
               ON f.month = r.period_start
        """,
        (measure.code, run_id),
    )
    count = cur.rowcount
    cur.execute("DROP TABLE measure_window, measure_result, measure_freshness")
    return count


def _check_result(cur, measure: MeasureFile) -> None:
    """Refuse a measure's rows outside the window, on unknown geographies or duplicated."""
    cur.execute(
        """
        SELECT format('%s %s/%s: %s', r.period_start, r.geography_type, r.geography_code,
                      CASE WHEN r.period_start IS NULL OR r.period_start <> date_trunc('month', r.period_start)::date
                                THEN 'period_start is not the first day of a month'
                           WHEN r.period_start NOT BETWEEN w.period_start AND w.period_end
                                THEN format('outside the window %s..%s', w.period_start, w.period_end)
                           WHEN g.geography_type IS NULL THEN 'not a geography in core.aim_geography' END)
        FROM measure_result r
        CROSS JOIN measure_window w
        LEFT JOIN core.aim_geography g
               ON g.geography_type = r.geography_type AND g.geography_code = r.geography_code
        WHERE r.period_start IS NULL OR r.period_start <> date_trunc('month', r.period_start)::date
           OR r.period_start NOT BETWEEN w.period_start AND w.period_end OR g.geography_type IS NULL
        LIMIT 5
        """
    )
    problems = [row[0] for row in cur.fetchall()]
    cur.execute(
        """
        SELECT format('%s %s/%s: %s rows for one month and geography', period_start, geography_type,
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


def _record_freshness(cur, measure: MeasureFile, start: dt.date, end: dt.date) -> None:
    """Fill `measure_freshness(month, loaded_at)`: per month, the newest `_loaded_at` of the source rows in it."""
    cur.execute("CREATE TEMP TABLE measure_freshness (month date, loaded_at timestamptz) ON COMMIT DROP")
    for read, column in _dated_reads(cur, measure):
        month = _month_expression(cur, measure, read, column)
        cur.execute(
            sql.SQL(
                "INSERT INTO measure_freshness SELECT m, max(_loaded_at) FROM "
                "(SELECT {m} AS m, _loaded_at FROM {t}) x WHERE m BETWEEN %s AND %s GROUP BY m"
            ).format(m=month, t=read.identifier),
            (start, end),
        )
