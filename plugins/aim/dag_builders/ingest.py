"""Turns each source configuration file into one ingest DAG.

The DAG's tasks are thin wrappers around `aim.pipeline`; nothing here opens a connection or
reads an Airflow Variable, so parsing stays fast and never fails for want of a server.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

from airflow.sdk import DAG, task

from aim import lineage, pipeline, settings
from aim.assets import core_asset
from aim.dag_builders.defaults import dag_arguments, failure_callbacks
from aim.sources import SourceConfig, SourceConfigError, load_source_config, source_config_paths


def dag_id_for(config: SourceConfig) -> str:
    return f"ingest_{config.source}"


def _tag(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _failure(config: SourceConfig) -> list:
    """Record the failed run in ops.run_log with the reason, and alert: a batch that failed its
    quality gate is 'batch quarantined', any other failure 'run failed'."""
    from aim import alerts

    def record(context) -> None:
        pipeline.record_failure(config, run_id=context["run_id"], dag_id=dag_id_for(config),
                                task_id=context["task_instance"].task_id, error=context.get("exception"))

    def alert_of(context) -> alerts.Alert:
        alert = alerts.failed_run_alert(context, source=config.source)
        if isinstance(context.get("exception"), pipeline.QualityGateFailed):
            return dataclasses.replace(alert, kind="batch quarantined")
        return alert

    return failure_callbacks(config.source, record, alert_of)


def build_ingest_dag(config: SourceConfig) -> DAG:
    """One DAG for one source: start → extract_and_land → validate → merge → finish, and after the
    merge, `announce_changes` emits the source's core asset when rows changed. Publishing is
    `publish_open_data`'s alone: it runs on that asset, so an export failure never fails an ingest."""
    with DAG(
        **dag_arguments(
            dag_id=dag_id_for(config), owner=config.owner,
            tags=["ingest", f"department:{_tag(config.department)}", f"kind:{config.kind}"],
            failure=_failure(config),
            timeout=dt.timedelta(minutes=config.task_timeout_minutes),
            description=f"{config.department}: {config.system}",
            schedule=config.schedule,
            max_active_runs=1,  # runs of one source share its watermark: one at a time
            doc_md=(
                f"### {config.department}: {config.system}\n\n{config.description}\n\n"
                f"Source `{config.source}` ({config.kind}, connection `{config.connection_id}`), "
                f"checked by `expectations/{config.expectation_suite}`, merged into `core.{config.source}`."
            ),
        )
    ) as dag:

        @task
        def start_run(**context) -> str:
            return pipeline.start_run(
                config, run_id=context["run_id"], dag_id=context["dag"].dag_id,
                logical_date=context.get("logical_date"),
            )

        @task
        def extract_and_land(batch_id: str, **context) -> dict:
            from airflow.sdk import Connection

            from aim.connections import source_access

            conn = Connection.get(config.connection_id) if config.connection_id else None
            access = source_access(config, conn)
            lineage.landed(context, config, access)
            return pipeline.extract_and_land(config, access=access, run_id=context["run_id"], batch_id=batch_id)

        @task(retries=0)  # a failed quality gate is not transient: retrying would fail the same way
        def validate(batch_id: str, **context) -> dict:
            lineage.validated(context, config)
            return pipeline.validate(config, run_id=context["run_id"], batch_id=batch_id)

        @task
        def merge(batch_id: str, **context) -> dict:
            lineage.merged(context, config)
            return pipeline.merge(config, run_id=context["run_id"], batch_id=batch_id)

        @task(outlets=[core_asset(config.source)])
        def announce_changes(merged: dict) -> None:
            """Emit the core asset only when rows changed, so downstream DAGs do not run for nothing."""
            from airflow.sdk.exceptions import AirflowSkipException

            if not merged["rows_loaded"]:
                raise AirflowSkipException(f"no rows changed in core.{config.source}")

        @task
        def finish_run(**context) -> None:
            pipeline.finish_run(config, run_id=context["run_id"])

        batch_id = start_run()
        landed = extract_and_land(batch_id)
        validated = validate(batch_id)
        merged = merge(batch_id)
        landed >> validated >> merged >> finish_run()
        merged >> announce_changes(merged)
    return dag


class InvalidSourceConfigurations(DAG):
    """Stands in for source files that do not validate, so Airflow reports them as an import error.

    Airflow validates every DAG a file defines before keeping it, and records a DAG whose
    validation fails as an import error of the file while keeping the file's other DAGs. This
    DAG's validation always fails, with the message naming each broken file and field.
    """

    config_errors: tuple[str, ...] = ()

    def validate(self) -> None:
        raise SourceConfigError("invalid source configuration:\n" + "\n".join(self.config_errors))


def build_ingest_dags(folder: Path | None = None) -> dict[str, DAG]:
    """An ingest DAG for every valid source file in `folder` (default `dags/sources`).

    Files that do not validate add one `InvalidSourceConfigurations` DAG, which Airflow shows as
    an import error naming them; the valid sources' DAGs load as usual.
    """
    dags: dict[str, DAG] = {}
    errors = []
    for path in source_config_paths(folder or settings.sources_dir()):
        try:
            config = load_source_config(path)
        except SourceConfigError as err:
            errors.append(str(err))
            continue
        dags[dag_id_for(config)] = build_ingest_dag(config)
    if errors:
        broken = InvalidSourceConfigurations(dag_id="ingest_invalid_source_configurations", schedule=None)
        broken.config_errors = tuple(errors)
        dags[broken.dag_id] = broken
    return dags
