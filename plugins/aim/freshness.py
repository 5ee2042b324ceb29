"""Stale-data watch: how fresh each source's data is, against the promise its configuration makes.

A source promises freshness in its configuration (`freshness.max_age_days`, `aim.sources.Freshness`).
Its data is **as of** the newest day it delivered data for:

- with a `coverage` block: the newest Milwaukee date of its coverage date column in `core.<source>`,
  up to today (`sql/freshness/newest_day.sql`; a monthly source: the first day of its newest month).
  Read from the core table itself, not from `core.source_coverage`, which only the aim_measures DAG
  rewrites: a failing measures run must not make a source look stale;
- without one: the day its last successful ingest run that loaded rows ended (`ops.run_log`).

Its status is **fresh** (at most `max_age_days` days before today), **stale** (older), **no data**
(a promise, but nothing loaded yet) or **no promise**. The last successful run of its ingest DAG is
reported beside it, so a source whose runs fail is visible before its data goes stale.

    measure(cur, configs, now)        -> {source: SourceFreshness}, nothing recorded (publication)
    check_freshness(now, run_id=...)  -> [SourceFreshness], recorded in ops.freshness_check, alerting

`check_freshness` (the watch_freshness DAG, hourly) records one row per configured source and sends
the "data stale" alert (`aim.alerts`) when a source turns stale: once per stale episode, at the
first stale check, or at the next ones while no channel has delivered it yet. A stale episode ends
at the first check that is not stale. `ops.source_freshness` is the latest check per source.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Iterable

from psycopg2 import sql

from aim import clock, db, settings
from aim.sources import SourceConfig, SourceConfigError, load_source_config, source_config_paths

log = logging.getLogger(__name__)

STATUSES = ("fresh", "stale", "no data", "no promise")
LOCK_ID = 4_417_000_003  # pg_advisory_xact_lock key: one freshness check at a time (one alert per episode)


@dataclass(frozen=True)
class SourceFreshness:
    """How fresh one source's data is at one moment."""

    source: str
    status: str                        # one of STATUSES
    data_as_of: dt.date | None         # the newest day it delivered data for (Milwaukee date)
    as_of_basis: str                   # 'coverage date' or 'last load'
    monthly: bool                      # data_as_of is the first day of a month that has data
    age_days: int | None               # days from data_as_of to today
    max_age_days: int | None           # the promise; None: no promise
    last_success_at: dt.datetime | None
    message: str
    last_dag_id: str | None = None     # the source's latest ingest run (what an alert links to)
    last_run_id: str | None = None
    alert_channels: tuple[str, ...] | None = None  # this check alerted: the channels that delivered it

    @property
    def newest(self) -> str | None:
        """data_as_of as text: YYYY-MM-DD, or YYYY-MM for a monthly source (the month it has data for)."""
        if self.data_as_of is None:
            return None
        return f"{self.data_as_of:%Y-%m}" if self.monthly else self.data_as_of.isoformat()

    def public(self) -> dict:
        """What the published site shows (JSON-like): `newest` (see `newest`), `status`, `age_days`,
        `max_age_days`. No run times: those are IT operations' (ops.source_freshness)."""
        return {"newest": self.newest, "status": self.status, "age_days": self.age_days,
                "max_age_days": self.max_age_days}


def judge(data_as_of: dt.date | None, today: dt.date, max_age_days: int | None) -> tuple[str, int | None]:
    """(status, age in days) of data as of `data_as_of` on `today` against the promise `max_age_days`:
    fresh when the age is at most the promise, stale when older, no data without data, no promise
    without a promise."""
    age = None if data_as_of is None else (today - data_as_of).days
    if max_age_days is None:
        return "no promise", age
    if data_as_of is None:
        return "no data", age
    return ("fresh" if age <= max_age_days else "stale"), age


def _days(n: int) -> str:
    return f"{n} day{'' if abs(n) == 1 else 's'}"


def _message(f: SourceFreshness) -> str:
    newest = (f"newest data is for {f.newest}" + (" (the last load)" if f.as_of_basis == "last load" else "")
              + f", {_days(f.age_days)} old") if f.data_as_of else "no data loaded yet"
    promise = "no freshness promise" if f.max_age_days is None else f"promised within {_days(f.max_age_days)}"
    success = ("last successful run ended " + f.last_success_at.astimezone(clock.LOCAL_ZONE).strftime("%Y-%m-%d %H:%M %Z")
               if f.last_success_at else "no successful run yet")
    return f"{newest}; {promise}; {success}"


def configured_sources() -> list[SourceConfig]:
    """Every source configuration in the sources folder that validates; one that does not is logged
    (its DAG factory shows the same error as an import error) and left out."""
    configs = []
    for path in source_config_paths(settings.sources_dir()):
        try:
            configs.append(load_source_config(path))
        except SourceConfigError as err:
            log.error("freshness of %s not checked: %s", path.stem, err)
    return configs


