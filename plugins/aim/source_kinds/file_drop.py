"""`kind: file`: CSV, Excel or JSON files in an S3 prefix or a folder; each version of a file is
landed once, and a version awaiting review is not landed again with the next batch."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterator, Literal
from urllib.parse import urlparse

from pydantic import Field, model_validator

from aim.source_kinds.base import Chunk, ExtractRequest, FileVersion, SourceKind, Strict


ZIP_LIMITS = ("max_member_bytes", "max_compression_ratio")


class FileFormatConfig(Strict):
    """How the files are written: CSV, Excel or JSON, and their quirks; and the limits that refuse a
    hostile file (too large, or an xlsx zip bomb) before it is parsed, failing the run like any
    malformed file. The limits' defaults are the readers' (`aim.extract.files.common`, kept equal by a
    test); the readers are not imported here, to keep DAG parsing light."""

    kind: Literal["csv", "xlsx", "json"]
    encoding: str | None = Field(None, description="csv: e.g. utf-8, cp1252; default: UTF-8 (with or without BOM), else cp1252")
    delimiter: str = ","
    sheet: str | int | None = None
    header_row: int | None = Field(None, ge=1)
    header_rows: int = Field(1, ge=1, le=5)
    records_path: str | None = None
    max_file_bytes: int = Field(
        512 << 20, ge=1, description="a larger file fails the run, by its listed size, before it is fetched or read")
    max_member_bytes: int = Field(
        256 << 20, ge=1, description="xlsx: a part of the workbook's zip larger than this uncompressed fails the run")
    max_compression_ratio: int = Field(
        100, ge=1, description="xlsx: a part above 1 MiB expanding more than this many times fails the run")

    @model_validator(mode="after")
    def _zip_limits_for_xlsx_only(self) -> "FileFormatConfig":
        misplaced = [name for name in ZIP_LIMITS if name in self.model_fields_set]
        if misplaced and self.kind != "xlsx":
            raise ValueError(f"{', '.join(misplaced)}: zip limits apply to xlsx files only, not {self.kind}")
        return self


class FileExtract(Strict):
    """A drop of files: each new file, and each changed version of a file, is loaded once."""

    kind: Literal["file"] = "file"
    location: str = Field(
        description="s3://bucket/prefix, or a folder (relative to the connection's `path` extra when it has one)"
    )
    pattern: str = Field("*", description="file name pattern, e.g. cad_incidents_*.csv")
    format: FileFormatConfig


def file_store(extract: FileExtract, conn: Any | None = None):
    """The drop a file source reads: `s3://bucket/prefix`, or a folder (relative to the connection's `path`)."""
    from aim.connections import s3_client
    from aim.extract.filestore import LocalStore, S3Store

    parsed = urlparse(extract.location)
    if parsed.scheme == "s3":
        return S3Store(s3_client(conn), parsed.netloc, parsed.path)
    base = (conn.extra_dejson or {}).get("path") if conn is not None else None
    folder = Path(extract.location)
    return LocalStore(folder if folder.is_absolute() or not base else Path(base) / folder)


class FileDrop(SourceKind):
    name = "file"
    extract_model = FileExtract
    needs_connection = False

    def describe(self, config) -> str:
        extract = config.extract
        return f"reads each new version of {extract.location.rstrip('/')}/{extract.pattern} ({extract.format.kind})"

    def connection_types(self, config) -> tuple[str, ...]:
        return ("aws",) if urlparse(config.extract.location).scheme == "s3" else ("fs",)

    def access(self, config, conn: Any | None) -> Any:
        return file_store(config.extract, conn)

    def chunks(self, config, store: Any, request: ExtractRequest) -> Iterator[Chunk]:
        """Each new file version's rows; a CSV file, when the platform does not derive the key
        from its rows, as one chunk that Arrow reads into columns (`CsvFile`)."""
        from aim.extract.files import FileFormat, ReadReport, check_file_size, read_records
        from aim.extract.files.csv_columns import CsvFile

        file_format = FileFormat(**config.extract.format.model_dump())
        source_columns = [c.source_name for c in config.extracted_columns]
        columnar = file_format.kind == "csv" and config.derived_key is None
        with tempfile.TemporaryDirectory(prefix=f"aim-{config.source}-") as scratch:
            for remote in store.list(config.extract.pattern):
                name = store.describe(remote.key)
                check_file_size(remote.size, file_format, name)  # by the listed size, before a byte is fetched
                local = Path(scratch) / "file"
                sha256 = store.fetch(remote.key, local)
                if request.file_known(remote.key, sha256):
                    local.unlink()
                    continue
                if columnar:
                    csv_file = CsvFile(local, file_format, source_columns, name)
                    version = FileVersion(remote.key, sha256, remote.size, lambda f=csv_file: f.report.extra_columns)
                    yield Chunk([], origin=remote.key, file=version, columnar=csv_file)
                    local.unlink()
                    continue
                report = ReadReport()
                version = FileVersion(remote.key, sha256, remote.size, lambda report=report: report.extra_columns)
                yield Chunk([], origin=remote.key, file=version)  # registers the version even when it has no rows
                for rows in read_records(local, file_format, source_columns, display_name=name, report=report):
                    yield Chunk(rows, origin=remote.key, file=version)
                local.unlink()


KIND = FileDrop()
