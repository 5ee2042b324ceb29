"""Landing batches in `staging` by `COPY`, chunk by chunk, in bounded memory.

An empty value and a missing value land alike, as NULL: source exports use empty strings for
missing values, and staging keeps one meaning for "nothing here".
"""
from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Sequence

from psycopg2 import sql

from aim.tables import BATCH_COLUMN, ORIGIN_COLUMN, qualified


def _as_text(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


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
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        qualified(table), sql.SQL(", ").join(sql.Identifier(c) for c in [BATCH_COLUMN, ORIGIN_COLUMN, *columns])
    )
    copy_sql = statement.as_string(cur)
    total = 0
    for chunk in chunks:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in chunk:
            writer.writerow([batch_id, origin, *(_as_text(v) for v in row)])
        if not chunk:
            continue
        buffer.seek(0)
        cur.copy_expert(copy_sql, buffer)
        total += len(chunk)
    return total


def discard_batch(cur, table: tuple[str, str], batch_id: str) -> int:
    """Delete a batch's rows from a staging table (a retried landing starts clean); returns rows deleted."""
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE {} = %s").format(qualified(table), sql.Identifier(BATCH_COLUMN)),
        (batch_id,),
    )
    return cur.rowcount
