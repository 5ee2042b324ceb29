"""The public AIM scorecard site (aim.publish.site.render_site).

Unit tests read the HTML that render_site writes; browser tests open it straight from the folder
(file://, no server) in headless Chromium through Playwright, with and without JavaScript.

The browser tests need Debian's Chromium and the Playwright package; they fail (never skip)
without them, since CI installs both:
    apt-get update && apt-get install -y chromium
    .venv/bin/pip install playwright==1.65.2
(never `playwright install`: Playwright drives /usr/bin/chromium.)

AIM_UPDATE_SCREENSHOT=1 also saves a full-page screenshot to docs/scorecard.png.
"""
from __future__ import annotations

import copy
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from aim.publish.site import format_as_of, format_period, format_value, render_html, render_site

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("the browser tests need Debian's Chromium and Playwright: "
                "`apt-get update && apt-get install -y chromium` and "
                "`.venv/bin/pip install playwright==1.65.2` (do not run `playwright install`; "
                "the tests use /usr/bin/chromium)")
SCREENSHOT = ROOT / "docs" / "scorecard.png"
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
               "days", "lower", 2.1, 5.5, "on track", 0.4, True),
    "PHY-03": (ASSETS, "Public Works", "Missed garbage pickups per 1,000 households",
               "Reported missed garbage collections in the month per 1,000 households served by city collection.",
               "rate", "lower", None, 1.9, "no value", 0.2, False),
    "PHY-04": (ASSETS, "Public Works", "Street light outages repaired within 5 days",
               "Percentage of street light outages reported in the month that were repaired within 5 days.",
               "percent", "higher", 71.0, 84.0, "off track", 3.0, True),
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


def scorecard_data() -> dict:
    """Realistic data: 4 priorities, 12 measures, every status, 24-month trends with a fiscal-year
    change of target, a gap, a measure without any value (targets only) and one without a target."""
    priorities = {name: [] for name in PRIORITIES}
    for n, (code, (priority, dept, name, definition, unit, direction, value, target, status, swing,
                   by_district)) in enumerate(MEASURES.items()):
        periods = _months("2026-10", 24)
        trend = []
        for i, period in enumerate(periods):
            # A deterministic wobble around the latest value, drifting towards it.
            base = value if value is not None else None
            wobble = swing * (((i * 7 + n * 3) % 11) - 5) / 5
            drift = swing * (len(periods) - 1 - i) / 8 * (1 if direction == "lower" else -1)
            v = None if base is None else round(base + wobble + drift, 0 if unit == "count" else 1)
            if i == len(periods) - 1:
                v = value
            if code == "ECO-02" and i == 9:
                v = None  # a month without a value: the line has a gap
            fy_target = None if target is None else (target if period >= "2026-01" else
                                                     round(target * (1.05 if direction == "lower" else 0.95), 1))
            trend.append({"period": period, "value": v, "target": fy_target})
        districts = []
        if by_district and value is not None:
            for d in range(1, 16):
                dv = round(value / (15 if unit == "count" else 1) * (0.7 + ((d * 5 + n) % 9) / 14),
                           0 if unit == "count" else 1)
                target_d = target / 15 if unit == "count" else target
                better = dv <= target_d if direction == "lower" else dv >= target_d
                ds = "on track" if better else ("within tolerance" if abs(dv - target_d) <= 0.05 * target_d
                                                else "off track")
                districts.append({"district": str(d), "value": dv, "status": ds})
            districts[14] = {"district": "15", "value": None, "status": "no value"}
        priorities[priority].append({
            "code": code, "name": name, "department": dept, "unit": unit, "direction": direction,
            "definition": definition,
            "latest": {"period": "2026-10", "value": value, "target": target, "status": status},
            "trend": trend, "districts": districts,
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
    "PHY-01": "78.4%", "PHY-02": "2.1 days", "PHY-03": None, "PHY-04": "71.0%",
}
EXPECTED_TARGETS = {
    "SAF-01": "2,250", "SAF-02": "11.8 per 1,000", "SAF-03": "86.0%", "SAF-04": "7.2 min",
    "ECO-01": "47.5%", "ECO-02": "23.0 days", "CHI-01": None, "CHI-02": "6.0%",
    "PHY-01": "77.5%", "PHY-02": "5.5 days", "PHY-03": "1.9 per 1,000", "PHY-04": "84.0%",
}
STATUS_LABELS = {"on track": "On track", "within tolerance": "Within tolerance", "off track": "Off track",
                 "no target": "No target", "no value": "No value"}
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
    assert written == [tmp_path / "out" / "index.html", tmp_path / "out" / "assets" / "style.css",
                       tmp_path / "out" / "assets" / "charts.js"]
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
            latest = EXPECTED_VALUES[code] or "No value"
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
            value = EXPECTED_VALUES[measure["code"]] or "No value"
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
        if os.environ.get("AIM_UPDATE_SCREENSHOT") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
    finally:
        context.close()


def test_chart_readout_follows_the_keyboard(chromium, site):
    browser = need(chromium)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        watched = Watched(context)
        page = watched.open(site)
        page.wait_for_selector("html[data-charts=ready]", timeout=5000)
        readout = page.locator("#m-saf-01 .readout")
        assert readout.inner_text() == "Latest: Oct 2026: 2,104 (target 2,250)"
        page.locator("#m-saf-01 svg.trend-chart").focus()
        page.keyboard.press("Home")
        assert readout.inner_text().startswith("Nov 2024: ")
        page.keyboard.press("End")
        assert readout.inner_text() == "Oct 2026: 2,104 (target 2,250)"
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
            value = EXPECTED_VALUES[measure["code"]] or "No value"
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
