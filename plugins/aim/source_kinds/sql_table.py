"""`kind: sql`: a table in any SQLAlchemy database, read incrementally by a watermark column."""
from __future__ import annotations

from typing import Any, Iterator, Literal

from pydantic import Field, field_validator

from aim.source_kinds.base import IDENTIFIER, Chunk, CopyGuarantees, ExtractRequest, SourceKind, Watermarked


class SqlExtract(Watermarked):
    """Where a `sql` source's rows are and how to pick up only what changed."""

    kind: Literal["sql"] = "sql"
    table: str = Field(description="schema.table (or table) in the source database")

    @field_validator("table")
    @classmethod
    def _qualified_name(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) > 2 or not all(IDENTIFIER.match(p) for p in parts):
            raise ValueError(f"expected 'schema.table' or 'table' in lower case, got {value!r}")
        return value


class SqlTable(SourceKind):
    name = "sql"
    extract_model = SqlExtract

    def describe(self, config) -> str:
        extract = config.extract
        return (f"reads {extract.table} changed at or after the highest {extract.watermark_column} merged, "
                f"less {extract.overlap_seconds} s of overlap")

    def connection_types(self, config) -> tuple[str, ...]:
        from aim.db import SQL_CONNECTION_TYPES

        return SQL_CONNECTION_TYPES

    def access(self, config, conn: Any | None) -> Any:
        from aim.db import url_from_airflow_connection

        return url_from_airflow_connection(conn)

    def chunks(self, config, access: Any, request: ExtractRequest) -> Iterator[Chunk]:
        for rows in _table_read(config, access, request).chunks():
            yield Chunk(rows)

    def copy_out(self, config, access: Any, request: ExtractRequest, *, batch_id: str) -> Iterator[bytes] | None:
        """A PostgreSQL source writes its rows for COPY itself (`COPY ... TO STDOUT`): bytes, not
        Python objects, on the way to staging. Not for a source whose key the platform derives."""
        read = _read_copied_by_the_server(config, access, request)
        return read.copy_out(leading=[batch_id, None]) if read is not None else None

    def guarantees(self, config, access: Any) -> CopyGuarantees:
        """A PostgreSQL table's column types and primary key (`TableRead.schema_facts`): a typed
        column of the configured type holds only values that cast to it (its text is the type's
        own output), and a primary key whose columns are all key columns of the configured type
        (or text, varchar or char for a text key, which the merge compares as they are) gives each
        key once in one `COPY`. Nothing for a source whose key the platform derives (it does not
        land by `copy_out`) or that is not PostgreSQL."""
        read = _read_copied_by_the_server(config, access, ExtractRequest())
        if read is None:
            return CopyGuarantees()
        same_type, primary_key = read.schema_facts({c.name: c.type for c in config.extracted_columns})
        return CopyGuarantees(
            each_key_once=bool(primary_key) and all(k in config.key and k in same_type for k in primary_key),
            columns_that_cast=frozenset(c for c, _ in config.typed_columns if c in same_type),
        )


def _table_read(config, access: Any, request: ExtractRequest):
    """The read of the source's table a landing asks for: its extracted columns, changed since `request.since`."""
    from aim.extract.sql import TableRead

    return TableRead(
        access, config.extract.table, [(c.name, c.type) for c in config.extracted_columns],
        config.extract.watermark_column, since=request.since,
    )


def _read_copied_by_the_server(config, access: Any, request: ExtractRequest):
    """`_table_read`, when the source writes those rows for COPY itself (`copy_out`): a PostgreSQL
    source whose key the platform does not derive (it computes a derived key row by row). Else None."""
    if config.derived_key is not None:
        return None
    read = _table_read(config, access, request)
    return read if read.server_copies() else None


KIND = SqlTable()
