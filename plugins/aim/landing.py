"""Landing one batch in `staging`, from any kind of source, in bounded memory.

The source's kind (`aim.source_kinds`) yields its rows a chunk at a time (a server-side cursor,
a file read in chunks, an API page); every chunk goes to `staging.<source>` by COPY. A source that
can write its rows for COPY itself (a PostgreSQL table: `SourceKind.copy_out`) streams them
straight into staging's COPY instead, bytes that never become Python objects; a CSV file is read
by Arrow into columns that Arrow writes to COPY (`Chunk.columnar`). The rest is
the same for every kind: a derived key, when the source has none, is computed from the row's
content; an incremental source reads from its watermark less the overlap, and its batch's
candidate watermark is capped at the extraction's start less the clock skew allowance
(`aim.watermarks`), and the rows it re-reads exactly as merged are not kept (they were checked,
or reviewed, when they merged); each file version landed is registered with its batch (`aim.batches`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from psycopg2 import sql

from aim import batches, clock, row_scan, watermarks
from aim.source_kinds.base import ExtractRequest, FileVersion
from aim.generated_checks import cast_value_sql, quoted
from aim.sources import SourceConfig
from aim.staging import analyze, copy_chunks, copy_tables, copy_text
from aim.tables import BATCH_COLUMN, qualified

log = logging.getLogger(__name__)


@dataclass
class Landed:
    """What a landing put in staging."""

    rows: int = 0                  # rows read from the source
    unchanged: int = 0             # of which re-read exactly as merged (the overlap window): not kept
    max_watermark: str | None = None
    typed_columns_cast: bool = False  # every typed value landed casts (found with the newest watermark)
    keys_unique_at_source: bool = False  # the source's primary key holds each key once (`SourceKind.guarantees`)
    files_landed: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)


def derived_key(values: Sequence[Any]) -> str:
    """A stable key from a row's content: SHA-256 (32 hex digits) of the values, unit-separated.

    Values are compared as the text that landed (already stripped), missing values as empty.
    """
    text = "\x1f".join("" if v is None else str(v) for v in values)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _with_derived_key(config: SourceConfig, rows: Iterable[Sequence[Any]]) -> list[tuple]:
    """Rows in extracted-column order -> rows in configured-column order, adding the derived key."""
    if config.derived_key is None:
        return [tuple(r) for r in rows]
    extracted = [c.name for c in config.extracted_columns]
    key_from = [extracted.index(n) for n in config.derived_key.from_columns]
    key_at = config.column_names.index(config.derived_key.column)
    landed = []
    for row in rows:
        values = list(row)
        values.insert(key_at, derived_key([row[i] for i in key_from]))
        landed.append(tuple(values))
    return landed


def land(cur, config: SourceConfig, access: Any, *, batch_id: str) -> Landed:
    """Land everything new at the source as batch `batch_id`; the caller owns the transaction.

    Incremental kinds read from the stored watermark less the overlap; file drops land every
    version of a file not yet known (merged, discarded, or awaiting review in another batch).
    """
    started = clock.now()
    extract = config.extract
    window = None
    if config.watermark_column:
        column_type = config.column(config.watermark_column).type
        window = watermarks.window(extract, column_type, watermarks.read(cur, config.source), started)
        watermark_at = [c.name for c in config.extracted_columns].index(config.watermark_column)
    landed = Landed()

    def file_known(key: str, sha256: str) -> bool:
        known = batches.file_version_known(cur, config.source, key, sha256, batch_id=batch_id)
        if known:
            landed.files_skipped.append(key)
        return known

    request = ExtractRequest(since=window.since if window else None, file_known=file_known)
    newest: dt.datetime | None = None
    files: dict[str, tuple[FileVersion, list[int]]] = {}
    written = config.source_kind.copy_out(config, access, request, batch_id=batch_id)
    if written is not None:  # the source writes the rows for COPY itself: bytes from COPY to COPY
        guaranteed = config.source_kind.guarantees(config, access)
        landed.rows = copy_text(cur, config.staging_table, config.column_names, written)
        landed.keys_unique_at_source = guaranteed.each_key_once
    for chunk in config.source_kind.chunks(config, access, request) if written is None else ():  # rows via Python
        if window is not None:
            newest = _newest(newest, (row[watermark_at] for row in chunk.rows), column_type)
        if chunk.columnar is not None:
            rows = _land_columnar(cur, config, batch_id, chunk)
        else:
            rows = copy_chunks(cur, config.staging_table, config.column_names, batch_id,
                               [_with_derived_key(config, chunk.rows)], origin=chunk.origin)
        landed.rows += rows
        if chunk.file is not None:
            files.setdefault(chunk.file.key, (chunk.file, []))[1].append(rows)
    analyze(cur, config.staging_table)  # before the scans below: planned for the rows landed (in parallel), not none
    if written is not None and window is not None:
        newest, landed.typed_columns_cast = _newest_landed(cur, config, batch_id, guaranteed.columns_that_cast)
    for version, counts in files.values():
        batches.register_file(cur, source=config.source, file_key=version.key, sha256=version.sha256,
                              size=version.size, rows=sum(counts), batch_id=batch_id,
                              extra_columns=version.extra_columns())
        landed.files_landed.append(version.key)
    if window is not None:
        landed.unchanged = drop_unchanged(cur, config, batch_id)
        if landed.unchanged:
            analyze(cur, config.staging_table)  # the batch's rows are fewer: the checks and the merge plan for these
    if landed.files_skipped:
        log.info("%s: %d file version(s) already merged, discarded or awaiting review, not landed again: %s",
                 config.source, len(landed.files_skipped), ", ".join(landed.files_skipped))
    if window is not None:
        candidate = window.candidate(newest)
        landed.max_watermark = watermarks.to_text(candidate) if candidate is not None else None
        future = watermarks.parse(started, column_type) + dt.timedelta(seconds=extract.clock_skew_seconds)
        if newest is not None and newest > future:
            log.warning("%s: %s values up to %s lie in the future (after the extraction's start plus %d s); they do not "
                        "move the watermark, which stays at or below %s", config.source, config.watermark_column,
                        newest, extract.clock_skew_seconds, window.ceiling)
    return landed


def _land_columnar(cur, config: SourceConfig, batch_id: str, chunk) -> int:
    """Land a file Arrow reads into columns (`Chunk.columnar`); when Arrow meets what only the
    row reader judges, undo what it landed and land the file's rows instead. Returns rows landed."""
    from aim.extract.files.csv_columns import NotColumnar

    cur.execute("SAVEPOINT aim_columnar")
    try:
        rows = copy_tables(cur, config.staging_table, config.column_names, batch_id, chunk.origin,
                           chunk.columnar.tables())
    except NotColumnar as refusal:
        cur.execute("ROLLBACK TO SAVEPOINT aim_columnar")
        log.info("%s; the row reader reads the file", refusal)
        return copy_chunks(cur, config.staging_table, config.column_names, batch_id, chunk.columnar.rows(),
                           origin=chunk.origin)
    cur.execute("RELEASE SAVEPOINT aim_columnar")
    return rows


