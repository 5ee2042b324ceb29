"""The `sql` extractor against real database engines other than PostgreSQL: MariaDB and SQLite.

MariaDB: the server named by AIM_TEST_MARIADB_URL (.ci/run sets it to the MariaDB on
127.0.0.1:3306, starting it if needed); each test creates its own database there. Without the
variable, the MariaDB tests are still collected and reported as skipped, with the reason (`-ra`).
SQLite always runs (a file in the test's folder).
PostgreSQL is covered by the police source's end-to-end tests.
"""
from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa

from aim import watermarks
from aim.source_kinds.base import ExtractRequest
from aim.sources import SourceConfig

CONFIG = SourceConfig.model_validate({
    "source": "permits", "department": "Neighborhood Services", "system": "Permits", "kind": "sql",
    "connection_id": "permits_db", "schedule": None, "owner": "dns",
    "extract": {"table": "permit", "watermark_column": "updated_at"},
    "key": ["permit_id"],
    "columns": [
        {"name": "permit_id", "type": "integer", "privacy": "public"},
        {"name": "address", "privacy": "public"},
        {"name": "fee", "type": "numeric", "privacy": "public"},
        {"name": "updated_at", "type": "timestamp", "privacy": "public"},
    ],
    "expectation_suite": "permits.json",
})
START = dt.datetime(2026, 1, 1, 8, 0, 0)


@pytest.fixture(params=["sqlite", "mariadb"])
def source_url(request, tmp_path):
    """A fresh, empty source database on each engine. MariaDB's tests are always collected: without
    AIM_TEST_MARIADB_URL they are reported as skipped, saying why (never silently left out)."""
    if request.param == "sqlite":
        yield sa.engine.make_url(f"sqlite:///{tmp_path / 'permits.db'}")
        return
    mariadb = os.environ.get("AIM_TEST_MARIADB_URL")
    if not mariadb:
        pytest.skip("AIM_TEST_MARIADB_URL is not set: the sql extractor is not tested on MariaDB "
                    "(.ci/run starts one and sets mysql+pymysql://root@127.0.0.1:3306/test)")
    name = f"aim_test_{uuid.uuid4().hex[:8]}"
    server = sa.create_engine(mariadb)
    with server.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.engine.make_url(mariadb).set(database=name)
    finally:
        with server.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}"))
        server.dispose()


def _create(url, rows: int) -> None:
    eng = sa.create_engine(url)
    meta = sa.MetaData()
    permit = sa.Table(
        "permit", meta,
        sa.Column("permit_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("address", sa.String(100)),
        sa.Column("fee", sa.Numeric(10, 2)),
        sa.Column("updated_at", sa.DateTime),
    )
    meta.create_all(eng)
    with eng.begin() as conn:
        conn.execute(permit.insert(), [
            {"permit_id": i, "address": f"{100 + i} N 1ST ST", "fee": i * 1.25, "updated_at": START + dt.timedelta(minutes=i)}
            for i in range(rows)
        ])
    eng.dispose()


def _update(url, permit_ids, minutes_after_start: int) -> None:
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(
            sa.text("UPDATE permit SET fee = fee + 1, updated_at = :at WHERE permit_id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"at": START + dt.timedelta(minutes=minutes_after_start), "ids": list(permit_ids)},
        )
    eng.dispose()


def _read(source_url, since) -> list[list[tuple]]:
    """The chunks the `sql` kind yields for CONFIG from `since` (inclusive)."""
    return [list(chunk.rows) for chunk in CONFIG.source_kind.chunks(CONFIG, source_url, ExtractRequest(since=since))]


def test_full_then_incremental_extraction(source_url, clock):
    _create(source_url, 12_500)

    chunks = _read(source_url, None)
    assert [len(c) for c in chunks] == [10_000, 2_500], "a chunk at a time (server-side cursor)"
    rows = [r for c in chunks for r in c]
    assert [r[0] for r in rows] == list(range(12_500)), "oldest change first, every row once"
    assert rows[7][1] == "107 N 1ST ST"

    window = watermarks.window(CONFIG.extract, "timestamp", None, clock)
    newest = max(r[3] for r in rows)
    stored = watermarks.to_text(window.candidate(newest))
    assert stored == (START + dt.timedelta(minutes=12_499)).isoformat(), "the batch's watermark is the newest value"

    overlap = watermarks.window(CONFIG.extract, "timestamp", stored, clock)
    again = [r for c in _read(source_url, overlap.since) for r in c]
    assert [r[0] for r in again] == list(range(12_499 - 75, 12_500)), \
        "the next run re-reads the 15-minute overlap behind the watermark, its lower bound included, and for a " \
        "wall-time (timestamp) watermark the hour daylight saving time repeats"

    _update(source_url, [3, 1_234, 2_000], minutes_after_start=20_000)
    changed = [r for c in _read(source_url, overlap.since) for r in c]
    assert sorted(r[0] for r in changed) == sorted([3, 1_234, 2_000, *range(12_499 - 75, 12_500)]), \
        "rows changed since are read, with the overlap"
