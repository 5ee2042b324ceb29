"""Read departmental file drops (CSV, Excel .xlsx, JSON) from a local path, in bounded memory.

`read_records` yields chunks of rows holding only the columns the source configuration asks for,
every value as `str` or None, ready for COPY into a staging table. Files come from real city
systems and are messy, so the readers are lenient where nothing can be lost (stray spaces, title
rows, blank rows, BOMs, bare-CR line endings, trailing empty columns) and strict where data could be
silently misread (field counts, unbalanced quotes, missing or ambiguous columns, undecodable bytes).
Every problem with a file raises `FileFormatError`, whose message names the file, the reason and,
where it applies, the line, row or record.

Hostile files are refused before they are parsed: a file above `FileFormat.max_file_bytes` (by
its size on disk, before a byte is read), and an xlsx whose zip declares a part above
`max_member_bytes` uncompressed or expanding more than `max_compression_ratio` (see `xlsx_reader`).

Memory stays bounded whatever the file's size; each reader module says how:

- `csv_reader`: text stream through `csv.reader`, after a binary encoding pre-pass. `csv_data`
  finds a CSV file's header only and says where its data rows start, for Arrow's parser
  (`csv_columns`), which reads plain files into columns without a Python object per row.
- `xlsx_reader`: openpyxl read-only mode; merged header cells streamed from the sheet's XML.
- `json_reader`: arrays streamed with ijson, JSON Lines a line at a time; also `record_row`.
- `common`: what they share (FileFormat, ReadReport, FileFormatError, header matching).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from . import csv_reader, json_reader, xlsx_reader
from .common import (
    CHUNK_ROWS,
    CSV_FIELD_LIMIT,
    DELIMITER_CANDIDATES,
    HEADER_SEARCH_ROWS,
    MAX_COMPRESSION_RATIO,
    MAX_FILE_BYTES,
    MAX_MEMBER_BYTES,
    SCAN_BLOCK,
    FileFormat,
    FileFormatError,
    ReadReport,
    Row,
    _chunked,
    check_file_size,
)
from .csv_reader import CsvData
from .json_reader import record_row

__all__ = [
    "CHUNK_ROWS",
    "CSV_FIELD_LIMIT",
    "CsvData",
    "DELIMITER_CANDIDATES",
    "HEADER_SEARCH_ROWS",
    "MAX_COMPRESSION_RATIO",
    "MAX_FILE_BYTES",
    "MAX_MEMBER_BYTES",
    "READERS",
    "SCAN_BLOCK",
    "FileFormat",
    "FileFormatError",
    "ReadReport",
    "Row",
    "check_file_size",
    "csv_data",
    "read_records",
    "record_row",
]

READERS = {
    "csv": csv_reader.rows,
    "xlsx": xlsx_reader.rows,
    "json": json_reader.rows,
}


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
    record is only known at the end, after earlier chunks were yielded. A file above
    `fmt.max_file_bytes` is refused before any of it is read.
    """
    path = Path(path)
    name = display_name or path.name
    if isinstance(columns, str) or not columns:
        raise ValueError(f"columns must be a non-empty sequence of column names, got {columns!r}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    report = report if report is not None else ReadReport()
    try:
        check_file_size(path.stat().st_size, fmt, name)
        yield from _chunked(READERS[fmt.kind](path, fmt, list(columns), name, report), chunk_rows, report)
    except OSError as exc:  # only our own reading raises here: the caller's code never runs inside
        raise FileFormatError(f"{name} cannot be read: {exc.strerror or exc}") from exc


def csv_data(path: Path, fmt: FileFormat, columns: Sequence[str], *, display_name: str | None = None,
             report: ReadReport | None = None) -> CsvData:
    """Where the data rows of a CSV file start and where `columns` are in them (`CsvData`),
    found as `read_records` finds them: a file that is too large, not text, or lacks a column
    raises the same `FileFormatError`. The data rows are not read here."""
    path = Path(path)
    name = display_name or path.name
    try:
        return csv_reader.data_layout(path, fmt, list(columns), name, report if report is not None else ReadReport())
    except OSError as exc:
        raise FileFormatError(f"{name} cannot be read: {exc.strerror or exc}") from exc
