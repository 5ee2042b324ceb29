"""The Milwaukee AIM data platform: extract, validate, load and export, as importable modules.

DAG files under `dags/` only wire these functions into tasks.
"""
