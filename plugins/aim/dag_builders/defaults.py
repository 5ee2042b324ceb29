"""What every AIM DAG shares: start date, retries, timeouts, failure recording and alerting.

Each builder states only what is its own (owner, tags, retries when a retry cannot help, the
timeout); `dag_arguments` fills in the rest, so the policy test (`tests/test_dags.py`) holds for
every DAG: an owner, tags, a failure callback that records the failure where the DAG logs its
runs and alerts through every configured channel (`aim.alerts`), retries with backoff, and an
execution timeout.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from typing import Any

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

log = logging.getLogger(__name__)


def retry_delay_seconds() -> float:
    """First retry delay (doubling after): AIM_RETRY_DELAY_SECONDS, default 120; the demo uses less."""
    return float(os.environ.get("AIM_RETRY_DELAY_SECONDS", "120"))


def failure_callbacks(source: str, record: Callable[[Any], None] | None = None,
                      alert_of: Callable[[Any], Any] | None = None) -> list:
    """A task's failure callbacks: `record(context)` (where the DAG logs its runs; its own failure is
    logged, never hiding the task's) and an alert per configured channel, naming `source`.

    `alert_of(context)` builds the alert (default: `aim.alerts.failed_run_alert` for `source`).
    """
    from aim import alerts

    callbacks: list = []
    if record is not None:
        def record_failure(context) -> None:
            try:
                record(context)
            except Exception:  # the callback must never hide the task's own failure
                log.exception("could not record the failure of %s run %s", source, context.get("run_id"))

        callbacks.append(record_failure)
    return callbacks + alerts.notifiers_for(alert_of or (lambda context: alerts.failed_run_alert(context, source=source)))


def dag_arguments(*, dag_id: str, owner: str, tags: list[str], failure: list, retries: int = 2,
                  timeout: dt.timedelta = dt.timedelta(hours=1), **dag_kwargs: Any) -> dict[str, Any]:
    """Keyword arguments for `DAG(...)`: the shared start date (no catch-up) and default_args (owner,
    retries with exponential backoff from `retry_delay_seconds`, execution timeout, failure callbacks),
    plus the builder's own `dag_kwargs` (schedule, description, params, doc_md, ...)."""
    return {
        "dag_id": dag_id,
        "start_date": START_DATE,
        "catchup": False,
        "tags": tags,
        "default_args": {
            "owner": owner,
            "retries": retries,
            "retry_delay": dt.timedelta(seconds=retry_delay_seconds()),
            "retry_exponential_backoff": True,
            "execution_timeout": timeout,  # a hung task never holds a worker slot
            "on_failure_callback": failure,
        },
        **dag_kwargs,
    }
