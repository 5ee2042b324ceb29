"""Measure files: one SQL file per AIM measure, `sql/measures/<code>.sql`, and what its header declares.

A file's header says what it reads, where it is reported and how it combines over time:

    -- measure: SAF-01
    -- reads: core.mpd_crime_incidents (reported_at)
    -- geographies: citywide, aldermanic_district, police_district
    -- aggregation: sum

Its body reads the temp table `measure_period(period_start date, period_end date)` (the periods
to compute, one row each: months, fiscal quarters or fiscal years, `period_end` inclusive) and
returns exactly the columns `OUTPUT_COLUMNS`, one row per period and geography. `aggregation`
names how a longer period relates to its months (see `AGGREGATIONS`); the platform uses it to
scale an annual target to a quarter or a year, and the tests to check the file honours it.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from psycopg2 import sql

from aim import settings

OUTPUT_COLUMNS = ("period_start", "geography_type", "geography_code", "value", "numerator", "denominator")
GEOGRAPHY_TYPES = ("citywide", "aldermanic_district", "police_district")
AGGREGATIONS = {
    "sum": "a longer period's value is the sum of its months' values (counts; rates per resident or household)",
    "ratio": "a longer period re-divides its numerator by its denominator, each summed over its months (percentages)",
    "median": "a longer period's median is recomputed from its rows",
}

_HEADER = re.compile(r"^\s*--\s*(measure|reads|geographies|aggregation)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_CODE = re.compile(r"^[A-Z]{3}-[0-9]{2}$")
_FILE_NAME = re.compile(r"^[a-z]{3}_[0-9]{2}\.sql$")
_READ = re.compile(r"([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?\s*(?:\(([^)]*)\))?")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class MeasureError(RuntimeError):
    """A measure file that cannot be used or that returned unusable rows; the message names the file."""



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
    aggregation: str

    @property
    def dated_reads(self) -> tuple[SourceRead, ...]:
        """The tables whose rows fall in periods (a reference table without date columns has none)."""
        return tuple(read for read in self.reads if read.date_columns)

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
    """Read a measure file's header (`-- measure:`, `-- reads:`, `-- geographies:`, `-- aggregation:`).

    `reads` may be given on several lines, or as a comma-separated list, each table with its
    date columns in parentheses: `core.dns_code_enforcement_orders (issued_on, complied_on)`;
    a table without parentheses (a reference table) has no months of its own.
    """
    path = Path(path)
    if not _FILE_NAME.match(path.name):
        raise MeasureError(f"{path}: measure files are named like saf_01.sql (the code in lower case, '-' as '_')")
    code, reads, geographies, aggregation = None, [], [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADER.match(line)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key == "measure":
            code = value.strip().upper()
        elif key == "reads":
            reads += _parse_reads(path, value)
        elif key == "aggregation":
            aggregation = value.strip().lower()
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
    if aggregation not in AGGREGATIONS:
        raise MeasureError(
            f"{path}: '-- aggregation:' must be one of {sorted(AGGREGATIONS)} (how the measure combines over "
            f"months), got {aggregation!r}"
        )
    return MeasureFile(code, path, tuple(reads), tuple(geographies) or GEOGRAPHY_TYPES, aggregation)


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


def select_files(
    files: dict[str, MeasureFile], measure_codes: Iterable[str] | None, folder: Path | None = None
) -> list[MeasureFile]:
    """The files of `measure_codes` (None: all), in code order; MeasureError names any code without a file."""
    if measure_codes is None:
        return list(files.values())
    unknown = sorted(set(measure_codes) - set(files))
    if unknown:
        raise MeasureError(f"no measure file for {unknown} in {folder or settings.measures_dir()}")
    return [files[c] for c in sorted(set(measure_codes))]
