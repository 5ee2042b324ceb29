"""Shared fixtures: a real PostgreSQL, a real S3 server, and an Airflow metadata database.

PostgreSQL: the server named by AIM_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres),
or else an embedded one started for the session. Every test module creates its own databases
with unique names, so runs never collide, and drops them afterwards.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Airflow reads its configuration when first imported: point it at a throwaway home first.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="aim-test-airflow-")
os.environ.setdefault("AIM_RETRY_DELAY_SECONDS", "0.2")  # a failing task retries at once in tests
from aim_demo import local  # noqa: E402

os.environ.update(local.airflow_environment())

from aim_demo import embedded_pg  # noqa: E402
from aim_demo.databases import database_url, drop_database, ensure_database  # noqa: E402
from aim_demo.s3_server import start_s3_server  # noqa: E402


@pytest.fixture(scope="session")
def pg_server() -> str:
    """URL of a PostgreSQL server's `postgres` database that tests may create databases on."""
    url = os.environ.get("AIM_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    # Not under pytest's basetemp: a concurrent pytest run prunes old basetemps, servers and all.
    folder = Path(tempfile.mkdtemp(prefix="aim-test-pg-"))
    server = embedded_pg.ensure_running(folder / "data")
    try:
        yield server.url()
    finally:
        embedded_pg.stop(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def new_database(pg_server):
    """Factory: a fresh, uniquely named database on the test server (dropped at session end)."""
    created: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        ensure_database(pg_server, name)
        created.append(name)
        return database_url(pg_server, name)

    yield make
    for name in created:
        drop_database(pg_server, name)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (SeaweedFS) on loopback, for the whole session."""
    folder = Path(tempfile.mkdtemp(prefix="aim-test-s3-"))
    try:
        with start_s3_server(folder) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata database (SQLite in the throwaway AIRFLOW_HOME), migrated once."""
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
