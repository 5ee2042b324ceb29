"""The public scorecard's data and its publication (aim.publish.scorecard) against a real warehouse.

A fresh warehouse per test: migrations, the budget office's registry synced into measures and
targets, SAF-01 computed from police incidents by the shipped measure file (with incidents in
aldermanic districts 0 and 16 and police district 8, which no district table may show), and the
other eleven measures' values, completeness, quarters, fiscal years and definition files written
as the measures DAG would. The police deliver every day from eight months back to yesterday but
for one whole month (`POLICE_GAP`), so SAF-01 has complete months, a month without data, the
month before that gap (never settled: the police stopped delivering within its reporting lag)
and last month (still within the 30-day lag) provisional.

The published `site/` is then read back (the embedded `aim-data` JSON, the headline figures, the
sparklines, the monthly, quarterly and district tables, the definition files and links) and
compared with `marts.scorecard`, `marts.measure_history`, `marts.measure_definitions` and
`core.aim_measure_file` queried independently: what residents see is what analysts query. Every
complete latest value differs from its target, so a page that swapped them would not pass. "Now"
is the `clock` fixture.
"""
from __future__ import annotations

import datetime as dt
import hashlib
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

from aim import db, measures, settings
from aim.migrations import migrate
from aim.publish.datasets import inventory
from aim.publish.scorecard import publish_site, scorecard_data
from aim.settings import sources_dir
from aim.sources import load_source_config
from aim.storage import LocalTarget
from aim.tables import ensure_tables
from aim_demo import aim_registry

pytestmark = pytest.mark.clock  # the warehouse's history, lag and fiscal year are relative to the suite's today

ROOT = Path(__file__).resolve().parents[1]
MEASURE_FILES = ROOT / "sql" / "measures"
MILWAUKEE = ZoneInfo("America/Chicago")
DISTRICTS = [str(d) for d in range(1, 16)]
# Measures reported by aldermanic district in this warehouse (SAF-01 from its source, the rest written).
DISTRICT_MEASURES = ("SAF-01", "SAF-02", "ECO-01", "ECO-02", "PHY-01", "PHY-02", "PHY-04")
# value / target of each written measure's citywide values (never 1: the value is never the target)
FACTORS = {"SAF-02": 1.5, "SAF-03": 0.97, "SAF-04": 0.9, "ECO-01": 0.8, "ECO-02": 1.03, "CHI-01": 1.2,
           "CHI-02": 1.4, "PHY-01": 1.08, "PHY-02": 0.7, "PHY-03": 0.9, "PHY-04": 0.85}
LONG_TREND = "SAF-03"          # 30 months of values: the page shows the latest 24
LATEST_IS_NULL = "CHI-01"      # its newest month is complete but has no value: the scorecard shows the month before
IN_PROGRESS = "SAF-04"         # also has the month in progress (provisional; no data on the 1st of a month)
LAST_PROVISIONAL = ("SAF-02", "ECO-01", "PHY-01")  # last month still within the reporting lag
PROVISIONAL_ONLY = "PHY-03"    # no month complete yet: the card shows its latest provisional month, with no status
NO_DATA = "CHI-02"             # its source never delivered: every month is 'no data'
GAP = ("ECO-02", 3)            # no data three months back, between complete months
DISTRICT_GAP = ("ECO-01", "5")  # this district's newest month has no value
POLICE_BACK = 8                # the police deliver from eight months back ...
POLICE_GAP = 4                 # ... but nothing at all four months back


