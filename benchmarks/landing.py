"""Landing benchmark: memory and speed of extracting a SQL source into staging.

    python benchmarks/landing.py --server URL [--rows 10000 1000000]

For each row count it fills a source table shaped like the police RMS (`rms.incident`) on the
server, then, each in a fresh process:

- `land`: the platform's own path (`aim.landing.land`), which for a PostgreSQL source streams
  the source's `COPY ... TO STDOUT` into `COPY` into `staging.mpd_crime_incidents`, reporting the
  process's peak RSS;
- `land-rows`: the platform's path for every other SQL source (server-side cursor, 10,000-row
  chunks of Python rows, written as CSV to COPY), on the same PostgreSQL source;
- `copy`: the baseline, PostgreSQL to PostgreSQL with nothing in between: `COPY (SELECT ...) TO
  STDOUT` piped into `COPY ... FROM STDIN` of the same staging table, through one buffer;
- `land-file`: the same rows delivered as a CSV file (written by the source's `COPY ... TO` with a
  header, before the timer starts) and landed by the platform's file drop path: Arrow reads the
  file into columns and writes them to COPY (`aim.extract.files.csv_columns`);
- `land-file-rows`: the same file through the row reader (`csv.reader`, a Python tuple per row,
  `csv.writer` to COPY), the way a file Arrow refuses is landed;
- `copy-file`: the file's baseline, `COPY ... FROM STDIN` of the file's bytes as they are.

It prints one JSON line per measurement and a table; docs/benchmarks.md keeps the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

FILL_SQL = """
INSERT INTO rms.incident (incident_num, reported_at, location, weapon_used, ald, nsp, police, tract, ward, zip,
    rough_x, rough_y, arson, assault_offense, burglary, criminal_damage, homicide, locked_vehicle, robbery,
    sex_offense, theft, vehicle_theft, updated_at)
SELECT 'B' || lpad(i::text, 10, '0'),
       timestamp '2024-01-01' + i * interval '17 seconds',
       (100 + i % 9000) || ' N ' || (1 + i % 60) || 'TH ST',
       CASE WHEN i % 3 = 0 THEN 'HANDGUN' END,
       1 + i % 15, 1 + i % 19, 1 + i % 7, (180000 + i % 900)::text, (1 + i % 300)::text, (53202 + i % 30)::text,
       2550000 + (i % 10000) * 1.5, 390000 + (i % 7000) * 2.25,
       (i % 10 = 0)::int, (i % 10 = 1)::int, (i % 10 = 2)::int, (i % 10 = 3)::int, (i % 10 = 4)::int,
       (i % 10 = 5)::int, (i % 10 = 6)::int, (i % 10 = 7)::int, (i % 10 = 8)::int, (i % 10 = 9)::int,
       timestamptz '2024-06-01 00:00:00+00' + i * interval '1 second'
FROM generate_series(1, {rows}) AS i
"""


def prepare(server: str, rows: int) -> tuple[str, str]:
    """A source database with `rows` incidents and an empty migrated warehouse; returns their URLs."""
    import psycopg2

    from aim.migrations import migrate
    from aim_demo import mpd_rms
    from aim_demo.databases import database_url, ensure_database, libpq_dsn

    tag = uuid.uuid4().hex[:8]
    source, warehouse = database_url(server, f"bench_rms_{tag}"), database_url(server, f"bench_wh_{tag}")
    ensure_database(server, f"bench_rms_{tag}")
    ensure_database(server, f"bench_wh_{tag}")
    conn = psycopg2.connect(libpq_dsn(source))
    with conn, conn.cursor() as cur:
        cur.execute(mpd_rms.SCHEMA_SQL)
        cur.execute(FILL_SQL.format(rows=int(rows)))
    conn.close()
    migrate(warehouse)
    return source, warehouse


def drop(server: str, *urls: str) -> None:
    from sqlalchemy.engine import make_url

    from aim_demo.databases import drop_database

    for url in urls:
        drop_database(server, make_url(url).database)


def measure_land(source: str, warehouse: str, *, rows_path: bool = False) -> dict:
    """Run in a fresh process: land every source row through the platform's path (a PostgreSQL
    source's COPY to COPY; with `rows_path`, the path every other SQL source takes: rows through
    Python, written to COPY as CSV chunk by chunk)."""
    from aim import db
    from aim.landing import land
    from aim.settings import sources_dir
    from aim.source_kinds.sql_table import SqlTable
    from aim.sources import load_source_config
    from aim.tables import ensure_tables

    if rows_path:
        SqlTable.copy_out = lambda *args, **kwargs: None  # as for a source that cannot write CSV itself
    config = load_source_config(sources_dir() / "mpd_crime_incidents.yaml")
    started = time.perf_counter()
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        ensure_tables(cur, config)
        landed = land(cur, config, db.normalize_url(source), batch_id="bench")
    seconds = time.perf_counter() - started
    return {"path": "land-rows" if rows_path else "land", "rows": landed.rows, "seconds": round(seconds, 2),
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's own peak resident set size in MiB (VmHWM). Not getrusage's ru_maxrss, which
    Linux carries over fork and exec: a child of a large pytest process would report the parent's."""
    with open("/proc/self/status") as status:
        return round(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024, 1)


