"""The `quarantine_review` DAG: release or discard a quarantined batch from the Airflow UI.

Trigger it with the batch id (from the failed run's message or `ops.batch`), the action and a
note. A release emits the source's core asset, so what reads that source runs again.
"""
from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, AssetAlias, Param, task

RELEASED = AssetAlias("aim-released-batches")


def build_review_dag() -> DAG:
    """One manually triggered DAG with one task, calling `aim.quarantine`."""
    with DAG(
        dag_id="quarantine_review",
        description="Release or discard a quarantined batch after review",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        tags=["quality", "ops"],
        default_args={"owner": "data-platform", "retries": 0, "execution_timeout": dt.timedelta(hours=1)},
        params={
            "batch_id": Param("", type="string", minLength=1, description="the quarantined batch's id"),
            "action": Param("release", enum=["release", "discard"]),
            "note": Param("", type="string", minLength=3, description="why: kept in ops.batch.review_note"),
        },
        doc_md=__doc__,
    ) as dag:

        @task(outlets=[RELEASED])
        def review(params: dict, outlet_events=None) -> dict:
            from aim import quarantine
            from aim.assets import core_asset

            if params["action"] == "release":
                result = quarantine.release(params["batch_id"], params["note"])
                if result["rows_loaded"]:
                    outlet_events[RELEASED].add(core_asset(result["source"]))
                return result
            return quarantine.discard(params["batch_id"], params["note"])

        review()
    return dag
