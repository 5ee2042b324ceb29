"""Creating and dropping databases on a PostgreSQL server (demo and tests)."""
from __future__ import annotations

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url


def libpq_dsn(url: str) -> str:
    """A libpq connection string (what psycopg2 and psql take) for a SQLAlchemy or libpq URL."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def database_url(server_url: str, database: str) -> str:
    """`server_url` pointing at another database on the same server."""
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


def ensure_database(server_url: str, database: str) -> bool:
    """Create `database` on the server unless it exists; True when it was created."""
    conn = psycopg2.connect(libpq_dsn(database_url(server_url, "postgres")))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            return True
    finally:
        conn.close()


def drop_database(server_url: str, database: str) -> None:
    """Drop `database` (closing its connections) if it exists."""
    conn = psycopg2.connect(libpq_dsn(database_url(server_url, "postgres")))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    finally:
        conn.close()


def query(url: str, statement: str, params=None) -> list[tuple]:
    """Run one statement on the database at `url` in its own transaction; returns its rows (none
    for a statement that returns none, such as DDL or `CHECKPOINT`)."""
    conn = psycopg2.connect(libpq_dsn(url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description is not None else []
    finally:
        conn.close()
