"""A source's warehouse tables, derived from its configuration.

`staging.<source>` holds batches as received: every column as text, plus `_batch_id` and
`_origin` (the file or page a row came from).
`core.<source>` holds the typed, conformed rows, keyed on the source's key, each row carrying
the batch and run that last changed it. Identifiers are always quoted (`psycopg2.sql`).
"""
from __future__ import annotations

import hashlib
import json

from psycopg2 import sql

from aim.sources import SourceConfig

BATCH_COLUMN = "_batch_id"
ORIGIN_COLUMN = "_origin"
ROW_ID_COLUMN = "_row_id"  # a staged row's ctid, as the batch subquery names it, so a row-level rule can set it aside
TRACE_COLUMNS = ("_batch_id", "_run_id", "_loaded_at")
TABLES_LAYOUT = 3  # the layout `ensure_tables` makes: change it with what ensure_tables does (3: no _row_id, BRIN)


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
    cur.execute(  # staging tables made before rows recorded their origin; or that had an id column to reject by
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} text, DROP COLUMN IF EXISTS {}").format(
            staging, sql.Identifier(ORIGIN_COLUMN), sql.Identifier(ROW_ID_COLUMN)
        )
    )
    cur.execute(
        sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
            staging, sql.Identifier(ORIGIN_COLUMN), sql.Literal("Where the row came from: file key, API page")
        )
    )
    # Landing writes every row through the staging table's indexes: a btree on the batch id cost a
    # COPY of 1M rows a third of its time, a BRIN one a tenth. A batch's rows lie together (each is
    # one landing), so BRIN still finds a small batch among the quarantined ones staging keeps.
    schema = config.staging_table[0]
    cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(schema, f"{config.source}_batch")))
    cur.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING brin ({}) WITH (autosummarize = on)").format(
            sql.Identifier(f"{config.source}_batch_brin"), staging, sql.Identifier(BATCH_COLUMN)
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


def table_shape(config: SourceConfig) -> str:
    """A hash of everything `ensure_tables` makes the source's tables from."""
    shape = {"layout": TABLES_LAYOUT, "source": config.source, "department": config.department,
             "system": config.system, "description": config.description, "key": list(config.key),
             "columns": [[c.name, c.type, c.description] for c in config.columns]}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode("utf-8")).hexdigest()


def ensure_tables_once(cur, config: SourceConfig) -> bool:
    """`ensure_tables`, unless both tables exist and were last made to this very configuration
    (`ops.source_table_shape`): then no DDL at all. Returns True when it ran the DDL."""
    shape = table_shape(config)
    cur.execute(
        "SELECT shape_sha256 = %s AND to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL "
        "FROM ops.source_table_shape WHERE source = %s",
        (shape, qualified(config.staging_table).as_string(cur), qualified(config.core_table).as_string(cur),
         config.source),
    )
    row = cur.fetchone()
    if row is not None and row[0]:
        return False
    ensure_tables(cur, config)
    cur.execute(
        "INSERT INTO ops.source_table_shape (source, shape_sha256) VALUES (%s, %s) "
        "ON CONFLICT (source) DO UPDATE SET shape_sha256 = EXCLUDED.shape_sha256, made_at = now()",
        (config.source, shape),
    )
    return True
