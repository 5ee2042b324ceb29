"""CSV reader: memory stays bounded whatever the file's size.

CSV is read through a text stream (`open(..., newline="")`, i.e. io.TextIOWrapper over the
binary file) by `csv.reader`. When no encoding is configured, one cheap binary pre-pass through
an incremental decoder picks UTF-8 (with or without BOM) or else cp1252 *before* any row is
yielded, so a cp1252 byte deep in the file can never leave half-decoded chunks behind.

`csv.field_size_limit` is process-wide; it is raised once, at import, to at least 64 MiB so that a
single huge field (a long narrative, an embedded document) can be read.
"""
from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

from .common import (
    CSV_FIELD_LIMIT,
    DELIMITER_CANDIDATES,
    HEADER_SEARCH_ROWS,
    SCAN_BLOCK,
    FileFormat,
    FileFormatError,
    ReadReport,
    Row,
    _clean,
    _extra_columns,
    _has_all,
    _matches,
    _norm,
    _resolve,
    check_file_size,
)

csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))


class _TextScan(NamedTuple):
    problem: str | None   # why the bytes are not text in the encoding, or None
    has_text: bool        # anything but whitespace and a BOM
    binary: bool = False  # NUL bytes: not text in any single-byte or UTF-8 encoding


def rows(path: Path, fmt: FileFormat, columns: list[str], name: str, report: ReadReport) -> Iterator[Row]:
    encoding = _encoding_for(path, fmt, name, report)
    with open(path, encoding=encoding, newline="") as text:
        reader = csv.reader(text, delimiter=fmt.delimiter, strict=True)
        records = _csv_records(reader, name)
        header, positions = _header_and_positions(records, path, encoding, fmt, columns, name, report)
        yield from _csv_data(records, header, positions, name, report)


@dataclass(frozen=True)
class CsvData:
    """A CSV file's data rows, for a parser other than this module's (Arrow's, `csv_columns`):
    where they start, how wide the header is, and where each requested column is in a row."""

    path: Path
    encoding: str            # the Python codec the file is read with
    delimiter: str
    lines_before_data: int   # physical lines (CR, LF or CRLF) up to the end of the header
    width: int               # fields in the header
    positions: list[int]     # each requested column's 0-based place in a row

    def utf8_blocks(self, size: int = SCAN_BLOCK) -> Iterator[bytes]:
        """The data rows as UTF-8 bytes, as they are in the file after its header, in blocks of
        about `size` characters (bounded memory)."""
        with open(self.path, encoding=self.encoding, newline="") as text:
            for _ in range(self.lines_before_data):
                text.readline()
            while block := text.read(size):
                yield block.encode("utf-8")


def data_layout(path: Path, fmt: FileFormat, columns: Sequence[str], name: str, report: ReadReport) -> CsvData:
    """Where the data rows of the CSV file at `path` start and where the requested `columns` are
    in them, found as `rows` finds them (encoding, header row, column names), raising the same
    `FileFormatError` for a file that is not text or lacks a column. The rows themselves are not
    read, or checked: a parser that refuses them leaves `rows` to say why."""
    path = Path(path)
    check_file_size(path.stat().st_size, fmt, name)
    encoding = _encoding_for(path, fmt, name, report)
    with open(path, encoding=encoding, newline="") as text:
        reader = csv.reader(text, delimiter=fmt.delimiter, strict=True)
        header, positions = _header_and_positions(_csv_records(reader, name), path, encoding, fmt, list(columns),
                                                  name, report)
        return CsvData(path, encoding, fmt.delimiter, reader.line_num, len(header), positions)


def _encoding_for(path: Path, fmt: FileFormat, name: str, report: ReadReport) -> str:
    encoding, report.encoding = _csv_encoding(path, fmt, name)
    return encoding


def _header_and_positions(records: Iterator[tuple[int, list[str]]], path: Path, encoding: str, fmt: FileFormat,
                          columns: list[str], name: str, report: ReadReport) -> tuple[list[str], list[int]]:
    """The header record and each requested column's place in it; `records` is left just after
    it. A missing column says which delimiter would have found it, when another would."""
    try:
        line, header = _csv_header(records, fmt, columns, name)
        positions = _resolve(header, columns, name, f"the header (line {line})")
    except FileFormatError as exc:
        hint = _delimiter_hint(path, encoding, fmt, columns)
        if not hint:
            raise
        raise FileFormatError(f"{exc} {hint}") from None
    report.extra_columns = _extra_columns(header, positions)
    return header, positions


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

