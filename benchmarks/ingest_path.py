"""Whole-path ingest benchmark: the platform's ingest tasks against the raw COPY pipe and dlt.

    python benchmarks/ingest_path.py [--server URL] [--sizes 10000,100000,1000000] [--repeats 3]
                                     [--repeats-1m N] [--write-docs docs/benchmarks.md] [--json FILE]
    python benchmarks/ingest_path.py --from-json FILE [--write-docs docs/benchmarks.md]   # report again

For each size it fills one source database with police-shaped rows (`rms.incident`, the
`benchmarks/landing.py` generator, server-side, valid for the police suite), then, `--repeats`
times, each measurement in a fresh process (so its peak RSS is its own), on one server:

- `raw`: the limit. `COPY (SELECT ...) TO STDOUT` of the source streamed (psycopg 3, chunk by
  chunk, bounded memory) into `COPY ... FROM STDIN` of a staging-shaped table (all text);
- `worker`: the platform's ingest task bodies, as the ingest DAG calls them but without Airflow's
  process start-up: `start_run` (on a warehouse already migrated), `extract_and_land`,
  `validate` (the suite and the generated checks; Data Docs written to a scratch folder),
  `merge`, `finish_run`; seconds and peak RSS for each step. They run as on a Celery worker of
  the deployed stack (`make stack`, docker-compose.yaml): in a process forked from one that
  imported the worker's preloaded modules (`aim.celery_worker.PRELOADED`: Great Expectations);
- `path`: the same tasks in a process that imports nothing first, as under `airflow dags test`
  or the LocalExecutor: `validate` imports Great Expectations itself;
- `rerun`: the same tasks again in a new run with nothing new at the source;
- `dlt`: dlt (its own virtualenv, `benchmarks/.venv-dlt`, made here if missing) loading the same
  table into PostgreSQL with `write_disposition="merge"` on the key; only `pipeline.run` is timed.
  dlt has no quality gate: it loads whatever the source holds.

It prints medians over the repeats, ratios to the raw pipe, rows/s, peak RSS and the targets of
issue 13; `--write-docs` rewrites the whole-path section of docs/benchmarks.md. It creates and
drops its own databases. Only the standard library is imported at module level: the dlt child
runs this file with the dlt virtualenv's Python.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from benchmarks.landing import FILL_SQL, drop, peak_rss_mb  # noqa: E402  (stdlib-only at import)

SOURCE = "mpd_crime_incidents"
SOURCE_TABLE = ("rms", "incident")
KEY = "incident_num"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DLT_VERSION = "1.31.0"
DLT_VENV = ROOT / "benchmarks" / ".venv-dlt"
DLT_REQUIREMENT = f"dlt[postgres,sql_database,parquet]=={DLT_VERSION}"  # parquet: pyarrow, for the arrow backend
DLT_BACKEND = "pyarrow"            # sql_database reads into Arrow tables ...
DLT_FILE_FORMAT = "csv"            # ... written as CSV and loaded by COPY: dlt's fastest path into PostgreSQL
STEPS = ("start_run", "extract_and_land", "validate", "merge", "finish_run")
DOC_BEGIN = "<!-- ingest-path benchmark: begin (written by benchmarks/ingest_path.py --write-docs) -->"
DOC_END = "<!-- ingest-path benchmark: end -->"

# Issue 13's targets.
TARGET_PATH_RATIO = 4.0            # full path within 4.0x the raw pipe at 1M rows
TARGET_RERUN_SHARE = 0.05          # a no-change rerun under 5% of the full path
TARGET_LANDING_GROWTH_MB = 100     # landing 1M rows within 100 MB of 10k rows
TARGET_RERUN_SECONDS = 1.0         # ... and its task time under one second per source


# --- peak memory per step ------------------------------------------------------------------------

def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux 4.0+: `5` to clear_refs),
    so the next `peak_rss_mb()` is the peak of what ran since. False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


# --- the measurements, each run in its own process -----------------------------------------------

def measure_raw(source: str, warehouse: str) -> dict:
    """The limit: the source's rows as COPY text, streamed chunk by chunk into a staging-shaped table."""
    import psycopg

    from aim import db
    from aim.settings import sources_dir
    from aim.sources import load_source_config
    from aim.tables import BATCH_COLUMN, ensure_tables
    from aim_demo.databases import libpq_dsn

    config = load_source_config(sources_dir() / f"{SOURCE}.yaml")
    with db.transaction(warehouse) as conn, conn.cursor() as cur:  # untimed: the target table
        ensure_tables(cur, config)
        cur.execute("DROP TABLE IF EXISTS public.bench_raw_pipe")
        cur.execute(f"CREATE TABLE public.bench_raw_pipe (LIKE {'.'.join(config.staging_table)} INCLUDING ALL)")
    columns = ", ".join(config.column_names)
    reset_peak_rss()
    started = time.perf_counter()
    with psycopg.connect(libpq_dsn(source)) as src, psycopg.connect(libpq_dsn(warehouse)) as dst:
        with src.cursor() as out_cur, dst.cursor() as in_cur:
            with out_cur.copy(f"COPY (SELECT 'raw', {columns} FROM {'.'.join(SOURCE_TABLE)}) TO STDOUT") as out, \
                    in_cur.copy(f"COPY public.bench_raw_pipe ({BATCH_COLUMN}, {columns}) FROM STDIN") as into:
                for data in out:
                    into.write(data)
            rows = in_cur.rowcount
        dst.commit()
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    with db.transaction(warehouse) as conn, conn.cursor() as cur:  # untimed: where autovacuum is on, it would
        cur.execute("DROP TABLE public.bench_raw_pipe")  # read the 1M new rows while the next measurement runs
    return {"mode": "raw", "rows": rows, "seconds": seconds, "peak_rss_mb": peak}


