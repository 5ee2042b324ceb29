"""Airflow DAG `aim_measures`: the AIM registry sync and measure values, run when the sources the
measures read have new data (see aim.dag_builders.measures)."""
from aim.dag_builders.measures import build_measures_dag

dag = build_measures_dag()
