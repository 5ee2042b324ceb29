"""`make stack`: Airflow as deployed (CeleryExecutor, two Celery workers, redis, PostgreSQL metadata), real processes.

One stack for the module, over a temporary state folder, a warehouse, an Airflow metadata database
and a police records system of its own on the test PostgreSQL server, the API server on a free
port. Heartbeat and retry intervals are shortened so a killed worker's task is retried in seconds.
"""
from __future__ import annotations

import os
import signal
import time

import psycopg2
import pytest

from aim_demo import mpd_rms, stack
from aim_demo.databases import libpq_dsn, query
from aim_demo.embedded_pg import free_port

POLICE = "ingest_mpd_crime_incidents"
BIG_BATCH = 20_000  # new incidents in the batch a worker dies under
# What a killed worker costs: its task is noticed after the heartbeat timeout and retried at once.
FAST = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
}
COMPARED = ["reported_at", "location", "weapon_used", "ward", "zip", "rough_x", "rough_y"]


@pytest.fixture(scope="module")
def running(tmp_path_factory, new_database):
    """The stack, started; stopped at the end whatever happened (the test also stops it and checks)."""
    state = tmp_path_factory.mktemp("stack-state")
    warehouse, metadata, rms = new_database("stack_wh"), new_database("stack_airflow"), new_database("stack_rms")
    env = {
        "AIM_WAREHOUSE_URL": warehouse,
        "AIM_STACK_METADATA_URL": metadata,
        "AIM_STACK_RMS_URL": libpq_dsn(rms),
        "AIM_EXPORT_URL": str(state / "exports"),
        "AIM_QUALITY_URL": str(state / "quality"),
        "AIM_RETRY_DELAY_SECONDS": "1",
    }
    started = time.monotonic()
    try:
        info = stack.start(state, api_port=free_port(), env=env, timeout=240, quiet=True,
                           settings={**FAST, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"})  # the tasks' own lines too
        print(f"stack started in {time.monotonic() - started:.0f} s", flush=True)
        yield {**info, "state": state, "warehouse": warehouse, "metadata": metadata, "rms": rms}
    finally:
        stack.stop(state, quiet=True)


def _wait(what: str, find, timeout: float = 180.0, every: float = 1.0, describe=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if found:
            return found
        assert time.monotonic() < deadline, f"gave up waiting for {what} after {timeout:.0f} s ({describe()})"
        time.sleep(every)


def _worker(ti: dict) -> str:
    """The Celery worker a task instance ran on (its hostname is the worker's node name, worker1@host)."""
    return (ti.get("hostname") or "").split("@", 1)[0]


def _kill_worker(pid: int) -> list[int]:
    """SIGKILL a Celery worker as a machine dies: the worker, its pool and the task processes (which sit
    in process groups of their own), frozen first so none reacts to another's death."""
    tree = [pid, *stack.descendants(pid)]
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for member in tree:
            try:
                os.kill(member, sig)
            except ProcessLookupError:
                pass
    return tree


def _rows(url: str, table: str, keys: list[str]) -> dict[str, tuple]:
    columns = ", ".join(f"{c}::text" for c in COMPARED)
    return {row[0]: row[1:] for row in query(url, f"SELECT incident_num, {columns} FROM {table} "
                                                  "WHERE incident_num = ANY(%s)", (keys,))}


def test_the_stack_runs_the_pipeline_on_celery_and_survives_a_dead_worker(running, clock):
    state, url = running["state"], running["api_url"]
    began = time.monotonic()

    def phase(name: str) -> None:
        print(f"{name}: {time.monotonic() - began:.0f} s", flush=True)

    client = stack.AirflowClient(url, stack.ADMIN, stack.password(state))
    assert running["components"] == {name: True for name in ["redis", *stack.AIRFLOW_COMPONENTS]}

    # The police ingest through the REST API, on the Celery workers.
    for dag_id in (POLICE, "aim_measures", "publish_open_data"):
        assert client.unpause(dag_id)["is_paused"] is False
    run = client.trigger(POLICE)
    assert run["triggered_by"] == "rest_api"
    done = client.wait_for_run(POLICE, run["dag_run_id"], timeout=240)
    tis = client.task_instances(POLICE, run["dag_run_id"])
    assert done["state"] == "success", [(ti["task_id"], ti["state"]) for ti in tis]
    assert {ti["task_id"] for ti in tis if ti["state"] == "success"} >= {"start_run", "extract_and_land", "validate",
                                                                         "merge", "finish_run"}
    assert {_worker(ti) for ti in tis} <= set(stack.WORKERS) and all(ti["queue"] == "default" for ti in tis), tis
    phase("police ingest on Celery")
    celery_results = query(running["metadata"], "SELECT count(*) FROM celery_taskmeta WHERE status = 'SUCCESS'")
    assert celery_results[0][0] >= len(tis)  # Celery's own record of the tasks it ran (result backend)

    # aim_measures runs from the police asset, publish_open_data after it (from the measures' asset).
    measures = _wait("aim_measures to succeed", lambda: [
        r for r in client.runs("aim_measures") if r["run_type"] == "asset_triggered" and r["state"] == "success"])

    upstream = client.get(f"/api/v2/dags/aim_measures/dagRuns/{measures[0]['dag_run_id']}/upstreamAssetEvents")
    assert any(e["source_dag_id"] == POLICE for e in upstream["asset_events"]), upstream

    def published_after_measures():
        for r in client.runs("publish_open_data"):
            if r["state"] == "success" and r["run_type"] == "asset_triggered":
                events = client.get(f"/api/v2/dags/publish_open_data/dagRuns/{r['dag_run_id']}/upstreamAssetEvents")
                for event in events["asset_events"]:
                    if event["uri"] == "aim://warehouse/core/aim_measure_value":
                        return event
        return None

    event = _wait("publish_open_data to succeed after aim_measures", published_after_measures)
    assert event["source_dag_id"] == "aim_measures" and event["source_task_id"] == "record", event
    assert client.run("aim_measures", event["source_run_id"])["state"] == "success"
    assert measures
    phase("aim_measures and publish_open_data")

    # Refused while it runs, and when its port is another program's.
    with pytest.raises(stack.StackError, match="already running"):
        stack.start(state, api_port=running["api_port"], quiet=True)
    with pytest.raises(stack.StackError, match="taken by another program"):
        stack.start(state / "other", api_port=running["api_port"], quiet=True)
    assert stack.status(state)["running"]

    # A large batch; a worker dies while merge runs; the other worker runs it again; core has every row once.
    for dag_id in ("aim_measures", "publish_open_data"):  # not needed below: the workers are the ingest's alone
        client.unpause(dag_id, paused=True)
    _wait("the police DAG to be idle", lambda: all(r["state"] not in ("queued", "running")
                                                  for r in client.runs(POLICE)))
    warehouse = running["warehouse"]
    new = [num for part in "ABCD"  # add_incidents numbers up to 9,999 a call
           for num in mpd_rms.add_incidents(running["rms"], BIG_BATCH // 4, clock.replace(tzinfo=None), f"BIG{part}")]
    assert len(set(new)) == BIG_BATCH
    run_id = client.trigger(POLICE)["dag_run_id"]

    def states() -> dict[str, str | None]:
        return {ti["task_id"]: ti["state"] for ti in client.task_instances(POLICE, run_id)}

    # merge will wait on this lock, so the worker surely dies in the middle of it. Taken once start_run
    # (which alters core's columns, and so would wait too) is done, while the batch lands and is validated.
    _wait("start_run to finish", lambda: states().get("start_run") == "success", timeout=240, every=0.2, describe=states)
    assert states().get("merge") in (None, "scheduled", "queued"), states()
    hold = psycopg2.connect(libpq_dsn(warehouse))
    try:
        with hold.cursor() as cur:
            cur.execute("LOCK TABLE core.mpd_crime_incidents IN SHARE MODE")  # reads go on, writes wait

        def merge_waiting_on_the_lock():
            merge = [ti for ti in client.task_instances(POLICE, run_id) if ti["task_id"] == "merge"]
            waiting = query(warehouse, "SELECT count(*) FROM pg_locks WHERE NOT granted "
                                       "AND relation = 'core.mpd_crime_incidents'::regclass")[0][0]
            return merge[0] if merge and merge[0]["state"] == "running" and waiting else None

        merge = _wait("merge to run into the locked core table", merge_waiting_on_the_lock, timeout=120, every=0.5,
                      describe=states)
        phase("merge waiting on the lock")
        victim = _worker(merge)
        assert victim in stack.WORKERS and merge["try_number"] == 1
        killed = _kill_worker(stack.status(state)["pids"][victim])
        _wait("the killed worker's processes to be gone", lambda: not any(stack.alive(p) for p in killed), timeout=30)
        hold.rollback()  # the dead worker's transaction is aborted by the server; the retry finds the table free
    finally:
        hold.close()

    done = client.wait_for_run(POLICE, run_id, timeout=240)
    phase("the run retried on the other worker")
    tries = client.tries(POLICE, run_id, "merge")
    assert done["state"] == "success", tries
    survivor = ({*stack.WORKERS} - {victim}).pop()
    assert [(t["try_number"], _worker(t)) for t in tries][-1] == (2, survivor), tries
    assert tries[0]["try_number"] == 1 and _worker(tries[0]) == victim and tries[0]["state"] != "success", tries
    assert not stack.status(state)["components"][victim]  # nobody restarted it: the retry ran on the other one

    # the batch's rows were validated by a worker that imported Great Expectations when it started
    # (aim.celery_worker), not by a task that imported it again
    validate_log = client.log(POLICE, run_id, "validate")
    assert "Great Expectations: loaded by the worker before this task" in validate_log, validate_log[-3000:]

    source = query(running["rms"], "SELECT count(*), count(DISTINCT incident_num) FROM rms.incident")[0]
    core = query(warehouse, "SELECT count(*), count(DISTINCT incident_num) FROM core.mpd_crime_incidents")[0]
    assert core == source and core[0] == core[1], (core, source)  # no loss, no duplicates
    assert _rows(warehouse, "core.mpd_crime_incidents", new) == _rows(running["rms"], "rms.incident", new)

    # Stopped clean: no process of the stack, its ports free.
    started = time.monotonic()
    assert stack.stop(state, quiet=True)
    print(f"stack stopped in {time.monotonic() - started:.0f} s", flush=True)
    assert stack._processes_of(stack.stack_dir(state)) == []
    assert not stack.status(state)["running"]
    for port in (running["api_port"], running["redis_port"]):
        assert not stack._listening(port), port
