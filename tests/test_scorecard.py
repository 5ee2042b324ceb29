"""The public scorecard's data and its publication (aim.publish.scorecard) against a real warehouse.

A fresh warehouse per test: migrations, the budget office's registry synced into measures and
targets, SAF-01 computed from police incidents by the shipped measure file (with incidents in
aldermanic districts 0 and 16 and police district 8, which no district table may show), and the
other eleven measures' values written as the measures DAG would. The published `site/index.html`
is then read back (the embedded `aim-data` JSON, the headline figures and the district tables)
and compared with `marts.scorecard`, `marts.measure_history` and `marts.measure_definitions`
queried independently: what residents see is what analysts query. Every measure's latest value
differs from its target, so a page that swapped them would not pass. "Now" is the `clock` fixture.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from psycopg2.extras import execute_values

from aim import db, measures
from aim.migrations import migrate
from aim.publish.datasets import inventory
from aim.publish.scorecard import publish_site, scorecard_data
from aim.settings import sources_dir
from aim.sources import load_source_config
from aim.storage import LocalTarget
from aim.tables import ensure_tables
from aim_demo import aim_registry

ROOT = Path(__file__).resolve().parents[1]
MILWAUKEE = ZoneInfo("America/Chicago")
DISTRICTS = [str(d) for d in range(1, 16)]
# Measures reported by aldermanic district in this warehouse (SAF-01 from its source, the rest written).
DISTRICT_MEASURES = ("SAF-01", "SAF-02", "ECO-01", "ECO-02", "PHY-01", "PHY-02", "PHY-04")
# value / target of each measure's citywide values (never 1: the value is never the target)
FACTORS = {"SAF-02": 1.5, "SAF-03": 0.97, "SAF-04": 0.9, "ECO-01": 0.8, "ECO-02": 1.03, "CHI-01": 1.2,
           "CHI-02": 1.4, "PHY-01": 1.08, "PHY-02": 0.7, "PHY-03": 0.9, "PHY-04": 0.85}
LONG_TREND = "SAF-03"        # 30 months of values: the page shows the latest 24
LATEST_IS_NULL = "CHI-01"    # its newest month has no value: the scorecard shows the month before
PARTIAL = "SAF-04"           # also has a value for the month in progress, which the page must not show
DISTRICT_GAP = ("ECO-01", "5")  # this district's newest month has no value
POLICE_COUNTS = (41, 46, 53)    # SAF-01 incidents in the last three complete months


def month_back(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 - count
    return dt.date(index // 12, index % 12 + 1, 1)


def complete_months(clock: dt.datetime, count: int) -> list[dt.date]:
    """The `count` months before the clock's month, oldest first."""
    current = clock.date().replace(day=1)
    return [month_back(current, k) for k in range(count, 0, -1)]


def rounded(code: str, number: float) -> Decimal:
    unit = aim_registry.MEASURES[code][5]
    return Decimal(round(number)) if unit == "count" else Decimal(str(round(number, 1)))


# ------------------------------------------------------------------ the warehouse


def load_registry(cur, clock: dt.datetime) -> None:
    names = ("priority", "department", "activity", "measure_code", "measure_name", "definition", "unit",
             "direction", "frequency", "target_fiscal_year", "target_value")
    rows = [dict(zip(names, row)) for row in aim_registry.registry_rows(clock) if row is not None]
    execute_values(
        cur,
        f"INSERT INTO core.bmo_aim_registry ({', '.join(names)}, _batch_id, _run_id, _loaded_at) VALUES %s",
        [tuple(r[c] for c in names) + ("bmo-batch", "ingest-run", clock - dt.timedelta(days=200)) for r in rows],
    )


def police_incidents(months: list[dt.date]) -> list[tuple]:
    """Part 1 thefts; aldermanic district cycles 0..16 and police district 0..8 (0, 16 and 8 are out of range)."""
    rows = []
    for month, count in zip(months, POLICE_COUNTS):
        for k in range(count):
            reported = dt.datetime.combine(month, dt.time(1, 0)) + dt.timedelta(hours=11 * k)  # fits February
            rows.append((f"I{month:%y%m}{k:03d}", reported, k % 17, k % 9, True))
    return rows


