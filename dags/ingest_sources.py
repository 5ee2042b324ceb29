"""Airflow ingest DAGs, one per source configuration file in dags/sources/ (see aim.dag_factory)."""
from aim.dag_factory import build_ingest_dags

globals().update(build_ingest_dags())
