"""Database connections: SQLAlchemy engines and raw psycopg2 connections for COPY."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from aim import clock

# Airflow connection types -> SQLAlchemy drivers that ship with the platform's pinned set.
_DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mssql": "mssql+pymssql",
    "sqlite": "sqlite",
}
SQL_CONNECTION_TYPES = tuple(sorted(_DRIVERS))  # Airflow connection types a `sql` source can read through


def normalize_url(url: str | URL) -> URL:
    """The URL with an explicit driver: bare `postgres(ql)://` means psycopg2, never psycopg 3.

    A PostgreSQL URL also carries the platform's clock when `AIM_NOW` fixes it (`with_clock`).
    """
    url = make_url(url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg2")
    if url.drivername.startswith("postgresql"):
        url = with_clock(url)
    return url


def with_clock(url: URL) -> URL:
    """A PostgreSQL URL whose sessions see `aim.clock.now()` as `ops.clock_now()`: when `AIM_NOW`
    is set, the session setting `aim.now` is passed at connection start (libpq `options`)."""
    if not os.environ.get(clock.ENV_VAR):
        return url
    option = f"-caim.now={clock.now().isoformat()}"  # no space: a URL may carry it as "+"
    existing = url.query.get("options")
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    if existing and "aim.now=" in existing:
        return url
    return url.update_query_dict({"options": f"{existing} {option}" if existing else option})


def engine(url: str | URL) -> sa.Engine:
    """An engine for `url` that checks pooled connections before use."""
    return sa.create_engine(normalize_url(url), pool_pre_ping=True, future=True)


def url_from_airflow_connection(conn: Any) -> URL:
    """SQLAlchemy URL for an Airflow connection (Task SDK `Connection`): type, host, login, schema.

    A Unix-socket directory, given as the host or (libpq's URI form, `postgresql://user@/db?host=/dir&port=N`)
    as the extras `host` and `port`, becomes the `?host=` query parameter. The password travels inside the URL
    object only; render it with `hide_password=True`.
    """
    conn_type = (conn.conn_type or "").lower()
    if conn_type not in _DRIVERS:
        raise ValueError(
            f"connection {conn.conn_id!r} has type {conn_type!r}; supported SQL types: {sorted(_DRIVERS)}"
        )
    query = {}
    extra = getattr(conn, "extra_dejson", None) or {}  # libpq's URI query (?host=/dir&port=N) lands here
    host = conn.host or extra.get("host") or None
    port = conn.port or (int(extra["port"]) if str(extra.get("port", "")).isdigit() else None)
    if host and host.startswith("/"):  # a Unix-socket directory
        query["host"], host = host, None
    return URL.create(
        _DRIVERS[conn_type],
        username=conn.login or None,
        password=conn.password or None,
        host=host,
        port=port,
        database=conn.schema or None,
        query=query,
    )


@contextmanager
def raw_connection(eng: sa.Engine) -> Iterator[Any]:
    """A DBAPI (psycopg2) connection in one transaction: committed on success, rolled back on error."""
    conn = eng.raw_connection()
    try:
        yield conn.driver_connection
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


@contextmanager
def transaction(url: str | URL) -> Iterator[Any]:
    """A fresh DBAPI connection to `url` in one transaction (commit on success, rollback on error), then closed."""
    eng = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    try:
        with raw_connection(eng) as conn:
            yield conn
    finally:
        eng.dispose()


def attempt(cur, statement, params: Any = None, *, errors: Any = None) -> list[tuple] | Exception:
    """The rows of a query, or the error it raised (one of `errors`; default: a data error, a
    value that does not cast), rolled back to before it: it runs in a savepoint, so the
    transaction goes on. Any other error propagates."""
    import psycopg2

    cur.execute("SAVEPOINT aim_attempt")
    try:
        cur.execute(statement, params)
        rows = cur.fetchall()
    except (errors or psycopg2.DataError) as err:
        cur.execute("ROLLBACK TO SAVEPOINT aim_attempt")
        return err
    cur.execute("RELEASE SAVEPOINT aim_attempt")
    return rows


def rows_of_first_that_casts(cur, statements: list, params: Any = None) -> list[tuple]:
    """The rows of the first of `statements` that runs without a data error (a value that does
    not cast), each tried in a savepoint so the transaction goes on; the last one's error is
    raised. For a fast statement with plain casts, followed by one that checks each value."""
    for statement in statements[:-1]:
        rows = attempt(cur, statement, params)
        if not isinstance(rows, Exception):
            return rows
    cur.execute(statements[-1], params)
    return cur.fetchall()
