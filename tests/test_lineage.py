"""Lineage: the Airflow OpenLineage provider, configured by environment alone, writes an event for
every task run, and the events of one police ingest and the publication after it name the whole
path: the police records system → staging → core → the published files. No credentials in them.

The DAGs run through `dag.test()` in a child process started with the OpenLineage settings in its
environment, as a worker is: the provider decides at plugin load whether to listen, once per
process, and this pytest process loaded Airflow's plugins long before with lineage off. The child
has exited, so every event it emitted has been written, when the test reads the file.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from aim import lineage
from aim_demo import mpd_rms
from aim_demo.databases import libpq_dsn

ROOT = Path(__file__).resolve().parents[1]
INGEST_TASKS = {"start_run", "extract_and_land", "validate", "merge", "finish_run", "announce_changes"}
SECRET = "lineage-test-secret-9f3a"  # the server trusts local connections: the password only has to travel

RUN_DAGS = """
import json
from aim.dag_builders.ingest import build_ingest_dag
from aim.dag_builders.publish import build_publish_dag
from aim.settings import sources_dir
from aim.sources import load_source_config

ingest = build_ingest_dag(load_source_config(sources_dir() / "mpd_crime_incidents.yaml")).test()
publish = build_publish_dag().test()
print(json.dumps({"ingest": [ingest.run_id, str(ingest.state)], "publish": [publish.run_id, str(publish.state)]}))
"""


def with_password(url: str) -> str:
    """`url` carrying a password (its own, or SECRET)."""
    parsed = make_url(url)
    return parsed.set(password=parsed.password or SECRET).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def lineage_run(new_database, airflow_db, tmp_path_factory):
    """One police ingest and one publication with the file transport on; their runs and events."""
    warehouse, rms = with_password(new_database("aim_wh")), with_password(new_database("mpd_rms"))
    folder = tmp_path_factory.mktemp("lineage")
    exports, events_file = folder / "exports", folder / "openlineage.jsonl"
    mpd_rms.seed(rms)
    env = {
        **os.environ,
        "AIM_WAREHOUSE_URL": warehouse,
        "AIRFLOW_CONN_MPD_RMS": libpq_dsn(rms),
        "AIM_EXPORT_URL": str(exports),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "aim-test",
    }
    done = subprocess.run([sys.executable, "-c", RUN_DAGS], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"the DAG runs failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["ingest"][1] == "success" and runs["publish"][1] == "success", runs
    text = events_file.read_text(encoding="utf-8")
    return {"runs": runs, "text": text, "events": [json.loads(line) for line in text.splitlines() if line.strip()],
            "warehouse": make_url(warehouse), "rms": make_url(rms), "exports": exports.resolve()}


def task_events(run, dag_id: str, run_id: str) -> dict[str, dict[str, dict]]:
    """Task id -> event type -> the event, for the task runs of one DAG run."""
    found: dict[str, dict[str, dict]] = {}
    for event in run["events"]:
        airflow = event["run"]["facets"].get("airflow") or {}
        task = airflow.get("task") or {}
        if (airflow.get("dagRun") or {}).get("run_id") != run_id or not event["job"]["name"].startswith(f"{dag_id}."):
            continue
        found.setdefault(task.get("task_id") or event["job"]["name"].split(".", 1)[1], {})[event["eventType"]] = event
    return found


def names(datasets: list[dict]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def test_every_ingest_task_run_has_its_start_and_complete_event(lineage_run):
    dag_id, run_id = "ingest_mpd_crime_incidents", lineage_run["runs"]["ingest"][0]
    events = task_events(lineage_run, dag_id, run_id)
    assert set(events) == INGEST_TASKS
    for task_id, by_type in events.items():
        assert {"START", "COMPLETE"} <= set(by_type), f"{task_id}: {sorted(by_type)}"
        assert by_type["COMPLETE"]["job"]["namespace"] == "aim-test"
        assert by_type["COMPLETE"]["job"]["name"] == f"{dag_id}.{task_id}"


def test_the_events_name_the_path_from_the_police_system_to_the_published_files(lineage_run):
    wh, rms = lineage_run["warehouse"], lineage_run["rms"]
    warehouse_ns = f"postgres://{wh.host}:{wh.port or 5432}"
    police_system = (f"postgres://{rms.host}:{rms.port or 5432}", f"{rms.database}.rms.incident")
    staging = (warehouse_ns, f"{wh.database}.staging.mpd_crime_incidents")
    core = (warehouse_ns, f"{wh.database}.core.mpd_crime_incidents")
    latest = lineage_run["exports"] / "latest" / "mpd-crime-incidents"
    published = {("file", str(latest / f"mpd-crime-incidents{suffix}"))
                 for suffix in (".csv", ".json", ".parquet", ".schema.json")}

    ingest = task_events(lineage_run, "ingest_mpd_crime_incidents", lineage_run["runs"]["ingest"][0])
    land, merge = ingest["extract_and_land"]["COMPLETE"], ingest["merge"]["COMPLETE"]
    assert names(land["inputs"]) == {police_system}
    assert names(land["outputs"]) == {staging}
    assert staging in names(ingest["validate"]["COMPLETE"]["inputs"])
    assert names(merge["inputs"]) == {staging}
    assert names(merge["outputs"]) == {core}

    publish = task_events(lineage_run, "publish_open_data", lineage_run["runs"]["publish"][0])["publish"]["COMPLETE"]
    assert core in names(publish["inputs"])
    assert published <= names(publish["outputs"])
    assert all(Path(name).exists() for namespace, name in published)
    # the path holds together: each hop's output is the next hop's input
    assert names(land["outputs"]) & names(merge["inputs"]) and names(merge["outputs"]) & names(publish["inputs"])


def test_the_measure_values_data_set_names_the_marts_views_it_is_read_from(lineage_run):
    publish = task_events(lineage_run, "publish_open_data", lineage_run["runs"]["publish"][0])["publish"]["COMPLETE"]
    wh = lineage_run["warehouse"]
    inputs = names(publish["inputs"])
    assert (f"postgres://{wh.host}:{wh.port or 5432}", f"{wh.database}.marts.measure_history") in inputs


def test_no_event_carries_a_password(lineage_run):
    assert lineage_run["events"], "no OpenLineage event was written"
    for url in (lineage_run["warehouse"], lineage_run["rms"]):
        assert url.password and url.password not in lineage_run["text"]
    assert "@" + str(lineage_run["rms"].host) not in lineage_run["text"], "a connection URL in an event"


def test_lineage_is_off_without_a_transport_and_touches_no_task(monkeypatch):
    for name in [n for n in os.environ if n.startswith(("AIRFLOW__OPENLINEAGE__", "OPENLINEAGE_"))]:
        monkeypatch.delenv(name)
    task = FakeTask()

    assert not lineage.enabled()
    lineage.merged({"task": task}, source_config("mpd_crime_incidents"))
    assert task.inlets == [] and task.outlets == ["an asset"]


class FakeTask:
    """Stands in for the running operator: what `lineage.record` sets."""

    def __init__(self):
        self.inlets: list = []
        self.outlets: list = ["an asset"]


def source_config(source: str):
    from aim.settings import sources_dir
    from aim.sources import load_source_config

    return load_source_config(sources_dir() / f"{source}.yaml")


@pytest.fixture
def lineage_on(monkeypatch, tmp_path):
    """OpenLineage configured in this process's environment (the provider reads it at each call under pytest)."""
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT",
                       json.dumps({"type": "file", "log_file_path": str(tmp_path / "events.jsonl")}))
    assert lineage.enabled()


