"""Airflow assets the platform's DAGs produce and consume.

An ingest DAG emits `core_asset(source)` when a run changed rows in `core.<source>`; DAGs that
read a source (the AIM measures, the exports) are scheduled on those assets, not on a timer.
"""
from __future__ import annotations

from airflow.sdk import Asset


def core_asset(source: str) -> Asset:
    """The asset for `core.<source>`, updated whenever an ingest run merges changed rows."""
    return Asset(name=f"core.{source}", uri=f"aim://warehouse/core/{source}", group="aim-core")


def measure_values_asset() -> Asset:
    """The asset for the AIM measure values, updated by every successful `aim_measures` run."""
    return Asset(name="core.aim_measure_value", uri="aim://warehouse/core/aim_measure_value", group="aim-core")
