"""Airflow DAG `publish_open_data`: open data sets, scorecard, manifest and catalog (see aim.dag_builders.publish)."""
from aim.dag_builders.publish import build_publish_dag

dag = build_publish_dag()
