"""The run log in `ops`: what each run did, in the warehouse where IT can query it (batches: `aim.batches`)."""
from __future__ import annotations

from typing import Any

from psycopg2.extras import Json

_COUNTS = ("rows_extracted", "rows_rejected", "rows_loaded")


def start_run(cur, *, source: str, run_id: str, dag_id: str, batch_id: str, logical_date: Any) -> None:
    """Record a run as running (a retried run starts its record afresh, keeping the row)."""
    cur.execute(
        """
        INSERT INTO ops.run_log (source, run_id, dag_id, batch_id, logical_date, status, started_at)
        VALUES (%s, %s, %s, %s, %s, 'running', now())
        ON CONFLICT (source, run_id) DO UPDATE
           SET status = 'running', batch_id = EXCLUDED.batch_id, message = NULL, ended_at = NULL,
               rows_extracted = NULL, rows_rejected = NULL, rows_loaded = NULL,
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
