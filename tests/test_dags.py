"""Every DAG file imports, the DAGs are exactly the configured ones, and every DAG follows the
platform's policy (owner, tags, failure recording and alerts, retries, timeouts)."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from aim.alerts import CHANNELS
from aim.dag_builders.defaults import START_DATE
from aim.dag_builders.ingest import build_ingest_dags, dag_id_for
from aim.settings import sources_dir
from aim.sources import load_source_config, source_config_paths

DAGS = Path(__file__).resolve().parents[1] / "dags"
# The platform's DAGs besides one ingest DAG per source file (aim.dag_builders).
PLATFORM_DAGS = {"aim_measures", "publish_open_data", "quarantine_review", "watch_freshness"}
# Tasks a retry cannot help: a failed quality gate fails the same way; a review is a person's decision.
NOT_RETRIED = {("ingest", "validate"), ("quarantine_review", "review")}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAG was found in dags/"


def test_the_dags_are_one_per_source_and_the_platform_s_own(dagbag):
    configs = [load_source_config(p) for p in source_config_paths(sources_dir())]
    assert configs, "no source configuration in dags/sources"
    assert set(dagbag.dag_ids) == {dag_id_for(c) for c in configs} | PLATFORM_DAGS


@pytest.mark.parametrize("dag_id", sorted(set(build_ingest_dags()) | PLATFORM_DAGS))
def test_every_dag_follows_the_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.owner and dag.owner != "airflow", "every DAG names the team that owns it"
    assert dag.tags, "every DAG is tagged for the Airflow UI's filters"
    assert (dag.start_date, dag.catchup) == (START_DATE, False)
    for task in dag.tasks:
        where = f"{dag_id}.{task.task_id}"
        callbacks = task.on_failure_callback or []
        channels = {type(c) for c in callbacks}
        assert set(CHANNELS) <= channels, f"{where} does not alert through every channel"
        assert task.execution_timeout and task.execution_timeout <= dt.timedelta(hours=24), f"{where} has no timeout"
        kind = "ingest" if dag_id.startswith("ingest_") else dag_id
        if (kind, task.task_id) in NOT_RETRIED:
            assert task.retries == 0, f"{where} is retried in vain"
        else:
            assert task.retries >= 1 and task.retry_exponential_backoff, f"{where} is not retried with backoff"


@pytest.mark.parametrize("dag_id", sorted(build_ingest_dags()))
def test_ingest_dag_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    config = next(
        c for c in (load_source_config(p) for p in source_config_paths(sources_dir())) if dag_id_for(c) == dag_id
    )
    assert dag.owner == config.owner
    assert "ingest" in dag.tags and f"kind:{config.kind}" in dag.tags
    assert any(t.startswith("department:") for t in dag.tags)
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert any(callable(c) and not isinstance(c, CHANNELS) for c in task.on_failure_callback), \
            f"{dag_id}.{task.task_id} does not record its failure in ops.run_log"
    order = [t.task_id for t in dag.topological_sort()]
    assert [t for t in order if t != "announce_changes"] == [
        "start_run", "extract_and_land", "validate", "merge", "finish_run"
    ]
    announce = dag.get_task("announce_changes")
    assert announce.upstream_task_ids == {"merge"}
    assert [a.uri for a in announce.outlets] == [f"aim://warehouse/core/{config.source}"]


def test_a_broken_source_file_is_one_import_error_and_the_others_still_load(tmp_path, monkeypatch):
    shutil.copy(sources_dir() / "mpd_crime_incidents.yaml", tmp_path)
    (tmp_path / "dpw_potholes.yaml").write_text(
        (sources_dir() / "mpd_crime_incidents.yaml").read_text()
        .replace("source: mpd_crime_incidents", "source: dpw_potholes")
        .replace("type: smallint", "type: tinyint", 1)
    )
    monkeypatch.setenv("AIM_SOURCES_DIR", str(tmp_path))

    bag = DagBag(dag_folder=str(DAGS / "ingest_sources.py"))

    assert set(bag.dags) == {"ingest_mpd_crime_incidents"}
    assert len(bag.import_errors) == 1
    message = next(iter(bag.import_errors.values()))
    assert "dpw_potholes.yaml" in message
    assert "columns.4.type" in message and "tinyint" in message
    assert "mpd_crime_incidents.yaml" not in message
