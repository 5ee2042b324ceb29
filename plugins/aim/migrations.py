"""Warehouse migrations: ordered SQL files under `sql/migrations/`, each applied once.

`NNNN_description.sql` files run in order of NNNN, each in its own transaction together with
its record in `ops.schema_migration`, so a failing file leaves nothing half-applied and a
second run applies nothing. A file edited after it was applied is refused: write a new one.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from aim import db, settings

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_ID = 4_417_000_001  # pg_advisory_lock key: one migration runner at a time

_BOOKKEEPING = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.schema_migration (
    version     integer PRIMARY KEY,
    filename    text        NOT NULL,
    sha256      text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


class MigrationError(RuntimeError):
    """A migration could not be applied; the message names the file."""


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(folder: Path | None = None) -> list[Migration]:
    """The migration files in `folder` (default `sql/migrations`), ordered by version."""
    folder = folder or settings.sql_dir() / "migrations"
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_description.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} is also {found[version].path.name}")
        found[version] = Migration(version, path)
    return [found[v] for v in sorted(found)]


def migrate(url: str, folder: Path | None = None) -> list[str]:
    """Apply every migration not yet applied to the warehouse at `url`; returns the files applied."""
    migrations = discover(folder)
    applied_now: list[str] = []
    eng = db.engine(url)
    try:
        with eng.connect() as lock_conn:
            lock_conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_ID})
            try:
                with eng.begin() as conn:
                    conn.execute(sa.text(_BOOKKEEPING))
                with eng.connect() as conn:
                    applied = {
                        row.version: row.sha256
                        for row in conn.execute(sa.text("SELECT version, sha256 FROM ops.schema_migration"))
                    }
                for migration in migrations:
                    if migration.version in applied:
                        if applied[migration.version] != migration.sha256:
                            raise MigrationError(
                                f"{migration.path.name} was changed after it was applied; "
                                "add a new migration instead of editing an applied one"
                            )
                        continue
                    _apply(eng, migration)
                    applied_now.append(migration.path.name)
            finally:
                lock_conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_ID})
                lock_conn.commit()
    finally:
        eng.dispose()
    return applied_now


def _apply(eng: sa.Engine, migration: Migration) -> None:
    sql_text = migration.path.read_text(encoding="utf-8")
    try:
        with db.raw_connection(eng) as conn, conn.cursor() as cur:
            cur.execute(sql_text)
            cur.execute(
                "INSERT INTO ops.schema_migration (version, filename, sha256) VALUES (%s, %s, %s)",
                (migration.version, migration.path.name, migration.sha256),
            )
    except Exception as err:
        raise MigrationError(f"{migration.path.name} failed and was rolled back: {err}") from err
    log.info("applied migration %s", migration.path.name)
