"""Airflow DAG to release or discard a quarantined batch after review (see aim.review_dag)."""
from aim.review_dag import build_review_dag

dag = build_review_dag()