def drop_unchanged(cur, config: SourceConfig, batch_id: str) -> int:
    """Delete from the batch the rows re-read exactly as core holds them (same key, every value
    equal): the overlap window brings them again, and they were checked, or reviewed, when they
    merged. Returns rows deleted. A value that does not cast is never taken for unchanged."""
    def same(column) -> sql.Composable:
        name = sql.Identifier(column.name)
        if column.type == "text":
            return sql.SQL("c.{0} IS NOT DISTINCT FROM s.{0}").format(name)
        return sql.SQL(
            "(CASE WHEN s.{0} IS NULL THEN c.{0} IS NULL WHEN ops.casts_to(s.{0}, {1}) THEN c.{0} = s.{0}::{2} "
            "ELSE false END)"
        ).format(name, sql.Literal(column.type), sql.SQL(column.type))

    same_key = [sql.SQL("c.{} = {}").format(sql.Identifier(k), sql.SQL(cast_value_sql(config, k, "s")))
                for k in config.key]
    cur.execute(
        sql.SQL("DELETE FROM {staging} s USING {core} c WHERE s.{batch} = %(batch_id)s AND {same}").format(
            staging=qualified(config.staging_table), core=qualified(config.core_table),
            batch=sql.Identifier(BATCH_COLUMN),
            same=sql.SQL(" AND ").join([*same_key, *(same(c) for c in config.columns if c.name not in config.key)]),
        ),
        {"batch_id": batch_id},
    )
    return cur.rowcount


def _newest_landed(cur, config: SourceConfig, batch_id: str,
                   cast_at_source: frozenset[str] = frozenset()) -> tuple[dt.datetime | None, bool]:
    """The latest watermark value the batch landed, of those that cast (as `_newest` reads rows),
    and whether every typed value of the batch casts: one scan that casts every typed column but
    those the source guarantees cast (`cast_at_source`: `CopyGuarantees.columns_that_cast`) and
    takes the newest watermark (`row_scan.cast_all`), so that validate need not cast them again;
    when a value does not cast, the newest of those that do, by an aggregate of its own."""
    name, column_type = config.watermark_column, config.column(config.watermark_column).type
    found = row_scan.cast_all(cur, config.staging_table, batch_id,
                              [(c, t) for c, t in config.typed_columns if c not in cast_at_source],
                              also=[f"max({quoted(name)}::{column_type})"])
    if found is not None:
        return watermarks.parse(found[0], column_type), True
    cur.execute(sql.SQL("SELECT max({}) FROM {} WHERE {} = %s").format(
        sql.SQL(cast_value_sql(config, name)), qualified(config.staging_table), sql.Identifier(BATCH_COLUMN)),
        (batch_id,))
    return watermarks.parse(cur.fetchone()[0], column_type), False


def _newest(newest: dt.datetime | None, values: Iterator[Any], column_type: str) -> dt.datetime | None:
    """The latest of `newest` and the watermark values that parse (a value that does not is the
    quality gate's to reject, not a reason to stop landing)."""
    for value in values:
        try:
            moment = watermarks.parse(value, column_type)
        except watermarks.WatermarkError:
            continue
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    return newest
