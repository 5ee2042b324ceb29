"""Stale-data watch (aim.freshness): each source's newest data against the freshness its
configuration promises, recorded in ops, alerted once per stale episode, shown on the published
site and in the catalog.

Real components: a PostgreSQL warehouse, the DNS orders and the AIM registry ingested by their DAGs
from a landing folder, the aim_measures and watch_freshness DAGs run with `dag.test()`, a local
HTTP server as the alert webhook, a publication written to a folder. "Later" is the suite's clock
plus 30 days: the DNS data (promised within 10 days) is stale then.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest

from aim.freshness import STATUSES, check_freshness, judge
from aim.publish.catalog import validate_catalog
from aim_demo.databases import libpq_dsn, query
from alert_receivers import Webhook, webhook_server as receiving_webhook
from small_city import load_registry_and_dns_orders

DNS = "dns_code_enforcement_orders"
REGISTRY = "bmo_aim_registry"
NOT_LOADED = ("dpw_service_requests", "mfd_dispatch_incidents", "mhd_lead_tests", "mpd_crime_incidents")
CONFIGURED = sorted((DNS, REGISTRY, "bmo_measure_commentary", *NOT_LOADED))
LATER = dt.timedelta(days=30)
pytestmark = pytest.mark.clock  # ages and promises are counted in days from the suite's clock


# ---------------------------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------------------------

def test_the_rule_fresh_up_to_the_promise_stale_after_it():
    day = dt.date(2026, 11, 20)
    assert judge(day, dt.date(2026, 11, 22), 2) == ("fresh", 2)
    assert judge(day, dt.date(2026, 11, 23), 2) == ("stale", 3)
    assert judge(day, day, 0) == ("fresh", 0)
    assert judge(None, day, 2) == ("no data", None)
    assert judge(day, dt.date(2026, 11, 30), None) == ("no promise", 10)
    assert judge(None, day, None) == ("no promise", None)
    assert set(STATUSES) == {"fresh", "stale", "no data", "no promise"}


# ---------------------------------------------------------------------------------------------
# A warehouse with two sources loaded, and an alert webhook
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def webhook_server():
    with receiving_webhook() as server:
        yield server


@pytest.fixture
def webhook(webhook_server, monkeypatch) -> list[dict]:
    """The alert webhook configured (aim.alerts: the connection aim_alerts_webhook); its posts, emptied."""
    host, port = webhook_server.server_address[:2]
    monkeypatch.setenv("AIRFLOW_CONN_AIM_ALERTS_WEBHOOK", f"http://{host}:{port}/aim/alerts")
    Webhook.received.clear()
    return Webhook.received


@pytest.fixture(scope="module")
def warehouse(new_database, airflow_db, tmp_path_factory, clock):
    """A migrated warehouse with the DNS orders (30 days, through the demo's now) and the AIM registry
    loaded by their ingest DAGs, and the measures computed; the other sources never loaded."""
    url = new_database("aim_fresh")
    with pytest.MonkeyPatch.context() as env:
        load_registry_and_dns_orders(env, url, tmp_path_factory.mktemp("city") / "landing", clock, days=30)
        yield url


@pytest.fixture(scope="module")
def dns_as_of(warehouse, clock) -> dt.date:
    """The newest day of the DNS orders loaded (by issued_on, its coverage date column)."""
    day = query(warehouse, "SELECT max(issued_on) FROM core.dns_code_enforcement_orders WHERE issued_on <= %s",
                (clock.date(),))[0][0]
    assert clock.date() - dt.timedelta(days=10) <= day <= clock.date(), "the demo's orders are recent"
    return day


def checks(url: str, source: str) -> list[tuple]:
    return query(url, "SELECT status, age_days, alert_channels FROM ops.freshness_check WHERE source = %s "
                      "ORDER BY check_id", (source,))


# ---------------------------------------------------------------------------------------------
# The watch
# ---------------------------------------------------------------------------------------------

def last_check_id(url: str) -> int:
    return query(url, "SELECT coalesce(max(check_id), 0) FROM ops.freshness_check")[0][0]


def test_each_source_is_checked_and_recorded(warehouse, webhook, dns_as_of, clock):
    before = last_check_id(warehouse)
    results = {r.source: r for r in check_freshness()}
    assert sorted(results) == CONFIGURED

    dns = results[DNS]
    assert (dns.status, dns.data_as_of, dns.as_of_basis, dns.max_age_days) == ("fresh", dns_as_of, "coverage date", 10)
    assert dns.age_days == (clock.date() - dns_as_of).days and dns.last_success_at is not None
    assert dns.message.startswith(f"newest data is for {dns_as_of.isoformat()}, ") and "promised within 10 days" in \
        dns.message

    registry = results[REGISTRY]  # no coverage, no promise: as of its last load, reported all the same
    assert (registry.status, registry.as_of_basis, registry.max_age_days) == ("no promise", "last load", None)
    assert registry.data_as_of is not None and registry.last_success_at is not None
    assert "no freshness promise" in registry.message

    for source in NOT_LOADED:  # a promise, but nothing loaded: no data, and no alert for it
        assert (results[source].status, results[source].data_as_of, results[source].last_success_at) == \
            ("no data", None, None), source
        assert results[source].message.startswith("no data loaded yet; promised within ")
    assert webhook == [] and all(r.alert_channels is None for r in results.values())

    recorded = query(warehouse, "SELECT source, status, data_as_of, checked_at, run_id FROM ops.freshness_check "
                                "WHERE check_id > %s", (before,))
    assert sorted(r[0] for r in recorded) == CONFIGURED
    assert {r[3] for r in recorded} == {clock} and {r[4] for r in recorded} == {None}
    latest = dict(query(warehouse, "SELECT source, (status, data_as_of, stale_since) FROM ops.source_freshness"))
    assert latest[DNS] == f"(fresh,{dns_as_of.isoformat()},)"
    analysts = dict(query(warehouse, "SELECT source, status FROM marts.source_freshness"))
    assert analysts == {r.source: r.status for r in results.values()}


def test_a_monthly_source_is_as_of_its_newest_month_and_rows_from_the_future_do_not_count(warehouse, clock):
    import psycopg2

    from aim.freshness import measure
    from aim.settings import sources_dir
    from aim.sources import load_source_config

    config = load_source_config(sources_dir() / "mhd_lead_tests.yaml")  # monthly, by its `month` (YYYY-MM text)
    this_month = clock.date().replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    next_month = (this_month + dt.timedelta(days=32)).replace(day=1)
    conn = psycopg2.connect(libpq_dsn(warehouse))
    try:  # a core table for the lead tests, rolled back afterwards
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE core.mhd_lead_tests (month text)")
            cur.execute("INSERT INTO core.mhd_lead_tests VALUES (%s), (%s), ('not a month')",
                        (f"{last_month:%Y-%m}", f"{next_month:%Y-%m}"))
            found = measure(cur, [config], clock)[config.source]
            age = (clock.date() - last_month).days
            assert (found.data_as_of, found.newest, found.monthly, found.age_days) == (
                last_month, f"{last_month:%Y-%m}", True, age)
            assert found.public() == {"newest": f"{last_month:%Y-%m}", "status": judge(last_month, clock.date(), 45)[0],
                                      "age_days": age, "max_age_days": 45}
            # 45 days after the month's first day it is still on time; a day more, and it is late (both
            # days come before next month's, so its rows still do not count)
            on_time, late = (dt.datetime.combine(last_month + dt.timedelta(days=n), dt.time(12), clock.tzinfo)
                             for n in (45, 46))
            assert late.date() < next_month
            assert measure(cur, [config], on_time)[config.source].status == "fresh"
            assert measure(cur, [config], late)[config.source].status == "stale"
    finally:
        conn.rollback()
        conn.close()


def test_a_stale_source_alerts_once_per_stale_episode(warehouse, webhook, dns_as_of, clock):
    check_freshness(clock)  # fresh: no stale episode going on
    later = clock + LATER
    first = {r.source: r for r in check_freshness(later)}[DNS]
    age = (later.date() - dns_as_of).days
    assert (first.status, first.age_days, first.alert_channels) == ("stale", age, ("webhook",))
    assert len(webhook) == 1, "one alert"
    alert = webhook[0]["json"]
    run_id = query(warehouse, "SELECT run_id FROM ops.run_log WHERE source = %s", (DNS,))[0][0]
    assert (alert["kind"], alert["source"], alert["dag_id"], alert["run_id"]) == (
        "data stale", DNS, f"ingest_{DNS}", run_id)
    assert alert["reason"].startswith(f"newest data is for {dns_as_of.isoformat()}, {age} days old; "
                                      "promised within 10 days; last successful run ended ")

    # an hour later, still stale: recorded, but no second alert
    second = {r.source: r for r in check_freshness(later + dt.timedelta(hours=1))}[DNS]
    assert (second.status, second.alert_channels) == ("stale", None) and len(webhook) == 1
    assert query(warehouse, "SELECT status, stale_since FROM ops.source_freshness WHERE source = %s", (DNS,)) == [
        ("stale", later)]

    # fresh again (data as of the suite's day), then stale again: a new episode, a new alert
    assert {r.source: r.status for r in check_freshness(clock)}[DNS] == "fresh"
    assert {r.source: r.alert_channels for r in check_freshness(later)}[DNS] == ("webhook",)
    assert len(webhook) == 2
    assert [c[0] for c in checks(warehouse, DNS)][-4:] == ["stale", "stale", "fresh", "stale"]
    assert [c[2] for c in checks(warehouse, DNS)][-4:] == [["webhook"], None, None, ["webhook"]]
    check_freshness(clock)  # leave it fresh for the next tests


def test_an_alert_no_channel_delivered_is_sent_again_at_the_next_check(warehouse, webhook, webhook_server,
                                                                        monkeypatch, clock):
    check_freshness(clock)  # fresh: no stale episode going on
    later = clock + LATER
    monkeypatch.setenv("AIRFLOW_CONN_AIM_ALERTS_WEBHOOK", "http://127.0.0.1:9/closed")  # nothing listens there
    assert {r.source: r.alert_channels for r in check_freshness(later)}[DNS] == (), "sent, delivered nowhere"
    host, port = webhook_server.server_address[:2]
    monkeypatch.setenv("AIRFLOW_CONN_AIM_ALERTS_WEBHOOK", f"http://{host}:{port}/aim/alerts")
    assert {r.source: r.alert_channels for r in check_freshness(later)}[DNS] == ("webhook",), "sent again"
    assert {r.source: r.alert_channels for r in check_freshness(later)}[DNS] is None, "delivered once: done"
    assert len(webhook) == 1
    check_freshness(clock)  # leave it fresh for the next tests


def test_the_watch_freshness_dag_records_one_check_per_source(warehouse, webhook):
    from aim.dag_builders.freshness import build_freshness_dag

    dag = build_freshness_dag()
    assert (dag.dag_id, dag.catchup, sorted(dag.tags), dag.task_ids) == (
        "watch_freshness", False, ["freshness", "ops"], ["check_freshness"])
    assert dag.default_args["owner"] == "data-platform" and dag.default_args["retries"] == 1
    run = dag.test()
    assert str(run.state) == "success"
    recorded = query(warehouse, "SELECT source, status FROM ops.freshness_check WHERE run_id = %s", (run.run_id,))
    assert sorted(s for s, _ in recorded) == CONFIGURED
    assert dict(recorded)[DNS] == "fresh" and webhook == []


# ---------------------------------------------------------------------------------------------
# Publication: the open data page, the scorecard and the catalog
# ---------------------------------------------------------------------------------------------

def _article(page: str, element_id: str) -> str:
    return re.search(rf'<article[^>]* id="{re.escape(element_id)}".*?</article>', page, re.DOTALL).group(0)


def _words(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _publish(folder, moment: dt.datetime, monkeypatch, run_id: str) -> tuple[str, str, dict]:
    """Publish as of `moment` into `folder`; (data.html, index.html, the catalog)."""
    from aim.publish.publication import publish
    from aim.storage import LocalTarget

    monkeypatch.setenv("AIM_NOW", moment.isoformat())
    publish(run_id=run_id, target=LocalTarget(folder), today=moment.date())
    return ((folder / "site" / "data.html").read_text(encoding="utf-8"),
            (folder / "site" / "index.html").read_text(encoding="utf-8"),
            json.loads((folder / "catalog" / "data.json").read_text(encoding="utf-8")))


def test_the_site_and_the_catalog_show_the_newest_data_and_mark_it_late(
        warehouse, dns_as_of, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("AIM_WAREHOUSE_URL", warehouse)
    shown = re.escape(f'<time datetime="{dns_as_of.isoformat()}">')

    recorded = query(warehouse, "SELECT count(*) FROM ops.freshness_check")
    page, index, catalog = _publish(tmp_path, clock, monkeypatch, "on-time")
    dns = _article(page, "dataset-dns-code-enforcement-orders")
    assert re.search(rf"<dt>Newest data</dt><dd>{shown}[^<]*</time></dd>", dns), "on time: the day, no note"
    assert "Late" not in _words(page)
    police = _article(page, "dataset-mpd-crime-incidents")  # promised, never loaded
    assert "Newest dataNone yet" in _words(police)
    assert "Newest data" not in _article(page, "dataset-aim-measure-values"), "a query data set has no source"
    card = _article(index, "m-eco-01")  # computed from the DNS orders
    sources = re.search(r"<dt>Source data</dt><dd>(.*?)</dd>", card, re.DOTALL).group(1)
    assert re.search(rf'<span class="freshness">newest data {shown}', sources)
    entries = {e["identifier"].rstrip("/").rsplit("/", 1)[-1]: e for e in catalog["dataset"]}
    assert (entries["dns-code-enforcement-orders"]["dataAsOf"], entries["dns-code-enforcement-orders"]["dataLate"]) \
        == (dns_as_of.isoformat(), False)
    assert "dataAsOf" not in entries["aim-measure-values"] and validate_catalog(catalog) == []

    later = clock + LATER
    age = (later.date() - dns_as_of).days
    page, index, catalog = _publish(tmp_path, later, monkeypatch, "late")
    late = f"Late: newest data is {age} days old, promised within 10 days"
    dns = _article(page, "dataset-dns-code-enforcement-orders")
    assert re.search(rf"<dt>Newest data</dt><dd>{shown}[^<]*</time> <strong class=\"late\">{late}</strong></dd>", dns)
    card = _article(index, "m-eco-01")
    assert late in _words(re.search(r"<dt>Source data</dt><dd>(.*?)</dd>", card, re.DOTALL).group(1))
    entries = {e["identifier"].rstrip("/").rsplit("/", 1)[-1]: e for e in catalog["dataset"]}
    assert (entries["dns-code-enforcement-orders"]["dataAsOf"], entries["dns-code-enforcement-orders"]["dataLate"]) \
        == (dns_as_of.isoformat(), True)
    assert validate_catalog(catalog) == []
    assert query(warehouse, "SELECT count(*) FROM ops.freshness_check") == recorded, "publication records no check"


def test_the_catalog_refuses_a_malformed_data_as_of():
    from aim.publish.catalog import dataset_entry

    with pytest.raises(ValueError, match="dataAsOf"):
        dataset_entry(identifier="x", title="t", description="d", keywords=["k"], publisher_name="p",
                      contact_name="c", contact_email="c@example.org", license_uri=None, access_level="public",
                      modified=None, accrual_periodicity=None, temporal=None, described_by=None, distributions=[],
                      data_as_of="last Tuesday")
