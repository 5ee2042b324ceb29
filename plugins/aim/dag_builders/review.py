"""The `quarantine_review` DAG: release or discard a quarantined batch from the Airflow UI.

Trigger it with the batch id (from the failed run's message or `ops.batch`), the action and a
note. A release emits the source's core asset, so what reads that source runs again.
"""
from __future__ import annotations

from airflow.sdk import DAG, AssetAlias, Param, task

from aim.dag_builders.defaults import dag_arguments, failure_callbacks

RELEASED = AssetAlias("aim-released-batches")


def build_review_dag() -> DAG:
    """One manually triggered DAG with one task, calling `aim.quarantine`."""
    with DAG(**dag_arguments(
        dag_id="quarantine_review", owner="data-platform", tags=["quality", "ops"],
        failure=failure_callbacks("quarantine_review"),  # a refused review: its reason goes to the reviewer's channels
        retries=0,  # a review is one decision by a person: it is not repeated behind their back
        description="Release or discard a quarantined batch after review",
        schedule=None,
        params={
            "batch_id": Param("", type="string", minLength=1, description="the quarantined batch's id"),
            "action": Param("release", enum=["release", "discard"]),
            "note": Param("", type="string", minLength=3, description="why: kept in ops.batch.review_note"),
        },
        doc_md=__doc__,
    )) as dag:

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
