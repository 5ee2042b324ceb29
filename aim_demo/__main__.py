"""`python -m aim_demo COMMAND`: the local demo environment (what the Makefile targets call).

  demo        start the embedded warehouse and the demo departmental systems, run every ingest
              DAG once through Airflow (`airflow dags test`), print a summary
  url         print the warehouse URL
  psql        open psql on the warehouse (as its owner)
  psql-analyst
              open psql on the warehouse as aim_analyst (embedded: its password is in .aim/aim_analyst.pgpass)
  stop        stop the embedded warehouse server
  standalone  the Airflow UI (airflow standalone) on http://localhost:8080 over the same setup
  stack       Airflow as deployed (CeleryExecutor, two Celery workers, redis, PostgreSQL metadata) in the
              background; UI and REST API on http://127.0.0.1:8080 (aim_demo/stack.py)
  stack-stop  stop everything `stack` started (the warehouse keeps running: make warehouse-stop)
  stack-status
              what the stack runs, and whether each component is alive
  quarantine  review quarantined batches: list | show BATCH | release BATCH --note ... | discard BATCH --note ...
  screenshots [SITE_DIR]
              the docs' screenshots (docs/*.png) from the site `make demo` published (aim_demo/screenshots.py)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from aim_demo import embedded_pg, local


def _airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    return subprocess.run([airflow, *args], env={**os.environ, **env}, text=True, capture_output=True)


def _migrated_warehouse() -> str:
    """The warehouse's URL, migrated; on the embedded server aim_analyst gets the password of its pgpass file."""
    from aim.migrations import migrate

    warehouse = local.warehouse_url()
    migrate(warehouse)
    if local.uses_embedded_warehouse():
        local.set_analyst_password(warehouse)
    return warehouse


def psql_analyst() -> int:
    """psql on the warehouse as aim_analyst: embedded, through its pgpass file; else with the caller's PG* settings."""
    embedded = local.uses_embedded_warehouse()
    warehouse = _migrated_warehouse() if embedded else local.warehouse_url()
    env = {**os.environ, **(local.analyst_environment() if embedded else {})}
    return subprocess.call(local.psql_command(local.analyst_url(warehouse)), env=env)


@contextmanager
def _environment() -> Iterator[dict[str, str]]:
    """Warehouse, exports, Airflow settings and every source's connection, with the demo systems running.

    A connection already set in the environment (a real system) wins over the demo one.
    """
    from aim import clock
    from aim_demo.systems import demo_systems

    warehouse = _migrated_warehouse()
    now = clock.local_wall_time().replace(microsecond=0)
    with demo_systems(local.STATE_DIR, local.rms_url(warehouse), now) as connections:
        yield {
            **local.airflow_environment(),
            **{name: value for name, value in connections.items() if name not in os.environ},
            "AIM_WAREHOUSE_URL": warehouse,
            "AIM_EXPORT_URL": os.environ.get("AIM_EXPORT_URL") or str(local.STATE_DIR / "exports"),
        }


def demo() -> int:
    """Run the pipeline end to end on the local environment; non-zero exit when a run failed."""
    print("starting the warehouse and the demo departmental systems ...", flush=True)
    analyst_passfile = local.ANALYST_PASSFILE if local.uses_embedded_warehouse() else None
    with _environment() as env:
        os.environ.update(env)  # aim.* below reads the same settings as the Airflow tasks
        from aim import settings
        from aim.dag_builders.ingest import dag_id_for
        from aim.sources import load_source_config, source_config_paths
        from aim_demo.summary import print_summary

        print("preparing Airflow's metadata database (airflow db migrate) ...", flush=True)
        migrated = _airflow(env, "db", "migrate")
        if migrated.returncode != 0:
            print(migrated.stdout[-3000:], migrated.stderr[-3000:], file=sys.stderr)
            return migrated.returncode

        configs = [load_source_config(p) for p in source_config_paths(settings.sources_dir())]
        started = time.time()
        failed = []
        for dag_id in [*(dag_id_for(c) for c in configs), "aim_measures", "publish_open_data", "watch_freshness"]:
            print(f"running {dag_id} (airflow dags test) ...", flush=True)
            result = _airflow(env, "dags", "test", dag_id)
            log_path = local.STATE_DIR / "logs" / f"{dag_id}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text(result.stdout + result.stderr)
            if result.returncode != 0:
                failed.append((dag_id, log_path))
        runs = print_summary(env["AIM_WAREHOUSE_URL"], [c.source for c in configs], since_epoch=started,
                             analyst_passfile=analyst_passfile)
    for dag_id, log_path in failed:
        print(f"{dag_id} FAILED: see {log_path}", file=sys.stderr)
    succeeded = {r["source"] for r in runs if r["status"] == "success"}
    return 0 if not failed and succeeded == {c.source for c in configs} else 1


VENV_BIN = os.path.dirname(sys.executable)  # the virtual environment's bin: airflow and its console scripts


def standalone_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` for `airflow standalone`: it starts its components as `airflow ...` subprocesses found on
    PATH, so the virtual environment's bin comes first (activated or not, no other airflow is used)."""
    path = [VENV_BIN] + [p for p in env.get("PATH", "").split(os.pathsep) if p and p != VENV_BIN]
    return {**env, "PATH": os.pathsep.join(path), "AIRFLOW__CORE__PARALLELISM": "4"}


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "demo"
    if command == "demo":
        return demo()
    if command == "url":
        print(local.display_url(local.warehouse_url()))
        return 0
    if command == "psql":
        return subprocess.call(local.psql_command(local.warehouse_url()))
    if command == "psql-analyst":
        return psql_analyst()
    if command == "standalone":
        with _environment() as env:
            standalone = standalone_environment({**os.environ, **env})
            return subprocess.call([os.path.join(VENV_BIN, "airflow"), "standalone"], env=standalone)
    if command in ("stack", "stack-stop", "stack-status"):  # Airflow as deployed: aim_demo/stack.py
        from aim_demo.stack import cli

        return cli(command)
    if command == "quarantine":  # aim.quarantine on the demo warehouse: list, show, release, discard
        os.environ.setdefault("AIM_WAREHOUSE_URL", local.warehouse_url())
        os.environ.update({k: v for k, v in local.airflow_environment().items() if k.startswith("AIM_")})
        os.environ.setdefault("AIM_EXPORT_URL", str(local.STATE_DIR / "exports"))
        from aim.quarantine import main as review

        return review(argv[2:])
    if command == "screenshots":
        from aim_demo.screenshots import main as screenshots

        return screenshots(argv[2:])
    if command == "stop":
        stopped = embedded_pg.stop(local.PGDATA)
        print("embedded warehouse stopped" if stopped else "embedded warehouse was not running")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
