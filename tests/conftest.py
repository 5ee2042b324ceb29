"""Shared fixtures: one clock, an isolated environment per test module, a real PostgreSQL, a real
S3 server, and Airflow's metadata database.

Clock: every test that needs "now" or "today" takes it from the `clock` fixture: a fixed moment by
default (`DEFAULT_TEST_NOW`), or `AIM_TEST_NOW` (an ISO timestamp with its offset). The same moment
reaches the code under test as `AIM_NOW` (see `aim.clock`), so no result depends on the day or
hour the suite runs. `.ci/run` runs the clock-sensitive tests (`-m clock`) at more moments.

Isolation: for each test module, every `AIM_*` setting (but the `AIM_TEST_*` ones that name test
servers), `AIRFLOW_HOME` and Airflow's metadata database point at a fresh temporary folder;
nothing from the developer's shell leaks in and nothing is written into the checkout.

PostgreSQL: the server named by AIM_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres),
or else an embedded one started for the session. Every test module creates its own databases
with unique names, so runs never collide, and drops them afterwards.
"""
from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A Wednesday in June, mid-morning in Milwaukee: an ordinary day, far from a DST change.
DEFAULT_TEST_NOW = "2026-06-17T10:15:00-05:00"

# Nothing from the developer's shell decides what the tests do: drop every AIM_ and AIRFLOW_
# setting (but the AIM_TEST_ ones naming test servers and clocks) before Airflow reads its config.
for _name in list(os.environ):
    if (_name.startswith("AIM_") and not _name.startswith("AIM_TEST_")) or _name.startswith("AIRFLOW"):
        del os.environ[_name]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="aim-test-airflow-"))
atexit.register(shutil.rmtree, _SESSION_HOME, True)
os.environ["AIRFLOW_HOME"] = str(_SESSION_HOME / "home")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_HOME / 'template.db'}"
from aim_demo import local  # noqa: E402

_BASE_ENVIRONMENT = {**local.airflow_environment(), "AIM_RETRY_DELAY_SECONDS": "0.2"}  # retries at once in tests
os.environ.update(_BASE_ENVIRONMENT)

from aim_demo import embedded_pg  # noqa: E402
from aim_demo.databases import database_url, drop_database, ensure_database  # noqa: E402
from aim_demo.s3_server import start_s3_server  # noqa: E402


def suite_now() -> dt.datetime:
    """The suite's moment: AIM_TEST_NOW, or DEFAULT_TEST_NOW; aware, in Milwaukee's wall time.

    Its tzinfo is Milwaukee's UTC offset at that moment, fixed, not the America/Chicago zone: in
    the hour repeated when daylight saving time ends, a zoned datetime never compares equal to one
    in another zone (PEP 495), so a test comparing it with a time read back from the database
    would fail for that hour alone.
    """
    from aim.clock import LOCAL_ZONE, parse_moment

    local = parse_moment(os.environ.get("AIM_TEST_NOW") or DEFAULT_TEST_NOW).astimezone(LOCAL_ZONE)
    return local.astimezone(dt.timezone(local.utcoffset()))


def pytest_configure(config):
    config.addinivalue_line("markers", "clock: the test's outcome depends on the date or time of day; "
                                       ".ci/run runs these at more moments (AIM_TEST_NOW)")


def pytest_report_header(config):
    source = "AIM_TEST_NOW" if os.environ.get("AIM_TEST_NOW") else "default"
    return [f"aim test clock: {suite_now().isoformat()} ({source})"]


@pytest.fixture(scope="session")
def clock() -> dt.datetime:
    """The moment the suite runs at, as Milwaukee sees it (aware): the only "now" a test may use."""
    return suite_now()


@pytest.fixture(scope="session")
def today(clock) -> dt.date:
    """Today's date in Milwaukee, by the suite's clock."""
    return clock.date()


@pytest.fixture(scope="session")
def airflow_template() -> Path:
    """An Airflow metadata database (SQLite), migrated once; each module works on a copy."""
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return _SESSION_HOME / "template.db"


@pytest.fixture(scope="module", autouse=True)
def isolated_environment(request, tmp_path_factory, clock):
    """Per test module: the clock, exports, project paths and Airflow's home in a fresh folder.

    `AIM_WAREHOUSE_URL` is unset: a module that needs a warehouse creates its own database. Airflow's
    metadata moves to the module's folder when the module asks for `airflow_db`.
    """
    folder = tmp_path_factory.mktemp(f"env-{request.module.__name__.rsplit('.', 1)[-1]}")
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("AIM_") and not name.startswith("AIM_TEST_") and name not in _BASE_ENVIRONMENT:
                env.delenv(name)
        for name, value in _BASE_ENVIRONMENT.items():
            env.setenv(name, value)
        env.setenv("AIM_NOW", clock.isoformat())
        env.setenv("AIM_EXPORT_URL", str(folder / "exports"))
        env.setenv("AIM_QUALITY_URL", str(folder / "quality"))
        env.setenv("AIRFLOW_HOME", str(folder / "airflow"))
        (folder / "airflow").mkdir()
        yield folder


@pytest.fixture(scope="module")
def airflow_db(isolated_environment, airflow_template) -> None:
    """Airflow's metadata database for this module: a fresh copy of the migrated template."""
    from airflow import settings as airflow_settings

    database = isolated_environment / "airflow" / "airflow.db"
    shutil.copyfile(airflow_template, database)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{database}")
        airflow_settings.configure_vars()
        airflow_settings.reconfigure_orm()
        yield
    airflow_settings.configure_vars()  # back to the template (a module that runs DAGs asks for its own copy)
    airflow_settings.reconfigure_orm()


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
