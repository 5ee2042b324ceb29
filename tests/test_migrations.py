"""The migration runner on a real PostgreSQL: applies in order, once, and all or nothing per file."""
from __future__ import annotations

import shutil

import psycopg2
import pytest

from aim.migrations import MigrationError, discover, migrate
from aim.settings import sql_dir
from aim_demo.databases import libpq_dsn


def _query(url: str, sql: str):
    conn = psycopg2.connect(libpq_dsn(url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture
def migrations_copy(tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(sql_dir() / "migrations", folder)
    return folder


def test_applies_every_migration_once(new_database):
    url = new_database("aim_mig")
    files = [m.path.name for m in discover()]

    assert migrate(url) == files
    assert migrate(url) == []  # a second run is a no-op
    schemas = {r[0] for r in _query(url, "SELECT nspname FROM pg_namespace")}
    assert {"staging", "core", "marts", "ops"} <= schemas
    tables = {r[0] for r in _query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'ops'")}
    assert {"run_log", "watermark", "batch", "quality_result", "schema_migration"} <= tables
    assert [r[0] for r in _query(url, "SELECT filename FROM ops.schema_migration ORDER BY version")] == files


def test_failed_migration_leaves_nothing_half_applied(new_database, migrations_copy):
    url = new_database("aim_mig")
    migrate(url, migrations_copy)
    broken = migrations_copy / "0900_broken.sql"
    broken.write_text("CREATE TABLE ops.half_done (id int);\nSELECT * FROM no_such_table;\n")

    with pytest.raises(MigrationError, match="0900_broken.sql"):
        migrate(url, migrations_copy)

    assert _query(url, "SELECT to_regclass('ops.half_done')") == [(None,)]
    assert _query(url, "SELECT count(*) FROM ops.schema_migration WHERE version = 900") == [(0,)]
    broken.write_text("CREATE TABLE ops.half_done (id int);\n")  # the fix
    assert migrate(url, migrations_copy) == ["0900_broken.sql"]
    assert _query(url, "SELECT to_regclass('ops.half_done')::text") == [("ops.half_done",)]


def test_an_applied_migration_edited_afterwards_is_refused(new_database, migrations_copy):
    url = new_database("aim_mig")
    migrate(url, migrations_copy)
    first = sorted(migrations_copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")

    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(url, migrations_copy)


def test_badly_named_migration_is_refused(migrations_copy):
    (migrations_copy / "add_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_description.sql"):
        discover(migrations_copy)