def write_values(cur, rows: list[tuple]) -> None:
    """(code, month, geography type, geography code, value, data_as_of, computed_at) as the measures DAG writes."""
    execute_values(
        cur,
        """
        INSERT INTO core.aim_measure_value (measure_code, period_id, geography_type, geography_code, value,
                                            data_as_of, run_id, computed_at)
        SELECT v.code, p.period_id, v.gtype, v.gcode, v.value::numeric, v.as_of::timestamptz, 'fixture-run',
               v.computed::timestamptz
        FROM (VALUES %s) AS v(code, month, gtype, gcode, value, as_of, computed)
        JOIN core.aim_period p ON p.period_type = 'month' AND p.period_start = v.month::date
        """,
        rows,
    )


def build_warehouse(new_database, clock: dt.datetime, *, with_values: bool = True) -> str:
    url = new_database("scorecard")
    migrate(url)
    with db.transaction(url) as conn, conn.cursor() as cur:
        for name in ("bmo_aim_registry", "mpd_crime_incidents"):
            ensure_tables(cur, load_source_config(sources_dir() / f"{name}.yaml"))
        load_registry(cur, clock)
        measures.sync_registry(cur, "fixture-run")
    if not with_values:
        return url

    months = complete_months(clock, 30)
    police_months = months[-3:]
    with db.transaction(url) as conn, conn.cursor() as cur:
        incidents = police_incidents(police_months)
        execute_values(
            cur,
            "INSERT INTO core.mpd_crime_incidents (incident_num, reported_at, ald, police, theft, "
            "_batch_id, _run_id, _loaded_at) VALUES %s",
            [row + ("mpd-batch", "ingest-run", clock - dt.timedelta(days=3, hours=i % 5)) for i, row in
             enumerate(incidents)],
        )
        measures.recompute(cur, ["SAF-01"], police_months[0], police_months[-1], "fixture-run",
                           folder=ROOT / "sql" / "measures")
        # The database stamps computed_at with its own clock; the suite's moment decides what is complete.
        cur.execute("UPDATE core.aim_measure_value SET computed_at = %s", (clock,))

        measures.ensure_periods(cur, months[0], clock.date().replace(day=1))
        rows = []
        for code, factor in FACTORS.items():
            used = months if code == LONG_TREND else months[-6:]
            for i, month in enumerate(used):
                as_of = clock - dt.timedelta(days=len(used) - i, hours=2, minutes=len(code) + i)
                wiggle = 1 + 0.01 * ((i % 5) - 2)
                value = rounded(code, aim_registry.target(code, month.year) * factor * wiggle)
                if code == LATEST_IS_NULL and month == months[-1]:
                    value = None
                rows.append((code, month, "citywide", "all", value, as_of, clock))
                if code in DISTRICT_MEASURES and month >= months[-2]:
                    for d in DISTRICTS:
                        district_value = rounded(code, float(value) * (1 + (int(d) - 8) * 0.03))
                        if (code, d) == DISTRICT_GAP and month == months[-1]:
                            district_value = None
                        rows.append((code, month, "aldermanic_district", d, district_value, as_of, clock))
        current = clock.date().replace(day=1)  # the month in progress, computed at the clock's moment
        rows.append((PARTIAL, current, "citywide", "all", Decimal("0.5"), clock - dt.timedelta(minutes=5), clock))
        write_values(cur, rows)

        # The fixture's promise: every measure's latest citywide value differs from its target (by more
        # than the page's rounding), so a page that showed one for the other would fail.
        cur.execute("SELECT measure_code, value, target_value FROM marts.scorecard WHERE geography_type = 'citywide'")
        latest = cur.fetchall()
    assert len(latest) == 12 and all(v is not None for _, v, _ in latest), latest
    assert all(t is None or abs(v - t) > Decimal("0.1") for _, v, t in latest), latest
    return url


def query(url: str, statement: str, params=None) -> list[tuple]:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def num(value) -> float | None:
    return None if value is None else float(value)


