"""Excel .xlsx reader: memory stays bounded whatever the file's size.

Excel is read with openpyxl in read-only mode. Read-only mode cannot see merged cells, so when a
header spans several rows (`header_rows > 1`) the merged ranges are parsed from the sheet's XML
inside the zip with a streaming parser (`xml.etree.ElementTree.iterparse`, clearing rows as it
goes) instead of loading the workbook a second time in normal mode.

A workbook is a zip, and a small one can expand to gigabytes (openpyxl holds the shared strings
part whole). Before openpyxl sees the file, the zip's central directory is checked: a part whose
declared uncompressed size is above `max_member_bytes`, or which expands more than
`max_compression_ratio` (parts above 1 MiB: smaller ones cannot expand far whatever their ratio),
refuses the workbook with nothing decompressed. The declared size also bounds reading: CPython's
zipfile never returns more of a part than its declared size, and a part that holds more fails
its CRC check (a `FileFormatError` like any broken archive).
"""
from __future__ import annotations

import datetime as dt
import math
import posixpath
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
from itertools import chain, islice
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import openpyxl
from openpyxl.utils.cell import range_boundaries

from .common import (
    HEADER_SEARCH_ROWS,
    FileFormat,
    FileFormatError,
    ReadReport,
    Row,
    _clean,
    _display,
    _extra_columns,
    _has_all,
    _matches,
    _norm,
    _number_text,
    _quoted,
    _resolve,
)


RATIO_CHECKED_ABOVE = 1 << 20   # zip parts up to this size are not held to max_compression_ratio


class _Table(NamedTuple):
    header_at: int                 # 1-based row where the header starts
    names: list[str | None]        # header name per column
    rows: Iterator[tuple[int, tuple]]  # (row number, cells) after the header


class _Miss(NamedTuple):
    first_row: int | None          # first non-blank row searched, for the error message
    names: list[str | None]


def rows(path: Path, fmt: FileFormat, columns: list[str], name: str, report: ReadReport) -> Iterator[Row]:
    with open(path, "rb") as handle:
        workbook = _open_workbook(handle, fmt, name)
        try:
            sheet, table = _xlsx_table(path, workbook, fmt, columns, name)
            report.sheet = sheet.title
            where = f"sheet {sheet.title!r}, header row {table.header_at}"
            positions = _resolve(table.names, columns, name, where)
            report.extra_columns = _extra_columns(table.names, positions)
            yield from _xlsx_data(table.rows, positions, report)
        finally:
            workbook.close()


