"""Shared pieces of the file readers: the constants, `FileFormat`, `ReadReport`, `FileFormatError`,
`Row`, and the helpers every reader uses (header matching, column resolution, chunking, text cleaning,
the file size limit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Literal, Sequence

CHUNK_ROWS = 10_000
HEADER_SEARCH_ROWS = 30          # the header must start within this many rows (auto-detection)
SCAN_BLOCK = 1 << 20             # bytes per block in the CSV encoding pre-pass
CSV_FIELD_LIMIT = 64 << 20       # largest CSV field accepted, in characters
DELIMITER_CANDIDATES = (",", ";", "\t", "|")
MAX_FILE_BYTES = 512 << 20       # default largest file accepted (any kind)
MAX_MEMBER_BYTES = 256 << 20     # default largest uncompressed part of an xlsx zip
MAX_COMPRESSION_RATIO = 100      # default largest uncompressed:compressed ratio of an xlsx zip part

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
    max_file_bytes: int = MAX_FILE_BYTES                # a larger file is refused before it is read
    max_member_bytes: int = MAX_MEMBER_BYTES            # xlsx: a larger part inside the zip is refused
    max_compression_ratio: int = MAX_COMPRESSION_RATIO  # xlsx: a part expanding more (above 1 MiB) is refused

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
        for limit in ("max_file_bytes", "max_member_bytes", "max_compression_ratio"):
            if getattr(self, limit) < 1:
                raise ValueError(f"{limit} must be at least 1, got {getattr(self, limit)}")


@dataclass
class ReadReport:
    """What a read found, filled in while the chunks are consumed."""

    rows: int = 0                      # data rows yielded
    extra_columns: list[str] = field(default_factory=list)   # header columns present, not requested
    blank_rows_skipped: int = 0
    encoding: str | None = None        # encoding actually used (csv)
    sheet: str | None = None           # sheet actually read (xlsx)


def check_file_size(size: int, fmt: FileFormat, name: str) -> None:
    """Raise FileFormatError naming the file and the limit when `size` bytes are above `fmt.max_file_bytes`."""
    if size > fmt.max_file_bytes:
        raise FileFormatError(
            f"{name} is {size:,} bytes, above the limit of {fmt.max_file_bytes:,} bytes (max_file_bytes)"
        )


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
