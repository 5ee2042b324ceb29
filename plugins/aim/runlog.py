"""The run log and batch register in `ops`: what each run did, in the warehouse where IT can query it."""
from __future__ import annotations

from typing import Any

from psycopg2.extras import Json

_COUNTS = ("rows_extracted", "rows_rejected", "rows_loaded", "rows_exported")


def start_run(cur, *, source: str, run_id: str, dag_id: str, batch_id: str, logical_date: Any) -> None:
    """Record a run as running (a retried run starts its record afresh, keeping the row)."""
    cur.execute(
        """
        INSERT INTO ops.run_log (source, run_id, dag_id, batch_id, logical_date, status, started_at)
        VALUES (%s, %s, %s, %s, %s, 'running', now())
        ON CONFLICT (source, run_id) DO UPDATE
           SET status = 'running', batch_id = EXCLUDED.batch_id, message = NULL, ended_at = NULL,
               rows_extracted = NULL, rows_rejected = NULL, rows_loaded = NULL, rows_exported = NULL,
               quality_outcome = NULL, warnings = NULL, started_at = now(),
               dag_id = EXCLUDED.dag_id, logical_date = EXCLUDED.logical_date
        """,
        (source, run_id, dag_id, batch_id, logical_date),
    )


def update_run(cur, *, source: str, run_id: str, **fields: Any) -> None:
    """Set counts (`rows_*`), `quality_outcome`, `status` or `message` on a run's record."""
    allowed = {*_COUNTS, "quality_outcome", "status", "message", "warnings"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown run_log fields: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = %({name})s" for name in fields)  # names from the allow-list above
    ended = ", ended_at = now()" if fields.get("status") in ("success", "failed") else ""
    cur.execute(
        f"UPDATE ops.run_log SET {assignments}{ended} WHERE source = %(source)s AND run_id = %(run_id)s",
        {**fields, "source": source, "run_id": run_id},
    )


def register_batch(cur, *, batch_id: str, source: str, run_id: str, rows: int, max_watermark: str | None) -> None:
    """Record a batch as landed in staging (a re-landed batch replaces its record)."""
    cur.execute(
        """
        INSERT INTO ops.batch (batch_id, source, run_id, status, rows_landed, max_watermark)
        VALUES (%s, %s, %s, 'landed', %s, %s)
        ON CONFLICT (batch_id) DO UPDATE
           SET status = 'landed', rows_landed = EXCLUDED.rows_landed, max_watermark = EXCLUDED.max_watermark,
               landed_at = now(), merged_at = NULL, failure = NULL,
               rows_rejected = 0, warnings = 0, data_docs = NULL  -- no checks have run on this landing yet
        """,
        (batch_id, source, run_id, rows, max_watermark),
    )


def fail_run(cur, *, source: str, run_id: str, dag_id: str, message: str) -> None:
    """Mark a run failed with `message`, recording it even when it failed before it was logged."""
    cur.execute(
        """
        INSERT INTO ops.run_log (source, run_id, dag_id, status, message, ended_at)
        VALUES (%s, %s, %s, 'failed', %s, now())
        ON CONFLICT (source, run_id) DO UPDATE SET status = 'failed', message = EXCLUDED.message, ended_at = now()
        """,
        (source, run_id, dag_id, message),
    )


def batch_status(cur, batch_id: str) -> dict[str, Any] | None:
    """A batch's record as a dict, or None when it was never landed."""
    cur.execute(
        "SELECT batch_id, source, run_id, status, rows_landed, max_watermark FROM ops.batch WHERE batch_id = %s",
        (batch_id,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip(("batch_id", "source", "run_id", "status", "rows_landed", "max_watermark"), row))


def quarantine_batch(cur, batch_id: str, failure: str) -> None:
    """Mark a batch quarantined with the reason; its rows stay in staging for review."""
    cur.execute("UPDATE ops.batch SET status = 'quarantined', failure = %s WHERE batch_id = %s", (failure, batch_id))
    cur.execute("UPDATE ops.source_file SET status = 'quarantined' WHERE batch_id = %s", (batch_id,))


def record_quality_results(cur, rows: list[dict[str, Any]]) -> None:
    """Store one row per evaluated expectation in `ops.quality_result`."""
    for row in rows:  # a suite has tens of expectations, not thousands of rows
        cur.execute(
            """
            INSERT INTO ops.quality_result (source, batch_id, run_id, suite, expectation, description, column_name,
                                            kwargs, severity, success, observed_value, unexpected_count,
                                            unexpected_sample, error)
            VALUES (%(source)s, %(batch_id)s, %(run_id)s, %(suite)s, %(expectation)s, %(description)s,
                    %(column_name)s, %(kwargs)s, %(severity)s, %(success)s, %(observed_value)s,
                    %(unexpected_count)s, %(unexpected_sample)s, %(error)s)
            """,
            {
                **row,
                "kwargs": Json(row["kwargs"]),
                "observed_value": Json(row.get("observed_value")),
                "unexpected_sample": Json(row.get("unexpected_sample")),
            },
        )


def read_watermark(cur, source: str) -> str | None:
    """The source's stored watermark (text), or None before its first merge."""
    cur.execute("SELECT value FROM ops.watermark WHERE source = %s", (source,))
    row = cur.fetchone()
    return row[0] if row else None


def mark_validated(cur, batch_id: str) -> None:
    """Mark a landed batch as having passed its critical checks (the only state merge accepts)."""
    cur.execute("UPDATE ops.batch SET status = 'validated', failure = NULL WHERE batch_id = %s", (batch_id,))


def file_version_settled(cur, source: str, file_key: str, sha256: str) -> bool:
    """True when this exact version (key and content) of a file was merged into core, or discarded
    after review: either way it is never loaded again."""
    cur.execute(
        "SELECT 1 FROM ops.source_file WHERE source = %s AND file_key = %s AND sha256 = %s "
        "AND status IN ('merged', 'discarded')",
        (source, file_key, sha256),
    )
    return cur.fetchone() is not None


def register_file(cur, *, source: str, file_key: str, sha256: str, size: int, rows: int, batch_id: str,
                  extra_columns: list[str] = ()) -> None:
    """Record a file version as landed in `batch_id` (a version landed before, unmerged, moves to this batch)."""
    cur.execute(
        """
        INSERT INTO ops.source_file (source, file_key, sha256, size_bytes, rows_landed, batch_id, status, extra_columns)
        VALUES (%s, %s, %s, %s, %s, %s, 'landed', %s)
        ON CONFLICT (source, file_key, sha256) DO UPDATE
           SET rows_landed = EXCLUDED.rows_landed, batch_id = EXCLUDED.batch_id, status = 'landed',
               extra_columns = EXCLUDED.extra_columns
        """,
        (source, file_key, sha256, size, rows, batch_id, list(extra_columns)),
    )


def record_batch_checks(cur, batch_id: str, *, rows_rejected: int, warnings: int, data_docs: str | None) -> None:
    """Record on the batch how many rows row-level rules set aside, how many warnings it had, and
    where its Data Docs page was published (None: no suite ran on it)."""
    cur.execute(
        "UPDATE ops.batch SET rows_rejected = %s, warnings = %s, data_docs = %s WHERE batch_id = %s",
        (rows_rejected, warnings, data_docs, batch_id),
    )