def _open_workbook(handle: Any, fmt: FileFormat, name: str) -> Any:
    """The workbook, read-only, once the file has passed the signature and zip limit checks."""
    _check_signature(handle, name)
    _check_zip_members(handle, fmt, name)
    try:
        with warnings.catch_warnings():  # openpyxl warns about unsupported extensions: noise here
            warnings.simplefilter("ignore")
            # A file object, not a path: openpyxl would otherwise insist on an .xlsx file name.
            return openpyxl.load_workbook(handle, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl reports broken archives with many exception types
        raise _not_a_workbook(name, exc) from None


def _check_signature(handle: Any, name: str) -> None:
    """Refuse an empty file, a legacy .xls (or password-protected) workbook and anything not a zip."""
    signature = handle.read(8)
    handle.seek(0)
    if not signature:
        raise FileFormatError(f"{name} is empty (0 bytes)")
    if signature.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileFormatError(
            f"{name} is not an Excel .xlsx workbook: it is an Excel 97-2003 .xls file or a "
            "password-protected workbook; save it as .xlsx without a password"
        )
    if not signature.startswith(b"PK"):
        raise FileFormatError(f"{name} is not an Excel .xlsx workbook (not a zip archive)")


def _not_a_workbook(name: str, exc: Exception) -> FileFormatError:
    return FileFormatError(f"{name} is not an Excel .xlsx workbook ({type(exc).__name__}: {exc})")


def _check_zip_members(handle: Any, fmt: FileFormat, name: str) -> None:
    """Refuse the workbook when its zip's central directory declares a part above the limits
    (`max_member_bytes`, `max_compression_ratio`); nothing is decompressed."""
    try:
        with zipfile.ZipFile(handle) as archive:  # reads the central directory only
            members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise _not_a_workbook(name, exc) from None
    finally:
        handle.seek(0)
    for member in members:
        problem = _member_problem(member, fmt)
        if problem:
            raise FileFormatError(f"{name}: zip member {member.filename} {problem}")


def _member_problem(member: zipfile.ZipInfo, fmt: FileFormat) -> str | None:
    """Why a zip part is refused, from its declared sizes: too large, or expanding too much; else None."""
    if member.file_size > fmt.max_member_bytes:
        return (f"expands to {member.file_size:,} bytes, above the limit of {fmt.max_member_bytes:,} bytes "
                "(max_member_bytes)")
    ratio = member.file_size / max(member.compress_size, 1)
    if member.file_size > RATIO_CHECKED_ABOVE and ratio > fmt.max_compression_ratio:
        return f"expands {math.ceil(ratio):,}:1, above the limit of {fmt.max_compression_ratio:,}:1 (max_compression_ratio)"
    return None


def _xlsx_table(path: Path, workbook: Any, fmt: FileFormat, columns: Sequence[str], name: str) -> tuple[Any, _Table]:
    """The sheet to read and its header: the configured sheet, or the first with all the columns."""
    sheets = list(workbook.worksheets)
    titles = _quoted(s.title for s in sheets)
    if fmt.sheet is not None:
        sheet = _pick_sheet(sheets, fmt.sheet, name, titles)
        found = _xlsx_header(path, sheet, fmt, columns, name)
        if isinstance(found, _Table):
            return sheet, found
        if found.first_row is None:
            rows = f"row {fmt.header_row} is" if fmt.header_row else f"the first {HEADER_SEARCH_ROWS} rows are"
            raise FileFormatError(f"{name}: sheet {sheet.title!r} has no header: {rows} blank")
        return sheet, _Table(found.first_row, found.names, iter(()))  # the caller reports what is missing
    searched = []
    for sheet in sheets:
        found = _xlsx_header(path, sheet, fmt, columns, name)
        if isinstance(found, _Table):
            return sheet, found
        names = [_display(n) for n in found.names if n is not None and _norm(n)]
        searched.append(f"{sheet.title!r} (row {found.first_row}: {_quoted(names, 15)})" if found.first_row
                        else f"{sheet.title!r} (blank)")
    rows = f"row {fmt.header_row}" if fmt.header_row else f"the first {HEADER_SEARCH_ROWS} rows"
    raise FileFormatError(
        f"{name}: no sheet has all the columns {_quoted(columns)} in {rows}; searched "
        + ("; ".join(searched) or "no worksheets")
    )


def _pick_sheet(sheets: list[Any], wanted: str | int, name: str, titles: str) -> Any:
    if isinstance(wanted, int):
        if wanted < len(sheets):
            return sheets[wanted]
        raise FileFormatError(f"{name}: no sheet at index {wanted}; the workbook's sheets are {titles}")
    exact = [s for s in sheets if s.title == wanted]
    loose = [s for s in sheets if _norm(s.title) == _norm(wanted)]
    if exact or len(loose) == 1:
        return (exact or loose)[0]
    raise FileFormatError(f"{name}: no sheet {wanted!r}; the workbook's sheets are {titles}")


def _sheet_rows(sheet: Any, name: str) -> Iterator[tuple[int, tuple]]:
    """(row number, cells) for every row, gaps included as empty rows; read errors: FileFormatError."""
    sheet.reset_dimensions()  # don't trust the stored dimensions: some writers get them wrong
    rows = sheet.iter_rows()
    number = 0
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # a corrupt sheet part surfaces as zip, XML or value errors
            raise FileFormatError(
                f"{name}: sheet {sheet.title!r} is damaged after row {number} ({type(exc).__name__}: {exc})"
            ) from None
        number += 1
        yield number, cells


def _xlsx_header(path: Path, sheet: Any, fmt: FileFormat, columns: Sequence[str], name: str) -> _Table | _Miss:
    """Find the header (at `header_row`, or the first row within the first 30 with all columns)."""
    rows = _sheet_rows(sheet, name)
    last = (fmt.header_row or HEADER_SEARCH_ROWS) + fmt.header_rows - 1
    head = list(islice(rows, last))
    grid = [[_cell_text(c) for c in cells] for _, cells in head]
    if fmt.header_rows > 1:
        _fill_merged(grid, _merged_ranges(path, sheet.title, last, name))
    starts = [fmt.header_row] if fmt.header_row else range(1, HEADER_SEARCH_ROWS + 1)
    miss = _Miss(None, [])
    for start in starts:
        stacked = grid[start - 1:start - 1 + fmt.header_rows]
        if not stacked or all(v is None for v in stacked[0]):
            continue  # past the end, or a blank row
        names = _stacked_names(stacked)
        if _has_all(names, columns):
            return _Table(start, names, chain(head[start - 1 + fmt.header_rows:], rows))
        if miss.first_row is None or _matches(names, columns) > _matches(miss.names, columns):
            miss = _Miss(start, names)
    rows.close()
    return miss


def _stacked_names(stacked: list[list[str | None]]) -> list[str | None]:
    """Column names from N header rows: the non-empty parts top to bottom, joined by one space."""
    width = max((len(r) for r in stacked), default=0)
    names: list[str | None] = []
    for col in range(width):
        parts: list[str] = []
        for row in stacked:
            part = row[col] if col < len(row) else None
            if part is not None and (not parts or parts[-1] != part):
                parts.append(part)
        names.append(" ".join(parts) or None)
    return names


def _fill_merged(grid: list[list[str | None]], ranges: list[tuple[int, int, int, int]]) -> None:
    """Give every cell of a merged range the value of its top-left cell (within the grid's width)."""
    width = max((len(r) for r in grid), default=0)
    for min_col, min_row, max_col, max_row in ranges:
        if min_row > len(grid) or min_col > width:
            continue
        top = grid[min_row - 1]
        value = top[min_col - 1] if min_col <= len(top) else None
        for r in range(min_row, min(max_row, len(grid)) + 1):
            row = grid[r - 1]
            for c in range(min_col, min(max_col, width) + 1):
                if c > len(row):
                    row.extend([None] * (c - len(row)))
                row[c - 1] = value


def _merged_ranges(path: Path, title: str, max_row: int, name: str) -> list[tuple[int, int, int, int]]:
    """Merged ranges starting at or above `max_row`, streamed from the sheet's XML in the zip."""
    ranges = []
    try:
        with zipfile.ZipFile(path) as archive:
            part = _sheet_part(archive, title)
            if part is None:
                return []
            with archive.open(part) as source:
                sheet_data = None
                for event, element in ET.iterparse(source, events=("start", "end")):
                    tag = element.tag.rsplit("}", 1)[-1]
                    if event == "start":
                        if tag == "sheetData":
                            sheet_data = element
                    elif tag == "row" and sheet_data is not None:
                        sheet_data.clear()  # keep memory bounded: rows are not needed here
                    elif tag == "mergeCell" and element.get("ref"):
                        bounds = range_boundaries(element.get("ref"))
                        if None not in bounds and bounds[1] <= max_row:
                            ranges.append(bounds)
    except (zipfile.BadZipFile, ET.ParseError, KeyError, ValueError, TypeError) as exc:
        raise FileFormatError(f"{name}: cannot read the merged cells of sheet {title!r} ({exc})") from None
    return ranges


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _sheet_part(archive: zipfile.ZipFile, title: str) -> str | None:
    """Path inside the zip of the worksheet named `title` (via the workbook and its relationships)."""
    workbook_part = "xl/workbook.xml"
    if "_rels/.rels" in archive.namelist():
        for rel in ET.fromstring(archive.read("_rels/.rels")):
            if rel.get("Type", "").endswith("/officeDocument"):
                workbook_part = rel.get("Target", workbook_part).lstrip("/")
    folder = posixpath.dirname(workbook_part)
    rel_id = None
    for element in ET.fromstring(archive.read(workbook_part)).iter():
        if _local(element.tag) == "sheet" and element.get("name") == title:
            rel_id = next((v for k, v in element.attrib.items() if _local(k) == "id"), None)
    rels_part = posixpath.join(folder, "_rels", posixpath.basename(workbook_part) + ".rels")
    for rel in ET.fromstring(archive.read(rels_part)):
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            if target.startswith("/"):
                return target.lstrip("/")
            return posixpath.normpath(posixpath.join(folder, target))
    return None


def _xlsx_data(rows: Iterator[tuple[int, tuple]], positions: list[int], report: ReadReport) -> Iterator[Row]:
    for _, cells in rows:
        values = tuple(_cell_text(cells[i]) if i < len(cells) else None for i in positions)
        if all(v is None for v in values) and all(_cell_text(c) is None for c in cells):
            report.blank_rows_skipped += 1
            continue
        yield values


_TIME_TOKENS = re.compile(r"h|s|am/pm|a/p")
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')


def _has_time(number_format: str | None) -> bool:
    """Whether an Excel number format shows a time of day (hours, seconds or AM/PM)."""
    return bool(_TIME_TOKENS.search(_FORMAT_LITERALS.sub("", (number_format or "").lower())))


def _cell_text(cell: Any) -> str | None:
    """A cell's value as text: dates ISO 8601, integral numbers without '.0', booleans true/false."""
    value = getattr(cell, "value", None)
    if value is None:
        return None
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.microsecond:  # Excel stores times as fractions of a day: round to the second
            value = (value + dt.timedelta(microseconds=500_000)).replace(microsecond=0)
        if value.time() == dt.time(0) and not _has_time(getattr(cell, "number_format", None)):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.timedelta):
        seconds = round(value.total_seconds())
        sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    return _clean(str(value))

