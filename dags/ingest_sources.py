"""Airflow ingest DAGs, one per source configuration file in dags/sources/ (see aim.dag_builders.ingest)."""
from aim.dag_builders.ingest import build_ingest_dags

globals().update(build_ingest_dags())
