"""The `aim_measures` DAG: sync the AIM registry, recompute measure values, record the run.

It runs when any source the measures read (or the registry) has new data: it is scheduled on
the core assets the ingest DAGs emit, never on a timer. A run is either

- **incremental** (no params): per measure, the months whose source rows were loaded since the
  last successful incremental run (less `LOADED_AT_OVERLAP`), plus the `RECENT_MONTHS` latest
  months (some measures depend on today's date, e.g. "orders due before today"); a measure
  whose SQL file is new or changed gets its whole history recomputed;
- a **backfill** (`start_month`, optionally `end_month` and `measures`): exactly that range.

Each run has a row in `ops.measure_run`. The steps below are the tasks' bodies, importable and
tested; the DAG only wires them. Settings come from the environment when a task runs.
"""
from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from psycopg2.extras import Json

from aim import clock, db, measures, settings
from aim.migrations import migrate
from aim.sources import source_config_paths

log = logging.getLogger(__name__)

DAG_ID = "aim_measures"
OWNER = "bmo-aim"
REGISTRY_SOURCE = "bmo_aim_registry"
LOADED_AT_OVERLAP = dt.timedelta(hours=1)  # covers ingest merges still committing when a run looked
RECENT_MONTHS = 2  # the current and the previous month are recomputed on every incremental run
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


@dataclass(frozen=True)
class RunRequest:
    """What a run was asked to do: a backfill of a range of months, or an incremental run."""

    mode: str  # 'backfill' or 'incremental'
    start_month: dt.date | None = None
    end_month: dt.date | None = None
    measure_codes: tuple[str, ...] | None = None


def current_month() -> dt.date:
    """The first day of the current month in Milwaukee."""
    return measures.month_start(clock.local_today())


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
    start_month = measures.parse_month(start)
    end_month = measures.parse_month(end) if end else current_month()
    if end_month < start_month:
        raise ValueError(f"end_month {end} is before start_month {start}")
    return RunRequest("backfill", start_month, end_month, codes)


def measure_sources(folder: Path | None = None) -> list[str]:
    """The ingest sources whose new data should trigger the DAG: the registry, and every
    `core.<source>` a measure file reads for which a source configuration exists."""
    configured = {path.stem for path in source_config_paths(settings.sources_dir())}  # a file is named after its source
    read = {
        name.split(".", 1)[1]
        for name in measures.source_tables(measures.measure_files(folder).values())
        if name.startswith("core.")
    }
    return sorted((read & configured) | {REGISTRY_SOURCE})


# --------------------------------------------------------------------------- the tasks' steps


def start_and_sync(*, run_id: str, dag_id: str, params: Mapping[str, Any]) -> dict[str, int]:
    """Check the params, bring the warehouse schema up to date, open the run in `ops.measure_run`
    and sync the registry into measures and targets (one transaction). Returns the sync's counts."""
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
        counts = measures.sync_registry(cur, run_id)
        cur.execute("UPDATE ops.measure_run SET registry = %s WHERE run_id = %s", (Json(counts), run_id))
    return counts


