"""Landing batches in `staging` by `COPY`, chunk by chunk, in bounded memory.

An empty value and a missing value land alike, as NULL: source exports use empty strings for
missing values, and staging keeps one meaning for "nothing here".

Three ways in, one result: rows of Python values (`copy_chunks`), COPY text that a PostgreSQL
source writes itself (`copy_text`), and Arrow tables that Arrow writes as CSV (`copy_tables`).
"""
from __future__ import annotations

import csv
import io
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from psycopg2 import sql

from aim.tables import BATCH_COLUMN, ORIGIN_COLUMN, qualified

if TYPE_CHECKING:
    import pyarrow as pa


def _as_text(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _copy_tagged_rows(cur, table: tuple[str, str], columns: Sequence[str]) -> str:
    """The COPY of CSV rows of the batch id, the origin, then `columns`, into `table`."""
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        qualified(table), sql.SQL(", ").join(sql.Identifier(c) for c in [BATCH_COLUMN, ORIGIN_COLUMN, *columns]),
    ).as_string(cur)


def copy_chunks(
    cur,
    table: tuple[str, str],
    columns: Sequence[str],
    batch_id: str,
    chunks: Iterable[Sequence[Sequence[Any]]],
    origin: str | None = None,
) -> int:
    """`COPY` every row of every chunk into `table`, tagged with `batch_id` and `origin`; returns rows landed.

    Only one chunk is held in memory at a time, as CSV text.
    """
    copy_sql = _copy_tagged_rows(cur, table, columns)
    tags = (batch_id, origin)
    total = 0
    for chunk in chunks:
        if not chunk:
            continue
        if bytes in set(map(type, chain.from_iterable(chunk))):  # a value as bytes: decoded, value by value
            chunk = [tuple(_as_text(v) for v in row) for row in chunk]
        buffer = io.StringIO()
        # csv's C writer walks the rows, each the tags then its values: no Python code per row or value
        csv.writer(buffer, lineterminator="\n").writerows(map(tuple.__add__, repeat(tags), map(tuple, chunk)))
        buffer.seek(0)
        cur.copy_expert(copy_sql, buffer)
        total += len(chunk)
    return total


_READ_BYTES = 1 << 16  # how much `copy_text` hands COPY at a time


def copy_text(cur, table: tuple[str, str], columns: Sequence[str], pieces: Iterable[bytes]) -> int:
    """`COPY` bytes in COPY's text format, with `NULL ''`, into `table`: rows of the batch id, the
    origin, then `columns` (what `copy_chunks` writes). An empty value lands as NULL, as in
    `copy_chunks`. Reads `pieces` as COPY asks for them, so only a piece or two is held at a time;
    returns rows landed."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT text, NULL '')").format(
        qualified(table), sql.SQL(", ").join(sql.Identifier(c) for c in [BATCH_COLUMN, ORIGIN_COLUMN, *columns]),
    )
    cur.copy_expert(statement.as_string(cur), BytesReader(iter(pieces)), size=_READ_BYTES)
    return cur.rowcount


class BytesReader:
    """A file to read from (for `copy_expert`, or Arrow), filled from an iterator of byte strings
    as it is read: only what a read asks for, and the rest of one piece, is held."""

    closed = False  # what Arrow checks before reading a Python file

    def __init__(self, pieces):
        self._pieces = pieces
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buffer += piece
        size = len(self._buffer) if size < 0 else size
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def copy_tables(cur, table: tuple[str, str], columns: Sequence[str], batch_id: str, origin: str | None,
                tables: Iterable["pa.Table"]) -> int:
    """`COPY` Arrow tables (string columns, in the order of `columns`, missing values null) into `table`,
    tagged with `batch_id` and `origin`: what `copy_chunks` lands from the same values as rows,
    written as CSV by Arrow's C++ writer, one table in memory at a time. Returns rows landed."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    copy_sql = _copy_tagged_rows(cur, table, columns)
    total = 0
    for values in tables:
        rows = values.num_rows
        tags = [pa.nulls(rows, pa.string()).fill_null(batch_id),
                pa.nulls(rows, pa.string()) if origin is None else pa.nulls(rows, pa.string()).fill_null(origin)]
        tagged = pa.table([*tags, *values.columns], names=[BATCH_COLUMN, ORIGIN_COLUMN, *columns])
        buffer = pa.BufferOutputStream()  # every string quoted, a null left empty: NULL to COPY
        pcsv.write_csv(tagged, buffer, write_options=pcsv.WriteOptions(include_header=False))
        cur.copy_expert(copy_sql, pa.BufferReader(buffer.getvalue()))
        total += rows
    return total


def discard_batch(cur, table: tuple[str, str], batch_id: str) -> int:
    """Delete a batch's rows from a staging table (a retried landing starts clean); returns rows deleted."""
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE {} = %s").format(qualified(table), sql.Identifier(BATCH_COLUMN)),
        (batch_id,),
    )
    return cur.rowcount


def clear_batch(cur, table: tuple[str, str], batch_id: str) -> None:
    """Remove a merged batch's rows from a staging table: by TRUNCATE when they are all the table
    holds, which gives its storage back at once (a DELETE of a million rows takes 0.7 s and leaves
    as many dead ones for autovacuum), else by DELETE. The table is locked first (ACCESS
    EXCLUSIVE, until the transaction ends), so rows another transaction is landing in it are
    waited for and then seen: never truncated."""
    staging, batch = qualified(table), sql.Identifier(BATCH_COLUMN)
    cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(staging))
    cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {} WHERE {} <> %s)").format(staging, batch), (batch_id,))
    if cur.fetchone()[0]:
        cur.execute(sql.SQL("TRUNCATE {}").format(staging))
    else:
        discard_batch(cur, table, batch_id)


def analyze(cur, table: tuple[str, str]) -> None:
    """Refresh the planner's statistics of a staging table once a batch has landed in it, in the
    landing's transaction: the checks and the merge are planned for the rows really there (a
    parallel scan for a big batch), not for what autovacuum last saw, whenever it last looked.
    A small sample (3,000 rows; a few hundredths of a second at 1M rows, a full one half a
    second) is enough for that: the row count is close, the value statistics rough, until
    autovacuum's own ANALYZE."""
    cur.execute("SET LOCAL default_statistics_target = 10")
    cur.execute(sql.SQL("ANALYZE {}").format(qualified(table)))
    cur.execute("RESET default_statistics_target")
