"""The `aim_measures` DAG: sync the AIM registry, recompute measure values, record the run.

It runs when any source the measures read (or the registry) has new data: it is scheduled on the
core assets the ingest DAGs emit, never on a timer. The tasks' bodies are `aim.measures.runs`;
this module only wires them.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from aim.measures.files import MeasureError
from aim.measures.runs import (
    DAG_ID, MONTH_PATTERN, OWNER, finish_run, measure_sources, record_failure, recompute_values, start_and_sync,
)

# --------------------------------------------------------------------------- the DAG


# Failures a retry cannot fix: bad params, a registry row that cannot be a measure, a broken measure file.
PERMANENT_ERRORS = (ValueError, MeasureError)


@contextmanager
def _no_retry_for(errors: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Turn `errors` into AirflowFailException: the task fails at once instead of retrying in vain."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except errors as err:
        raise AirflowFailException(str(err)) from err


def _record_failure(context) -> None:
    """Record the failed run in ops.measure_run with the reason."""
    record_failure(run_id=context["run_id"], dag_id=DAG_ID, task_id=context["task_instance"].task_id,
                   error=context.get("exception"))


def build_measures_dag(folder: Path | None = None):
    """The `aim_measures` DAG: sync_registry → recompute → record, scheduled on the core assets of
    the sources the measure files in `folder` (default: AIM_MEASURES_DIR) read, and the registry's."""
    from airflow.sdk import DAG, AssetAny, Param, task

    from aim.assets import measure_values_asset

    from aim.assets import core_asset
    from aim.dag_builders.defaults import dag_arguments, failure_callbacks

    sources = measure_sources(folder)
    with DAG(**dag_arguments(
        dag_id=DAG_ID, owner=OWNER, tags=["aim", "measures"], failure=failure_callbacks(DAG_ID, _record_failure),
        description="AIM measures: registry sync and measure values, when their sources have new data",
        schedule=AssetAny(*[core_asset(source) for source in sources]),
        max_active_runs=1,  # runs share the incremental watermark and rewrite the same values
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
        doc_md=(
            "### AIM measures\n\nSyncs the AIM registry (`core.bmo_aim_registry`) into versioned measures and "
            "targets, refreshes the sources' coverage, then recomputes the measures in `sql/measures/` into "
            "`core.aim_measure_value` for the months whose source data or completeness changed (or, with "
            "`start_month`/`end_month`, exactly that range), with their fiscal quarters and years. "
            "Analysts read the results in `marts`. Runs: `ops.measure_run`.\n\n"
            f"Triggered by new data in: {', '.join(f'`core.{s}`' for s in sources)}."
        ),
    )) as dag:

        @task
        def sync_registry(**context) -> dict:
            with _no_retry_for(PERMANENT_ERRORS):
                return start_and_sync(run_id=context["run_id"], dag_id=DAG_ID, params=context["params"])

        @task
        def recompute(**context) -> dict:
            from aim import lineage

            lineage.measured(context, sources)
            with _no_retry_for(PERMANENT_ERRORS):
                return recompute_values(run_id=context["run_id"], params=context["params"])

        @task(outlets=[measure_values_asset()])  # what publishes the measures runs after this
        def record(**context) -> None:
            finish_run(run_id=context["run_id"])

        sync_registry() >> recompute() >> record()
    return dag
