"""A source's warehouse tables, derived from its configuration.

`staging.<source>` holds batches as received: every column as text, plus `_batch_id` and
`_origin` (the file or page a row came from).
`core.<source>` holds the typed, conformed rows, keyed on the source's key, each row carrying
the batch and run that last changed it. Identifiers are always quoted (`psycopg2.sql`).
"""
from __future__ import annotations

from psycopg2 import sql

from aim.sources import SourceConfig

BATCH_COLUMN = "_batch_id"
ORIGIN_COLUMN = "_origin"
TRACE_COLUMNS = ("_batch_id", "_run_id", "_loaded_at")


def qualified(schema_table: tuple[str, str]) -> sql.Identifier:
    """`schema.table` as a quoted SQL identifier."""
    return sql.Identifier(*schema_table)


def ensure_tables(cur, config: SourceConfig) -> None:
    """Create the source's staging and core tables, adding columns the configuration gained."""
    staging, core = qualified(config.staging_table), qualified(config.core_table)
    cur.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({} text NOT NULL, {} text)").format(
            staging, sql.Identifier(BATCH_COLUMN), sql.Identifier(ORIGIN_COLUMN)
        )
    )
    cur.execute(  # staging tables made before rows recorded their origin
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} text").format(staging, sql.Identifier(ORIGIN_COLUMN))
    )
    cur.execute(
        sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
            staging, sql.Identifier(ORIGIN_COLUMN), sql.Literal("Where the row came from: file key, API page")
        )
    )
    cur.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(f"{config.source}_batch"), staging, sql.Identifier(BATCH_COLUMN)
        )
    )
    for column in config.columns:
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} text").format(staging, sql.Identifier(column.name))
        )

    typed = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in config.columns]
    key = sql.SQL(", ").join(sql.Identifier(k) for k in config.key)
    cur.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ({}, "
            "_batch_id text NOT NULL, _run_id text NOT NULL, _loaded_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY ({}))"
        ).format(core, sql.SQL(", ").join(typed), key)
    )
    for column, column_sql in zip(config.columns, typed):
        cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}").format(core, column_sql))
        if column.description:
            cur.execute(
                sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                    core, sql.Identifier(column.name), sql.Literal(column.description)
                )
            )
    cur.execute(
        sql.SQL("COMMENT ON TABLE {} IS {}").format(
            core, sql.Literal(f"{config.department}, {config.system}. {config.description}".strip())
        )
    )
