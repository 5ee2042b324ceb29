"""Airflow DAG `publish_open_data`: open data sets, scorecard, manifest and catalog (see aim.publish.dag)."""
from aim.publish.dag import build_publish_dag

dag = build_publish_dag()