def warehouse_citywide(url: str) -> dict[str, dict]:
    rows = query(url, """
        SELECT measure_code, priority, measure_name, unit, period_label, value, target_value, status, data_as_of
        FROM marts.scorecard WHERE geography_type = 'citywide'""")
    return {code: {"priority": priority, "name": name, "unit": unit, "period": period, "value": num(value),
                   "target": num(target), "status": status, "data_as_of": as_of}
            for code, priority, name, unit, period, value, target, status, as_of in rows}


def warehouse_districts(url: str) -> dict[str, dict[str, tuple]]:
    out: dict[str, dict[str, tuple]] = {}
    for code, district, value, status in query(url, """
            SELECT measure_code, geography_code, value, status FROM marts.scorecard
            WHERE geography_type = 'aldermanic_district'"""):
        out.setdefault(code, {})[district] = (num(value), status)
    return out


def warehouse_trends(url: str) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for code, period, value, target in query(url, """
            SELECT measure_code, period_label, value, target_value FROM marts.measure_history
            WHERE geography_type = 'citywide' AND period_type = 'month' AND NOT is_partial_month
            ORDER BY measure_code, period_start"""):
        out.setdefault(code, []).append((period, num(value), num(target)))
    return {code: points[-24:] for code, points in out.items()}


# ------------------------------------------------------------------ reading the published page


def embedded_data(page: str) -> dict:
    found = re.findall(r'<script type="application/json" id="aim-data">(.*?)</script>', page, re.DOTALL)
    assert len(found) == 1, "the page embeds its data once, as <script type=application/json id=aim-data>"
    return json.loads(found[0])


def shown_number(fragment: str) -> float | None:
    """The number a formatted figure shows ('2,104', '87.5%', '1.6 per 1,000', '6.4 min', '23.6 days')."""
    if "missing" in fragment:
        return None
    text = html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()
    for suffix in (" per 1,000", " min", " days", "%"):
        text = text.removesuffix(suffix)
    return float(text.replace(",", ""))


def page_articles(page: str) -> dict[str, dict]:
    """Per measure code: status, headline value, target and period, and the district table."""
    out = {}
    for body in re.findall(r'<article class="measure[^"]*"[^>]*>(.*?)</article>', page, re.DOTALL):
        code = html.unescape(re.search(r'<span class="code">(.*?)</span>', body).group(1))
        district_table = re.search(r'<details class="districts">.*?<tbody>(.*?)</tbody>', body, re.DOTALL)
        rows = re.findall(r'<tr><th scope="row">(.*?)</th><td>(.*?)</td><td><span class="status[^"]*" '
                          r'data-status="([^"]*)"', district_table.group(1)) if district_table else []
        period = re.search(r'<div class="figure period"><dt>Period</dt><dd><time datetime="([^"]*)"', body)
        out[code] = {
            "status": re.search(r'<p class="status[^"]*" data-status="([^"]*)"', body).group(1),
            "value": shown_number(re.search(r'<dd class="value">(.*?)</dd>', body).group(1)),
            "target": shown_number(
                re.search(r'<div class="figure target"><dt>Target</dt><dd>(.*?)</dd>', body).group(1)),
            "period": html.unescape(period.group(1)) if period else None,
            "districts": [(html.unescape(d), shown_number(v), s) for d, v, s in rows],
        }
    return out


def close(shown: float | None, stored: float | None, unit: str) -> bool:
    """Equal to the page's rounding: whole counts, one decimal for everything else."""
    if shown is None or stored is None:
        return shown is stored
    return abs(shown - stored) <= (0.5 if unit == "count" else 0.05) + 1e-9


def milwaukee_iso(moment: dt.datetime) -> str:
    """How the page writes a moment: Milwaukee time, to the second, with its offset."""
    return moment.astimezone(MILWAUKEE).replace(microsecond=0).isoformat()


# ------------------------------------------------------------------ tests


@pytest.fixture
def warehouse(new_database, clock) -> str:
    return build_warehouse(new_database, clock)


