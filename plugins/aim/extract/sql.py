"""Reading a table in any SQLAlchemy database, oldest change first, in bounded memory.

Rows come through a server-side cursor (`stream_results`), a chunk at a time, so memory stays
bounded whatever the table's size. A PostgreSQL source can instead write the same rows itself,
in COPY's text format (`copy_out`: `COPY (SELECT ...) TO STDOUT`), streamed as the server sends
it, which staging's `COPY ... FROM STDIN` takes as it is: bytes, not Python objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import sqlalchemy as sa

from aim import db

CHUNK_ROWS = 10_000

# Configured column types as SQLAlchemy types, so every engine returns Python values of one kind
# (SQLite, for one, hands back timestamps as text unless told the column's type).
_SA_TYPES = {
    "text": sa.Text, "smallint": sa.SmallInteger, "integer": sa.Integer, "bigint": sa.BigInteger,
    "numeric": sa.Numeric, "double precision": sa.Float, "boolean": sa.Boolean, "date": sa.Date,
    "timestamp": sa.DateTime, "timestamptz": lambda: sa.DateTime(timezone=True),
}


@dataclass
class TableRead:
    """The rows of `table` whose `watermark_column` is at or after `since` (None: every row).

    `columns` are (name, type) pairs, the type one of the platform's column types.
    """

    source_url: Any
    table: str
    columns: Sequence[tuple[str, str]]
    watermark_column: str
    since: Any = None
    chunk_rows: int = CHUNK_ROWS

    def query(self) -> sa.Select:
        """SELECT of the columns changed at or after `since`, oldest change first."""
        schema, _, name = self.table.rpartition(".")
        table = sa.table(name, *(sa.column(n, _SA_TYPES[t]()) for n, t in self.columns), schema=schema or None)
        watermark = table.c[self.watermark_column]
        select = sa.select(*(table.c[n] for n, _ in self.columns)).order_by(watermark)
        if self.since is not None:
            select = select.where(watermark >= sa.bindparam("since", self.since))
        return select

    def server_copies(self) -> bool:
        """True when the source is PostgreSQL, which can write the rows for COPY itself (`copy_out`)."""
        return db.normalize_url(self.source_url).get_backend_name() == "postgresql"

    def copy_out(self, leading: Sequence[Any] = ()) -> Iterator[bytes]:
        """The rows of `query` in COPY's text format, `leading` constant values first on every row,
        written by the source (`COPY (SELECT ...) TO STDOUT`) and yielded as it arrives: bounded
        memory, whatever the table's size. Values are PostgreSQL's text for them (dates in ISO
        order; a timestamptz with its offset; a boolean as t or f), tabs, newlines and backslashes
        escaped; NULL and an empty string are both an empty field (`NULL ''`: staging keeps one
        meaning for "nothing here"). The text format, not CSV: no quotes for the server to write and
        parse, and no `FORCE_NULL` test of every field on the way in (about 8% of the COPY's time).
        Rows come in the table's order, not the watermark's: landing does not need it."""
        from psycopg import sql as pgsql

        select = pgsql.SQL("SELECT {leading} FROM {table}").format(
            leading=pgsql.SQL(", ").join([*(pgsql.Literal(v) for v in leading),
                                          *(pgsql.Identifier(n) for n, _ in self.columns)]),
            table=self._pg_table(),
        )
        if self.since is not None:
            select += pgsql.SQL(" WHERE {} >= {}").format(pgsql.Identifier(self.watermark_column),
                                                          pgsql.Literal(self.since))
        with self._pg_connect() as conn:
            conn.execute("SET DateStyle = 'ISO, YMD'")
            with conn.cursor() as cur, cur.copy(pgsql.SQL("COPY ({}) TO STDOUT WITH (FORMAT text, NULL '')").format(select)) as copy:
                for piece in copy:
                    yield bytes(piece)

    def schema_facts(self, configured: dict[str, str]) -> tuple[set[str], list[str]]:
        """What the PostgreSQL table's own schema says of its columns: those of `configured`
        (name -> configured type) that have that type, so that their text, cast back to it, is
        one value per value (a text column may be text, varchar or char), and its primary key's
        columns (none for a view or a table without one). Another type is not the same: an
        integer read as text (`01` and `1` are two values of one key), a numeric read as integer
        (1.4 and 1.2 would be one), a smallint read as boolean (2 does not cast)."""
        with self._pg_connect() as conn:
            rows = conn.execute(
                "SELECT a.attname, coalesce(a.atttypid = k.t::regtype OR (k.t::regtype = 'text'::regtype "
                "AND a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype)), false), "
                "a.attnum = ANY (coalesce((SELECT c.conkey FROM pg_constraint c "
                "WHERE c.conrelid = a.attrelid AND c.contype = 'p'), '{}')) "
                "FROM pg_attribute a LEFT JOIN unnest(%s::text[], %s::text[]) AS k(n, t) ON k.n = a.attname "
                "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
                (list(configured), list(configured.values()), self._pg_table().as_string(conn)),
            ).fetchall()
        return {name for name, same, _ in rows if same}, [name for name, _, in_key in rows if in_key]

    def _pg_connect(self):
        import psycopg

        return psycopg.connect(
            db.normalize_url(self.source_url).set(drivername="postgresql").render_as_string(hide_password=False))

    def _pg_table(self):
        from psycopg import sql as pgsql

        schema, _, name = self.table.rpartition(".")
        return pgsql.Identifier(schema, name) if schema else pgsql.Identifier(name)

    def chunks(self) -> Iterator[list[tuple]]:
        """Yield lists of rows (tuples in `columns` order), `chunk_rows` at a time."""
        eng = db.engine(self.source_url)
        try:
            with eng.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=self.chunk_rows).execute(self.query())
                for partition in result.partitions(self.chunk_rows):
                    yield [tuple(r) for r in partition]
        finally:
            eng.dispose()
