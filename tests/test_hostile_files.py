"""Hostile file drops (issue 11): a file too large, or an Excel workbook that is a zip bomb, is
refused before it is parsed, naming the file and the limit, in bounded memory; a normal file still
reads. Real files throughout: workbooks written by openpyxl, bombs and lies written with zipfile.
(Symlinks out of a folder drop: tests/test_filestore.py; a whole DAG run: test_bad_input_corpus.py.)
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import openpyxl
import pytest
from pydantic import ValidationError

from aim.extract.files import (
    MAX_COMPRESSION_RATIO,
    MAX_FILE_BYTES,
    MAX_MEMBER_BYTES,
    FileFormat,
    FileFormatError,
    read_records,
)
from aim.extract.files.xlsx_reader import RATIO_CHECKED_ABOVE
from aim.extract.filestore import LocalStore
from aim.source_kinds.base import ExtractRequest
from aim.source_kinds.file_drop import FileFormatConfig
from aim.sources import SourceConfig
from memory import measure

SHARED_STRINGS = "xl/sharedStrings.xml"
_SHARED_STRINGS_TYPE = (
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)
BOMB_MIB = 60          # the shared strings part expands to this; the workbook is ~65 KB
ALLOWED_GROWTH_MB = 20  # refusing the bomb costs no more than this over reading a tiny workbook
UNGUARDED_GROWTH_MB = 100  # what parsing the bomb costs without the limit (at least): what the limit saves


def read_all(path: Path, fmt: FileFormat, columns) -> list[tuple]:
    return [row for chunk in read_records(path, fmt, columns) for row in chunk]


def read_error(path: Path, fmt: FileFormat, columns) -> str:
    with pytest.raises(FileFormatError) as info:
        read_all(path, fmt, columns)
    return str(info.value)


def workbook(path: Path, rows: int = 1) -> Path:
    """A plain workbook: a header `id, status, note` and `rows` rows of ordinary, repetitive data."""
    wb = openpyxl.Workbook(write_only=True)
    sheet = wb.create_sheet("Orders")
    sheet.append(["id", "status", "note"])
    for i in range(rows):
        sheet.append([i, "OPEN", "Owner notified by mail"])
    wb.save(path)
    return path


def with_shared_strings(path: Path, source: Path, text_mib: float) -> Path:
    """`source` rewritten with a shared strings part holding one string of `text_mib` MiB of 'A',
    written a block at a time (the test never holds it): deflate packs it about 1,000 to 1."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", _SHARED_STRINGS_TYPE.encode() + b"</Types>")
            dst.writestr(info.filename, data)
        with dst.open(SHARED_STRINGS, "w") as part:
            part.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
                       b'uniqueCount="1"><si><t>')
            left = int(text_mib * (1 << 20))
            while left:
                block = min(left, 1 << 20)
                part.write(b"A" * block)
                left -= block
            part.write(b"</t></si></sst>")
    return path


def zip_bomb(tmp_path: Path, name: str = "orders_2026-11.xlsx") -> Path:
    return with_shared_strings(tmp_path / name, workbook(tmp_path / "plain.xlsx"), BOMB_MIB)


def declare_size(path: Path, member: str, size: int) -> Path:
    """Rewrite the uncompressed size the zip's central directory declares for `member` (a lie)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + name_length]) == member.encode():
            struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------ zip bombs


_READ_XLSX = """
from aim.extract.files import FileFormat, FileFormatError, read_records

fmt = FileFormat("xlsx", max_compression_ratio=int(sys.argv[2]))
try:
    rows = sum(len(chunk) for chunk in read_records(sys.argv[1], fmt, ["id"]))
    report(rows=rows, error=None)
except FileFormatError as exc:
    report(rows=None, error=str(exc))