def measure_tasks(source: str, warehouse: str, label: str) -> dict:
    """The ingest DAG's task bodies in order, each timed, with the peak RSS of each."""
    from aim import db, pipeline
    from aim.settings import sources_dir
    from aim.sources import load_source_config

    config = load_source_config(sources_dir() / f"{SOURCE}.yaml")
    access = db.normalize_url(source)  # what `SqlTable.access` makes of a connection: a SQLAlchemy URL
    now = dt.datetime.now(dt.timezone.utc)
    run_id = f"manual__{now.isoformat()}"
    dag_id = f"ingest_{SOURCE}"
    steps: dict[str, dict] = {}
    returned: dict[str, object] = {}

    def step(name, call):
        reset_peak_rss()
        started = time.perf_counter()
        returned[name] = call()
        steps[name] = {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}

    step("start_run", lambda: pipeline.start_run(config, run_id=run_id, dag_id=dag_id, logical_date=now))
    batch_id = returned["start_run"]
    step("extract_and_land", lambda: pipeline.extract_and_land(config, access=access, run_id=run_id, batch_id=batch_id))
    step("validate", lambda: pipeline.validate(config, run_id=run_id, batch_id=batch_id))
    step("merge", lambda: pipeline.merge(config, run_id=run_id, batch_id=batch_id))
    step("finish_run", lambda: pipeline.finish_run(config, run_id=run_id))
    landed, validated, merged = returned["extract_and_land"], returned["validate"], returned["merge"]
    return {
        "mode": label, "rows": landed["rows_extracted"], "seconds": sum(s["seconds"] for s in steps.values()),
        "peak_rss_mb": max(s["peak_rss_mb"] for s in steps.values()), "steps": steps,
        "rows_unchanged": landed["rows_unchanged"], "checks": validated["checks"],
        "rows_rejected": validated["rows_rejected"], "rows_loaded": merged["rows_loaded"],
    }


def measure_dlt(source: str, destination: str) -> dict:
    """Runs in the dlt virtualenv: the source table into PostgreSQL, merged on the key."""
    import dlt
    from dlt.sources.sql_database import sql_table

    backend = os.environ.get("AIM_BENCH_DLT_BACKEND") or DLT_BACKEND  # to compare dlt's other paths
    file_format = os.environ.get("AIM_BENCH_DLT_FORMAT") or DLT_FILE_FORMAT
    with tempfile.TemporaryDirectory(prefix="aim-bench-dlt-") as pipelines_dir:
        table = sql_table(credentials=source, schema=SOURCE_TABLE[0], table=SOURCE_TABLE[1], backend=backend,
                          chunk_size=50_000)
        table.apply_hints(primary_key=KEY, write_disposition="merge")
        pipeline = dlt.pipeline(pipeline_name="aim_bench", destination=dlt.destinations.postgres(destination),
                                dataset_name="rms", pipelines_dir=pipelines_dir, progress=None)
        reset_peak_rss()
        started = time.perf_counter()
        info = pipeline.run(table, loader_file_format=None if file_format == "default" else file_format)
        seconds = time.perf_counter() - started
        info.raise_on_failed_jobs()
        formats = sorted({job.job_file_info.file_format for package in info.load_packages
                          for job in package.jobs["completed_jobs"]
                          if job.job_file_info.table_name == SOURCE_TABLE[1] and job.job_file_info.file_format != "sql"})
        with pipeline.sql_client() as client:
            rows = client.execute_sql(f"SELECT count(*) FROM {client.make_qualified_table_name(SOURCE_TABLE[1])}")[0][0]
    return {"mode": "dlt", "rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "dlt": dlt.__version__,
            "backend": backend, "file_format": ",".join(formats) or file_format}


