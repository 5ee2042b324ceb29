"""The public AIM scorecard site (aim.publish.site.render_site).

Unit tests read the HTML that render_site writes; browser tests open it straight from the folder
(file://, no server) in headless Chromium through Playwright, with and without JavaScript.
The fixture has months without source data (each must be a gap in the sparkline and the chart,
never a 0 and never bridged), provisional months (marked in words and drawn dashed with open
markers), cards that are provisional or have no data instead of a status, fiscal quarters and
years, and each measure's definition file (published byte for byte) and source data sets.

The browser tests need Debian's Chromium and the Playwright package; they fail (never skip)
without them, since CI installs both:
    apt-get update && apt-get install -y chromium
    .venv/bin/pip install playwright==1.65.2
(never `playwright install`: Playwright drives /usr/bin/chromium.)

The docs' screenshots come from the demo's published site: `make screenshots` (aim_demo/screenshots.py).
"""
from __future__ import annotations

import copy
import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from aim.publish.site import (completeness_text, format_as_of, format_period, format_value, render_html,
                             render_site)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("the browser tests need Debian's Chromium and Playwright: "
                "`apt-get update && apt-get install -y chromium` and "
                "`.venv/bin/pip install playwright==1.65.2` (do not run `playwright install`; "
                "the tests use /usr/bin/chromium)")
AS_OF = "2026-11-26T14:00:00-06:00"

# ---------------------------------------------------------------------------------------------
# Fixture data: what the platform builds from the marts views, for the demo's 12 measures
# ---------------------------------------------------------------------------------------------

SAFETY = "Safety and security for all neighborhoods and residents"
ECONOMY = "Economic opportunity and family-supporting employment"
CHILDREN = "Children's health and a path to success"
ASSETS = "Environmental and physical assets"

# code: (priority, department, name, definition, unit, direction, latest value, target, status,
#        month-to-month swing of the trend, whether reported by district)
MEASURES = {
    "SAF-01": (SAFETY, "Police", "Reported Part 1 crime incidents",
               "Number of Part 1 crime incidents (homicide, sexual assault, robbery, aggravated assault, "
               "burglary, theft, motor vehicle theft, arson) reported to the Police Department in the month.",
               "count", "lower", 2104.0, 2250.0, "on track", 90.0, True),
    "SAF-02": (SAFETY, "Police", "Violent crime incidents per 1,000 residents",
               "Reported homicides, sexual assaults, robberies & aggravated assaults in the month per "
               "1,000 city residents.", "rate", "lower", 12.3, 11.8, "within tolerance", 0.6, True),
    "SAF-03": (SAFETY, "Fire", "Fire calls with on-scene within 5 min 20 s of dispatch",
               "Percentage of priority 1 fire incidents where the first unit arrived on scene within "
               "5 minutes 20 seconds of dispatch.", "percent", "higher", 87.5, 86.0, "on track", 2.0, False),
    "SAF-04": (SAFETY, "Fire", "Median EMS response time",
               "Median minutes from dispatch to the first unit on scene for EMS incidents in the month.",
               "minutes", "lower", 6.4, 7.25, "on track", 0.3, False),
    "ECO-01": (ECONOMY, "Neighborhood Services", "Code enforcement orders complied by due date",
               "Percentage of code enforcement orders due in the month that were complied with on or "
               "before the compliance due date.", "percent", "higher", 41.2, 47.5, "off track", 3.0, True),
    "ECO-02": (ECONOMY, "Neighborhood Services", "Median days from order to compliance",
               "Median number of days between the issue of an order and its compliance, for orders "
               "complied with in the month.", "days", "lower", 23.6, 23.0, "within tolerance", 1.5, True),
    "CHI-01": (CHILDREN, "Health", "Children tested for lead",
               "Number of children under 6 years old who received a blood lead test in the month.",
               "count", "higher", 2431.0, None, "no target", 150.0, False),
    "CHI-02": (CHILDREN, "Health", "Share of tested children with elevated blood lead level",
               "Percentage of children tested in the month whose blood lead level was 3.5 ug/dL or "
               "higher (<3.5 ug/dL is not counted).", "percent", "lower", 7.9, 6.0, "off track", 0.5, False),
    "PHY-01": (ASSETS, "Public Works", "Pothole requests closed within 3 days",
               "Percentage of pothole service requests closed in the month within 3 days of being received.",
               "percent", "higher", 78.4, 77.5, "on track", 4.0, True),
    "PHY-02": (ASSETS, "Public Works", "Median days to close a 311 request",
               "Median number of days from receipt to closure of the 311 service requests closed in the month.",
               "days", "lower", 2.1, 5.5, "provisional", 0.4, True),
    "PHY-03": (ASSETS, "Public Works", "Missed garbage pickups per 1,000 households",
               "Reported missed garbage collections in the month per 1,000 households served by city collection.",
               "rate", "lower", None, 1.9, "no value", 0.2, False),
    "PHY-04": (ASSETS, "Public Works", "Street light outages repaired within 5 days",
               "Percentage of street light outages reported in the month that were repaired within 5 days.",
               "percent", "higher", None, 84.0, "no data", 3.0, True),
}
PRIORITIES = (SAFETY, ECONOMY, CHILDREN, ASSETS)
DATASETS = [
    {"id": "mpd-crime-incidents", "title": "Crime incidents",
     "href": "../latest/mpd-crime-incidents/mpd-crime-incidents.csv"},
    {"id": "mfd-dispatch", "title": "Fire and EMS dispatches", "href": "../latest/mfd-dispatch/mfd-dispatch.csv"},
    {"id": "dns-code-enforcement", "title": "Code enforcement orders",
     "href": "../latest/dns-code-enforcement/dns-code-enforcement.csv"},
    {"id": "mhd-lead-tests", "title": "Blood lead tests", "href": "../latest/mhd-lead-tests/mhd-lead-tests.csv"},
    {"id": "call-center-requests", "title": "311 service requests",
     "href": "../latest/call-center-requests/call-center-requests.csv"},
    {"id": "aim-measures", "title": "AIM measure values", "href": "../latest/aim-measures/aim-measures.json"},
]