"""


def test_xlsx_zip_bomb_is_refused_before_parsing_in_bounded_memory(tmp_path):
    bomb = zip_bomb(tmp_path)
    assert bomb.stat().st_size < 200_000, "the bomb is a small file"
    with zipfile.ZipFile(bomb) as archive:
        assert archive.getinfo(SHARED_STRINGS).file_size > BOMB_MIB << 20

    tiny = measure(_READ_XLSX, str(workbook(tmp_path / "tiny.xlsx")), str(MAX_COMPRESSION_RATIO))
    refused = measure(_READ_XLSX, str(bomb), str(MAX_COMPRESSION_RATIO))
    unguarded = measure(_READ_XLSX, str(bomb), "1000000")

    assert tiny == {**tiny, "rows": 1, "error": None}
    assert refused["error"] is not None and refused["error"].startswith(
        "orders_2026-11.xlsx: zip member xl/sharedStrings.xml expands "), refused["error"]
    assert refused["error"].endswith(":1, above the limit of 100:1 (max_compression_ratio)"), refused["error"]
    growth = refused["peak_rss_mb"] - tiny["peak_rss_mb"]
    assert growth <= ALLOWED_GROWTH_MB, f"refusing the bomb: peak RSS {tiny['peak_rss_mb']} MB -> {refused['peak_rss_mb']} MB"
    assert unguarded["rows"] == 1 and unguarded["peak_rss_mb"] - tiny["peak_rss_mb"] >= UNGUARDED_GROWTH_MB, (
        f"without the limit the bomb is parsed and costs more: {unguarded['peak_rss_mb']} MB; "
        "else this test proves nothing")


def test_xlsx_whose_zip_understates_a_part_is_refused_reading_no_more_than_declared(tmp_path):
    """The central directory says the shared strings part is 1,000 bytes (nothing to refuse);
    reading stops at 1,000 bytes and the part fails its CRC check: the bomb never expands."""
    liar = declare_size(zip_bomb(tmp_path), SHARED_STRINGS, 1000)

    refused = measure(_READ_XLSX, str(liar), str(MAX_COMPRESSION_RATIO))
    tiny = measure(_READ_XLSX, str(workbook(tmp_path / "tiny.xlsx")), str(MAX_COMPRESSION_RATIO))

    assert refused["error"] == (
        "orders_2026-11.xlsx is not an Excel .xlsx workbook (BadZipFile: Bad CRC-32 for file 'xl/sharedStrings.xml')")
    assert refused["peak_rss_mb"] - tiny["peak_rss_mb"] <= ALLOWED_GROWTH_MB, (
        f"peak RSS {tiny['peak_rss_mb']} MB -> {refused['peak_rss_mb']} MB")


def test_xlsx_part_above_max_member_bytes_is_refused(tmp_path):
    path = workbook(tmp_path / "orders.xlsx", rows=2000)
    with zipfile.ZipFile(path) as archive:
        sheet_size = archive.getinfo("xl/worksheets/sheet1.xml").file_size

    message = read_error(path, FileFormat("xlsx", max_member_bytes=100_000), ["id"])

    assert message == (f"orders.xlsx: zip member xl/worksheets/sheet1.xml expands to {sheet_size:,} bytes, "
                       "above the limit of 100,000 bytes (max_member_bytes)")
    assert len(read_all(path, FileFormat("xlsx", max_member_bytes=sheet_size), ["id"])) == 2000, (
        "a part exactly at the limit is accepted")


def test_xlsx_small_parts_are_not_held_to_the_ratio(tmp_path):
    """A part of 1 MiB or less cannot expand far whatever its ratio: it is not refused for it."""
    path = with_shared_strings(tmp_path / "orders.xlsx", workbook(tmp_path / "plain.xlsx"), 0.9)
    with zipfile.ZipFile(path) as archive:
        part = archive.getinfo(SHARED_STRINGS)
    assert part.file_size / part.compress_size > MAX_COMPRESSION_RATIO

    assert read_all(path, FileFormat("xlsx"), ["id"]) == [("0",)]


def test_ordinary_workbook_of_repetitive_rows_reads_under_the_default_limits(tmp_path):
    """A real sheet of repetitive rows, large enough to be held to the ratio, is far from the limits."""
    path = workbook(tmp_path / "orders.xlsx", rows=12_000)
    with zipfile.ZipFile(path) as archive:
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
    assert sheet.file_size > RATIO_CHECKED_ABOVE and sheet.file_size / sheet.compress_size < MAX_COMPRESSION_RATIO / 4

    rows = read_all(path, FileFormat("xlsx"), ["id", "status"])

    assert len(rows) == 12_000 and rows[-1] == ("11999", "OPEN")


# ------------------------------------------------------------------ file size


def test_file_above_max_file_bytes_is_refused_before_it_is_read(tmp_path):
    small = tmp_path / "calls.csv"
    small.write_bytes(b"id,name\r\n1,A\r\n")
    assert read_error(small, FileFormat("csv", max_file_bytes=10), ["id"]) == (
        "calls.csv is 14 bytes, above the limit of 10 bytes (max_file_bytes)")
    assert read_all(small, FileFormat("csv", max_file_bytes=14), ["id"]) == [("1",)], "at the limit: read"

    sparse = tmp_path / "calls_huge.csv"  # 600 MiB of NUL bytes on no disk: read, it would be "binary"
    with open(sparse, "wb") as out:
        out.truncate(600 << 20)
    assert read_error(sparse, FileFormat("csv"), ["id"]) == (
        f"calls_huge.csv is {600 << 20:,} bytes, above the limit of {MAX_FILE_BYTES:,} bytes (max_file_bytes)")


def file_source(fmt: dict) -> SourceConfig:
    return SourceConfig.model_validate({
        "source": "dns_code_enforcement_orders", "department": "DNS", "system": "workbooks", "kind": "file",
        "schedule": None, "owner": "dns",
        "extract": {"location": "orders", "pattern": "*.xlsx", "format": fmt},
        "key": ["id"],
        "columns": [{"name": "id", "privacy": "public"}, {"name": "status", "privacy": "public"}],
        "expectation_suite": "dns_code_enforcement_orders.json",
    })


def test_file_drop_refuses_a_listed_file_above_the_limit_before_fetching_it(tmp_path):
    """The listed size decides: the file is never fetched (its version, the SHA-256 of the fetched
    copy, is never asked about) and nothing of it is yielded."""
    drop = tmp_path / "orders"
    drop.mkdir()
    workbook(drop / "orders_2026-10.xlsx", rows=3)
    workbook(drop / "orders_2026-11.xlsx", rows=3000)
    big = (drop / "orders_2026-11.xlsx").stat().st_size
    config = file_source({"kind": "xlsx", "max_file_bytes": big - 1})
    fetched: list[str] = []
    request = ExtractRequest(file_known=lambda key, sha256: fetched.append(key) or False)

    chunks = config.source_kind.chunks(config, LocalStore(drop), request)
    rows = []
    with pytest.raises(FileFormatError) as refused:
        for chunk in chunks:
            rows += chunk.rows

    assert str(refused.value) == (f"{drop / 'orders_2026-11.xlsx'} is {big:,} bytes, above the limit of "
                                  f"{big - 1:,} bytes (max_file_bytes)")
    assert fetched == ["orders_2026-10.xlsx"], "the file above the limit is never fetched"
    assert len(rows) == 3, "only the earlier file's rows were read"


# ------------------------------------------------------------------ configuration


def test_limits_are_set_per_source_in_the_format_block_and_validated():
    fmt = file_source({"kind": "xlsx", "max_file_bytes": 1 << 30, "max_member_bytes": 64 << 20,
                       "max_compression_ratio": 50}).extract.format
    assert (fmt.max_file_bytes, fmt.max_member_bytes, fmt.max_compression_ratio) == (1 << 30, 64 << 20, 50)

    with pytest.raises(ValidationError, match="zip limits apply to xlsx files only, not csv"):
        FileFormatConfig(kind="csv", max_compression_ratio=50)
    assert FileFormatConfig(kind="csv", max_file_bytes=1000).max_file_bytes == 1000, "any kind has a size limit"
    for bad in ({"max_file_bytes": 0}, {"max_member_bytes": -1}, {"max_compression_ratio": "lots"}):
        with pytest.raises(ValidationError):
            FileFormatConfig(kind="xlsx", **bad)
    with pytest.raises(ValueError, match="max_file_bytes must be at least 1"):
        FileFormat("csv", max_file_bytes=0)


def test_configuration_defaults_are_the_readers_defaults():
    """The configuration repeats the readers' defaults (it does not import the readers at DAG parse)."""
    default = FileFormatConfig(kind="xlsx")
    assert (default.max_file_bytes, default.max_member_bytes, default.max_compression_ratio) == (
        MAX_FILE_BYTES, MAX_MEMBER_BYTES, MAX_COMPRESSION_RATIO) == (512 << 20, 256 << 20, 100)
    reader = FileFormat("xlsx")
    assert (reader.max_file_bytes, reader.max_member_bytes, reader.max_compression_ratio) == (
        MAX_FILE_BYTES, MAX_MEMBER_BYTES, MAX_COMPRESSION_RATIO)