def measure_on_worker(source: str, warehouse: str) -> dict:
    """The ingest tasks as a Celery worker of the deployed stack runs them: the worker's preloaded
    modules imported first (untimed, as when a worker starts), then the tasks in a forked process."""
    from aim.celery_worker import PRELOADED

    for module in PRELOADED:
        importlib.import_module(module)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the task process
        os.close(read)
        status = 1
        try:
            os.write(write, json.dumps(measure_tasks(source, warehouse, "worker")).encode())
            status = 0
        except BaseException:  # noqa: BLE001  (its traceback, for the parent's error to point at)
            import traceback

            traceback.print_exc()
        finally:
            os.close(write)
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status:
        raise RuntimeError(f"the forked task process failed (wait status {status})")
    return json.loads(payload)


def measure_gx_import(_source: str, _target: str) -> dict:
    """What `validate` pays before any check: importing the quality module (Great Expectations)."""
    import aim.pipeline  # noqa: F401  (loaded before the DAG's task runs)

    reset_peak_rss()
    started = time.perf_counter()
    import aim.quality  # noqa: F401

    return {"mode": "gx_import", "rows": 0, "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


CHILDREN = {"raw": measure_raw, "path": lambda s, w: measure_tasks(s, w, "path"), "worker": measure_on_worker,
            "rerun": lambda s, w: measure_tasks(s, w, "rerun"), "dlt": measure_dlt, "gx_import": measure_gx_import}


def checkpoint(database: str) -> None:
    """Write out what the server holds dirty (pages, WAL) before a measurement, so that none pays
    for the writes of the one before it (the raw pipe's 400 MB at 1M rows, then the path's):
    every measurement starts from the same state. Needs a superuser or `pg_checkpoint`."""
    from aim_demo.databases import query

    query(database, "CHECKPOINT")


def run_child(mode: str, source: str, target: str, env: dict | None = None) -> dict:
    """One measurement in a fresh Python process (the dlt virtualenv's for dlt), after a `checkpoint`."""
    checkpoint(target)  # a database on the server measured (CHECKPOINT is server-wide)
    python = str(DLT_VENV / "bin" / "python") if mode == "dlt" else sys.executable
    out = subprocess.run(
        [python, __file__, "--child", mode, source, target],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )
    if out.returncode:
        raise RuntimeError(f"{mode} failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- databases -----------------------------------------------------------------------------------

def ensure_dlt_venv() -> None:
    """Make `benchmarks/.venv-dlt` with the pinned dlt unless it is there already."""
    python = DLT_VENV / "bin" / "python"
    check = [str(python), "-c", f"import dlt, pyarrow, sqlalchemy, psycopg2; assert dlt.__version__ == {DLT_VERSION!r}"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return
    print(f"installing {DLT_REQUIREMENT} into {DLT_VENV.relative_to(ROOT)}", flush=True)
    subprocess.run(["python3.11", "-m", "venv", str(DLT_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip==26.3"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", DLT_REQUIREMENT], check=True)
    subprocess.run(check, check=True)


def new_database(server: str, kind: str) -> str:
    from aim_demo.databases import database_url, ensure_database

    name = f"bench_{kind}_{uuid.uuid4().hex[:8]}"
    ensure_database(server, name)
    return database_url(server, name)


def fill_source(server: str, rows: int) -> str:
    """A source database holding `rows` police-shaped incidents, vacuumed (hint bits set, statistics)."""
    import psycopg2

    from aim_demo import mpd_rms
    from aim_demo.databases import libpq_dsn

    source = new_database(server, "rms")
    conn = psycopg2.connect(libpq_dsn(source))
    with conn, conn.cursor() as cur:
        cur.execute(mpd_rms.SCHEMA_SQL)
        cur.execute(FILL_SQL.format(rows=int(rows)))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM (FREEZE, ANALYZE) rms.incident")
    conn.close()
    return source


def new_warehouse(server: str) -> str:
    """An empty warehouse, migrated (untimed: the issue measures `start_run` on a migrated warehouse)."""
    from aim.migrations import migrate

    warehouse = new_database(server, "wh")
    migrate(warehouse)
    return warehouse


def server_version(server: str) -> str:
    from aim_demo.databases import query

    return query(server, "SELECT version()")[0][0]


# --- one size ------------------------------------------------------------------------------------

def measure_size(server: str, rows: int, repeats: int) -> dict[str, list[dict]]:
    """Every measurement for `rows` rows, `repeats` times, on one source; databases dropped after."""
    from sqlalchemy.engine import make_url

    results: dict[str, list[dict]] = {"raw": [], "worker": [], "path": [], "rerun": [], "dlt": [], "gx_import": []}
    source = fill_source(server, rows)
    dlt_source = make_url(source).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    try:
        for repeat in range(repeats):
            for modes in (("raw", "worker", "rerun", "gx_import"), ("path",)):  # each path on an empty warehouse
                warehouse = new_warehouse(server)
                scratch = tempfile.mkdtemp(prefix="aim-bench-")
                env = {"AIM_WAREHOUSE_URL": warehouse, "AIM_QUALITY_URL": str(Path(scratch) / "quality"),
                       "AIM_EXPORT_URL": str(Path(scratch) / "exports")}
                try:
                    for mode in modes:
                        result = run_child(mode, source, warehouse, env)
                        print(json.dumps({"size": rows, "repeat": repeat + 1, **result}), flush=True)
                        results[mode].append(result)
                finally:
                    drop(server, warehouse)
                    subprocess.run(["rm", "-rf", scratch])
            destination = new_database(server, "dlt")
            try:
                dest = make_url(destination).set(drivername="postgresql")
                if dest.password is None:  # dlt insists on a password; a trust or peer server ignores it
                    dest = dest.set(password="unused")
                plain_destination = dest.render_as_string(hide_password=False)
                result = run_child("dlt", dlt_source, plain_destination)
                print(json.dumps({"size": rows, "repeat": repeat + 1, **result}), flush=True)
                results["dlt"].append(result)
            finally:
                drop(server, destination)
    finally:
        drop(server, source)
    for mode in ("raw", "worker", "path", "dlt"):
        wrong = [r["rows"] for r in results[mode] if r["rows"] != rows]
        if wrong:
            raise RuntimeError(f"{mode} moved {wrong} rows, expected {rows}")
    return results


# --- summary -------------------------------------------------------------------------------------

def median(values) -> float:
    return statistics.median(list(values))


def summarize(size: int, results: dict[str, list[dict]]) -> dict:
    """Medians over the repeats: seconds and peak RSS per measurement and per step."""
    summary = {"size": size, "repeats": len(results["raw"])}
    for mode, runs in results.items():
        summary[mode] = {"seconds": median(r["seconds"] for r in runs), "peak_rss_mb": median(r["peak_rss_mb"] for r in runs),
                         "all_seconds": [round(r["seconds"], 3) for r in runs]}
        if mode in ("worker", "path", "rerun"):
            summary[mode]["steps"] = {
                name: {"seconds": median(r["steps"][name]["seconds"] for r in runs),
                       "peak_rss_mb": median(r["steps"][name]["peak_rss_mb"] for r in runs)}
                for name in STEPS
            }
            last = runs[-1]
            summary[mode].update({k: last[k] for k in ("rows", "rows_unchanged", "checks", "rows_rejected", "rows_loaded")})
        if mode == "dlt":
            summary[mode].update({k: runs[-1][k] for k in ("dlt", "backend", "file_format", "rows")})
    return summary


WORKER_ROW = "platform on a Celery worker (GX preloaded), all ingest tasks"
COLD_ROW = "platform in a fresh process (GX imported by validate), all ingest tasks"


def table_rows(summary: dict) -> list[tuple[str, float, float, float, float]]:
    """(what, seconds, ratio to the raw pipe, rows/s, peak RSS MB) for one size."""
    size, raw = summary["size"], summary["raw"]["seconds"]
    rows = [("raw pipe (COPY TO STDOUT -> COPY FROM STDIN)", raw, 1.0, size / raw, summary["raw"]["peak_rss_mb"])]
    for name in STEPS:
        s = summary["worker"]["steps"][name]
        rows.append((f"  {name}", s["seconds"], s["seconds"] / raw, float("nan"), s["peak_rss_mb"]))
    w = summary["worker"]
    rows.append((WORKER_ROW, w["seconds"], w["seconds"] / raw, size / w["seconds"], w["peak_rss_mb"]))
    p = summary["path"]
    v = p["steps"]["validate"]
    rows.append(("  validate, importing Great Expectations itself", v["seconds"], v["seconds"] / raw, float("nan"),
                 v["peak_rss_mb"]))
    rows.append((COLD_ROW, p["seconds"], p["seconds"] / raw, size / p["seconds"], p["peak_rss_mb"]))
    r = summary["rerun"]
    rows.append(("no-change rerun, all ingest tasks", r["seconds"], r["seconds"] / raw, float("nan"), r["peak_rss_mb"]))
    d = summary["dlt"]
    rows.append((f"dlt {d['dlt']} merge ({d['backend']} backend, {d['file_format']} files)", d["seconds"],
                 d["seconds"] / raw, size / d["seconds"], d["peak_rss_mb"]))
    return rows


def targets(summaries: list[dict]) -> list[tuple[str, str, bool | None]]:
    """Issue 13's targets: (target, measured, met; None when the sizes run cannot tell)."""
    by_size = {s["size"]: s for s in summaries}
    big = by_size.get(1_000_000)
    out = []
    if big:
        for mode, where in (("worker", "on a Celery worker"), ("path", "in a fresh process")):
            ratio = big[mode]["seconds"] / big["raw"]["seconds"]
            out.append((f"1M rows: full path within {TARGET_PATH_RATIO}x the raw pipe ({where})", f"{ratio:.1f}x",
                        ratio <= TARGET_PATH_RATIO))
        for mode, where in (("worker", "on a Celery worker"), ("path", "in a fresh process")):
            vs = big[mode]["seconds"] / big["dlt"]["seconds"]
            out.append((f"1M rows: full path faster than dlt ({where})", f"{vs:.2f}x dlt's time", vs < 1))
        share = big["rerun"]["seconds"] / big["worker"]["seconds"]
        out.append((f"1M rows: no-change rerun under {TARGET_RERUN_SHARE:.0%} of the full path", f"{share:.1%}",
                    share < TARGET_RERUN_SHARE))
        rerun = big["rerun"]["seconds"]
        out.append((f"1M rows: no-change rerun's task time under {TARGET_RERUN_SECONDS:g} s", f"{rerun:.2f} s",
                    rerun < TARGET_RERUN_SECONDS))
    else:
        out.append(("1M-row targets (path ratio, dlt, rerun share)", "1M not in --sizes", None))
    if big and 10_000 in by_size:
        growth = (big["worker"]["steps"]["extract_and_land"]["peak_rss_mb"]
                  - by_size[10_000]["worker"]["steps"]["extract_and_land"]["peak_rss_mb"])
        out.append((f"landing memory: 1M rows within {TARGET_LANDING_GROWTH_MB} MB of 10k", f"{growth:+.1f} MB",
                    growth <= TARGET_LANDING_GROWTH_MB))
    else:
        out.append(("landing memory: 1M vs 10k", "needs both sizes", None))
    return out


def verdict(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "n/a"}[met]


def fmt(value: float, digits: int = 2) -> str:
    return "" if value != value else f"{value:,.{digits}f}"


def print_report(summaries: list[dict]) -> None:
    for s in summaries:
        print(f"\n{s['size']:,} rows, median of {s['repeats']}")
        print(f"{'':<72} {'seconds':>9} {'x raw':>7} {'rows/s':>10} {'peak RSS MB':>12}")
        for what, seconds, ratio, rate, rss in table_rows(s):
            print(f"{what:<72} {seconds:>9.2f} {ratio:>7.1f} {fmt(rate, 0):>10} {rss:>12.1f}")
        p, r = s["path"], s["rerun"]
        print(f"  checks {p['checks']}, rejected {p['rows_rejected']}, loaded {p['rows_loaded']}; rerun re-read "
              f"{r['rows']} rows ({r['rows_unchanged']} unchanged), loaded {r['rows_loaded']}; importing the quality "
              f"module (Great Expectations), part of a validate with rows: {s['gx_import']['seconds']:.2f} s")
    print("\ntargets (issue 13)")
    for what, measured, met in targets(summaries):
        print(f"  {what:<62} {measured:>20}  {verdict(met)}")


# --- docs ----------------------------------------------------------------------------------------

def machine(server: str) -> dict:
    from importlib.metadata import version

    with open("/proc/meminfo") as meminfo:
        mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    return {"cores": os.cpu_count(), "ram_gib": round(mem_kb / 1024 / 1024), "server": server_version(server),
            "python": platform.python_version(), "airflow": version("apache-airflow"),
            "gx": version("great_expectations"), "date": dt.date.today().isoformat()}


def docs_section(summaries: list[dict], info: dict) -> str:
    dlt_used = summaries[0]["dlt"]
    repeats = sorted({s["repeats"] for s in summaries})
    argv = (".venv/bin/python benchmarks/ingest_path.py --sizes " + ",".join(str(s["size"]) for s in summaries)
            + f" --repeats {repeats[0]}" + (" --repeats-1m " + str(repeats[-1]) if len(repeats) > 1 else "")
            + " --write-docs docs/benchmarks.md")
    lines = [
        DOC_BEGIN,
        "## The whole ingest path, against the raw pipe and dlt",
        "",
        "Measured with `benchmarks/ingest_path.py` (`make bench`), "
        f"{info['date']}: {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['server'].split(' on ')[0]} "
        f"(source and warehouse databases on one server, 127.0.0.1), Python {info['python']}, "
        f"Airflow {info['airflow']}, Great Expectations {info['gx']}, dlt {dlt_used['dlt']}. Command:",
        "",
        "```sh",
        "make bench   # = " + argv,
        "```",
        "",
        "The source is `rms.incident` (23 columns, the police records system's shape) filled "
        "server-side with rows the police suite passes, so validation passes and the merge runs. "
        "Per size, `--repeats` times, each measurement in a fresh process (its peak RSS is its own), after a `CHECKPOINT` (so that none pays for writing out what the one before it wrote):",
        "",
        "- **raw pipe** (the limit): `COPY (SELECT ...) TO STDOUT` of the source streamed, chunk by chunk, "
        "into `COPY ... FROM STDIN` of a staging-shaped table (all text), through psycopg 3 (the table is dropped, untimed, once measured, so the platform run that follows in the same warehouse does not share the server with its rows);",
        "- **platform on a Celery worker**: the ingest DAG's task bodies (`aim.pipeline`: `start_run` on a warehouse "
        "already migrated, `extract_and_land`, `validate`, `merge`, `finish_run`), called as the DAG "
        "calls them, without Airflow's process start-up, as a Celery worker of the deployed stack "
        "(`make stack`, docker-compose.yaml) runs them: in a process forked from one that imported "
        "Great Expectations first, untimed, as each worker does once when it starts "
        "(`aim.celery_worker`); the step rows are this run's;",
        "- **platform in a fresh process**: the same tasks in a process that imported nothing first, as "
        "under `airflow dags test` or the LocalExecutor: `validate` imports Great Expectations itself "
        "(only when the batch has rows to check), in the background while the gate's statements and the one count of the suite's conditions run;",
        "- **no-change rerun**: the same tasks in a new run, nothing new at the source (it re-reads the "
        "overlap window behind the watermark);",
        f"- **dlt {dlt_used['dlt']}**, in its own virtualenv (`benchmarks/.venv-dlt`): `sql_table` "
        f"({dlt_used['backend']} backend) loaded into a fresh PostgreSQL database with "
        f"`write_disposition=\"merge\"` and `primary_key=\"{KEY}\"` ({dlt_used['file_format']} load files, loaded by "
        "`COPY` into dlt's staging dataset, then merged by SQL: dlt's default `delete-insert`); only `pipeline.run` is timed. **dlt runs no quality gate.**",
        "",
        "Times are medians over the repeats; the ratio is to the raw pipe's median at the same size; "
        "the steps' medians need not add up to the median of the totals; "
        "peak RSS is the median of each process's own high-water mark (per step for the platform's steps, "
        "reset before each step, so it includes what the process already held, such as Great Expectations "
        "once `validate` has imported it; for the whole path, the largest step's).",
        "",
        f"**Noise.** The machine's {info['cores']} cores run the benchmark and the PostgreSQL server alike, "
        "and absolute seconds vary from run to run; ratios within one run (same rows, same server, "
        "same load) are what count.",
        "",
    ]
    for s in summaries:
        lines += [f"### {s['size']:,} rows (median of {s['repeats']})", "",
                  "| what | seconds | x raw pipe | rows/s | peak RSS MB |", "| --- | ---: | ---: | ---: | ---: |"]
        for what, seconds, ratio, rate, rss in table_rows(s):
            what = what.strip()
            what = f"`{what}`" if what in STEPS else what
            lines.append(f"| {what} | {seconds:.2f} | {ratio:.1f}x | {fmt(rate, 0)} | {rss:.1f} |")
        p, w, r = s["path"], s["worker"], s["rerun"]
        lines += ["", f"Validation: {p['checks']} checks, {p['rows_rejected']} rows rejected; merge loaded "
                      f"{p['rows_loaded']:,} rows. The rerun re-read {r['rows']:,} rows of the overlap window "
                      f"({r['rows_unchanged']:,} unchanged, dropped), validated 0 and merged {r['rows_loaded']}. "
                      f"Importing the quality module (Great Expectations), which `validate` does first when the "
                      f"batch has rows to check, takes {s['gx_import']['seconds']:.2f} s on its own; the rerun's "
                      f"`validate` (nothing to check: no import) took "
                      f"{r['steps']['validate']['seconds']:.2f} s of its {r['seconds']:.2f} s. "
                      f"All runs (seconds): raw {s['raw']['all_seconds']}, on a worker {w['all_seconds']}, "
                      f"in a fresh process {p['all_seconds']}, "
                      f"rerun {r['all_seconds']}, dlt {s['dlt']['all_seconds']}.", ""]
    lines += ["### Targets (issue 13)", "", "| target | measured | |", "| --- | ---: | --- |"]
    for what, measured, met in targets(summaries):
        lines.append(f"| {what} | {measured} | {verdict(met)} |")
    lines += ["", DOC_END]
    return "\n".join(lines) + "\n"


def write_docs(path: Path, section: str) -> None:
    """Replace the whole-path section of `path` (between its markers), or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if DOC_BEGIN in text and DOC_END in text:
        head, rest = text.split(DOC_BEGIN, 1)
        tail = rest.split(DOC_END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


# --- main ----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("AIM_BENCH_SERVER") or DEFAULT_SERVER,
                        help="URL of a PostgreSQL server (any database on it; default: $AIM_BENCH_SERVER or %(default)s)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per size (medians reported)")
    parser.add_argument("--repeats-1m", type=int, help="repeats for sizes of 1M rows and more (default: --repeats)")
    parser.add_argument("--write-docs", type=Path, help="rewrite the whole-path section of this file (docs/benchmarks.md)")
    parser.add_argument("--json", type=Path, help="also write every measurement and the medians to this file")
    parser.add_argument("--from-json", type=Path, help="measure nothing: report (and --write-docs) a --json file's results")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, source, target = args.child
        print(json.dumps(CHILDREN[mode](source, target)))
        return 0
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        print_report(saved["medians"])
        if args.write_docs:
            write_docs(args.write_docs, docs_section(saved["medians"], saved["machine"]))
            print(f"wrote {args.write_docs}")
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    ensure_dlt_venv()
    info = machine(args.server)
    print(f"{info['cores']} cores, {info['ram_gib']} GiB, {info['server']}", flush=True)
    summaries, raw = [], {}
    for size in sizes:
        repeats = args.repeats_1m if args.repeats_1m and size >= 1_000_000 else args.repeats
        started = time.perf_counter()
        raw[size] = measure_size(args.server, size, repeats)
        summaries.append(summarize(size, raw[size]))
        print(f"# {size:,} rows measured in {time.perf_counter() - started:.0f} s", flush=True)
    print_report(summaries)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": {str(k): v for k, v in raw.items()},
                                         "medians": summaries}, indent=1, default=str))
    if args.write_docs:
        write_docs(args.write_docs, docs_section(summaries, info))
        print(f"wrote {args.write_docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
