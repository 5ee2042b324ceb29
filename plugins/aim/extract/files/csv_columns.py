"""CSV files read into columns by Arrow's C++ parser: no Python object per row or value.

`CsvFile.tables` gives what `csv_reader.rows` gives, as Arrow tables of the requested columns
(values stripped as `str.strip()` strips them, empty ones null, blank rows skipped), a block of
the file at a time. The header is found by the row reader's own code (`csv_data`), so a file
without a column, or not text, fails with the same message whichever way it is read.

Arrow is lenient where the row reader is strict, so it reads a file only while the file is plain:
a row of another width than the header (a truncated line, an extra field, a trailing empty
field, a line of spaces) or a quoted field still open at the end of the file raises
`NotColumnar`, and `CsvFile.rows` reads the file the row reader's way, which lands it or says what
is wrong and on which line. The open quote is caught by a sentinel row after the file's last
byte: Arrow sees it only when every quote in the file was closed. One leniency is Arrow's own: text
after a closing quote joins the value (`"abc"def` is `abcdef`), where the row reader stops.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from aim.staging import BytesReader

from .common import FileFormat, ReadReport, Row

if TYPE_CHECKING:
    import pyarrow as pa

    from .csv_reader import CsvData

BLOCK_BYTES = 1 << 20  # how much of the file Arrow parses at a time; it reads up to 32 blocks ahead
# What `str.strip()` removes, the row reader's cleaning of a value (`common._clean`).
WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_SENTINEL = "\x1faim: end of the file\x1f"


class NotColumnar(Exception):
    """The file has something only the row reader judges; the message says what."""


@dataclass
class CsvFile:
    """A delivered CSV file, to read as Arrow columns (`tables`) or, when that refuses it, as rows."""

    path: Path
    fmt: FileFormat
    columns: list[str]
    name: str
    report: ReadReport = field(default_factory=ReadReport)

    def tables(self) -> Iterator["pa.Table"]:
        """Tables of the requested columns, in that order, as strings or null, a block at a time;
        raises `NotColumnar` (after yielding earlier blocks) at what only `rows` can judge."""
        from . import csv_data

        return _tables(csv_data(self.path, self.fmt, self.columns, display_name=self.name, report=self.report),
                       self.columns, self.report, self.name)

    def rows(self) -> Iterator[list[Row]]:
        """The file read by the row reader (`read_records`), from its first byte."""
        from . import read_records

        self.report = ReadReport()
        return read_records(self.path, self.fmt, self.columns, display_name=self.name, report=self.report)


def _tables(data: "CsvData", columns: Sequence[str], report: ReadReport, name: str) -> Iterator["pa.Table"]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    fields = [f"c{i}" for i in range(data.width)]
    seen: dict[str, object] = {"end": False, "refusal": None}

    def other_width(row) -> str:
        if row.text.startswith(_SENTINEL):
            seen["end"] = True
        elif not row.text.strip():
            report.blank_rows_skipped += 1  # a line of spaces: one field, blank
        elif seen["refusal"] is None:
            seen["refusal"] = f"a row of {row.actual_columns} field(s) where the header has {row.expected_columns}"
        return "skip"

    sentinel = ("\n" + _SENTINEL + data.delimiter * data.width + "\n").encode("utf-8")
    missing = pa.scalar(None, pa.string())
    for batch in _batches(BytesReader(chain(data.utf8_blocks(), [sentinel])), name, dict(
        read_options=pcsv.ReadOptions(column_names=fields, block_size=BLOCK_BYTES, use_threads=False),
        parse_options=pcsv.ParseOptions(delimiter=data.delimiter, newlines_in_values=True,
                                         ignore_empty_lines=True, invalid_row_handler=other_width),
        convert_options=pcsv.ConvertOptions(column_types={f: pa.string() for f in fields},
                                            strings_can_be_null=False, quoted_strings_can_be_null=False),
    )):
        if seen["refusal"] is not None:
            raise NotColumnar(f"{name}: {seen['refusal']}")
        stripped = [pc.utf8_trim(batch.column(i), characters=WHITESPACE) for i in range(data.width)]
        blank = None
        for values in stripped:
            empty = pc.equal(values, "")
            blank = empty if blank is None else pc.and_(blank, empty)
        kept = [pc.if_else(pc.equal(stripped[p], ""), missing, stripped[p]) for p in data.positions]
        table = pa.table(kept, names=list(columns)).filter(pc.invert(blank))
        report.blank_rows_skipped += batch.num_rows - table.num_rows
        report.rows += table.num_rows
        if table.num_rows:
            yield table
    if seen["refusal"] is not None:
        raise NotColumnar(f"{name}: {seen['refusal']}")
    if not seen["end"]:
        raise NotColumnar(f"{name}: a quoted field is still open at the end of the file")


def _batches(source: BytesReader, name: str, options: dict) -> Iterator["pa.RecordBatch"]:
    """Arrow's record batches; what Arrow cannot parse (a value longer than a block) is `NotColumnar`."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        yield from pcsv.open_csv(source, **options)
    except pa.ArrowInvalid as err:
        raise NotColumnar(f"{name}: Arrow's parser stopped: {err}") from None