def _newest_day(cur, config: SourceConfig, today: dt.date) -> dt.date | None:
    from aim.measures.coverage import local_day

    table = f"core.{config.source}"
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    if not cur.fetchone()[0]:
        return None
    day = local_day(cur, table, config.coverage.date_column, month=config.coverage.cadence == "monthly")
    template = (settings.sql_dir() / "freshness" / "newest_day.sql").read_text(encoding="utf-8")
    cur.execute(sql.SQL(template).format(table=sql.Identifier("core", config.source), day=day), {"today": today})
    return cur.fetchone()[0]


def measure(cur, configs: Iterable[SourceConfig], now: dt.datetime | None = None) -> dict[str, SourceFreshness]:
    """The freshness of each source of `configs` at `now` (default: the platform's clock), read from
    the warehouse on `cur`; nothing is recorded and no alert is sent."""
    configs = list(configs)
    today = (now or clock.now()).astimezone(clock.LOCAL_ZONE).date()
    cur.execute((settings.sql_dir() / "freshness" / "runs.sql").read_text(encoding="utf-8"),
                {"sources": [c.source for c in configs]})
    runs = {source: rest for source, *rest in cur.fetchall()}
    found = {}
    for config in configs:
        last_success_at, last_load_at, last_dag_id, last_run_id = runs.get(config.source, (None,) * 4)
        if config.coverage:
            basis, monthly = "coverage date", config.coverage.cadence == "monthly"
            data_as_of = _newest_day(cur, config, today)
        else:
            basis, monthly = "last load", False
            data_as_of = last_load_at.astimezone(clock.LOCAL_ZONE).date() if last_load_at else None
        promise = config.freshness.max_age_days if config.freshness else None
        status, age = judge(data_as_of, today, promise)
        freshness = SourceFreshness(
            source=config.source, status=status, data_as_of=data_as_of, as_of_basis=basis, monthly=monthly,
            age_days=age, max_age_days=promise, last_success_at=last_success_at, message="",
            last_dag_id=last_dag_id, last_run_id=last_run_id)
        found[config.source] = replace(freshness, message=_message(freshness))
    return found


def current(url: str, sources: Iterable[str] | None = None, now: dt.datetime | None = None
            ) -> dict[str, SourceFreshness]:
    """The freshness of the named sources (default: every configured source) at `now` (default: the
    platform's clock), computed as the watch computes it but not recorded: what a publication shows.
    A name no configured source has is left out (e.g. a table a measure reads that no source of this
    platform loads), and so is a source whose configuration does not validate (logged)."""
    wanted = None if sources is None else set(sources)
    configs = [c for c in configured_sources() if wanted is None or c.source in wanted]
    if not configs:
        return {}
    with db.transaction(url) as conn, conn.cursor() as cur:
        return measure(cur, configs, now)


def _alert(freshness: SourceFreshness, config: SourceConfig) -> tuple[str, ...]:
    """Send the 'data stale' alert for a stale source, pointing to its latest ingest run (its ingest
    DAG when it has none); the channels that delivered it."""
    from aim import alerts
    from aim.dag_builders.ingest import dag_id_for

    alert = alerts.Alert(kind="data stale", source=freshness.source, reason=freshness.message,
                         dag_id=freshness.last_dag_id or dag_id_for(config), run_id=freshness.last_run_id)
    return tuple(alerts.send(alert))


def check_freshness(now: dt.datetime | None = None, *, run_id: str | None = None) -> list[SourceFreshness]:
    """Check every configured source's freshness at `now` (default: the platform's clock), record one
    row per source in ops.freshness_check (with `run_id`, the watch_freshness run) and alert IT
    operations once per stale episode. Returns the results, in source order."""
    now = now or clock.now()
    sql_dir = settings.sql_dir() / "freshness"
    record = (sql_dir / "record.sql").read_text(encoding="utf-8")
    episode_alerted = (sql_dir / "episode_alerted.sql").read_text(encoding="utf-8")
    configs = {config.source: config for config in configured_sources()}
    results = []
    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        for freshness in measure(cur, configs.values(), now).values():
            if freshness.status == "stale":
                cur.execute(episode_alerted, {"source": freshness.source})
                if not cur.fetchone()[0]:
                    freshness = replace(freshness, alert_channels=_alert(freshness, configs[freshness.source]))
                    log.warning("%s is stale (%s): alert delivered to %s", freshness.source, freshness.message,
                                list(freshness.alert_channels) or "no channel")
            cur.execute(record, {
                "checked_at": now, "run_id": run_id, "source": freshness.source, "data_as_of": freshness.data_as_of,
                "as_of_basis": freshness.as_of_basis, "age_days": freshness.age_days,
                "max_age_days": freshness.max_age_days, "last_success_at": freshness.last_success_at,
                "status": freshness.status, "message": freshness.message,
                "alert_channels": None if freshness.alert_channels is None else list(freshness.alert_channels),
            })
            log.info("freshness of %s: %s (%s)", freshness.source, freshness.status, freshness.message)
            results.append(freshness)
    return results
