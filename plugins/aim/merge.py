"""Publishing a validated batch from `staging` into `core`: one transaction, idempotent.

The upsert, the watermark and the batch's status move together: either all of them change or
none does. Rows whose values did not change are left alone (not rewritten, not counted).
"""
from __future__ import annotations

from psycopg2 import sql

from aim.sources import SourceConfig
from aim.staging import discard_batch
from aim.tables import BATCH_COLUMN, qualified


class MergeError(RuntimeError):
    """The batch could not be merged; the message names the source and the batch."""


def merge_statement(config: SourceConfig) -> sql.Composed:
    """INSERT … ON CONFLICT upsert of one staged batch into core, casting text to configured types."""
    core, staging = qualified(config.core_table), qualified(config.staging_table)
    names = [sql.Identifier(c.name) for c in config.columns]
    casts = [sql.SQL("{}::{}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in config.columns]
    updates = [sql.SQL("{0} = EXCLUDED.{0}").format(n) for n in names if n.strings[0] not in config.key]
    trace = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(t)) for t in ("_batch_id", "_run_id", "_loaded_at")]
    core_row = sql.SQL(", ").join(sql.SQL("{}.{}").format(core, n) for n in names)
    new_row = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(n) for n in names)
    return sql.SQL(
        "INSERT INTO {core} ({names}, _batch_id, _run_id, _loaded_at) "
        "SELECT {casts}, {batch}, %(run_id)s, now() FROM {staging} WHERE {batch} = %(batch_id)s "
        "ON CONFLICT ({key}) DO UPDATE SET {updates} "
        "WHERE ({core_row}) IS DISTINCT FROM ({new_row})"
    ).format(
        core=core,
        names=sql.SQL(", ").join(names),
        casts=sql.SQL(", ").join(casts),
        batch=sql.Identifier(BATCH_COLUMN),
        staging=staging,
        key=sql.SQL(", ").join(sql.Identifier(k) for k in config.key),
        updates=sql.SQL(", ").join([*updates, *trace]),
        core_row=core_row,
        new_row=new_row,
    )


def merge_batch(cur, config: SourceConfig, batch_id: str, run_id: str) -> int:
    """Upsert a validated batch into core, advance the watermark, clear the batch from staging,
    and mark its file versions merged (so they are never loaded again).

    Returns rows inserted or changed. A batch already merged merges nothing again (returns 0);
    a batch that is not validated (landed only, or quarantined) is refused.
    """
    cur.execute("SELECT status, max_watermark FROM ops.batch WHERE batch_id = %s FOR UPDATE", (batch_id,))
    row = cur.fetchone()
    if row is None:
        raise MergeError(f"source {config.source}, batch {batch_id}: no such batch in ops.batch")
    status, max_watermark = row
    if status == "merged":
        return 0
    if status != "validated":
        raise MergeError(f"source {config.source}, batch {batch_id}: is {status}, only a validated batch merges")
    try:
        cur.execute(merge_statement(config), {"batch_id": batch_id, "run_id": run_id})
    except Exception as err:
        raise MergeError(f"source {config.source}, batch {batch_id}: merge into core failed: {err}") from err
    changed = cur.rowcount
    if max_watermark is not None:
        cur.execute(
            """
            INSERT INTO ops.watermark (source, value, batch_id) VALUES (%s, %s, %s)
            ON CONFLICT (source) DO UPDATE SET value = EXCLUDED.value, batch_id = EXCLUDED.batch_id, updated_at = now()
            """,
            (config.source, max_watermark, batch_id),
        )
    discard_batch(cur, config.staging_table, batch_id)
    cur.execute("UPDATE ops.batch SET status = 'merged', merged_at = now() WHERE batch_id = %s", (batch_id,))
    cur.execute("UPDATE ops.source_file SET status = 'merged', merged_at = now() WHERE batch_id = %s", (batch_id,))
    return changed
