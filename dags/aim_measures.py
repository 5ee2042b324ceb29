"""Airflow DAG `aim_measures`: the AIM registry sync and measure values, run when the sources the
measures read have new data (see aim.measures.dag)."""
from aim.measures.dag import build_measures_dag

dag = build_measures_dag()