def measure_copy(source: str, warehouse: str) -> dict:
    """Run in a fresh process: the baseline, COPY out of the source piped into COPY into staging."""
    import io

    import psycopg2

    from aim import db
    from aim.settings import sources_dir
    from aim.sources import load_source_config
    from aim.tables import ensure_tables
    from aim_demo.databases import libpq_dsn

    config = load_source_config(sources_dir() / "mpd_crime_incidents.yaml")
    columns = ", ".join(config.column_names)
    started = time.perf_counter()
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        ensure_tables(cur, config)
        buffer = io.BytesIO()
        src = psycopg2.connect(libpq_dsn(source))
        with src, src.cursor() as src_cur:  # a client buffer is how psycopg2 pipes COPY to COPY
            src_cur.copy_expert(f"COPY (SELECT 'copy', {columns} FROM rms.incident) TO STDOUT WITH (FORMAT csv)", buffer)
        src.close()
        buffer.seek(0)
        cur.copy_expert(f"COPY staging.mpd_crime_incidents (_batch_id, {columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        rows = cur.rowcount
    seconds = time.perf_counter() - started
    return {"path": "copy", "rows": rows, "seconds": round(seconds, 2),
            "peak_rss_mb": peak_rss_mb()}


def _source_file(source: str, folder: Path) -> Path:
    """The source's rows as a delivered CSV file in `folder`: a header of the source's column names."""
    import psycopg2

    from aim_demo.databases import libpq_dsn

    path = folder / "incidents.csv"
    conn = psycopg2.connect(libpq_dsn(source))
    with conn, conn.cursor() as cur, open(path, "w", encoding="utf-8", newline="") as out:
        cur.copy_expert("COPY rms.incident TO STDOUT WITH (FORMAT csv, HEADER)", out)
    conn.close()
    return path


def _file_config(folder: Path):
    """The police source, as if its rows were delivered as CSV files in `folder`."""
    import yaml

    from aim.settings import sources_dir
    from aim.sources import SourceConfig

    raw = yaml.safe_load((sources_dir() / "mpd_crime_incidents.yaml").read_text(encoding="utf-8"))
    raw.update(kind="file", connection_id=None,
               extract={"location": str(folder), "pattern": "*.csv", "format": {"kind": "csv"}})
    return SourceConfig.model_validate(raw)


def measure_land_file(source: str, warehouse: str, *, rows_path: bool = False) -> dict:
    """Run in a fresh process: land the source's rows delivered as a CSV file through the file drop
    path (Arrow's columns; with `rows_path`, the row reader, as for a file Arrow refuses)."""
    from aim import db
    from aim.extract.files import csv_columns
    from aim.landing import land
    from aim.tables import ensure_tables

    if rows_path:
        def refuse(self):
            raise csv_columns.NotColumnar("benchmark: the row reader's path")
        csv_columns.CsvFile.tables = refuse
    with tempfile.TemporaryDirectory(prefix="aim-bench-") as folder:
        config = _file_config(Path(folder))
        _source_file(source, Path(folder))
        started = time.perf_counter()
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            ensure_tables(cur, config)
            landed = land(cur, config, config.source_kind.access(config, None), batch_id="bench")
        seconds = time.perf_counter() - started
    return {"path": "land-file-rows" if rows_path else "land-file", "rows": landed.rows,
            "seconds": round(seconds, 2), "peak_rss_mb": peak_rss_mb()}


def measure_copy_file(source: str, warehouse: str) -> dict:
    """Run in a fresh process: the file's baseline, its bytes straight into staging's COPY."""
    from aim import db
    from aim.tables import ensure_tables

    with tempfile.TemporaryDirectory(prefix="aim-bench-") as folder:
        config = _file_config(Path(folder))
        path = _source_file(source, Path(folder))
        columns = ", ".join(config.column_names)
        started = time.perf_counter()
        with db.transaction(warehouse) as conn, conn.cursor() as cur, open(path, "rb") as data:
            ensure_tables(cur, config)
            cur.execute("ALTER TABLE staging.mpd_crime_incidents ALTER COLUMN _batch_id SET DEFAULT 'copy'")
            cur.copy_expert(f"COPY staging.mpd_crime_incidents ({columns}) FROM STDIN WITH (FORMAT csv, HEADER)",
                            data)
            rows = cur.rowcount
        seconds = time.perf_counter() - started
    return {"path": "copy-file", "rows": rows, "seconds": round(seconds, 2), "peak_rss_mb": peak_rss_mb()}


def run_child(mode: str, source: str, warehouse: str) -> dict:
    """One measurement in a fresh Python process, so peak RSS is that measurement's alone."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, source, warehouse],
        check=True, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


MODES = ("land", "land-rows", "copy", "land-file", "land-file-rows", "copy-file")


def benchmark(server: str, rows: int, modes=MODES) -> list[dict]:
    """Measure each mode for `rows` rows on fresh databases (dropped afterwards)."""
    results = []
    for mode in modes:
        source, warehouse = prepare(server, rows)
        try:
            results.append(run_child(mode, source, warehouse))
        finally:
            drop(server, source, warehouse)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="SQLAlchemy URL of a PostgreSQL server's postgres database")
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--child", nargs=3, metavar=("MODE", "SOURCE", "WAREHOUSE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, source, warehouse = args.child
        measure = {"land": measure_land, "land-rows": lambda *urls: measure_land(*urls, rows_path=True),
                   "copy": measure_copy, "land-file": measure_land_file,
                   "land-file-rows": lambda *urls: measure_land_file(*urls, rows_path=True),
                   "copy-file": measure_copy_file}[mode]
        print(json.dumps(measure(source, warehouse)))
        return 0
    if not args.server:
        parser.error("--server is required")
    table = []
    for rows in args.rows:
        for result in benchmark(args.server, rows):
            print(json.dumps(result), flush=True)
            table.append(result)
    print(f"\n{'path':<14} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>12}")
    for r in table:
        print(f"{r['path']:<14} {r['rows']:>10,} {r['seconds']:>8} {r['rows'] / max(r['seconds'], 1e-9):>10,.0f} "
              f"{r['peak_rss_mb']:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
