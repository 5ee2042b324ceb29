"""Airflow DAG `aim_measures`: the AIM registry sync and measure values, run when the sources the
measures read have new data (see aim.measures_dag)."""
from aim.measures_dag import build_measures_dag

dag = build_measures_dag()
