"""A warehouse with two real sources loaded by their ingest DAGs: the AIM registry and the DNS orders
(what the freshness and open data page tests build on)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

LOADED = ("bmo_aim_registry", "dns_code_enforcement_orders")


def load_registry_and_dns_orders(env, url: str, landing: Path, clock: dt.datetime, *, days: int) -> None:
    """Write the registry and `days` days of DNS orders (through two hours before `clock`, the demo's
    now) under `landing`, point their connections at it on `env` (a MonkeyPatch, kept by the caller),
    migrate `url` and run both ingest DAGs and aim_measures on it; asserts each run succeeds."""
    from aim.dag_builders.ingest import build_ingest_dag
    from aim.dag_builders.measures import build_measures_dag
    from aim.migrations import migrate
    from aim.settings import sources_dir
    from aim.sources import load_source_config
    from aim_demo import aim_registry, code_enforcement
    from aim_demo.systems import folder_connection

    now = clock.replace(tzinfo=None, minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)
    code_enforcement.write_drops(landing / "dns" / "orders", now, days=days)
    aim_registry.write_drops(landing / "budget", now)
    migrate(url)
    env.setenv("AIM_WAREHOUSE_URL", url)
    for name in ("AIRFLOW_CONN_DNS_ORDERS_DROP", "AIRFLOW_CONN_BMO_REGISTRY_DROP"):
        env.setenv(name, folder_connection(landing))
    for source in LOADED:
        dag = build_ingest_dag(load_source_config(sources_dir() / f"{source}.yaml"))
        assert str(dag.test().state) == "success", source
    assert str(build_measures_dag().test().state) == "success"
