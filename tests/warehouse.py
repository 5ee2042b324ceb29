"""Reading the warehouse in tests: one query, its rows, the connection closed."""
from __future__ import annotations

import psycopg2

from aim_demo.databases import libpq_dsn


def query(url: str, statement: str, params=None) -> list[tuple]:
    """Run one statement on the database at `url` in its own transaction; returns its rows."""
    conn = psycopg2.connect(libpq_dsn(url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()
