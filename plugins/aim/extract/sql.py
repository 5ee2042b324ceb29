"""Incremental extraction from any SQLAlchemy database, by a watermark column.

Rows come through a server-side cursor (`stream_results`), a chunk at a time, so memory stays
bounded whatever the table's size.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import sqlalchemy as sa

from aim import db
from aim.sources import SourceConfig

CHUNK_ROWS = 10_000

# Configured column types as SQLAlchemy types, so every engine returns Python values of one kind
# (SQLite, for one, hands back timestamps as text unless told the column's type).
_SA_TYPES = {
    "text": sa.Text, "smallint": sa.SmallInteger, "integer": sa.Integer, "bigint": sa.BigInteger,
    "numeric": sa.Numeric, "double precision": sa.Float, "boolean": sa.Boolean, "date": sa.Date,
    "timestamp": sa.DateTime, "timestamptz": lambda: sa.DateTime(timezone=True),
}


def parse_watermark(value: str | None, column_type: str) -> Any:
    """A stored watermark (text) as the Python value to compare the source column with."""
    if value is None:
        return None
    if column_type in ("timestamp", "timestamptz"):
        return dt.datetime.fromisoformat(value)
    if column_type == "date":
        return dt.date.fromisoformat(value)
    if column_type in ("smallint", "integer", "bigint"):
        return int(value)
    return value


def format_watermark(value: Any) -> str:
    """A watermark value as stored text (ISO 8601 for dates and times)."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


@dataclass
class Extraction:
    """Rows changed after a watermark, and the highest watermark seen once they are consumed."""

    config: SourceConfig
    source_url: Any
    since: Any
    chunk_rows: int = CHUNK_ROWS
    max_watermark: Any = field(default=None, init=False)

    def query(self) -> sa.Select:
        """SELECT of the configured columns changed after `since`, oldest change first."""
        schema, _, name = self.config.extract.table.rpartition(".")
        table = sa.table(
            name, *(sa.column(c.name, _SA_TYPES[c.type]()) for c in self.config.columns), schema=schema or None
        )
        watermark = table.c[self.config.extract.watermark_column]
        select = sa.select(*(table.c[c] for c in self.config.column_names)).order_by(watermark)
        if self.since is not None:
            select = select.where(watermark > sa.bindparam("since", self.since))
        return select

    def chunks(self) -> Iterator[Sequence[Sequence[Any]]]:
        """Yield lists of rows (tuples in configured column order), `chunk_rows` at a time."""
        position = self.config.column_names.index(self.config.extract.watermark_column)
        eng = db.engine(self.source_url)
        try:
            with eng.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=self.chunk_rows).execute(self.query())
                for partition in result.partitions(self.chunk_rows):
                    rows = [tuple(r) for r in partition]
                    newest = max((r[position] for r in rows if r[position] is not None), default=None)
                    if newest is not None and (self.max_watermark is None or newest > self.max_watermark):
                        self.max_watermark = newest
                    yield rows
        finally:
            eng.dispose()
