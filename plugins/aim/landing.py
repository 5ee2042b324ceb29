"""Landing one batch in `staging`, from any kind of source, in bounded memory.

Each kind brings its rows a chunk at a time (a server-side cursor, a file read in chunks, an API
page); every chunk goes to `staging.<source>` by COPY. A derived key, when the source has none,
is computed here from the row's content.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from aim import runlog
from aim.extract.sql import Extraction, format_watermark, parse_watermark
from aim.sources import SourceConfig
from aim.staging import copy_chunks

log = logging.getLogger(__name__)


@dataclass
class Landed:
    """What a landing put in staging."""

    rows: int = 0
    max_watermark: str | None = None
    files_landed: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)


def derived_key(values: Sequence[Any]) -> str:
    """A stable key from a row's content: SHA-256 (32 hex digits) of the values, unit-separated.

    Values are compared as the text that landed (already stripped), missing values as empty.
    """
    text = "\x1f".join("" if v is None else str(v) for v in values)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _with_derived_key(config: SourceConfig, chunks: Iterable[list[tuple]]) -> Iterator[list[tuple]]:
    """Rows in extracted-column order -> rows in configured-column order, adding the derived key."""
    if config.derived_key is None:
        yield from chunks
        return
    extracted = [c.name for c in config.extracted_columns]
    key_from = [extracted.index(n) for n in config.derived_key.from_columns]
    key_at = config.column_names.index(config.derived_key.column)
    for chunk in chunks:
        rows = []
        for row in chunk:
            values = list(row)
            values.insert(key_at, derived_key([row[i] for i in key_from]))
            rows.append(tuple(values))
        yield rows


def land(cur, config: SourceConfig, access: Any, *, batch_id: str) -> Landed:
    """Land everything new at the source as batch `batch_id`; the caller owns the transaction."""
    if config.kind == "sql":
        return _land_sql(cur, config, access, batch_id)
    if config.kind == "http":
        return _land_http(cur, config, access, batch_id)
    return _land_files(cur, config, access, batch_id)


def _land_sql(cur, config: SourceConfig, source_url: Any, batch_id: str) -> Landed:
    since = parse_watermark(runlog.read_watermark(cur, config.source), config.column(config.watermark_column).type)
    extraction = Extraction(config, source_url, since)
    rows = copy_chunks(cur, config.staging_table, config.column_names, batch_id, extraction.chunks())
    newest = extraction.max_watermark
    return Landed(rows=rows, max_watermark=format_watermark(newest) if newest is not None else None)


def _land_http(cur, config: SourceConfig, access: tuple[str, dict], batch_id: str) -> Landed:
    from aim.extract.files import record_row
    from aim.extract.http import HttpExtraction, HttpSource

    base_url, headers = access
    extract = config.extract
    since = runlog.read_watermark(cur, config.source)
    source = HttpSource(
        base_url=base_url, path=extract.path, pagination=extract.pagination, page_size=extract.page_size,
        offset_param=extract.offset_param, limit_param=extract.limit_param, records_field=extract.records_field,
        next_link_field=extract.next_link_field, updated_since_param=extract.updated_since_param,
        headers=headers, timeout_seconds=extract.timeout_seconds, max_retries=extract.max_retries,
    )
    fields = [c.source_name for c in config.extracted_columns]
    watermark_at = [c.name for c in config.extracted_columns].index(extract.watermark_column) \
        if extract.watermark_column else None
    landed = Landed()
    newest: tuple[dt.datetime, str] | None = None
    for number, page in enumerate(HttpExtraction(source, since).pages(), start=1):
        rows = [record_row(record, fields) for record in page]
        if watermark_at is not None:
            for row in rows:
                stamp = row[watermark_at]
                if stamp:
                    parsed = dt.datetime.fromisoformat(stamp)
                    if newest is None or parsed > newest[0]:
                        newest = (parsed, stamp)
        landed.rows += copy_chunks(
            cur, config.staging_table, config.column_names, batch_id, _with_derived_key(config, [rows]),
            origin=f"page {number}",
        )
    landed.max_watermark = newest[1] if newest else None
    return landed


def _land_files(cur, config: SourceConfig, store, batch_id: str) -> Landed:
    from aim.extract.files import FileFormat, ReadReport, read_records

    fmt = config.extract.format
    file_format = FileFormat(
        kind=fmt.kind, encoding=fmt.encoding, delimiter=fmt.delimiter, sheet=fmt.sheet,
        header_row=fmt.header_row, header_rows=fmt.header_rows, records_path=fmt.records_path,
    )
    source_columns = [c.source_name for c in config.extracted_columns]
    landed = Landed()
    with tempfile.TemporaryDirectory(prefix=f"aim-{config.source}-") as scratch:
        for remote in store.list(config.extract.pattern):
            local = Path(scratch) / "file"
            sha256 = store.fetch(remote.key, local)
            if runlog.file_version_settled(cur, config.source, remote.key, sha256):
                landed.files_skipped.append(remote.key)
                continue
            report = ReadReport()
            chunks = read_records(local, file_format, source_columns, display_name=store.describe(remote.key),
                                  report=report)
            rows = copy_chunks(
                cur, config.staging_table, config.column_names, batch_id, _with_derived_key(config, chunks),
                origin=remote.key,
            )
            runlog.register_file(
                cur, source=config.source, file_key=remote.key, sha256=sha256, size=remote.size, rows=rows,
                batch_id=batch_id, extra_columns=report.extra_columns,
            )
            landed.rows += rows
            landed.files_landed.append(remote.key)
            local.unlink()
    if landed.files_skipped:
        log.info("%s: %d file(s) already loaded with the same content, skipped: %s", config.source,
                 len(landed.files_skipped), ", ".join(landed.files_skipped))
    return landed