def recompute_values(*, run_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Recompute what the run asks for (a backfill range, or the months touched since the last
    successful incremental run) in one transaction, and record it in `ops.measure_run`.
    Returns the rows written in all and per measure (skipped measures say why)."""
    request = request_from_params(params)
    files = measures.measure_files()
    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT now()")
        looked_at = cur.fetchone()[0]
        since = None
        if request.mode == "backfill":
            codes = request.measure_codes or tuple(files)
            plan = {code: [(request.start_month, request.end_month)] for code in codes}
            whole_history: set[str] = set()
        else:
            since = _last_incremental_change_time(cur)
            plan, whole_history = _incremental_plan(cur, files, since)

        outcome: dict[str, Any] = {}
        for code, ranges in plan.items():
            missing = measures.missing_sources(cur, files[code]) if code in files else []
            if missing:
                outcome[code] = f"skipped: {', '.join(missing)} not loaded yet"
                whole_history.discard(code)
                continue
            outcome[code] = sum(
                measures.recompute(cur, [code], first, last, run_id).get(code, 0) for first, last in ranges
            )
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
        months = [month for ranges in plan.values() for pair in ranges for month in pair]
        rows = sum(n for n in outcome.values() if isinstance(n, int))
        cur.execute(
            """
            UPDATE ops.measure_run
               SET start_month = %s, end_month = %s, changes_since = %s, changes_through = %s,
                   measures = %s, rows_written = %s
             WHERE run_id = %s
            """,
            (
                request.start_month or (min(months) if months else None),
                request.end_month or (max(months) if months else None),
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
    return None if through is None else through - LOADED_AT_OVERLAP


def _incremental_plan(
    cur, files: dict[str, measures.MeasureFile], since: dt.datetime | None
) -> tuple[dict[str, list[tuple[dt.date, dt.date]]], set[str]]:
    """Per measure, the ranges of months to recompute, and the measures recomputed in full.

    In full: every measure on the first run, and a measure whose file is new or changed (one
    range over all its source months). Otherwise: the months touched since `since`, plus the
    latest `RECENT_MONTHS` months, as runs of consecutive months.
    """
    cur.execute("SELECT measure_code, sha256 FROM ops.measure_file")
    computed_with = dict(cur.fetchall())
    whole = {code for code, f in files.items() if since is None or computed_with.get(code) != f.sha256}
    plan: dict[str, list[tuple[dt.date, dt.date]]] = {}
    if whole:
        for code, months in measures.touched_months(cur, None, sorted(whole)).items():
            if months:
                plan[code] = [(months[0], max(months[-1], current_month()))]
    rest = sorted(set(files) - whole)
    if rest:
        recent = [measures.add_months(current_month(), -n) for n in range(RECENT_MONTHS)]
        for code, months in measures.touched_months(cur, since, rest).items():
            plan[code] = measures.month_ranges([*months, *recent])
    return plan, {code for code in whole if code in plan}


# --------------------------------------------------------------------------- the DAG


# Failures a retry cannot fix: bad params, a registry row that cannot be a measure, a broken measure file.
PERMANENT_ERRORS = (ValueError, measures.MeasureError)


@contextmanager
def _no_retry_for(errors: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Turn `errors` into AirflowFailException: the task fails at once instead of retrying in vain."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except errors as err:
        raise AirflowFailException(str(err)) from err


def _on_task_failure(context) -> None:
    """Record the failed run in ops.measure_run with the reason (never hiding the task's own failure)."""
    try:
        record_failure(
            run_id=context["run_id"], dag_id=DAG_ID, task_id=context["task_instance"].task_id,
            error=context.get("exception"),
        )
    except Exception:
        log.exception("could not record the failure of %s run %s", DAG_ID, context.get("run_id"))


def build_measures_dag(folder: Path | None = None):
    """The `aim_measures` DAG: sync_registry → recompute → record, scheduled on the core assets of
    the sources the measure files in `folder` (default: AIM_MEASURES_DIR) read, and the registry's."""
    from airflow.sdk import DAG, AssetAny, Param, task

    from aim.assets import measure_values_asset

    from aim.assets import core_asset
    from aim.dag_factory import START_DATE, retry_delay_seconds

    sources = measure_sources(folder)
    with DAG(
        dag_id=DAG_ID,
        description="AIM measures: registry sync and measure values, when their sources have new data",
        schedule=AssetAny(*[core_asset(source) for source in sources]),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,  # runs share the incremental watermark and rewrite the same values
        tags=["aim", "measures"],
        params={
            "start_month": Param(
                None, type=["null", "string"], pattern=MONTH_PATTERN, title="Backfill from month (YYYY-MM)",
                description="Recompute exactly the months from this one (a backfill); empty: an incremental run "
                "(the months whose source data changed since the last run).",
            ),
            "end_month": Param(
                None, type=["null", "string"], pattern=MONTH_PATTERN, title="Backfill through month (YYYY-MM)",
                description="Last month of the backfill, inclusive; empty: the current month.",
            ),
            "measures": Param(
                [], type="array", items={"type": "string", "pattern": r"^[A-Z]{3}-[0-9]{2}$"},
                title="Backfill only these measures", description="Measure codes, e.g. SAF-01; empty: every measure.",
            ),
        },
        default_args={
            "owner": OWNER,
            "retries": 2,
            "retry_delay": dt.timedelta(seconds=retry_delay_seconds()),
            "retry_exponential_backoff": True,
            "execution_timeout": dt.timedelta(hours=1),
            "on_failure_callback": _on_task_failure,
        },
        doc_md=(
            "### AIM measures\n\nSyncs the AIM registry (`core.bmo_aim_registry`) into versioned measures and "
            "targets, then recomputes the measures in `sql/measures/` into `core.aim_measure_value` for the "
            "months whose source data changed (or, with `start_month`/`end_month`, exactly that range). "
            "Analysts read the results in `marts`. Runs: `ops.measure_run`.\n\n"
            f"Triggered by new data in: {', '.join(f'`core.{s}`' for s in sources)}."
        ),
    ) as dag:

        @task
        def sync_registry(**context) -> dict:
            with _no_retry_for(PERMANENT_ERRORS):
                return start_and_sync(run_id=context["run_id"], dag_id=DAG_ID, params=context["params"])

        @task
        def recompute(**context) -> dict:
            with _no_retry_for(PERMANENT_ERRORS):
                return recompute_values(run_id=context["run_id"], params=context["params"])

        @task(outlets=[measure_values_asset()])  # what publishes the measures runs after this
        def record(**context) -> None:
            finish_run(run_id=context["run_id"])

        sync_registry() >> recompute() >> record()
    return dag
