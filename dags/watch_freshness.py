"""Airflow DAG `watch_freshness`: hourly, each source's newest data against the freshness its
configuration promises; alerts when a source turns stale (see aim.dag_builders.freshness)."""
from aim.dag_builders.freshness import build_freshness_dag

dag = build_freshness_dag()