def test_http_and_file_sources_are_named_from_their_connections_at_run_time(lineage_on, tmp_path):
    from types import SimpleNamespace

    from aim.source_kinds.file_drop import file_store
    from aim.source_kinds.json_api import http_base

    api = source_config("dpw_service_requests")
    access = http_base(SimpleNamespace(host="calls.example.org", schema="https", port=8443, password=SECRET,
                                       extra_dejson={}))
    named = lineage.source_system(api, access)
    assert (named.namespace, named.name) == ("https://calls.example.org:8443", "/api/v1/requests")

    drop = source_config("bmo_aim_registry")
    local = lineage.source_system(drop, file_store(drop.extract, SimpleNamespace(extra_dejson={"path": str(tmp_path)})))
    assert (local.namespace, local.name) == ("file", str(tmp_path.resolve() / "budget"))
    in_s3 = lineage.source_system(drop, file_store(drop.extract.model_copy(update={"location": "s3://bmo-drop/budget/"})))
    assert (in_s3.namespace, in_s3.name) == ("s3://bmo-drop", "budget")


def test_the_measures_step_names_the_marts_views_over_the_measure_values(lineage_on, lineage_run, monkeypatch):
    wh = lineage_run["warehouse"]
    monkeypatch.setenv("AIM_WAREHOUSE_URL", wh.render_as_string(hide_password=False))
    task = FakeTask()

    lineage.measured({"task": task}, ["mpd_crime_incidents", "bmo_aim_registry"])

    namespace = f"postgres://{wh.host}:{wh.port or 5432}"
    assert {(d.namespace, d.name) for d in task.inlets} == {
        (namespace, f"{wh.database}.core.mpd_crime_incidents"), (namespace, f"{wh.database}.core.bmo_aim_registry")}
    outputs = {(d.namespace, d.name) for d in task.outlets[1:]}
    assert (namespace, f"{wh.database}.core.aim_measure_value") in outputs
    assert {(namespace, f"{wh.database}.marts.scorecard"), (namespace, f"{wh.database}.marts.measure_history")} <= outputs
    assert task.outlets[0] == "an asset", "the asset that schedules the DAGs downstream stays"


def test_files_published_to_s3_are_named_by_bucket_and_key(lineage_on):
    named = {(d.namespace, d.name) for d in lineage.published_files("mpd-crime-incidents", "s3://city-portal/open-data")}
    assert named == {("s3://city-portal", f"open-data/latest/mpd-crime-incidents/mpd-crime-incidents{suffix}")
                     for suffix in (".csv", ".json", ".parquet", ".schema.json")}
