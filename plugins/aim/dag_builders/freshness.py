"""The `watch_freshness` DAG: every hour, how fresh each source's data is against its promise.

One task, `aim.freshness.check_freshness`: one row per source in `ops.freshness_check` (the latest
in `ops.source_freshness`), and a "data stale" alert to IT operations when a source turns stale.
"""
from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from aim.dag_builders.defaults import dag_arguments, failure_callbacks

DAG_ID = "watch_freshness"


def build_freshness_dag() -> DAG:
    """The hourly `watch_freshness` DAG; parsing it opens no connection."""
    with DAG(**dag_arguments(
        dag_id=DAG_ID, owner="data-platform", tags=["ops", "freshness"],
        failure=failure_callbacks(DAG_ID),  # a watch that cannot check is itself an alert
        retries=1, timeout=dt.timedelta(minutes=10),
        description="Stale-data watch: each source's newest data against the freshness it promises",
        schedule="17 * * * *",
        max_active_runs=1,  # one check at a time: one alert per stale episode
        doc_md=__doc__,
    )) as dag:

        @task
        def check_freshness(**context) -> dict:
            from aim.freshness import check_freshness as check

            results = check(run_id=context["run_id"])
            return {"checked": len(results),
                    **{status: sorted(r.source for r in results if r.status == status)
                       for status in ("stale", "no data")},
                    "alerted": sorted(r.source for r in results if r.alert_channels is not None)}

        check_freshness()
    return dag
