"""Public data set exports: a SQL file's rows, streamed from the warehouse to a CSV file.

The CSV comes from PostgreSQL's `COPY … TO STDOUT (FORMAT csv, HEADER)` (RFC 4180 quoting,
UTF-8), streamed to a temporary file, then published through an `ExportTarget`. An export whose
bytes equal the published file is not rewritten.
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from psycopg2 import sql

from aim import settings
from aim.storage import ExportTarget


@dataclass(frozen=True)
class ExportResult:
    """What a publication of one data set file did."""

    dataset: str
    url: str
    rows: int
    bytes: int
    sha256: str
    written: bool  # False when the published file already had these exact bytes

    def as_dict(self) -> dict:
        return asdict(self)


class _HashingWriter:
    """File wrapper that hashes and counts what `COPY` writes through it."""

    def __init__(self, f):
        self.f, self.digest, self.size = f, hashlib.sha256(), 0

    def write(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.digest.update(data)
        self.size += len(data)
        return self.f.write(data)


def latest_csv_path(dataset: str) -> str:
    """Where a data set's current CSV lives under the export root."""
    return f"latest/{dataset}/{dataset}.csv"


def export_csv(conn, dataset: str, query_file: str, target: ExportTarget) -> ExportResult:
    """Export the rows of `sql/<query_file>` as `latest/<dataset>/<dataset>.csv` on `target`.

    Rows are counted and copied inside one REPEATABLE READ snapshot, so the count matches the file.
    """
    query = (settings.sql_dir() / query_file).read_text(encoding="utf-8").strip().rstrip(";")
    relpath = latest_csv_path(dataset)
    conn.rollback()  # set_session needs no transaction open
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    try:
        with tempfile.TemporaryDirectory(prefix="aim-export-") as tmp, conn.cursor() as cur:
            local = Path(tmp) / f"{dataset}.csv"
            cur.execute(sql.SQL("SELECT count(*) FROM ({}) AS export").format(sql.SQL(query)))
            rows = cur.fetchone()[0]
            with open(local, "wb") as f:
                writer = _HashingWriter(f)
                cur.copy_expert(
                    sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER, ENCODING 'UTF8')").format(sql.SQL(query)),
                    writer,
                )
            conn.commit()
            sha256 = writer.digest.hexdigest()
            written = target.sha256(relpath) != sha256
            if written:
                target.publish(local, relpath, sha256, "text/csv; charset=utf-8")
            return ExportResult(dataset, target.url(relpath), rows, writer.size, sha256, written)
    finally:
        conn.rollback()
        conn.set_session(isolation_level="DEFAULT", readonly=False)