def test_scorecard_data_is_what_marts_scorecard_says(warehouse):
    expected = warehouse_citywide(warehouse)
    districts = warehouse_districts(warehouse)
    trends = warehouse_trends(warehouse)
    definitions = dict(query(warehouse, "SELECT measure_code, definition FROM marts.measure_definitions "
                                        "WHERE is_current"))

    data = scorecard_data(warehouse, inventory())

    shown = {m["code"]: (p["name"], m) for p in data["priorities"] for m in p["measures"]}
    assert set(shown) == set(expected) and len(expected) == 12, "every current measure is on the scorecard, once"
    for code, (priority, measure) in shown.items():
        row = expected[code]
        assert measure["latest"] == {"period": row["period"], "value": row["value"], "target": row["target"],
                                     "status": row["status"]}, (
            f"{code}: the latest period, value, target and status are marts.scorecard's citywide row")
        assert (priority, measure["name"], measure["unit"]) == (row["priority"], row["name"], row["unit"])
        assert measure["definition"] == definitions[code], f"{code}: the definition is the current version's"
        assert [(p["period"], p["value"], p["target"]) for p in measure["trend"]] == trends.get(code, []), (
            f"{code}: the trend is the latest 24 complete months of marts.measure_history")
        assert {d["district"]: (d["value"], d["status"]) for d in measure["districts"]} == districts.get(code, {}), (
            f"{code}: the district table is marts.scorecard's aldermanic district rows")
    first_words = [p["name"].split()[0] for p in data["priorities"]]
    assert first_words == ["Safety", "Economic", "Children's", "Environmental"], (
        "priorities in the city's order")
    assert data["as_of"] == milwaukee_iso(max(r["data_as_of"] for r in expected.values())), (
        "as of: the newest data_as_of of the scorecard's values, in Milwaukee time")


def test_published_page_says_what_the_warehouse_says(warehouse, tmp_path, clock):
    expected = warehouse_citywide(warehouse)
    districts = warehouse_districts(warehouse)
    trends = warehouse_trends(warehouse)
    target = LocalTarget(tmp_path / "exports")

    written = publish_site(warehouse, target, inventory())

    assert sorted(written) == ["site/assets/charts.js", "site/assets/style.css", "site/index.html"]
    page = (tmp_path / "exports" / "site" / "index.html").read_text(encoding="utf-8")
    data = embedded_data(page)
    articles = page_articles(page)
    by_code = {m["code"]: m for m in data["measures"]}
    assert set(by_code) == set(articles) == set(expected), "the page shows every measure of marts.scorecard"

    for code, row in expected.items():
        unit = row["unit"]
        measure, article = by_code[code], articles[code]
        # embedded JSON: status, and the trend the charts draw
        assert measure["status"] == row["status"], f"{code}: the page's status is marts.scorecard's"
        points = [(p["period"], p["value"], p["target"]) for p in measure["points"]]
        assert points == trends.get(code, []), f"{code}: the page's trend is marts.measure_history's"
        latest_point = [p for p in points if p[0] == row["period"]]
        assert latest_point == [(row["period"], row["value"], row["target"])], (
            f"{code}: the page's point for the latest period has the warehouse's value and target")
        # headline figures (HTML)
        assert article["status"] == row["status"], f"{code}: the headline status is marts.scorecard's"
        assert article["period"] == row["period"], f"{code}: the headline period is marts.scorecard's"
        assert close(article["value"], row["value"], unit), (
            f"{code}: the headline value {article['value']} is the warehouse's value {row['value']}")
        assert close(article["target"], row["target"], unit), (
            f"{code}: the headline target {article['target']} is the warehouse's target {row['target']}")
        # district table (HTML)
        stored = districts.get(code, {})
        shown_districts = [d for d, _, _ in article["districts"]]
        assert shown_districts == (DISTRICTS if stored else []), (
            f"{code}: a district table lists aldermanic districts 1-15, in order, and nothing else")
        for district, value, status in article["districts"]:
            assert close(value, stored[district][0], unit) and status == stored[district][1], (
                f"{code} district {district}: the page shows the warehouse's value and status")

    assert set(districts) == set(DISTRICT_MEASURES), (
        "the district tables are those of the measures reported by district")
    assert data["as_of"] == milwaukee_iso(max(r["data_as_of"] for r in expected.values()))
    assert dt.datetime.fromisoformat(data["as_of"]) <= clock, "the data is not newer than the clock"
    current = f"{clock:%Y-%m}"
    assert current not in {p["period"] for m in data["measures"] for p in m["points"]}, (
        "the month in progress is not on the page")
    links = re.findall(r'<ul class="datasets">(.*?)</ul>', page, re.DOTALL)[0]
    assert re.findall(r'<code>(.*?)</code>', links) == [d.id for d in inventory() if d.released], (
        "the page links every released data set, and only those")


