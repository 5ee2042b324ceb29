"""The `publish_open_data` DAG: every released data set, the scorecard site, the manifest and
the catalog, on each data set's inputs changing, with a daily run as the floor.

Inputs are the core assets of the sources the data sets project and the AIM measure values;
a source whose batch failed its quality gate emits nothing, so its data sets keep their last
good release.
"""
from __future__ import annotations

from airflow.sdk import DAG, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, task

from aim.assets import core_asset, measure_values_asset
from aim.dag_builders.defaults import dag_arguments, failure_callbacks
from aim.publish.datasets import inventory

DAG_ID = "publish_open_data"


def build_publish_dag() -> DAG:
    """One DAG, one task: `aim.publish.publication.publish` over the whole inventory."""
    sources = sorted({d.source for d in inventory() if d.released and d.source})
    with DAG(**dag_arguments(
        dag_id=DAG_ID, owner="open-data-program", tags=["publish", "open-data"],
        failure=failure_callbacks(DAG_ID),  # its runs are in ops.dataset_release and Airflow's own log
        description="Open data sets, scorecard, manifest and DCAT-US catalog for the city's portal",
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable("0 6 * * *", timezone="America/Chicago"),
            assets=AssetAny(*[core_asset(s) for s in sources], measure_values_asset()),
        ),
        max_active_runs=1,
        doc_md=__doc__,
    )) as dag:

        @task
        def publish(**context) -> dict:
            from aim import lineage
            from aim.publish.publication import publish as publish_all

            result = publish_all(run_id=context["run_id"])
            lineage.published(context, skipped=result.skipped)
            return {"changed": result.changed, "unchanged": result.unchanged, "site": result.site,
                    "skipped": result.skipped}

        publish()
    return dag
