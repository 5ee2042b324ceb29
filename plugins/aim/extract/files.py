"""Read departmental file drops (CSV, Excel .xlsx, JSON) from a local path, in bounded memory.

`read_records` yields chunks of rows holding only the columns the source configuration asks for,
every value as `str` or None, ready for COPY into a staging table. Files come from real city
systems and are messy, so the readers are lenient where nothing can be lost (stray spaces, title
rows, blank rows, BOMs, bare-CR line endings, trailing empty columns) and strict where data could be
silently misread (field counts, unbalanced quotes, missing or ambiguous columns, undecodable bytes).
Every problem with a file raises `FileFormatError`, whose message names the file, the reason and,
where it applies, the line, row or record.

Memory stays bounded whatever the file's size:

- CSV is read through a text stream (`open(..., newline="")`, i.e. io.TextIOWrapper over the
  binary file) by `csv.reader`. When no encoding is configured, one cheap binary pre-pass through
  an incremental decoder picks UTF-8 (with or without BOM) or else cp1252 *before* any row is
  yielded, so a cp1252 byte deep in the file can never leave half-decoded chunks behind.
- Excel is read with openpyxl in read-only mode. Read-only mode cannot see merged cells, so when a
  header spans several rows (`header_rows > 1`) the merged ranges are parsed from the sheet's XML
  inside the zip with a streaming parser (`xml.etree.ElementTree.iterparse`, clearing rows as it
  goes) instead of loading the workbook a second time in normal mode.
- JSON arrays are streamed with ijson; JSON Lines are read a line at a time.

`csv.field_size_limit` is process-wide; it is raised once, at import, to at least 64 MiB so that a
single huge field (a long narrative, an embedded document) can be read.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import json
import math
import posixpath
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, NamedTuple, Sequence

import ijson
import openpyxl
from openpyxl.utils.cell import range_boundaries

CHUNK_ROWS = 10_000
HEADER_SEARCH_ROWS = 30          # the header must start within this many rows (auto-detection)
SCAN_BLOCK = 1 << 20             # bytes per block in the CSV encoding pre-pass
CSV_FIELD_LIMIT = 64 << 20       # largest CSV field accepted, in characters
DELIMITER_CANDIDATES = (",", ";", "\t", "|")

csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))

Row = tuple[str | None, ...]


class FileFormatError(ValueError):
    """A file that cannot be read as configured; the message names the file and the reason."""


@dataclass(frozen=True)
class FileFormat:
    """How a drop's files are written. Invalid combinations raise ValueError when constructed."""

    kind: Literal["csv", "xlsx", "json"]
    encoding: str | None = None      # csv only; None = UTF-8 (with or without BOM), else cp1252
    delimiter: str = ","             # csv only
    sheet: str | int | None = None   # xlsx: name or 0-based index; None = first sheet with all columns
    header_row: int | None = None    # xlsx/csv: 1-based row of the header; None = detect
    header_rows: int = 1             # xlsx: header stacked over N rows (merged parent cells above)
    records_path: str | None = None  # json: dotted path to the records array inside a top-level object

    def __post_init__(self) -> None:
        if self.kind not in ("csv", "xlsx", "json"):
            raise ValueError(f"unknown file kind {self.kind!r}; expected csv, xlsx or json")
        if len(self.delimiter) != 1:
            raise ValueError(f"the delimiter must be one character, got {self.delimiter!r}")
        if self.header_row is not None and self.header_row < 1:
            raise ValueError(f"header_row is 1-based, got {self.header_row}")
        if self.header_rows < 1:
            raise ValueError(f"header_rows must be at least 1, got {self.header_rows}")
        if self.header_rows > 1 and self.kind != "xlsx":
            raise ValueError("header_rows > 1 is supported for xlsx files only")
        if isinstance(self.sheet, int) and self.sheet < 0:
            raise ValueError(f"sheet index is 0-based and not negative, got {self.sheet}")


@dataclass
class ReadReport:
    """What a read found, filled in while the chunks are consumed."""

    rows: int = 0                      # data rows yielded
    extra_columns: list[str] = field(default_factory=list)   # header columns present, not requested
    blank_rows_skipped: int = 0
    encoding: str | None = None        # encoding actually used (csv)
    sheet: str | None = None           # sheet actually read (xlsx)


