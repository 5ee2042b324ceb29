"""The `aim_measures` run's steps: what each task of the DAG (`aim.dag_builders.measures`) does.

A run is either

- **incremental** (no params): per measure, the months whose source rows were loaded since the
  last successful incremental run (less `plan.LOADED_AT_OVERLAP`), the months whose completeness
  changed, and the `plan.RECENT_MONTHS` latest months (some measures depend on today's date, e.g.
  "orders due before today"); a measure whose SQL file is new or changed gets its whole history
  recomputed;
- a **backfill** (`start_month`, optionally `end_month` and `measures`): exactly that range.

Either way the fiscal quarters and years containing the months are recomputed with them. Each
run has a row in `ops.measure_run`. Settings come from the environment when a task runs.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from psycopg2.extras import Json

from aim import db, settings
from aim.measures import calendar, compute, coverage, plan
from aim.measures.commentary import COMMENTARY_SOURCE, sync_commentary
from aim.measures.files import measure_files, select_files, source_tables
from aim.measures.registry import sync_registry
from aim.migrations import migrate
from aim.sources import source_config_paths

log = logging.getLogger(__name__)

DAG_ID = "aim_measures"
OWNER = "bmo-aim"
REGISTRY_SOURCE = "bmo_aim_registry"
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


@dataclass(frozen=True)
class RunRequest:
    """What a run was asked to do: a backfill of a range of months, or an incremental run."""

    mode: str  # 'backfill' or 'incremental'
    start_month: dt.date | None = None
    end_month: dt.date | None = None
    measure_codes: tuple[str, ...] | None = None


def request_from_params(params: Mapping[str, Any]) -> RunRequest:
    """The run's request from its params: `start_month` (YYYY-MM) makes a backfill through
    `end_month` (default: the current month), of the `measures` listed (default: all)."""
    start, end = params.get("start_month") or None, params.get("end_month") or None
    codes = tuple(params.get("measures") or ()) or None
    if start is None:
        if end is not None:
            raise ValueError("end_month was given without start_month: give both (a backfill) or neither")
        if codes is not None:
            raise ValueError("measures can only be chosen for a backfill: give start_month too")
        return RunRequest("incremental")
    start_month = calendar.parse_month(start)
    end_month = calendar.parse_month(end) if end else calendar.current_month()
    if end_month < start_month:
        raise ValueError(f"end_month {end} is before start_month {start}")
    return RunRequest("backfill", start_month, end_month, codes)


def measure_sources(folder: Path | None = None) -> list[str]:
    """The ingest sources whose new data should trigger the DAG: the registry, the departments'
    commentary (when configured), and every `core.<source>` a measure file reads for which a
    source configuration exists."""
    configured = {path.stem for path in source_config_paths(settings.sources_dir())}  # a file is named after its source
    read = {
        name.split(".", 1)[1]
        for name in source_tables(measure_files(folder).values())
        if name.startswith("core.")
    }
    return sorted(((read | {COMMENTARY_SOURCE}) & configured) | {REGISTRY_SOURCE})


# --------------------------------------------------------------------------- the tasks' steps


def start_and_sync(*, run_id: str, dag_id: str, params: Mapping[str, Any]) -> dict[str, int]:
    """Check the params, bring the warehouse schema up to date, open the run in `ops.measure_run`
    and sync the registry into measures and targets and the departments' commentary into versioned
    notes (one transaction). Returns the sync's counts."""
    request = request_from_params(params)
    url = settings.warehouse_url()
    migrate(url)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO ops.measure_run (run_id, dag_id, mode, status, start_month, end_month, started_at)
            VALUES (%s, %s, %s, 'running', %s, %s, now())
            ON CONFLICT (run_id) DO UPDATE
               SET mode = EXCLUDED.mode, status = 'running', start_month = EXCLUDED.start_month,
                   end_month = EXCLUDED.end_month, changes_since = NULL, changes_through = NULL,
                   registry = NULL, measures = NULL, rows_written = NULL, message = NULL,
                   started_at = now(), ended_at = NULL
            """,
            (run_id, dag_id, request.mode, request.start_month, request.end_month),
        )
        counts = {**sync_registry(cur, run_id), **sync_commentary(cur, run_id)}
        cur.execute("UPDATE ops.measure_run SET registry = %s WHERE run_id = %s", (Json(counts), run_id))
    return counts


def recompute_values(*, run_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Refresh the sources' coverage, then recompute what the run asks for (a backfill range, or
    the incremental plan) in one transaction, and record it in `ops.measure_run`. Returns the rows
    written in all and per measure (skipped measures say why)."""
    request = request_from_params(params)
    files = measure_files()
    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT now()")
        looked_at = cur.fetchone()[0]
        ready, skipped = compute.loaded_measures(cur, files.values())
        outcome: dict[str, Any] = dict(skipped)
        coverage.refresh_coverage(cur, coverage.sources_of(ready.values()))
        since = None
        if request.mode == "backfill":
            months = calendar.months_in(request.start_month, request.end_month)
            todo = {f.code: months for f in select_files(files, request.measure_codes)}
            whole_history: set[str] = set()
        else:
            since = _last_incremental_change_time(cur)
            todo, whole_history = plan.incremental_plan(cur, ready, since)
        for code, months in todo.items():
            if code not in ready:
                continue
            outcome[code] = compute.recompute_months(cur, ready[code], months, run_id)
        for code in whole_history:  # their history is now computed with this version of their file
            cur.execute(
                """
                INSERT INTO ops.measure_file (measure_code, file_name, sha256, run_id, computed_at)
                VALUES (%s, %s, %s, %s, now())
                ON CONFLICT (measure_code) DO UPDATE
                   SET file_name = EXCLUDED.file_name, sha256 = EXCLUDED.sha256, run_id = EXCLUDED.run_id,
                       computed_at = now()
                """,
                (code, files[code].path.name, files[code].sha256, run_id),
            )
        computed = [month for code, months in todo.items() if code in ready for month in months]
        rows = sum(n for n in outcome.values() if isinstance(n, int))
        cur.execute(
            """
            UPDATE ops.measure_run
               SET start_month = %s, end_month = %s, changes_since = %s, changes_through = %s,
                   measures = %s, rows_written = %s
             WHERE run_id = %s
            """,
            (
                request.start_month or (min(computed) if computed else None),
                request.end_month or (max(computed) if computed else None),
                since, looked_at if request.mode == "incremental" else None, Json(outcome), rows, run_id,
            ),
        )
    return {"mode": request.mode, "rows_written": rows, "measures": outcome}


def finish_run(*, run_id: str) -> None:
    """Mark the run successful."""
    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE ops.measure_run SET status = 'success', message = NULL, ended_at = now() WHERE run_id = %s",
            (run_id,),
        )


def record_failure(*, run_id: str, dag_id: str, task_id: str, error: BaseException | None) -> None:
    """Mark the run failed with the task and the reason (recording it even when it failed before it was opened)."""
    message = f"task {task_id}: {error if error is not None else 'unknown error'}"[:4000]
    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO ops.measure_run (run_id, dag_id, status, message, ended_at)
            VALUES (%s, %s, 'failed', %s, now())
            ON CONFLICT (run_id) DO UPDATE SET status = 'failed', message = EXCLUDED.message, ended_at = now()
            """,
            (run_id, dag_id, message),
        )


def _last_incremental_change_time(cur) -> dt.datetime | None:
    """Where the next incremental run starts: the last successful one's look, less the overlap."""
    cur.execute(
        "SELECT max(changes_through) FROM ops.measure_run WHERE status = 'success' AND mode = 'incremental'"
    )
    through = cur.fetchone()[0]
    return None if through is None else through - plan.LOADED_AT_OVERLAP