def month_back(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 - count
    return dt.date(index // 12, index % 12 + 1, 1)


def complete_months(clock: dt.datetime, count: int) -> list[dt.date]:
    """The `count` months before the clock's month, oldest first."""
    current = clock.date().replace(day=1)
    return [month_back(current, k) for k in range(count, 0, -1)]


def days_in(month: dt.date) -> int:
    return (month_back(month, -1) - month).days


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


def police_months(clock: dt.datetime) -> dict[dt.date, int]:
    """Per month the police delivered, the incidents in it: every day of it (of the month in
    progress: every day before today), at least one a day; nothing in the gap month."""
    today, current = clock.date(), clock.date().replace(day=1)
    counts = {}
    for back in range(POLICE_BACK, -1, -1):
        if back != POLICE_GAP:
            month = month_back(current, back)
            counts[month] = days_in(month) + 10 + month.month if back else 2 * (today.day - 1)
    return counts


def police_incidents(clock: dt.datetime) -> list[tuple]:
    """Part 1 thefts, spread over the days; aldermanic district cycles 0..16 and police district 0..8
    (0, 16 and 8 are out of range). Loaded four hours after they were reported."""
    today = clock.date()
    rows = []
    for month, count in police_months(clock).items():
        days = days_in(month) if month < today.replace(day=1) else today.day - 1
        for k in range(count):
            day = month + dt.timedelta(days=k % days)
            reported = dt.datetime.combine(day, dt.time(8 + (k // days) * 5 % 12, 7 * (k % 8)))
            loaded = reported.replace(tzinfo=MILWAUKEE) + dt.timedelta(hours=4)
            rows.append((f"I{month:%y%m}{k:03d}", reported, k % 17, k % 9, True, "mpd-batch", "ingest-run", loaded))
    return rows


def write_values(cur, rows: list[tuple]) -> None:
    """(code, period type, period start, geography type, geography code, value, data_as_of, computed_at)
    as the measures DAG writes them."""
    execute_values(
        cur,
        """
        INSERT INTO core.aim_measure_value (measure_code, period_id, geography_type, geography_code, value,
                                            data_as_of, run_id, computed_at)
        SELECT v.code, p.period_id, v.gtype, v.gcode, v.value::numeric, v.as_of::timestamptz, 'fixture-run',
               v.computed::timestamptz
        FROM (VALUES %s) AS v(code, ptype, start, gtype, gcode, value, as_of, computed)
        JOIN core.aim_period p ON p.period_type = v.ptype AND p.period_start = v.start::date
        """,
        rows,
    )


def write_completeness(cur, rows: list[tuple]) -> None:
    """(code, period type, period start, completeness, days covered, days settled) of written values."""
    execute_values(
        cur,
        """
        INSERT INTO core.aim_measure_period (measure_code, period_id, completeness, days_in_period, days_covered,
                                             days_settled, definition_sha256, run_id, computed_at)
        SELECT v.code, p.period_id, v.completeness, p.period_end - p.period_start + 1, v.covered, v.settled,
               'fixture-sha', 'fixture-run', ops.clock_now()
        FROM (VALUES %s) AS v(code, ptype, start, completeness, covered, settled)
        JOIN core.aim_period p ON p.period_type = v.ptype AND p.period_start = v.start::date
        """,
        rows,
    )


def record_measure_files(cur, codes) -> None:
    """core.aim_measure_file as the measures DAG records it for the measures it computes."""
    for code in codes:
        measure = measures.parse_measure_file(MEASURE_FILES / f"{code.lower().replace('-', '_')}.sql")
        cur.execute(
            "INSERT INTO core.aim_measure_file (measure_code, file_name, sha256, aggregation, sources) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (code, measure.path.name, measure.sha256, measure.aggregation,
             sorted({read.table for read in measure.dated_reads})))


def month_coverage(code: str, month: dt.date, back: int, today: dt.date) -> tuple[str, int, int]:
    """(completeness, days covered, days settled) of a written measure's month `back` months ago."""
    days = days_in(month)
    if code == NO_DATA or GAP == (code, back):
        return "no data", 0, 0
    if back == 0:  # the month in progress: the days before today, none of them settled
        return ("provisional", today.day - 1, 0) if today.day > 1 else ("no data", 0, 0)
    if code == PROVISIONAL_ONLY:
        return ("provisional", days, days - 12) if back == 1 else ("provisional", days - 5, days - 5)
    if back == 1 and code in LAST_PROVISIONAL:
        return "provisional", days, days - 10
    return "complete", days, days


def rollup_rows(cur, code: str, months: dict[dt.date, tuple]) -> tuple[list, list]:
    """Quarters and fiscal years containing the written months: the sum (a 'sum' measure) or the
    mean of the months' values, and coverage added up over the months, with the warehouse's rule
    (complete when every day is settled, no data when none is covered)."""
    aggregation = measures.parse_measure_file(MEASURE_FILES / f"{code.lower().replace('-', '_')}.sql").aggregation
    cur.execute(
        "SELECT period_type, period_start, period_end FROM core.aim_period "
        "WHERE period_type IN ('quarter', 'fiscal_year') AND period_end >= %s AND period_start <= %s",
        (min(months), max(months)))
    values, periods = [], []
    for kind, start, end in cur.fetchall():
        inside = [m for m in months if start <= m <= end]
        covered = sum(months[m][1] for m in inside)
        settled = sum(months[m][2] for m in inside)
        completeness = ("no data" if covered == 0 else
                        "complete" if settled == (end - start).days + 1 else "provisional")
        numbers = [months[m][3] for m in inside if months[m][3] is not None]
        value = None
        if completeness != "no data" and numbers:
            value = sum(numbers) if aggregation == "sum" else rounded(code, float(sum(numbers)) / len(numbers))
        as_of = max(months[m][4] for m in inside)
        values.append((code, kind, start, "citywide", "all", value, as_of, as_of))
        periods.append((code, kind, start, completeness, covered, settled))
    return values, periods


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

    today, current = clock.date(), clock.date().replace(day=1)
    months = complete_months(clock, 30)
    with db.transaction(url) as conn, conn.cursor() as cur:
        execute_values(
            cur,
            "INSERT INTO core.mpd_crime_incidents (incident_num, reported_at, ald, police, theft, "
            "_batch_id, _run_id, _loaded_at) VALUES %s",
            police_incidents(clock),
        )
        measures.recompute(cur, ["SAF-01"], month_back(current, POLICE_BACK), current, "fixture-run",
                           folder=MEASURE_FILES)

        measures.ensure_periods(cur, months[0], current)
        record_measure_files(cur, FACTORS)
        values, periods = [], []
        for code, factor in FACTORS.items():
            used = (months if code == LONG_TREND else months[-6:]) + ([current] if code == IN_PROGRESS else [])
            written: dict[dt.date, tuple] = {}
            for i, month in enumerate(used):
                back = (current.year - month.year) * 12 + current.month - month.month
                completeness, covered, settled = month_coverage(code, month, back, today)
                as_of = clock - dt.timedelta(days=len(used) - i, hours=2, minutes=len(code) + i)
                wiggle = 1 + 0.01 * ((i % 5) - 2)
                value = rounded(code, aim_registry.target(code, month.year) * factor * wiggle)
                if completeness == "no data" or (code == LATEST_IS_NULL and month == months[-1]):
                    value = None
                written[month] = (completeness, covered, settled, value, as_of)
                values.append((code, "month", month, "citywide", "all", value, as_of, clock))
                periods.append((code, "month", month, completeness, covered, settled))
                if code in DISTRICT_MEASURES and months[-2] <= month < current:
                    for d in DISTRICTS:
                        district_value = (None if value is None else
                                          rounded(code, float(value) * (1 + (int(d) - 8) * 0.03)))
                        if (code, d) == DISTRICT_GAP and month == months[-1]:
                            district_value = None
                        values.append((code, "month", month, "aldermanic_district", d, district_value, as_of, clock))
            rollup_values, rollup_periods = rollup_rows(cur, code, written)
            values += rollup_values
            periods += rollup_periods
        write_values(cur, values)
        write_completeness(cur, periods)

        # The fixture's promise: every measure but NO_DATA has a latest citywide value, and every complete
        # one differs from its target (by more than the page's rounding), so a page that showed one for the
        # other would fail.
        cur.execute("SELECT measure_code, value, target_value, completeness FROM marts.scorecard "
                    "WHERE geography_type = 'citywide'")
        latest = cur.fetchall()
    assert len(latest) == 12 and all((v is None) == (c == NO_DATA) for c, v, _, _ in latest), latest
    assert all(t is None or v is None or abs(v - t) > Decimal("0.1") for _, v, t, _ in latest), latest
    return url


def query(url: str, statement: str, params=None) -> list[tuple]:
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def num(value) -> float | None:
    return None if value is None else float(value)


def warehouse_citywide(url: str) -> dict[str, dict]:
    rows = query(url, """
        SELECT measure_code, priority, measure_name, unit, period_label, value, target_value, status,
               completeness, data_as_of
        FROM marts.scorecard WHERE geography_type = 'citywide'""")
    return {code: {"priority": priority, "name": name, "unit": unit, "period": period, "value": num(value),
                   "target": num(target), "status": status, "completeness": completeness, "data_as_of": as_of}
            for code, priority, name, unit, period, value, target, status, completeness, as_of in rows}


def warehouse_districts(url: str) -> dict[str, dict[str, tuple]]:
    out: dict[str, dict[str, tuple]] = {}
    for code, district, value, status in query(url, """
            SELECT measure_code, geography_code, value, status FROM marts.scorecard
            WHERE geography_type = 'aldermanic_district'"""):
        out.setdefault(code, {})[district] = (num(value), status)
    return out


def warehouse_trends(url: str) -> dict[str, list[tuple]]:
    """Per measure, its latest 24 months (the fixture's months are consecutive): period, value,
    target, status, completeness."""
    out: dict[str, list[tuple]] = {}
    for code, period, value, target, status, completeness in query(url, """
            SELECT measure_code, period_label, value, target_value, status, completeness
            FROM marts.measure_history
            WHERE geography_type = 'citywide' AND period_type = 'month'
            ORDER BY measure_code, period_start"""):
        out.setdefault(code, []).append((period, num(value), num(target), status, completeness))
    return {code: points[-24:] for code, points in out.items()}


def current_fiscal_year(clock: dt.datetime) -> int:
    return measures.fiscal_year_of(clock.date(), settings.fiscal_year_start_month())[0]


def warehouse_rollups(url: str, clock: dt.datetime) -> dict[str, list[tuple]]:
    """Per measure: this fiscal year's quarters, this fiscal year and last fiscal year, citywide."""
    year = current_fiscal_year(clock)
    out: dict[str, list[tuple]] = {}
    for code, kind, fiscal_year, period, value, target, status, completeness in query(url, """
            SELECT measure_code, period_type, fiscal_year, period_label, value, target_value, status, completeness
            FROM marts.measure_history
            WHERE geography_type = 'citywide' AND period_type IN ('quarter', 'fiscal_year')
            ORDER BY measure_code, period_start"""):
        if fiscal_year == year or (kind == "fiscal_year" and fiscal_year == year - 1):
            out.setdefault(code, []).append((kind, fiscal_year, period, num(value), num(target), status,
                                             completeness))
    # shown as: this year's quarters in order, this year, last year
    return {code: [r[2:] for r in sorted(rows, key=lambda r: (-r[1], r[0] == "fiscal_year", r[2]))]
            for code, rows in out.items()}


def month_history(url: str, code: str) -> dict[str, tuple]:
    """A measure's citywide months: label -> (value, status, completeness, days_in, covered, settled)."""
    return {label: (num(value), status, completeness, *days) for label, value, status, completeness, *days in query(
        url, """
        SELECT period_label, value, status, completeness, days_in_period, days_covered, days_settled
        FROM marts.measure_history
        WHERE measure_code = %s AND geography_type = 'citywide' AND period_type = 'month'""", (code,))}


# ------------------------------------------------------------------ reading the published page


def embedded_data(page: str) -> dict:
    found = re.findall(r'<script type="application/json" id="aim-data">(.*?)</script>', page, re.DOTALL)
    assert len(found) == 1, "the page embeds its data once, as <script type=application/json id=aim-data>"
    return json.loads(found[0])


def text_of(fragment: str) -> str:
    """The words of an HTML fragment (without the status symbols, hidden from screen readers)."""
    fragment = re.sub(r'<span[^>]*aria-hidden="true"[^>]*>.*?</span>', "", fragment)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", fragment))).strip()


def shown_number(fragment: str) -> float | None:
    """The number a formatted figure shows ('2,104', '87.5%', '1.6 per 1,000', '6.4 min', '23.6 days')."""
    if "missing" in fragment:
        return None
    text = text_of(fragment)
    for suffix in (" per 1,000", " min", " days", "%"):
        text = text.removesuffix(suffix)
    return float(text.replace(",", ""))


def article_bodies(page: str) -> dict[str, str]:
    out = {}
    for body in re.findall(r'<article class="measure[^"]*"[^>]*>(.*?)</article>', page, re.DOTALL):
        out[html.unescape(re.search(r'<span class="code">(.*?)</span>', body).group(1))] = body
    return out


def table_rows(body: str, css: str) -> list[list[str]]:
    """The body rows of the article's table in <details class="css">, as cells of HTML."""
    table = re.search(rf'<details class="{css}">.*?<tbody>(.*?)</tbody>', body, re.DOTALL)
    if not table:
        return []
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(1))]


def badge(cell: str) -> str:
    return re.search(r'<span class="status[^"]*" data-status="([^"]*)"', cell).group(1)


def page_articles(page: str) -> dict[str, dict]:
    """Per measure code: status, headline value, target and period, and the district table."""
    out = {}
    for code, body in article_bodies(page).items():
        period = re.search(r'<div class="figure period"><dt>Period</dt><dd><time datetime="([^"]*)"', body)
        out[code] = {
            "status": re.search(r'<p class="status[^"]*" data-status="([^"]*)"', body).group(1),
            "value": shown_number(re.search(r'<dd class="value">(.*?)</dd>', body).group(1)),
            "value_text": text_of(re.search(r'<dd class="value">(.*?)</dd>', body).group(1)),
            "target": shown_number(
                re.search(r'<div class="figure target"><dt>Target</dt><dd>(.*?)</dd>', body).group(1)),
            "period": html.unescape(period.group(1)) if period else None,
            "districts": [(text_of(d), shown_number(v), badge(s)) for d, v, s in table_rows(body, "districts")],
        }
    return out


def sparkline(body: str) -> dict:
    """The server-rendered sparkline: value subpaths per kind as lists of x, circles by period, no-data bands."""
    svg = re.search(r'<svg class="sparkline".*?</svg>', body, re.DOTALL).group(0)
    subpaths = {"complete": [], "provisional": []}
    for css, d in re.findall(r'<path class="(spark-value[^"]*)" d="([^"]*)"', svg):
        kind = "provisional" if "spark-provisional" in css else "complete"
        for sub in d.split("M")[1:]:
            subpaths[kind].append([float(pair.split(",")[0]) for pair in sub.split("L")])
    circles = {period: (css, float(cx)) for css, cx, period in re.findall(
        r'<circle class="([^"]*)" cx="([^"]*)"[^>]*data-period="([^"]*)"', svg)}
    bands = {period: float(x) + float(w) / 2 for x, w, period in re.findall(
        r'<rect class="spark-no-data" x="([^"]*)" y="[^"]*" width="([^"]*)" height="[^"]*" data-period="([^"]*)"', svg)}
    label = html.unescape(re.search(r'aria-label="([^"]*)"', svg).group(1))
    return {"subpaths": subpaths, "circles": circles, "bands": bands, "label": label}


def close(shown: float | None, stored: float | None, unit: str) -> bool:
    """Equal to the page's rounding: whole counts, one decimal for everything else."""
    if shown is None or stored is None:
        return shown is stored
    return abs(shown - stored) <= (0.5 if unit == "count" else 0.05) + 1e-9


def milwaukee_iso(moment: dt.datetime) -> str:
    """How the page writes a moment: Milwaukee time, to the second, with its offset."""
    return moment.astimezone(MILWAUKEE).replace(microsecond=0).isoformat()


def published(tmp_path: Path, warehouse: str) -> tuple[list[str], str]:
    written = publish_site(warehouse, LocalTarget(tmp_path / "exports"), inventory())
    return written, (tmp_path / "exports" / "site" / "index.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------ tests


@pytest.fixture
def warehouse(new_database, clock) -> str:
    return build_warehouse(new_database, clock)


def test_scorecard_data_is_what_marts_scorecard_says(warehouse, clock):
    expected = warehouse_citywide(warehouse)
    districts = warehouse_districts(warehouse)
    trends = warehouse_trends(warehouse)
    rollups = warehouse_rollups(warehouse, clock)
    definitions = dict(query(warehouse, "SELECT measure_code, definition FROM marts.measure_definitions "
                                        "WHERE is_current"))

    data = scorecard_data(warehouse, inventory())

    shown = {m["code"]: (p["name"], m) for p in data["priorities"] for m in p["measures"]}
    assert set(shown) == set(expected) and len(expected) == 12, "every current measure is on the scorecard, once"
    for code, (priority, measure) in shown.items():
        row = expected[code]
        latest = {k: measure["latest"][k] for k in ("period", "value", "target", "status", "completeness")}
        if code == NO_DATA:
            newest = trends[code][-1]
            assert row["status"] == "no value" and newest[3:] == ("no data", "no data")
            assert latest == {"period": newest[0], "value": None, "target": newest[2], "status": "no data",
                              "completeness": "no data"}, (
                f"{code}: without any value and with no source data for its newest month, the card says 'no data'")
        else:
            assert latest == {k: row[k] for k in latest}, (
                f"{code}: the latest period, value, target, status and completeness are marts.scorecard's")
            assert measure["latest"]["data_as_of"] == milwaukee_iso(row["data_as_of"])
        assert (priority, measure["name"], measure["unit"]) == (row["priority"], row["name"], row["unit"])
        assert measure["definition"] == definitions[code], f"{code}: the definition is the current version's"
        assert [(p["period"], p["value"], p["target"], p["status"], p["completeness"])
                for p in measure["trend"]] == trends.get(code, []), (
            f"{code}: the trend is the latest 24 months of marts.measure_history, provisional and no data included")
        assert [(r["period"], r["value"], r["target"], r["status"], r["completeness"])
                for r in measure["rollups"]] == rollups.get(code, []), (
            f"{code}: the rollups are this fiscal year's quarters and year and last year, from marts.measure_history")
        assert {d["district"]: (d["value"], d["status"]) for d in measure["districts"]} == districts.get(code, {}), (
            f"{code}: the district table is marts.scorecard's aldermanic district rows")
    first_words = [p["name"].split()[0] for p in data["priorities"]]
    assert first_words == ["Safety", "Economic", "Children's", "Environmental"], (
        "priorities in the city's order")
    assert data["as_of"] == milwaukee_iso(max(r["data_as_of"] for r in expected.values() if r["data_as_of"])), (
        "as of: the newest data_as_of of the scorecard's values, in Milwaukee time")


def test_published_page_says_what_the_warehouse_says(warehouse, tmp_path, clock):
    expected = warehouse_citywide(warehouse)
    districts = warehouse_districts(warehouse)
    trends = warehouse_trends(warehouse)

    written, page = published(tmp_path, warehouse)

    files = sorted(query(warehouse, "SELECT file_name FROM core.aim_measure_file"))
    assert sorted(written) == sorted(["site/assets/charts.js", "site/assets/style.css", "site/data.html", "site/index.html"] + [
        f"site/definitions/{name}" for (name,) in files]), "the page, its assets and every measure's definition file"
    data = embedded_data(page)
    articles = page_articles(page)
    by_code = {m["code"]: m for m in data["measures"]}
    assert set(by_code) == set(articles) == set(expected), "the page shows every measure of marts.scorecard"

    for code, row in expected.items():
        unit = row["unit"]
        measure, article = by_code[code], articles[code]
        points = [(p["period"], p["value"], p["target"], p["status"], p["completeness"]) for p in measure["points"]]
        assert points == trends.get(code, []), f"{code}: the page's trend is marts.measure_history's"
        if code == NO_DATA:
            assert (measure["status"], article["status"], article["value_text"]) == ("no data", "no data", "No data")
            continue
        # embedded JSON: status, and the trend the charts draw
        assert measure["status"] == row["status"], f"{code}: the page's status is marts.scorecard's"
        latest_point = [p[:3] for p in points if p[0] == row["period"]]
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
    assert data["as_of"] == milwaukee_iso(max(r["data_as_of"] for r in expected.values() if r["data_as_of"]))
    assert dt.datetime.fromisoformat(data["as_of"]) <= clock, "the data is not newer than the clock"
    current = f"{clock:%Y-%m}"
    in_progress = {(p["completeness"], p["status"]) for m in data["measures"] for p in m["points"]
                   if p["period"] == current}
    assert in_progress and in_progress <= {("provisional", "provisional"), ("no data", "no data")}, (
        "the month in progress is on the page only as provisional (or no data), never with a status")
    assert current not in {a["period"] for a in articles.values()}, "no card shows the month in progress"
    links = re.findall(r'<ul class="datasets">(.*?)</ul>', page, re.DOTALL)[0]
    assert re.findall(r'<code>(.*?)</code>', links) == [d.id for d in inventory() if d.released], (
        "the page links every released data set, and only those")


def test_saf_01_districts_come_from_in_range_source_rows_only(warehouse, tmp_path, clock):
    """SAF-01 is computed from incidents that include aldermanic districts 0 and 16 and police district 8."""
    shown_month = month_back(clock.date().replace(day=1), 2)
    count = police_months(clock)[shown_month]
    per_district = Counter(k % 17 for k in range(count))  # the test's own count of that month

    _, page = published(tmp_path, warehouse)

    article = page_articles(page)["SAF-01"]
    assert article["period"] == f"{shown_month:%Y-%m}", (
        "the latest complete month is two months back: last month is within the police's 30-day reporting lag")
    assert article["status"] == "on track" and article["value"] == count, (
        "citywide counts every incident, whatever its district")
    assert [(d, v) for d, v, _ in article["districts"]] == [(d, float(per_district[int(d)])) for d in DISTRICTS], (
        "aldermanic districts 1-15 with their own incidents; districts 0 and 16 are not districts")
    assert sum(v for _, v, _ in article["districts"]) == count - per_district[0] - per_district[16]


def test_a_month_without_data_is_a_gap_in_the_published_trend(warehouse, tmp_path, clock):
    current = clock.date().replace(day=1)
    gaps = {"SAF-01": month_back(current, POLICE_GAP), GAP[0]: month_back(current, GAP[1])}

    _, page = published(tmp_path, warehouse)

    data = {m["code"]: m for m in embedded_data(page)["measures"]}
    bodies = article_bodies(page)
    for code, month in gaps.items():
        label, before, after = (f"{m:%Y-%m}" for m in (month, month_back(month, 1), month_back(month, -1)))
        history = month_history(warehouse, code)
        assert history[label][:3] == (None, "no data", "no data"), f"{code}: the warehouse has no data for {label}"
        assert history[before][0] is not None and history[after][0] is not None, (
            f"{code}: the months either side have values, so a line would be drawn across {label} if not broken")
        # the embedded data the charts draw: a point without a value, marked no data
        points = {p["period"]: p for p in data[code]["points"]}
        assert (points[label]["value"], points[label]["status"], points[label]["completeness"]) == (
            None, "no data", "no data"), f"{code} {label}: the page's point has no value (not 0) and says no data"
        # the server-rendered sparkline: a shaded gap, no point, and no line through it
        spark = sparkline(bodies[code])
        assert label in spark["bands"], f"{code} {label}: the gap is marked on the sparkline"
        x = spark["bands"][label]
        assert label not in spark["circles"], f"{code} {label}: no point is drawn for a month without data"
        subpaths = spark["subpaths"]["complete"] + spark["subpaths"]["provisional"]
        assert subpaths, f"{code}: the sparkline has a line"
        for xs in subpaths:
            assert not any(abs(v - x) < 0.05 for v in xs), f"{code} {label}: no vertex at the month without data"
            assert not (min(xs) < x < max(xs)), f"{code} {label}: the line is broken at the month without data"
        assert any(max(xs) < x for xs in subpaths) and any(min(xs) > x for xs in subpaths), (
            f"{code}: the line runs on both sides of {label}")
        assert "No data (a gap in the line): " in spark["label"] and format_short(month) in spark["label"]
        # the monthly table says so in words
        row = next(r for r in table_rows(bodies[code], "monthly") if f'datetime="{label}"' in r[0])
        assert text_of(row[1]) == "No data" and badge(row[3]) == "no data"


def format_short(month: dt.date) -> str:
    return f"{month:%b %Y}"


def test_a_provisional_month_is_marked_provisional_on_the_page(warehouse, tmp_path, clock):
    current = clock.date().replace(day=1)
    last, before_gap = month_back(current, 1), month_back(current, POLICE_GAP + 1)

    _, page = published(tmp_path, warehouse)

    history = month_history(warehouse, "SAF-01")
    body = article_bodies(page)["SAF-01"]
    points = {p["period"]: p for m in embedded_data(page)["measures"] if m["code"] == "SAF-01" for p in m["points"]}
    spark = sparkline(body)
    rows = {re.search(r'datetime="([^"]*)"', r[0]).group(1): r for r in table_rows(body, "monthly")}
    for month in (last, before_gap):
        label = f"{month:%Y-%m}"
        value, status, completeness, days, covered, settled = history[label]
        assert (status, completeness) == ("provisional", "provisional") and value is not None, (
            f"SAF-01 {label}: the warehouse calls it provisional (the police's reporting lag is 30 days)")
        assert settled < covered, f"SAF-01 {label}: some of its days are still within the lag"
        assert (points[label]["value"], points[label]["status"], points[label]["completeness"]) == (
            value, "provisional", "provisional"), f"SAF-01 {label}: the page's point is its provisional value"
        # in words: the monthly table, with the days covered, and the chart's label
        row_text = text_of(rows[label][3])
        assert badge(rows[label][3]) == "provisional" and row_text.startswith("Provisional"), row_text
        assert f"{covered} of {days} days covered, {covered - settled} not yet past the reporting lag" in row_text
        assert format_short(month) in spark["label"].split("Provisional (data still coming in): ")[1].split(".")[0]
        # drawn distinctly: an open marker, and the steps to it dashed, not part of the solid line
        css, x = spark["circles"][label]
        assert "spark-provisional" in css, f"SAF-01 {label}: an open marker"
        assert any(x in xs for xs in spark["subpaths"]["provisional"]), f"SAF-01 {label}: on the dashed line"
        assert all(x not in xs for xs in spark["subpaths"]["complete"]), f"SAF-01 {label}: not on the solid line"
    complete = [label for label, h in history.items() if h[2] == "complete"]
    assert complete and all("spark-provisional" not in spark["circles"].get(label, ("", 0))[0] for label in complete)
    assert spark["subpaths"]["complete"], "complete months are drawn with the solid line"


def test_the_latest_card_says_provisional_or_no_data_instead_of_a_status(warehouse, tmp_path):
    expected = warehouse_citywide(warehouse)

    _, page = published(tmp_path, warehouse)

    articles, bodies = page_articles(page), article_bodies(page)
    calls = {"on track", "within tolerance", "off track", "no target"}
    # PROVISIONAL_ONLY: no complete month yet, so the card shows its latest provisional month
    row, card, body = expected[PROVISIONAL_ONLY], articles[PROVISIONAL_ONLY], bodies[PROVISIONAL_ONLY]
    _, _, _, days, covered, settled = month_history(warehouse, PROVISIONAL_ONLY)[row["period"]]
    assert (row["status"], row["completeness"]) == ("provisional", "provisional")
    assert card["status"] == "provisional" and card["period"] == row["period"]
    assert close(card["value"], row["value"], row["unit"]), "a provisional value is shown, as provisional"
    badge_text = text_of(re.search(r'<p class="status[^"]*"[^>]*>(.*?)</p>', body).group(1))
    assert badge_text == "Provisional" and not any(c in badge_text.lower() for c in calls)
    note = text_of(re.search(r'<p class="completeness">(.*?)</p>', body).group(1))
    assert note.startswith(f"Provisional: {covered} of {days} days covered, {covered - settled} not yet "
                           "past the reporting lag"), note
    # NO_DATA: nothing delivered, so 'no data', no number and no status call
    card, body = articles[NO_DATA], bodies[NO_DATA]
    assert card["status"] == "no data" and card["value"] is None and card["value_text"] == "No data"
    badge_text = text_of(re.search(r'<p class="status[^"]*"[^>]*>(.*?)</p>', body).group(1))
    assert badge_text == "No data" and "No data: " in text_of(body)
    # and a measure with a complete month keeps its call
    assert articles["SAF-03"]["status"] in calls


def test_rollups_are_the_warehouse_quarters_and_fiscal_years(warehouse, tmp_path, clock):
    expected = warehouse_rollups(warehouse, clock)
    units = {code: row["unit"] for code, row in warehouse_citywide(warehouse).items()}
    year = current_fiscal_year(clock)

    _, page = published(tmp_path, warehouse)

    bodies = article_bodies(page)
    statuses = set()
    for code, body in bodies.items():
        rows = table_rows(body, "rollups")
        shown = [(text_of(period), shown_number(value), shown_number(target), badge(status))
                 for period, value, target, status in rows]
        stored = expected.get(code, [])
        assert [s[0] for s in shown] == [r[0] for r in stored], (
            f"{code}: the rollup table lists FY{year}'s quarters, FY{year} and FY{year - 1}, as the warehouse has them")
        for (period, value, target, status), (_, s_value, s_target, s_status, completeness) in zip(shown, stored):
            assert close(value, s_value, units[code]) and close(target, s_target, units[code]), (
                f"{code} {period}: the page shows the warehouse's value and target")
            assert status == s_status, f"{code} {period}: the page shows the warehouse's status"
            statuses.add(status)
        for (period, _, _, status), row, (_, _, _, _, completeness) in zip(shown, rows, stored):
            if completeness == "provisional":
                assert "days covered" in text_of(row[3]), f"{code} {period}: a provisional period says how complete"
    assert expected["SAF-01"] and {r[0] for r in expected["SAF-01"]} >= {f"FY{year}"}, (
        "SAF-01's rollups are computed from its source")
    assert {"provisional", "no data"} <= statuses and statuses & {"on track", "within tolerance", "off track"}, (
        f"the rollups shown include provisional, no-data and complete periods: {statuses}")


def test_each_measure_links_its_definition_file_and_source_data_sets(warehouse, tmp_path):
    files = {code: (name, sources) for code, name, sources in query(
        warehouse, "SELECT measure_code, file_name, sources FROM core.aim_measure_file")}
    expected = warehouse_citywide(warehouse)
    released = [d for d in inventory() if d.released]
    site = tmp_path / "exports" / "site"

    written, page = published(tmp_path, warehouse)

    assert len(files) == 12
    for code, body in article_bodies(page).items():
        name, sources = files[code]
        hrefs = re.findall(r'<dt>Definition</dt><dd><a href="([^"]*)"', body)
        assert hrefs == [f"definitions/{name}"], f"{code}: links its definition file"
        published_file = site / hrefs[0]
        assert f"site/{hrefs[0]}" in written and published_file.is_file()
        assert published_file.read_bytes() == (MEASURE_FILES / name).read_bytes(), (
            f"{code}: the published definition is the SQL file, byte for byte")
        source_links = re.findall(r'<a href="([^"]*)">', re.search(
            r'<dt>Source data</dt><dd>(.*?)</dd>', body, re.DOTALL).group(1))
        # nothing is published in this warehouse: each source data set links its entry on the open
        # data page, which says it is not published yet (no link to a file that does not exist)
        wanted = [f"data.html#dataset-{d.id}" for d in released if d.source in sources]
        assert wanted and source_links == wanted, f"{code}: links the released data sets of {sources}"
        as_of = re.findall(r'<dt>Data as of</dt><dd><time datetime="([^"]*)"', body)
        if expected[code]["data_as_of"] is not None:
            assert as_of == [milwaukee_iso(expected[code]["data_as_of"])], f"{code}: the date of its data"
    sha = {code: row for code, row in query(warehouse, "SELECT measure_code, sha256 FROM core.aim_measure_file")}
    assert hashlib.sha256((site / "definitions" / "saf_01.sql").read_bytes()).hexdigest() == sha["SAF-01"], (
        "SAF-01's published definition is the one its values were computed with")


def test_republishing_an_unchanged_scorecard_rewrites_nothing(warehouse, tmp_path):
    target = LocalTarget(tmp_path / "exports")
    assert publish_site(warehouse, target, inventory()), "the first publication writes the site"
    index = tmp_path / "exports" / "site" / "index.html"
    definition = tmp_path / "exports" / "site" / "definitions" / "saf_01.sql"
    past = 1_600_000_000_000_000_000
    for path in (index, definition):
        os.utime(path, ns=(past, past))

    assert publish_site(warehouse, target, inventory()) == [], "an unchanged scorecard is not rewritten"
    assert index.stat().st_mtime_ns == past and definition.stat().st_mtime_ns == past


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
        latest = {k: measure["latest"][k] for k in ("period", "value", "target", "status", "completeness")}
        assert latest == {"period": None, "value": None, "target": None, "status": "no value",
                          "completeness": None}, (
            f"{measure['code']}: a measure without values is listed as 'no value', never guessed")
        assert measure["trend"] == [] and measure["districts"] == [] and measure["rollups"] == []
        # not computed yet: the definition is still the measure's file in sql/measures
        name = measure["definition_file"]["name"]
        published_file = tmp_path / "exports" / "site" / "definitions" / name
        assert published_file.read_bytes() == (MEASURE_FILES / name).read_bytes()
    assert {a["status"] for a in page_articles(page).values()} == {"no value"}


def test_a_measure_with_district_values_only_is_still_on_the_page(new_database, clock):
    url = build_warehouse(new_database, clock, with_values=False)
    month = complete_months(clock, 1)[0]
    with db.transaction(url) as conn, conn.cursor() as cur:
        measures.ensure_periods(cur, month, month)
        write_values(cur, [("PHY-04", "month", month, "aldermanic_district", "3", Decimal("70.5"), clock, clock)])
    current = {code for (code,) in query(url, "SELECT measure_code FROM marts.measure_definitions WHERE is_current")}

    data = scorecard_data(url, inventory())

    shown = {m["code"]: m for p in data["priorities"] for m in p["measures"]}
    assert set(shown) == current, "every current measure is on the scorecard, whatever geographies its values have"
    assert shown["PHY-04"]["latest"]["status"] == "no value", "no citywide value: 'no value', never guessed"
    assert [(d["district"], d["value"]) for d in shown["PHY-04"]["districts"]] == [("3", 70.5)]
