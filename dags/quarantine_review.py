"""Airflow DAG to release or discard a quarantined batch after review (see aim.dag_builders.review)."""
from aim.dag_builders.review import build_review_dag

dag = build_review_dag()