def test_saf_01_districts_come_from_in_range_source_rows_only(warehouse, tmp_path, clock):
    """SAF-01 is computed from incidents that include aldermanic districts 0 and 16 and police district 8."""
    months = complete_months(clock, 3)
    last_count = POLICE_COUNTS[-1]
    per_district = Counter(k % 17 for k in range(last_count))  # the test's own count of the newest month

    publish_site(warehouse, LocalTarget(tmp_path / "exports"), inventory())

    article = page_articles((tmp_path / "exports" / "site" / "index.html").read_text(encoding="utf-8"))["SAF-01"]
    assert article["period"] == f"{months[-1]:%Y-%m}"
    assert article["value"] == last_count, "citywide counts every incident, whatever its district"
    assert [(d, v) for d, v, _ in article["districts"]] == [(d, float(per_district[int(d)])) for d in DISTRICTS], (
        "aldermanic districts 1-15 with their own incidents; districts 0 and 16 are not districts")
    assert sum(v for _, v, _ in article["districts"]) == last_count - per_district[0] - per_district[16]


def test_republishing_an_unchanged_scorecard_rewrites_nothing(warehouse, tmp_path):
    target = LocalTarget(tmp_path / "exports")
    assert publish_site(warehouse, target, inventory()), "the first publication writes the site"
    index = tmp_path / "exports" / "site" / "index.html"
    past = 1_600_000_000_000_000_000
    os.utime(index, ns=(past, past))

    assert publish_site(warehouse, target, inventory()) == [], "an unchanged scorecard is not rewritten"
    assert index.stat().st_mtime_ns == past


def test_as_of_falls_back_to_the_clock_when_no_measure_has_a_value(new_database, clock, tmp_path):
    url = build_warehouse(new_database, clock, with_values=False)

    data = scorecard_data(url, inventory())
    publish_site(url, LocalTarget(tmp_path / "exports"), inventory())

    assert data["as_of"] == milwaukee_iso(clock), "without any value, the page is as of the platform's clock"
    page = (tmp_path / "exports" / "site" / "index.html").read_text(encoding="utf-8")
    assert embedded_data(page)["as_of"] == milwaukee_iso(clock)
    measures_shown = [m for p in data["priorities"] for m in p["measures"]]
    assert len(measures_shown) == 12
    for measure in measures_shown:
        assert measure["latest"] == {"period": None, "value": None, "target": None, "status": "no value"}, (
            f"{measure['code']}: a measure without values is listed as 'no value', never guessed")
        assert measure["trend"] == [] and measure["districts"] == []
    assert {a["status"] for a in page_articles(page).values()} == {"no value"}


@pytest.mark.xfail(strict=True, reason="bug: scorecard_data lists measures from marts.scorecard's citywide rows "
                                       "only, so a measure with district values but no citywide value vanishes "
                                       "from the page instead of showing 'no value' (scorecard.py lines 171-174)")
def test_a_measure_with_district_values_only_is_still_on_the_page(new_database, clock):
    url = build_warehouse(new_database, clock, with_values=False)
    month = complete_months(clock, 1)[0]
    with db.transaction(url) as conn, conn.cursor() as cur:
        measures.ensure_periods(cur, month, month)
        write_values(cur, [("PHY-04", month, "aldermanic_district", "3", Decimal("70.5"), clock, clock)])
    current = {code for (code,) in query(url, "SELECT measure_code FROM marts.measure_definitions WHERE is_current")}

    data = scorecard_data(url, inventory())

    assert {m["code"] for p in data["priorities"] for m in p["measures"]} == current, (
        "every current measure is on the scorecard, whatever geographies its values have")