def _months(last: str, count: int) -> list[str]:
    year, month = map(int, last.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


LATEST = "2026-10"         # the month every card shows (complete, but PHY-02's: still provisional)
IN_PROGRESS = "2026-11"    # the month in progress: provisional, 25 of 30 days covered
GAPS = {"ECO-02": "2025-09", "SAF-01": "2026-02"}  # months without source data: gaps in the line
BEFORE_GAP = ("SAF-01", "2026-01")  # provisional: its source stopped delivering within the lag
DAYS = {"2025-09": 30, "2026-01": 31, "2026-02": 28, "2026-03": 31, "2026-10": 31, "2026-11": 30}
# code: the released data sets of the sources it reads (a source not released: no data set)
SOURCES = {"SAF": [("mpd_crime_incidents", ["mpd-crime-incidents"])],
           "ECO": [("dns_code_enforcement_orders", ["dns-code-enforcement"])],
           "CHI": [("mhd_lead_tests", ["mhd-lead-tests"])],
           "PHY": [("dpw_service_requests", ["call-center-requests"])]}
SOURCES_OF = {code: SOURCES[code[:3]] for code in MEASURES}
SOURCES_OF["SAF-03"] = SOURCES_OF["SAF-04"] = [("mfd_dispatch_incidents", ["mfd-dispatch"]),
                                               ("mfd_ems_patient_care_reports", [])]


def _note(period: str, department: str, reason: str | None, action: str | None, outlook: str | None,
          updated: str, first: str | None = None, version: int = 1) -> dict:
    return {"period": period, "period_label": period, "reason": reason, "action": action, "outlook": outlook,
            "department": department, "updated": updated, "first_published": first or updated, "version": version}


# The departments' notes, newest period first (as the platform gives them): the off-track measures
# explain themselves; ECO-01's note on its card's month was edited, and it has two earlier ones;
# SAF-02's only note is on a month before its card's (it is shown, labelled with its month);
# PHY-04's note has only a reason. The other measures have none.
COMMENTARY = {
    "ECO-01": [
        _note("2026-10", "Neighborhood Services",
              "Two inspectors were on leave and 310 orders fell due in the month, 40% more than usual after the "
              "spring sweep of the 53206 ZIP code.",
              "Re-inspections are booked within 5 days of the due date; two temporary inspectors start in November.",
              "Compliance should be back to the 47.5% target by January 2027.",
              "2026-11-12T16:20:00-06:00", "2026-11-05T09:00:00-06:00", 2),
        _note("2026-09", "Neighborhood Services", "Owners of vacant properties were not reached by mail.",
              "Orders are now also posted on the property.", None, "2026-10-08T10:00:00-05:00"),
        _note("2026-08", "Neighborhood Services", "Summer backlog of re-inspections.", None,
              "Expected to recover in the fall.", "2026-09-09T11:30:00-05:00"),
    ],
    "CHI-02": [
        _note("2026-10", "Health",
              "More children from older housing were tested after the outreach campaign, so more elevated "
              "levels were found: more testing, not more poisoning.",
              "Every child with an elevated level gets a home visit within 2 weeks.",
              "The share should fall back under 6% once the campaign's catch-up testing ends, in spring 2027.",
              "2026-11-06T13:00:00-06:00"),
    ],
    "SAF-02": [
        _note("2026-09", "Police", "A rise in robberies downtown during the festival season.",
              "Extra foot patrols downtown on weekends.", "We expect the rate back within target by the end of "
              "the year.", "2026-10-15T08:45:00-05:00"),
    ],
    "PHY-04": [
        _note("2026-10", "Public Works", "The street light work order system was replaced; its export is not "
              "connected yet.", "", None, "2026-11-02T12:00:00-06:00"),
    ],
}


def definition_text(code: str, definition: str) -> str:
    """A measure's SQL file as stored: SAF-02's with Windows line endings, every one with non-ASCII text."""
    newline = "\r\n" if code == "SAF-02" else "\n"
    lines = [f"-- measure: {code}", f"-- {definition}", "-- (µg/dL, résidents: UTF-8 as stored)",
             "SELECT p.period_start, 'citywide' AS geography_type, 'all' AS geography_code, 0::numeric AS value",
             "FROM measure_period p WHERE 1 < 2 AND '<b>' <> '</script>';"]
    return newline.join(lines) + newline


def _status_of(value, target, direction) -> str:
    if target is None:
        return "no target"
    better = value <= target if direction == "lower" else value >= target
    return "on track" if better else ("within tolerance" if abs(value - target) <= 0.05 * abs(target) else "off track")


def _completeness(code: str, period: str) -> tuple[str, int | None, int | None, int | None]:
    """(completeness, days in period, days covered, days settled) of a month of the fixture."""
    days = DAYS.get(period, 30)
    if code == "PHY-04" or GAPS.get(code) == period:
        return "no data", days, 0, 0
    if period == IN_PROGRESS:
        return "provisional", days, 25, 0
    if (code, period) == BEFORE_GAP or (code == "PHY-02" and period == LATEST):
        return "provisional", days, days, days - 30 if days > 30 else 7
    return "complete", days, days, days


def _rollups(code: str, unit: str, direction: str, trend: list[dict]) -> list[dict]:
    """FY2026's quarters, FY2026 and FY2025, from the fixture's months (a count sums, the rest average)."""
    periods = [(f"FY2026 Q{q}", "quarter", [f"2026-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)])
               for q in (1, 2, 3, 4)]
    periods += [("FY2026", "fiscal_year", [f"2026-{m:02d}" for m in range(1, 13)]),
                ("FY2025", "fiscal_year", [f"2025-{m:02d}" for m in range(1, 13)])]
    by_period = {p["period"]: p for p in trend}
    rows = []
    for label, kind, months in periods:
        inside = [by_period[m] for m in months if m in by_period]
        kinds = {p["completeness"] for p in inside}
        completeness = ("no data" if kinds <= {"no data"} else
                        "complete" if kinds == {"complete"} and len(inside) == len(months) else "provisional")
        values = [p["value"] for p in inside if p["value"] is not None]
        value = None if completeness == "no data" or not values else round(
            sum(values) if unit == "count" else sum(values) / len(values), 0 if unit == "count" else 1)
        targets = [p["target"] for p in inside if p["target"] is not None]
        target = None if not targets else round(targets[-1] * (len(months) if unit == "count" else 1), 1)
        status = (completeness if completeness != "complete" else
                  "no value" if value is None else _status_of(value, target, direction))
        days = sum(DAYS.get(m, 30) for m in months)
        covered = sum(p["days_covered"] for p in inside)
        settled = sum(p["days_settled"] for p in inside)
        rows.append({"period": label, "period_type": kind, "value": value, "target": target, "status": status,
                     "completeness": completeness, "days_in_period": days, "days_covered": covered,
                     "days_settled": settled})
    return rows


def scorecard_data() -> dict:
    """Realistic data: 4 priorities, 12 measures, every status, 24-month trends with a fiscal-year
    change of target, gaps (months without source data), provisional months (the month in progress,
    a month within its source's lag), a measure without any value (targets only), one without a
    target, one whose source delivered nothing; this fiscal year's quarters and the fiscal years;
    each measure's definition file and source data sets."""
    priorities = {name: [] for name in PRIORITIES}
    for n, (code, (priority, dept, name, definition, unit, direction, value, target, status, swing,
                   by_district)) in enumerate(MEASURES.items()):
        periods = _months(IN_PROGRESS, 24)
        base = value if value is not None else (None if status in ("no value", "no data") else target)
        trend = []
        for i, period in enumerate(periods):
            # A deterministic wobble around the latest value, drifting towards it.
            wobble = swing * (((i * 7 + n * 3) % 11) - 5) / 5
            drift = swing * (len(periods) - 2 - i) / 8 * (1 if direction == "lower" else -1)
            v = None if base is None else round(base + wobble + drift, 0 if unit == "count" else 1)
            if period == LATEST:
                v = value
            completeness, days, covered, settled = _completeness(code, period)
            if completeness == "no data":
                v = None
            fy_target = None if target is None else (target if period >= "2026-01" else
                                                     round(target * (1.05 if direction == "lower" else 0.95), 1))
            point_status = (completeness if completeness != "complete" else
                            "no value" if v is None else _status_of(v, fy_target, direction))
            if period == LATEST:
                point_status = status
            trend.append({"period": period, "value": v, "target": fy_target, "status": point_status,
                          "completeness": completeness, "days_in_period": days, "days_covered": covered,
                          "days_settled": settled})
        districts = []
        if by_district and value is not None:
            for d in range(1, 16):
                dv = round(value / (15 if unit == "count" else 1) * (0.7 + ((d * 5 + n) % 9) / 14),
                           0 if unit == "count" else 1)
                target_d = target / 15 if unit == "count" else target
                districts.append({"district": str(d), "value": dv, "status": _status_of(dv, target_d, direction)})
            districts[14] = {"district": "15", "value": None, "status": "no value"}
        latest = next(p for p in trend if p["period"] == LATEST)
        priorities[priority].append({
            "code": code, "name": name, "department": dept, "unit": unit, "direction": direction,
            "definition": definition,
            "latest": {**latest, "value": value, "target": target, "status": status,
                       "data_as_of": None if value is None else f"2026-11-{10 + n:02d}T06:{n:02d}:00-06:00"},
            "trend": trend, "rollups": _rollups(code, unit, direction, trend), "districts": districts,
            "definition_file": {"name": code.lower().replace("-", "_") + ".sql",
                                "text": definition_text(code, definition), "computed_with": code != "SAF-03"},
            "sources": [{"source": source, "datasets": [d for d in DATASETS if d["id"] in ids]}
                        for source, ids in SOURCES_OF[code]],
            "commentary": copy.deepcopy(COMMENTARY.get(code, [])),
        })
    return {
        "title": "City of Milwaukee - AIM Scorecard",
        "as_of": AS_OF,
        "priorities": [{"name": name, "measures": measures} for name, measures in priorities.items()],
        "datasets": DATASETS,
    }


def measures_of(data: dict) -> list[dict]:
    return [m for p in data["priorities"] for m in p["measures"]]


EXPECTED_VALUES = {  # the latest values, formatted per unit, as the page must show them
    "SAF-01": "2,104", "SAF-02": "12.3 per 1,000", "SAF-03": "87.5%", "SAF-04": "6.4 min",
    "ECO-01": "41.2%", "ECO-02": "23.6 days", "CHI-01": "2,431", "CHI-02": "7.9%",
    "PHY-01": "78.4%", "PHY-02": "2.1 days", "PHY-03": None, "PHY-04": None,
}
EXPECTED_TARGETS = {
    "SAF-01": "2,250", "SAF-02": "11.8 per 1,000", "SAF-03": "86.0%", "SAF-04": "7.2 min",
    "ECO-01": "47.5%", "ECO-02": "23.0 days", "CHI-01": None, "CHI-02": "6.0%",
    "PHY-01": "77.5%", "PHY-02": "5.5 days", "PHY-03": "1.9 per 1,000", "PHY-04": "84.0%",
}
STATUS_LABELS = {"on track": "On track", "within tolerance": "Within tolerance", "off track": "Off track",
                 "no target": "No target", "no value": "No value", "provisional": "Provisional", "no data": "No data"}


def missing_value(code: str) -> str:
    """What the card shows for a measure without a latest value."""
    return "No data" if MEASURES[code][8] == "no data" else "No value"
EVIL = 'Evil <script>window.__pwned = 1</script> & "quoted" <img src=x onerror="window.__pwned=2">'


# ---------------------------------------------------------------------------------------------
# A small HTML reader: text per element id, tags and attributes
# ---------------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.tags: list[tuple[str, dict]] = []
        self.text_by_id: dict[str, list[str]] = {}
        self.parent_section: dict[str, str] = {}  # article id -> enclosing section id
        self.script_text: dict[str, str] = {}
        self.text_by_class: dict[tuple[str, str], list[str]] = {}  # (article id, class) -> text
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "article":
            sections = [a.get("id") for t, a in self.stack if t == "section"]
            self.parent_section[attrs.get("id")] = sections[-1] if sections else None
        if tag not in VOID:
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data):
        for tag, attrs in self.stack:
            if attrs.get("id"):
                self.text_by_id.setdefault(attrs["id"], []).append(data)
        articles = [a["id"] for t, a in self.stack if t == "article" and a.get("id")]
        if articles:
            for tag, attrs in self.stack:
                for css in (attrs.get("class") or "").split():
                    self.text_by_class.setdefault((articles[-1], css), []).append(data)
        if self.stack and self.stack[-1][0] == "script":
            key = self.stack[-1][1].get("id") or "?"
            self.script_text[key] = self.script_text.get(key, "") + data

    def text(self, element_id: str) -> str:
        return re.sub(r"\s+", " ", "".join(self.text_by_id.get(element_id, [])))

    def field(self, article: str, css: str) -> str:
        """Text of the elements of class `css` in the article (first of them where nested)."""
        return re.sub(r"\s+", " ", "".join(self.text_by_class.get((article, css), []))).strip()


def article_id(code: str) -> str:
    return "m-" + code.lower()


@pytest.fixture(scope="module")
def data() -> dict:
    return scorecard_data()


@pytest.fixture(scope="module")
def site(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scorecard")
    render_site(data, out)
    return out


@pytest.fixture(scope="module")
def page(site) -> Page:
    return Page((site / "index.html").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Unit tests
# ---------------------------------------------------------------------------------------------

def test_fixture_is_realistic(data):
    measures = measures_of(data)
    assert len(data["priorities"]) == 4 and len(measures) == 12
    assert {m["latest"]["status"] for m in measures} == set(STATUS_LABELS)
    assert all(len(m["trend"]) == 24 for m in measures)
    json.dumps(data)  # JSON-serialisable, as the platform passes it


def test_writes_index_and_relative_assets(data, tmp_path):
    written = render_site(data, tmp_path / "out")
    definitions = sorted(m["definition_file"]["name"] for m in measures_of(data))
    assert written == [tmp_path / "out" / "index.html", tmp_path / "out" / "assets" / "style.css",
                       tmp_path / "out" / "assets" / "charts.js"] + [
        tmp_path / "out" / "definitions" / name for name in definitions]
    assert all(path.is_file() and path.stat().st_size > 0 for path in written)


def test_format_value_per_unit():
    assert format_value(2104.0, "count") == "2,104"
    assert format_value(87.5, "percent") == "87.5%"
    assert format_value(12.34, "rate") == "12.3 per 1,000"
    assert format_value(6.4, "minutes") == "6.4 min"
    assert format_value(2.1, "days") == "2.1 days"
    assert format_value(1234567.0, "count") == "1,234,567"
    assert format_value(-0.01, "percent") == "0.0%"
    assert format_value(None, "count") is None
    assert format_value(float("nan"), "count") is None
    assert format_period("2026-10") == "October 2026" and format_period("2026-10", short=True) == "Oct 2026"
    assert format_as_of(AS_OF) == "November 26, 2026, 2:00 PM CST"


def test_every_measure_headline_is_in_the_html(data, page):
    for number, priority in enumerate(data["priorities"], start=1):
        section = f"priority-{number}"
        assert priority["name"] in page.text(f"{section}-heading")
        for measure in priority["measures"]:
            code = measure["code"]
            aid = article_id(code)
            assert page.parent_section[aid] == section, f"{code} is not under its priority"
            text = page.text(aid)
            assert page.text(f"{aid}-name") == measure["name"]
            latest = EXPECTED_VALUES[code] or missing_value(code)
            target = EXPECTED_TARGETS[code] or "No target"
            assert page.field(aid, "latest") == f"Latest{latest}", code
            assert page.field(aid, "target") == f"Target{target}", code
            assert page.field(aid, "period") == "PeriodOctober 2026", code
            assert STATUS_LABELS[measure["latest"]["status"]] in page.field(aid, "status"), code
            assert measure["definition"] in text


def test_status_is_in_text_and_data_attribute(page):
    badges = [a for t, a in page.tags if t == "p" and "status" in (a.get("class") or "").split()]
    assert len(badges) == 12
    assert {a["data-status"] for a in badges} == set(STATUS_LABELS)


def test_as_of_and_datasets(page, site):
    html = (site / "index.html").read_text(encoding="utf-8")
    assert f'<time datetime="{AS_OF}">November 26, 2026, 2:00 PM CST</time>' in html
    hrefs = [a["href"] for t, a in page.tags if t == "a"]
    for dataset in DATASETS:
        assert dataset["href"] in hrefs
        assert dataset["title"] in page.text("data")


def test_head_and_semantics(page, site):
    html = (site / "index.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert ("meta", {"charset": "utf-8"}) in page.tags
    assert any(t == "meta" and a.get("name") == "viewport" for t, a in page.tags)
    assert sum(1 for t, _ in page.tags if t == "h1") == 1
    assert sum(1 for t, _ in page.tags if t == "h2") == 6  # summary, 4 priorities, open data
    assert sum(1 for t, _ in page.tags if t == "h3") == 12
    district_tables = [a for t, a in page.tags if t == "details" and a.get("class") == "districts"]
    assert len(district_tables) == sum(1 for m in MEASURES.values() if m[10] and m[6] is not None)
    assert "District" in page.text("m-saf-01") and "Reported citywide only." in page.text("m-chi-01")


def test_all_links_are_relative_and_resolve(page, site):
    for tag, attrs in page.tags:
        for key in ("href", "src", "action", "poster", "srcset"):
            value = attrs.get(key)
            if value is None:
                continue
            assert not re.match(r"^([a-z][a-z0-9+.-]*:|//|/)", value, re.I), f"<{tag} {key}={value!r}>"
            if value.startswith("#"):
                assert value[1:] in page.text_by_id, f"anchor {value} has no target"
            elif not value.startswith("../"):  # data sets live beside the site, not in it
                assert (site / value).is_file(), f"{value} is not in the site folder"
    assets = "".join((site / "assets" / n).read_text(encoding="utf-8") for n in ("style.css", "charts.js"))
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", assets)


def test_absolute_dataset_links_are_refused(data):
    for href in ("https://data.example.org/x.csv", "//cdn.example.org/x.csv", "/latest/x.csv",
                 "javascript:alert(1)"):
        bad = copy.deepcopy(data)
        bad["datasets"] = [{"id": "x", "title": "X", "href": href}]
        with pytest.raises(ValueError, match="not a relative link"):
            render_html(bad)


def evil_data(data: dict) -> dict:
    evil = copy.deepcopy(data)
    first = evil["priorities"][0]["measures"][0]
    first["name"] = EVIL
    first["definition"] = "</script><script>window.__pwned = 3</script>"
    first["department"] = "<b>Police</b>"
    first["districts"][0]["district"] = "<i>1</i>"
    evil["priorities"][0]["name"] = "<h1>Safety</h1>"
    evil["datasets"][0]["title"] = "<script>window.__pwned = 4</script>"
    evil["title"] = "AIM </title><script>window.__pwned = 5</script>"
    first["commentary"] = [_note("2026-10", "<i>Police</i>", EVIL, "</dd></dl></div><script>window.__pwned = 6</script>",
                                 '<a href="javascript:window.__pwned=7">click</a>', "2026-11-03T09:00:00-06:00")]
    return evil


def test_text_is_escaped(data, tmp_path):
    render_site(evil_data(data), tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    parsed = Page(html)
    scripts = [a for t, a in parsed.tags if t == "script"]
    assert scripts == [{"src": "assets/charts.js", "defer": None}, {"type": "application/json", "id": "aim-data"}]
    assert not any(t in ("img", "b", "i") for t, _ in parsed.tags)
    assert sum(1 for t, _ in parsed.tags if t == "h1") == 1
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt; &amp; &quot;quoted&quot;" in html
    assert EVIL in parsed.text("m-saf-01-name")
    # The embedded JSON cannot close its element, and still holds the name as given.
    embedded = parsed.script_text["aim-data"]
    assert "<" not in embedded and json.loads(embedded)["measures"][0]["name"] == EVIL


def test_output_is_deterministic(data, tmp_path):
    first = render_site(data, tmp_path / "a")
    second = render_site(copy.deepcopy(data), tmp_path / "b")
    again = render_site(data, tmp_path / "a")
    for x, y, z in zip(first, second, again):
        assert x.read_bytes() == y.read_bytes() == z.read_bytes()
    changed = copy.deepcopy(data)
    changed["as_of"] = "2026-11-27T14:00:00-06:00"
    assert render_html(changed) != render_html(data)


def _article(html: str, code: str) -> str:
    return re.search(rf'<article [^>]*id="{article_id(code)}".*?</article>', html, re.DOTALL).group(0)


def _words(fragment: str) -> str:
    """The words of an HTML fragment, without the status symbols hidden from screen readers."""
    fragment = re.sub(r'<span[^>]*aria-hidden="true"[^>]*>.*?</span>', "", fragment)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", fragment))).strip()


def _rows(article: str, css: str) -> list[list[str]]:
    table = re.search(rf'<details class="{css}">.*?<tbody>(.*?)</tbody>', article, re.DOTALL)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(1))]


def _badge(fragment: str) -> str:
    return re.search(r'class="status[^"]*" data-status="([^"]*)"', fragment).group(1)


def _sparkline(article: str) -> dict:
    """Value subpaths (x coordinates) per kind, circles (class, cx) and no-data bands (centre x) by period."""
    svg = re.search(r'<svg class="sparkline".*?</svg>', article, re.DOTALL).group(0)
    subpaths = {"complete": [], "provisional": []}
    for css, d in re.findall(r'<path class="(spark-value[^"]*)" d="([^"]*)"', svg):
        for sub in d.split("M")[1:]:
            subpaths["provisional" if "spark-provisional" in css else "complete"].append(
                [float(pair.split(",")[0]) for pair in sub.split("L")])
    circles = {period: (css, float(cx)) for css, cx, period in re.findall(
        r'<circle class="([^"]*)" cx="([^"]*)"[^>]*data-period="([^"]*)"', svg)}
    bands = {period: float(x) + float(w) / 2 for x, w, period in re.findall(
        r'<rect class="spark-no-data" x="([^"]*)" y="[^"]*" width="([^"]*)"[^>]*data-period="([^"]*)"', svg)}
    return {"subpaths": subpaths, "circles": circles, "bands": bands,
            "label": unescape(re.search(r'aria-label="([^"]*)"', svg).group(1))}


def test_completeness_in_words():
    assert completeness_text("complete", 31, 31, 31) == "complete"
    assert completeness_text("no data", 30, 0, 0) == "no data"
    assert completeness_text("provisional", 30, 30, 18) == (
        "provisional: 30 of 30 days covered, 12 not yet past the reporting lag")
    assert completeness_text("provisional", 92, 61, 61) == "provisional: 61 of 92 days covered"
    assert completeness_text("provisional", None, None, None) == "provisional"
    assert completeness_text(None) is None


def test_fixture_has_gaps_and_provisional_months(data):
    points = [(m["code"], p) for m in measures_of(data) for p in m["trend"]]
    assert {(code, p["period"]) for code, p in points if p["completeness"] == "no data" and code != "PHY-04"} == \
        set(GAPS.items())
    assert all(p["value"] is None for _, p in points if p["completeness"] == "no data")
    assert BEFORE_GAP in {(code, p["period"]) for code, p in points if p["completeness"] == "provisional"}
    json.dumps(data)


def test_a_month_without_data_is_a_gap_in_the_sparkline(site):
    html = (site / "index.html").read_text(encoding="utf-8")
    embedded = {m["code"]: m for m in json.loads(Page(html).script_text["aim-data"])["measures"]}
    for code, gap in GAPS.items():
        article = _article(html, code)
        point = next(p for p in embedded[code]["points"] if p["period"] == gap)
        assert (point["value"], point["status"], point["completeness"]) == (None, "no data", "no data"), (
            f"{code} {gap}: the charts' data has no value for it (not 0), and says no data")
        spark = _sparkline(article)
        assert gap in spark["bands"] and gap not in spark["circles"], f"{code} {gap}: a marked gap, no point"
        x = spark["bands"][gap]
        lines = spark["subpaths"]["complete"] + spark["subpaths"]["provisional"]
        assert any(max(xs) < x for xs in lines) and any(min(xs) > x for xs in lines), f"{code}: line on both sides"
        for xs in lines:
            assert not min(xs) <= x <= max(xs), f"{code} {gap}: the line is broken at the month without data"
        month = format_period(gap, short=True)
        assert month in spark["label"].split("No data (a gap in the line): ")[1], spark["label"]
        row = next(r for r in _rows(article, "monthly") if f'datetime="{gap}"' in r[0])
        assert _words(row[1]) == "No data" and _badge(row[3]) == "no data", f"{code} {gap}: the table says no data"


def test_provisional_months_are_marked_in_words_and_drawn_dashed(site):
    html = (site / "index.html").read_text(encoding="utf-8")
    article = _article(html, "SAF-01")
    spark = _sparkline(article)
    rows = {re.search(r'datetime="([^"]*)"', r[0]).group(1): r for r in _rows(article, "monthly")}
    expected = {"2026-01": "Provisional 31 of 31 days covered, 30 not yet past the reporting lag",
                "2026-11": "Provisional 25 of 30 days covered, 25 not yet past the reporting lag"}
    for period, words in expected.items():
        assert _badge(rows[period][3]) == "provisional" and _words(rows[period][3]) == words
        css, x = spark["circles"][period]
        assert "spark-provisional" in css, f"{period}: an open marker"
        assert any(x in xs for xs in spark["subpaths"]["provisional"]), f"{period}: reached by a dashed step"
        assert not any(x in xs for xs in spark["subpaths"]["complete"]), f"{period}: not on the solid line"
    listed = spark["label"].split("Provisional (data still coming in): ")[1].split(".")[0]
    assert listed == "Jan 2026, Nov 2026", spark["label"]
    assert _badge(rows["2026-10"][3]) == "on track" and "completeness" not in rows["2026-10"][3]
    assert spark["subpaths"]["complete"], "complete months are drawn with the solid line"


def test_latest_card_says_provisional_or_no_data_instead_of_a_status(site, page):
    html = (site / "index.html").read_text(encoding="utf-8")
    calls = ("On track", "Within tolerance", "Off track", "No target")
    provisional = _article(html, "PHY-02")
    assert _words(re.search(r'<p class="status[^"]*"[^>]*>.*?</p>', provisional).group(0)) == "Provisional"
    assert page.field("m-phy-02", "latest") == "Latest2.1 days", "the provisional value is shown"
    assert _words(re.search(r'<p class="completeness">.*?</p>', provisional).group(0)).startswith(
        "Provisional: 31 of 31 days covered, 30 not yet past the reporting lag.")
    no_data = _article(html, "PHY-04")
    assert _words(re.search(r'<p class="status[^"]*"[^>]*>.*?</p>', no_data).group(0)) == "No data"
    assert page.field("m-phy-04", "latest") == "LatestNo data"
    assert "No data: " in _words(re.search(r'<p class="completeness">.*?</p>', no_data).group(0))
    for card in (provisional, no_data):
        status = _words(re.search(r'<p class="status[^"]*"[^>]*>.*?</p>', card).group(0))
        assert not any(call in status for call in calls)
    complete = _article(html, "SAF-01")
    assert '<p class="completeness">' not in complete and _badge(complete) == "on track"


def test_rollup_table_lists_this_fiscal_year_and_the_last(data, site):
    html = (site / "index.html").read_text(encoding="utf-8")
    for measure in measures_of(data):
        rows = _rows(_article(html, measure["code"]), "rollups")
        shown = [(_words(period), _words(value), _words(target), _badge(status))
                 for period, value, target, status in rows]
        unit = measure["unit"]
        expected = [(r["period"],
                     format_value(r["value"], unit) or ("No data" if r["completeness"] == "no data" else "No value"),
                     format_value(r["target"], unit) or "No target", r["status"]) for r in measure["rollups"]]
        assert shown == expected, measure["code"]
        assert [s[0] for s in shown] == ["FY2026 Q1", "FY2026 Q2", "FY2026 Q3", "FY2026 Q4", "FY2026", "FY2025"]
    saf = _rows(_article(html, "SAF-01"), "rollups")
    assert _words(saf[0][3]).startswith("Provisional 62 of 90 days covered"), "a quarter with a gap is provisional"
    statuses = {r["status"] for m in measures_of(data) for r in m["rollups"]}
    assert {"provisional", "no data", "on track"} <= statuses, statuses


def test_definition_files_are_published_verbatim_and_linked(data, site):
    html = (site / "index.html").read_text(encoding="utf-8")
    for measure in measures_of(data):
        article = _article(html, measure["code"])
        name = measure["definition_file"]["name"]
        assert (site / "definitions" / name).read_bytes() == measure["definition_file"]["text"].encode("utf-8"), (
            f"{name} is published exactly as given")
        assert re.findall(r'<dt>Definition</dt><dd><a href="([^"]*)"', article) == [f"definitions/{name}"]
        sources = re.search(r"<dt>Source data</dt><dd>(.*?)</dd>", article, re.DOTALL).group(1)
        wanted = [d["href"] for _, ids in SOURCES_OF[measure["code"]] for d in DATASETS if d["id"] in ids]
        assert re.findall(r'<a href="([^"]*)"', sources) == wanted
        as_of = re.findall(r'<dt>Data as of</dt><dd><time datetime="([^"]*)"', article)
        assert as_of == ([measure["latest"]["data_as_of"]] if measure["latest"]["data_as_of"] else [])
    assert b"\r\n" in (site / "definitions" / "saf_02.sql").read_bytes(), "line endings are kept"
    saf_03 = _article(html, "SAF-03")
    assert "(changed since these values were computed)" in _words(saf_03)
    assert "mfd_ems_patient_care_reports (not published as open data)" in _words(saf_03)


def test_bad_definition_files_are_refused(data, tmp_path):
    for name in ("../index.html", "../../x.sql", "sub/x.sql", "x.txt", ".sql", ""):
        bad = copy.deepcopy(data)
        bad["priorities"][0]["measures"][0]["definition_file"]["name"] = name
        if name:
            with pytest.raises(ValueError, match="not a plain .sql file name"):
                render_site(bad, tmp_path / "bad")
    twice = copy.deepcopy(data)
    first, second = twice["priorities"][0]["measures"][:2]
    second["definition_file"] = {**first["definition_file"], "text": "-- another file\n"}
    with pytest.raises(ValueError, match="two different contents"):
        render_site(twice, tmp_path / "twice")


def _commentary(article: str) -> str:
    found = re.search(r'<div class="commentary">.*?</dl></div>(?:<details.*?</details>)?</div>', article, re.DOTALL)
    return found.group(0) if found else ""


def _notes(fragment: str) -> dict[str, dict]:
    """The notes of a commentary block by element id: heading, updated line, parts, in order."""
    notes = {}
    for note_id, body in re.findall(r'<div class="commentary-note" id="([^"]*)">(.*?)</dl></div>', fragment, re.DOTALL):
        updated = re.search(r'<p class="commentary-updated">(.*?)</p>', body, re.DOTALL)
        notes[note_id] = {
            "heading": _words(re.search(r"<h4[^>]*>(.*?)</h4>", body, re.DOTALL).group(1)),
            "updated": _words(updated.group(1)) if updated else None,
            "parts": [(_words(dt), _words(dd)) for dt, dd in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", body, re.DOTALL)],
        }
    return notes


def test_commentary_shows_in_its_card_for_the_cards_month(data, site):
    html = (site / "index.html").read_text(encoding="utf-8")
    article = _article(html, "ECO-01")
    block = _commentary(article)
    assert block, "ECO-01 has a department note"
    # beside the measure and its period: after the figures, before the chart
    assert article.index('class="figures"') < article.index('class="commentary"') < article.index('class="trend"')
    shown = block.split("<details", 1)[0]
    assert _notes(shown) == {"m-eco-01-note-2026-10": {
        "heading": "From the Neighborhood Services Department, October 2026",
        "updated": "Updated November 12, 2026 (edited; first published November 5, 2026)",
        "parts": [("Why it moved", COMMENTARY["ECO-01"][0]["reason"]),
                  ("What we are doing", COMMENTARY["ECO-01"][0]["action"]),
                  ("When to expect change", COMMENTARY["ECO-01"][0]["outlook"])]}}
    assert '<time datetime="2026-11-12T16:20:00-06:00">' in shown, "the update is machine-readable too"
    chi = _notes(_commentary(_article(html, "CHI-02")))
    assert list(chi) == ["m-chi-02-note-2026-10"]
    assert chi["m-chi-02-note-2026-10"]["heading"] == "From the Health Department, October 2026"
    assert chi["m-chi-02-note-2026-10"]["updated"] == "Updated November 6, 2026", "version 1: not edited"


def test_commentary_without_a_note_for_the_cards_month_shows_the_newest_with_its_month(site):
    html = (site / "index.html").read_text(encoding="utf-8")
    notes = _notes(_commentary(_article(html, "SAF-02")))
    assert list(notes) == ["m-saf-02-note-2026-09"]
    assert notes["m-saf-02-note-2026-09"]["heading"] == "From the Police Department, September 2026"
    assert '<details class="commentary-earlier"' not in _article(html, "SAF-02")


def test_empty_commentary_parts_are_skipped(site):
    html = (site / "index.html").read_text(encoding="utf-8")
    notes = _notes(_commentary(_article(html, "PHY-04")))
    assert [label for label, _ in notes["m-phy-04-note-2026-10"]["parts"]] == ["Why it moved"]


def test_earlier_commentary_is_closed_and_newest_first(site):
    html = (site / "index.html").read_text(encoding="utf-8")
    article = _article(html, "ECO-01")
    earlier = re.search(r"<details class=\"commentary-earlier\">(.*?)</details>", article, re.DOTALL)
    assert earlier, "the earlier notes sit in a <details> element without `open`"
    assert _words(re.search(r"<summary>(.*?)</summary>", earlier.group(1)).group(1)) == "Earlier commentary (2)"
    notes = _notes(earlier.group(1))
    assert list(notes) == ["m-eco-01-note-2026-09", "m-eco-01-note-2026-08"]
    assert notes["m-eco-01-note-2026-08"]["heading"] == "From the Neighborhood Services Department, August 2026"
    assert [label for label, _ in notes["m-eco-01-note-2026-08"]["parts"]] == ["Why it moved", "When to expect change"]
    # the monthly table marks each month with a note, linking to it
    rows = {re.search(r'datetime="([^"]*)"', r[0]).group(1): r[0] for r in _rows(article, "monthly")}
    for month in ("2026-10", "2026-09", "2026-08"):
        assert f'href="#m-eco-01-note-{month}"' in rows[month] and "commentary on" in _words(rows[month])
    assert not any("note-link" in cell for month, cell in rows.items() if month not in ("2026-10", "2026-09", "2026-08"))


def test_no_commentary_renders_nothing(data, site):
    html = (site / "index.html").read_text(encoding="utf-8")
    for measure in measures_of(data):
        article = _article(html, measure["code"])
        if measure["code"] in COMMENTARY:
            continue
        assert "commentary" not in article and "note-link" not in article, measure["code"]
    bare = copy.deepcopy(data)
    for measure in measures_of(bare):
        del measure["commentary"]  # data without the key at all
    blank = copy.deepcopy(data)
    for measure in measures_of(blank):  # notes whose every part is empty show nothing either
        measure["commentary"] = [{**note, "reason": None, "action": "", "outlook": "  "}
                                 for note in measure["commentary"]]
    for variant in (bare, blank):
        assert 'class="commentary' not in render_html(variant) and "note-link" not in render_html(variant)


def test_hostile_commentary_is_escaped(data):
    html = render_html(evil_data(data))
    article = _article(html, "SAF-01")
    parsed = Page(article)
    assert not any(t in ("img", "i", "script") for t, _ in parsed.tags)
    assert not any(t == "a" and "javascript" in (a.get("href") or "") for t, a in parsed.tags)
    notes = _notes(_commentary(article))
    note = notes["m-saf-01-note-2026-10"]
    assert note["heading"] == "From the <i>Police</i> Department, October 2026"
    assert note["parts"] == [("Why it moved", EVIL),
                             ("What we are doing", "</dd></dl></div><script>window.__pwned = 6</script>"),
                             ("When to expect change", '<a href="javascript:window.__pwned=7">click</a>')]
    assert "&lt;/dd&gt;&lt;/dl&gt;&lt;/div&gt;&lt;script&gt;" in article


def test_legend_explains_provisional_no_data_and_the_rule(page):
    legend = page.text("main")
    assert "Provisional: the period's data is not complete yet" in legend
    assert "No data: the source delivered no data for the period: there is no value (never a 0)" in legend
    assert ("Only a complete period (every day delivered and past its sources' reporting lag) is called on "
            "track, within tolerance or off track") in legend



# ---------------------------------------------------------------------------------------------
# Browser tests: headless Chromium on the file:// URL, no server
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium (Playwright), or the reason there is none (the tests then fail)."""
    if not Path(CHROMIUM).is_file():
        yield f"{CHROMIUM} is missing: {INSTALL_HINT}"
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        yield f"the playwright package is missing: {INSTALL_HINT}"
        return
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception as error:  # noqa: BLE001 - reported as the test failure
        manager.stop()
        yield f"Chromium did not start ({error}): {INSTALL_HINT}"
        return
    try:
        yield browser
    finally:
        browser.close()
        manager.stop()


def need(chromium):
    if isinstance(chromium, str):
        pytest.fail(chromium, pytrace=False)
    return chromium


class Watched:
    """A page with its console errors, page errors and every request it made."""

    def __init__(self, context):
        self.page = context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                     if m.type in ("error", "assert") else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))

    def open(self, folder: Path):
        self.page.goto((folder / "index.html").resolve().as_uri(), wait_until="load")
        return self.page


def test_page_in_browser(chromium, site, data):
    browser = need(chromium)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    try:
        watched = Watched(context)
        page = watched.open(site)
        page.wait_for_selector("html[data-charts=ready]", timeout=5000)
        for measure in measures_of(data):
            aid = article_id(measure["code"])
            assert page.locator(f"#{aid}-name").is_visible(), measure["code"]
            assert page.locator(f"#{aid}-name").inner_text() == measure["name"]
            value = EXPECTED_VALUES[measure["code"]] or missing_value(measure["code"])
            assert page.locator(f"#{aid} .figure.latest dd").inner_text() == value
        # One JS-drawn chart per measure, each with a drawn line.
        charts = page.evaluate("""() => Array.from(document.querySelectorAll('article.measure')).map(a => {
            const svg = a.querySelector('svg.trend-chart[data-rendered=js]');
            const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            const lines = svg ? Array.from(svg.querySelectorAll('path.value-line, path.target-line'))
                                .map(p => p.getAttribute('d')).filter(d => d && d.length > 10) : [];
            return {id: a.id, lines: lines.length, width: box.width, height: box.height,
                    sparkline: !!a.querySelector('svg.sparkline')};
        })""")
        assert len(charts) == 12
        for chart in charts:
            assert chart["lines"] >= 1 and chart["width"] > 100 and chart["height"] > 40, chart
            assert not chart["sparkline"], chart  # replaced by the full chart
        # Colours of the status badges are readable (WCAG AA for normal text).
        ratios = page.evaluate("""() => {
            const lum = c => { const [r, g, b] = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(v => {
                v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
                return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
            return Array.from(document.querySelectorAll('.status')).map(e => {
                const s = getComputedStyle(e), a = lum(s.color), b = lum(s.backgroundColor);
                return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); });
        }""")
        assert ratios and min(ratios) >= 4.5, min(ratios)
        # Nothing but the site's own files was loaded, and all of it loaded.
        assert all(url.startswith("file://") for url in watched.requests), watched.requests
        assert len(watched.requests) == 3 and not watched.failed, (watched.requests, watched.failed)
        assert watched.errors == []
    finally:
        context.close()


def test_chart_readout_follows_the_keyboard(chromium, site, data):
    browser = need(chromium)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        watched = Watched(context)
        page = watched.open(site)
        page.wait_for_selector("html[data-charts=ready]", timeout=5000)
        newest = measures_of(data)[0]["trend"][-1]
        newest_text = (f"Nov 2026: {format_value(newest['value'], 'count')}, provisional: 25 of 30 days covered, "
                       "25 not yet past the reporting lag (target 2,250)")
        readout = page.locator("#m-saf-01 .readout")
        assert readout.inner_text() == "Latest: " + newest_text, "the newest month, provisional, in words"
        page.locator("#m-saf-01 svg.trend-chart").focus()
        page.keyboard.press("Home")
        assert readout.inner_text().startswith("Dec 2024: ")
        page.keyboard.press("End")
        assert readout.inner_text() == newest_text
        page.keyboard.press("ArrowLeft")
        assert readout.inner_text() == "Oct 2026: 2,104 (target 2,250)", "a complete month reads as before"
        for _ in range(8):
            page.keyboard.press("ArrowLeft")
        assert readout.inner_text() == "Feb 2026: no data (target 2,250)", "a month without data says so"
        assert watched.errors == []
    finally:
        context.close()


def test_headline_numbers_without_javascript(chromium, site, data):
    browser = need(chromium)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    try:
        watched = Watched(context)
        page = watched.open(site)
        assert page.locator("html[data-charts]").count() == 0  # the script did not run
        assert page.locator("time[datetime='%s']" % AS_OF).first.is_visible()
        for measure in measures_of(data):
            aid = article_id(measure["code"])
            assert page.locator(f"#{aid}-name").is_visible()
            card = page.locator(f"#{aid}")
            value = EXPECTED_VALUES[measure["code"]] or missing_value(measure["code"])
            target = EXPECTED_TARGETS[measure["code"]] or "No target"
            assert card.locator(".figure.latest dd").inner_text() == value
            assert card.locator(".figure.latest dd").is_visible()
            assert card.locator(".figure.target dd").inner_text() == target
            assert card.locator(".figure.period dd").inner_text() == "October 2026"
            status = card.locator("p.status")
            assert status.is_visible() and STATUS_LABELS[measure["latest"]["status"]] in status.inner_text()
            assert card.locator("svg.sparkline path").count() >= 1  # the server-rendered chart
        # The district breakdown opens as a plain HTML table.
        page.locator("#m-saf-01 details.districts summary").click()
        assert page.locator("#m-saf-01 details.districts table tbody tr").count() == 15
        assert page.locator("#m-saf-01 details.districts table").is_visible()
        assert watched.errors == []
    finally:
        context.close()


def test_layout_fits_a_phone(chromium, site):
    browser = need(chromium)
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    try:
        watched = Watched(context)
        page = watched.open(site)
        page.wait_for_selector("html[data-charts=ready]", timeout=5000)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 360, f"the page scrolls sideways on a phone: {width}px"
        assert watched.errors == []
    finally:
        context.close()


def test_hostile_text_stays_inert_in_the_browser(chromium, data, tmp_path):
    browser = need(chromium)
    render_site(evil_data(data), tmp_path)
    context = browser.new_context()
    try:
        watched = Watched(context)
        page = watched.open(tmp_path)
        page.wait_for_selector("html[data-charts=ready]", timeout=5000)
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("#m-saf-01-name").inner_text() == EVIL
        assert page.locator("#m-saf-01 svg.trend-chart title").first.text_content().startswith(EVIL)
        assert watched.errors == []
    finally:
        context.close()


def test_chart_gaps_and_provisional_months_in_the_browser(chromium, site):
    browser = need(chromium)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        watched = Watched(context)
        page = watched.open(site)
        page.wait_for_selector("html[data-charts=ready]", timeout=5000)
        for code, gap in GAPS.items():
            chart = page.evaluate("""(id) => {
                const svg = document.querySelector('#' + id + ' svg.trend-chart');
                const lines = Array.from(svg.querySelectorAll('path.value-line')).map(p => ({
                    provisional: p.classList.contains('provisional'),
                    xs: p.getAttribute('d').split('M').slice(1)
                         .map(s => s.split('L').map(v => Number(v.split(',')[0])))}));
                const points = {};
                svg.querySelectorAll('circle.point').forEach(c => {
                    points[c.getAttribute('data-period')] = {
                        cls: c.getAttribute('class'), x: Number(c.getAttribute('cx')),
                        title: c.querySelector('title').textContent}; });
                const bands = Array.from(svg.querySelectorAll('rect.no-data-band'))
                                   .map(r => r.getAttribute('data-period'));
                const legend = svg.parentNode.querySelector('.chart-legend').textContent;
                return {lines, points, bands, legend};
            }""", article_id(code))
            months = _months(IN_PROGRESS, 24)
            before, after = months[months.index(gap) - 1], months[months.index(gap) + 1]
            assert gap in chart["bands"] and gap not in chart["points"], f"{code} {gap}: a shaded gap, no point"
            assert before in chart["points"] and after in chart["points"]
            left, right = chart["points"][before]["x"], chart["points"][after]["x"]
            subpaths = [xs for line in chart["lines"] for xs in line["xs"]]
            assert not any(min(xs) <= left and max(xs) >= right for xs in subpaths), (
                f"{code} {gap}: no line is drawn across the month without data")
            assert "No data" in chart["legend"]
        chart_points = page.evaluate("""() => {
            const out = {};
            document.querySelectorAll('#m-saf-01 svg.trend-chart circle.point').forEach(c => {
                out[c.getAttribute('data-period')] = [c.getAttribute('class'),
                                                      c.querySelector('title').textContent]; });
            return out; }""")
        for period in ("2026-01", "2026-11"):
            css, title = chart_points[period]
            assert "provisional" in css.split() and ", provisional: " in title, (period, css, title)
        card_point = chart_points["2026-10"][0].split()
        assert "provisional" not in card_point and "latest" in card_point, (
            "the card's month, complete, is the highlighted point")
        dashed = page.locator("#m-saf-01 svg.trend-chart path.value-line.provisional").count()
        assert dashed >= 2, "the steps to provisional months are drawn dashed"
        assert "Provisional" in page.locator("#m-saf-01 .chart-legend").inner_text()
        # the cards without a status call say why, visibly
        assert page.locator("#m-phy-02 p.status").inner_text().endswith("Provisional")
        assert page.locator("#m-phy-02 p.completeness").is_visible()
        assert page.locator("#m-phy-04 .figure.latest dd").inner_text() == "No data"
        assert watched.errors == []
    finally:
        context.close()
