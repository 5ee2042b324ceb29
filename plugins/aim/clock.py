"""The platform's one clock: every decision that depends on "now" or "today" reads it here.

`now()` is the real time, unless `AIM_NOW` holds an ISO 8601 timestamp with its offset
(`2026-03-08T02:30:00-06:00`): then the platform behaves as if it were that moment. The tests set
it (see `tests/conftest.py`) so that no result depends on the day or the hour a suite happens to
run; an operator may set it to replay a run "as of" a past moment. Audit timestamps written by the
database (`started_at`, `_loaded_at`, …) stay the server's real time.

Milwaukee's local time decides calendar questions (which day a call belongs to, which month is
the current one), so `local_now()` and `local_today()` are the ones most code wants.
"""
from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

LOCAL_TIME_ZONE = "America/Chicago"
LOCAL_ZONE = ZoneInfo(LOCAL_TIME_ZONE)
ENV_VAR = "AIM_NOW"


class ClockError(ValueError):
    """AIM_NOW is set to something that is not an ISO timestamp with an offset."""


def parse_moment(text: str) -> dt.datetime:
    """An ISO 8601 timestamp with an offset as an aware datetime; `ClockError` otherwise."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise ClockError(f"{ENV_VAR}={text!r} is not an ISO 8601 timestamp") from err
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ClockError(f"{ENV_VAR}={text!r} has no UTC offset; write e.g. 2026-03-08T02:30:00-06:00")
    return moment


def now() -> dt.datetime:
    """The current moment, timezone-aware (UTC), from `AIM_NOW` when it is set."""
    fixed = os.environ.get(ENV_VAR)
    if fixed:
        return parse_moment(fixed).astimezone(dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def local_now() -> dt.datetime:
    """The current moment in Milwaukee (aware, America/Chicago)."""
    return now().astimezone(LOCAL_ZONE)


def local_today() -> dt.date:
    """Today's date in Milwaukee."""
    return local_now().date()


def local_wall_time() -> dt.datetime:
    """Milwaukee's wall-clock time now, naive (what a `timestamp` column in local time holds)."""
    return local_now().replace(tzinfo=None)