def read_records(
    path: Path,
    fmt: FileFormat,
    columns: Sequence[str],
    *,
    display_name: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    report: ReadReport | None = None,
) -> Iterator[list[Row]]:
    """Yield lists of up to chunk_rows tuples; each tuple has one value per requested column, in the order of `columns`.

    Values are `str` (stripped) or None (empty, whitespace-only or absent). Entirely blank rows are
    skipped and counted in `report`. Any problem with the file raises `FileFormatError` while
    iterating, naming `display_name` (default: the file's name); a JSON field missing from every
    record is only known at the end, after earlier chunks were yielded.
    """
    path = Path(path)
    name = display_name or path.name
    if isinstance(columns, str) or not columns:
        raise ValueError(f"columns must be a non-empty sequence of column names, got {columns!r}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    report = report if report is not None else ReadReport()
    readers = {"csv": _csv_rows, "xlsx": _xlsx_rows, "json": _json_rows}
    try:
        yield from _chunked(readers[fmt.kind](path, fmt, list(columns), name, report), chunk_rows, report)
    except OSError as exc:  # only our own reading raises here: the caller's code never runs inside
        raise FileFormatError(f"{name} cannot be read: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------- shared helpers


def _chunked(rows: Iterable[Row], size: int, report: ReadReport) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            report.rows += len(chunk)
            yield chunk
            chunk = []
    if chunk:
        report.rows += len(chunk)
        yield chunk


def _norm(name: Any) -> str:
    """A header name as compared: no BOM, no outer spaces, one space between words, any case."""
    return " ".join(str(name).replace("\ufeff", "").split()).casefold()


def _display(name: Any) -> str:
    return " ".join(str(name).replace("\ufeff", "").split())


def _clean(text: str) -> str | None:
    text = text.strip()
    return text or None


def _quoted(names: Iterable[str], limit: int = 40) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _matches(names: Iterable[Any], columns: Sequence[str]) -> int:
    """How many of the requested columns are among `names`."""
    present = {_norm(n) for n in names if n is not None}
    return sum(_norm(c) in present for c in columns)


def _has_all(names: Iterable[Any], columns: Sequence[str]) -> bool:
    return _matches(names, columns) == len(columns)


def _resolve(names: Sequence[Any], columns: Sequence[str], name: str, where: str) -> list[int]:
    """Position of each requested column among the header `names`; missing or ambiguous: error."""
    index: dict[str, list[int]] = {}
    for i, header in enumerate(names):
        if header is not None and _norm(header):
            index.setdefault(_norm(header), []).append(i)
    missing = [c for c in columns if _norm(c) not in index]
    if missing:
        found = [_display(n) for n in names if n is not None and _norm(n)]
        raise FileFormatError(
            f"{name}: missing column(s) {_quoted(missing)}; {where} has the columns {_quoted(found) or 'none'}"
        )
    ambiguous = [c for c in dict.fromkeys(columns) if len(index[_norm(c)]) > 1]
    if ambiguous:
        detail = "; ".join(f"{c!r} at positions {[i + 1 for i in index[_norm(c)]]}" for c in ambiguous)
        raise FileFormatError(f"{name}: ambiguous column(s) in {where}, named more than once: {detail}")
    return [index[_norm(c)][0] for c in columns]


def _extra_columns(names: Sequence[Any], positions: Sequence[int]) -> list[str]:
    used = set(positions)
    return [_display(n) for i, n in enumerate(names) if i not in used and n is not None and _norm(n)]


def _number_text(value: float) -> str:
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


# --------------------------------------------------------------------------- CSV


class _TextScan(NamedTuple):
    problem: str | None   # why the bytes are not text in the encoding, or None
    has_text: bool        # anything but whitespace and a BOM
    binary: bool = False  # NUL bytes: not text in any single-byte or UTF-8 encoding


def _csv_rows(path: Path, fmt: FileFormat, columns: list[str], name: str, report: ReadReport) -> Iterator[Row]:
    encoding, reported = _csv_encoding(path, fmt, name)
    report.encoding = reported
    with open(path, encoding=encoding, newline="") as text:
        records = _csv_records(csv.reader(text, delimiter=fmt.delimiter, strict=True), name)
        try:
            line, header = _csv_header(records, fmt, columns, name)
            positions = _resolve(header, columns, name, f"the header (line {line})")
        except FileFormatError as exc:
            hint = _delimiter_hint(path, encoding, fmt, columns)
            if not hint:
                raise
            raise FileFormatError(f"{exc} {hint}") from None
        report.extra_columns = _extra_columns(header, positions)
        yield from _csv_data(records, header, positions, name, report)


def _csv_encoding(path: Path, fmt: FileFormat, name: str) -> tuple[str, str]:
    """The codec to read the file with, and the name to report; not text or empty: error."""
    if path.stat().st_size == 0:
        raise FileFormatError(f"{name} is empty (0 bytes)")
    if fmt.encoding:
        try:
            is_text = isinstance(codecs.getincrementaldecoder(fmt.encoding)().decode(b"", final=True), str)
        except LookupError:
            is_text = False
        if not is_text:  # unknown, or a bytes-to-bytes codec such as base64
            raise FileFormatError(f"{name}: unknown text encoding {fmt.encoding!r}")
        candidates = [fmt.encoding]
    else:
        with open(path, "rb") as raw:
            head = raw.read(4)
        bom_utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        candidates = ["utf-16"] if bom_utf16 else ["utf-8-sig", "cp1252"]
    problems = []
    for encoding in candidates:
        scan = _scan_text(path, encoding)
        if scan.problem is None:
            if not scan.has_text:
                raise FileFormatError(f"{name} is empty (only whitespace)")
            return encoding, _reported_encoding(path, encoding)
        if scan.binary:
            raise FileFormatError(f"{name} is not a text CSV file: {scan.problem}")
        problems.append(scan.problem)
    raise FileFormatError(f"{name} is not a text CSV file: {'; '.join(problems)}")


def _reported_encoding(path: Path, encoding: str) -> str:
    if encoding != "utf-8-sig":
        return encoding
    with open(path, "rb") as raw:
        return "utf-8-sig" if raw.read(3) == codecs.BOM_UTF8 else "utf-8"


def _scan_text(path: Path, encoding: str) -> _TextScan:
    """Stream the whole file once through an incremental decoder, in blocks (bounded memory)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    has_text = False
    offset = 0
    with open(path, "rb") as raw:
        while True:
            block = raw.read(SCAN_BLOCK)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                label = "UTF-8" if encoding == "utf-8-sig" else encoding
                return _TextScan(f"bytes near offset {offset + max(exc.start, 0)} are not valid {label}", has_text)
            if "\x00" in text:
                return _TextScan("it contains NUL bytes (binary data?)", has_text, binary=True)
            has_text = has_text or bool(text.replace("\ufeff", "").strip())
            if not block:
                return _TextScan(None, has_text)
            offset += len(block)


def _csv_records(reader: Any, name: str) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) for each record; csv errors become FileFormatError."""
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileFormatError(_csv_error(name, str(exc), start, reader.line_num)) from None
        except UnicodeDecodeError as exc:  # the pre-pass makes this unlikely; kept as a guard
            raise FileFormatError(f"{name} is not a text CSV file: {exc.reason} near line {start}") from None
        yield start, fields
        start = reader.line_num + 1


def _csv_error(name: str, message: str, start: int, line: int) -> str:
    if "unexpected end of data" in message or "newline inside string" in message:
        return f"{name}: unbalanced quote: the quoted field in the record starting on line {start} is never closed"
    if "field larger than field limit" in message:
        return (f"{name}: a field in the record starting on line {start} is larger than "
                f"{CSV_FIELD_LIMIT >> 20} MiB (unbalanced quote?)")
    return f"{name}: malformed CSV on line {line}: {message}"


def _is_blank(fields: Sequence[str]) -> bool:
    return all(not f.strip() for f in fields)


def _csv_header(records: Iterator[tuple[int, list[str]]], fmt: FileFormat, columns: Sequence[str],
                name: str) -> tuple[int, list[str]]:
    """The header record (its line and fields); `records` is left just after it."""
    if fmt.header_row is not None:
        for number, (line, fields) in enumerate(records, 1):
            if number == fmt.header_row:
                return line, fields
        raise FileFormatError(f"{name}: no header at row {fmt.header_row}: the file has fewer rows")
    best: tuple[int, list[str]] | None = None
    for line, fields in islice(records, HEADER_SEARCH_ROWS):
        if _is_blank(fields):
            continue
        if _has_all(fields, columns):
            return line, fields
        if best is None or _matches(fields, columns) > _matches(best[1], columns):
            best = (line, fields)
    if best is None:
        raise FileFormatError(f"{name}: no header row: the first {HEADER_SEARCH_ROWS} rows are blank")
    return best  # the likeliest header (first non-blank, or closest match): resolving it says what is missing


def _delimiter_hint(path: Path, encoding: str, fmt: FileFormat, columns: Sequence[str]) -> str:
    """'(is the delimiter ';'?)' when another delimiter would give a header with all the columns."""
    with open(path, encoding=encoding, errors="replace", newline="") as text:
        lines = text.read(1 << 16).splitlines()[:HEADER_SEARCH_ROWS]
    for candidate in DELIMITER_CANDIDATES:
        if candidate == fmt.delimiter:
            continue
        try:
            if any(_has_all(row, columns) for row in csv.reader(lines, delimiter=candidate)):
                return f"(is the delimiter {candidate!r}? it is configured as {fmt.delimiter!r})"
        except csv.Error:
            continue
    return ""


def _csv_data(records: Iterator[tuple[int, list[str]]], header: list[str], positions: list[int],
              name: str, report: ReadReport) -> Iterator[Row]:
    width = len(header)
    # Trailing header cells without a name (a trailing delimiter) may be absent from data rows.
    needed = max(i for i, h in enumerate(header) if _norm(h)) + 1
    for line, fields in records:
        if _is_blank(fields):
            report.blank_rows_skipped += 1
            continue
        if len(fields) < needed:
            raise FileFormatError(
                f"{name}: line {line} has {len(fields)} field(s) but the header has {width} (truncated line?)"
            )
        if len(fields) > width and not _is_blank(fields[width:]):
            raise FileFormatError(f"{name}: line {line} has {len(fields)} fields but the header has {width}")
        yield tuple(_clean(fields[i]) if i < len(fields) else None for i in positions)


# --------------------------------------------------------------------------- Excel


class _Table(NamedTuple):
    header_at: int                 # 1-based row where the header starts
    names: list[str | None]        # header name per column
    rows: Iterator[tuple[int, tuple]]  # (row number, cells) after the header


class _Miss(NamedTuple):
    first_row: int | None          # first non-blank row searched, for the error message
    names: list[str | None]


def _xlsx_rows(path: Path, fmt: FileFormat, columns: list[str], name: str, report: ReadReport) -> Iterator[Row]:
    with open(path, "rb") as handle:
        workbook = _open_workbook(handle, name)
        try:
            sheet, table = _xlsx_table(path, workbook, fmt, columns, name)
            report.sheet = sheet.title
            where = f"sheet {sheet.title!r}, header row {table.header_at}"
            positions = _resolve(table.names, columns, name, where)
            report.extra_columns = _extra_columns(table.names, positions)
            yield from _xlsx_data(table.rows, positions, report)
        finally:
            workbook.close()


def _open_workbook(handle: Any, name: str) -> Any:
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
    try:
        with warnings.catch_warnings():  # openpyxl warns about unsupported extensions: noise here
            warnings.simplefilter("ignore")
            # A file object, not a path: openpyxl would otherwise insist on an .xlsx file name.
            return openpyxl.load_workbook(handle, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl reports broken archives with many exception types
        raise FileFormatError(f"{name} is not an Excel .xlsx workbook ({type(exc).__name__}: {exc})") from None


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


# --------------------------------------------------------------------------- JSON

_ABSENT = object()


def _json_rows(path: Path, fmt: FileFormat, columns: list[str], name: str, report: ReadReport) -> Iterator[Row]:
    first = _first_byte(path)
    if first is None:
        raise FileFormatError(f"{name} is empty")
    if fmt.records_path:
        if first != b"{":
            raise FileFormatError(
                f"{name}: records_path {fmt.records_path!r} is set but the top level is not a JSON object"
            )
        records, lines = _json_array(path, fmt.records_path, name), False
    elif first == b"[":
        records, lines = _json_array(path, None, name), False
    else:
        records, lines = _json_lines(path, name, report), True
    seen: set[str] = set()
    keys: dict[str, None] = {}   # field names met (bounded), for the error message
    count = 0
    for label, record in records:
        if not isinstance(record, dict):
            raise FileFormatError(f"{name}: {label} is {_json_type(record)}, not an object")
        count += 1
        if len(keys) < 100:
            keys.update(dict.fromkeys(str(k) for k in record))
        row = []
        for column in columns:
            value = _json_field(record, column)
            if value is not _ABSENT:
                seen.add(column)
            row.append(None if value is _ABSENT else _json_text(value))
        if all(v is None for v in row) and not any(_json_has_content(v) for v in record.values()):
            report.blank_rows_skipped += 1
            continue
        yield tuple(row)
    missing = [c for c in columns if c not in seen]
    if count and missing:
        hint = " (one object: is the array of records inside it? set records_path)" if lines and count == 1 else ""
        raise FileFormatError(
            f"{name}: missing column(s) {_quoted(missing)}: absent from all {count} records; "
            f"fields found: {_quoted(keys)}{hint}"
        )


def _first_byte(path: Path) -> bytes | None:
    """The first byte that is not whitespace or a UTF-8 BOM, or None for an empty file."""
    with open(path, "rb") as raw:
        block = raw.read(SCAN_BLOCK).removeprefix(codecs.BOM_UTF8)
        while block:
            stripped = block.lstrip()
            if stripped:
                return stripped[:1]
            block = raw.read(SCAN_BLOCK)
    return None


def _json_array(path: Path, records_path: str | None, name: str) -> Iterator[tuple[str, Any]]:
    """('record N', record) for each item of the array at `records_path` (None: the top level)."""
    array_prefix = records_path or ""
    found: list[bool] = []

    def watch(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
        for prefix, event, value in events:
            if prefix == array_prefix and not found and event not in ("map_key", "end_map", "end_array"):
                if event != "start_array":
                    raise FileFormatError(f"{name}: {records_path!r} is {_json_event_type(event)}, not an array")
                found.append(True)
            yield prefix, event, value

    with open(path, "rb") as raw:
        if raw.read(3) != codecs.BOM_UTF8:
            raw.seek(0)
        items = ijson.items(watch(ijson.parse(raw)), f"{records_path}.item" if records_path else "item")
        number = 0
        while True:
            try:
                record = next(items)
            except StopIteration:
                break
            except (ijson.JSONError, UnicodeDecodeError) as exc:
                reason = _exception_text(exc)
                raise FileFormatError(
                    f"{name}: invalid or truncated JSON at record {number + 1} (after {number} complete "
                    f"records): {reason}"
                ) from None
            number += 1
            yield f"record {number}", record
    if not found:
        raise FileFormatError(f"{name}: no array of records at {records_path!r}")


def _json_lines(path: Path, name: str, report: ReadReport) -> Iterator[tuple[str, Any]]:
    """('line N', record) for each non-blank line of a JSON Lines file."""
    with open(path, "rb") as raw:
        for number, line in enumerate(raw, 1):
            if number == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            if not line.strip():
                report.blank_rows_skipped += 1
                continue
            try:
                record = json.loads(line, parse_float=decimal.Decimal)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                hint = ""
                if number == 1 and line.strip() in (b"{", b"["):
                    hint = " (is this one JSON document rather than JSON Lines? set records_path)"
                raise FileFormatError(f"{name}: invalid JSON on line {number}: {exc}{hint}") from None
            yield f"line {number}", record


def _exception_text(exc: Exception) -> str:
    """A parser's message on one line (yajl reports bytes, with a multi-line excerpt)."""
    message = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " ".join(str(message).split())


def _json_field(record: dict, column: str) -> Any:
    """The field named `column` (exact after strip; 'a.b' reads nested objects), or _ABSENT."""
    key = column.strip()
    value = _json_key(record, key)
    if value is not _ABSENT or "." not in key:
        return value
    node: Any = record
    for part in key.split("."):
        if not isinstance(node, dict):
            return _ABSENT
        node = _json_key(node, part)
        if node is _ABSENT:
            return _ABSENT
    return node


def _json_key(obj: dict, key: str) -> Any:
    if key in obj:
        return obj[key]
    for name, value in obj.items():
        if isinstance(name, str) and name.strip() == key:
            return value
    return _ABSENT


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, str):
        return _clean(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _json_has_content(value: Any) -> bool:
    if isinstance(value, (dict, list)):
        return bool(value)
    return _json_text(value) is not None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _json_event_type(event: str) -> str:
    return {"start_map": "an object", "string": "a string", "null": "null", "boolean": "a boolean"}.get(
        event, "a number"
    )


def record_row(record: dict, columns: Sequence[str]) -> Row:
    """One JSON record (a file's or an API page's) as a row of text values, as JSON files are read:
    one value per column in order, missing fields as None, `a.b` reading nested objects."""
    values = (_json_field(record, column) for column in columns)
    return tuple(None if value is _ABSENT else _json_text(value) for value in values)
