"""The Celery configuration of the platform's workers (`[celery] celery_config_options`):
Airflow's own, plus modules every task would otherwise import for itself, imported once by a
worker's main process when it starts, before it forks the pool that takes tasks.

A task runs in a fork of a pool process (Airflow's supervisor forks; on Linux it does not start a
new interpreter), so it finds these modules already in memory. The quality module is the one that
counts: importing Great Expectations costs every `validate` with rows about two seconds of CPU,
once per task, where a worker pays it once. Airflow preloads its own operators the same way
(`celery_executor_utils.on_celery_import_modules`). A module that fails to import stops the
worker at start, with the import's error, instead of failing every validation it would run.
"""
from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

PRELOADED = ("aim.quality",)

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "imports": [*DEFAULT_CELERY_CONFIG.get("imports", ()), *PRELOADED]}
