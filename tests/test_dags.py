"""Every DAG file imports, and every generated ingest DAG follows the platform's policy."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from aim.dag_factory import build_ingest_dags, dag_id_for
from aim.settings import sources_dir
from aim.sources import load_source_config, source_config_paths

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAG was found in dags/"


def test_one_ingest_dag_per_source_configuration(dagbag):
    configs = [load_source_config(p) for p in source_config_paths(sources_dir())]
    assert configs, "no source configuration in dags/sources"
    ingest = {dag_id for dag_id in dagbag.dag_ids if dag_id.startswith("ingest_")}
    assert ingest == {dag_id_for(c) for c in configs}


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
        assert task.on_failure_callback, f"{dag_id}.{task.task_id} has no failure callback"
        if task.task_id != "validate":
            assert task.retries >= 1, f"{dag_id}.{task.task_id} is not retried"
    assert dag.get_task("validate").retries == 0  # a failed quality gate is not transient
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
