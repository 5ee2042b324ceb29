"""Accessibility of the public site (index.html, the scorecard, and data.html, the open data page),
in real Chromium on file:// URLs, with no server.

- axe-core audit (WCAG 2.0 and 2.1, levels A and AA) of each page as the reader first sees it and
  with every <details> opened (the tables inside are audited too), with JavaScript on and off, on
  a desktop and on a phone-sized viewport: 0 violations.
- keyboard: Tab from the top reaches every link, summary and focusable element in document order
  (the chart, when charts.js has drawn it; the tables' scroll regions, when opened), each with a
  visible focus ring, and the focus cycles; the skip link is the first stop and moves focus to
  main; Enter on a summary opens and closes its details.
- print: dark text on white, nothing under 9pt, no sideways overflow at A4 width, no skip link
  or navigation, every status still in words, the data tables printed, and page.pdf() makes a PDF.
- every chart has a text alternative and a data table; every status badge has its symbol and word.

axe-core is the one bundled with the axe-playwright-python package (axe.min.js, injected with
page.evaluate): nothing is fetched at test time. axe cannot run where JavaScript is disabled (not
even a promise settles there), so "JavaScript off" is audited on a twin: the page loaded with
JavaScript on but its scripts answered with an empty file; the twin's DOM is first checked to be
byte-identical to the DOM of the page loaded with JavaScript disabled.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from aim.publish.site import STATUSES, render_site
from test_open_data_page import site_data
from test_scorecard_site import article_id, chromium, measures_of, need  # noqa: F401 - chromium: a fixture

PAGES = ("index.html", "data.html")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# preload False: axe would fetch the stylesheets again (XHR) to read them; the page's
# Content-Security-Policy (connect-src 'none') refuses that and logs an error. It reads the CSSOM
# instead; its one CSSOM rule (css-orientation-lock) is checked by test_no_orientation_lock.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"], "preload": False}
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
# A4 less the 12 mm print margins of style.css's @page, in CSS pixels (96 per inch).
A4_PRINT_WIDTH = round((210 - 2 * 12) / 25.4 * 96)
MIN_PRINT_PX = 12  # 9pt


@pytest.fixture(scope="module")
def data() -> dict:
    return site_data()


@pytest.fixture(scope="module")
def site(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    written = render_site(data, out)
    assert {p.name for p in written} >= set(PAGES)
    return out


def _url(site: Path, name: str) -> str:
    return (site / name).resolve().as_uri()


def _context(browser, js: bool, **options):
    """A browser context with JavaScript on, or the twin of one with JavaScript off: every script
    of the site answered with an empty file (so axe can still run; see the module docstring)."""
    context = browser.new_context(**options)
    if not js:
        context.route("**/*.js", lambda route: route.fulfill(body="", content_type="text/javascript"))
    return context


def _ready(page) -> None:
    """Wait until charts.js has drawn the charts, on a page that loads it."""
    page.wait_for_function("() => !document.querySelector('script[src$=\"charts.js\"]') || "
                           "document.documentElement.getAttribute('data-charts') === 'ready'", timeout=5000)


def _open(page, site: Path, name: str, js: bool) -> None:
    """Load the site's page `name`; with JavaScript, wait until charts.js has drawn the charts."""
    page.goto(_url(site, name), wait_until="load")
    if js:
        _ready(page)


def _open_all_details(page) -> int:
    return page.evaluate("() => { const all = document.querySelectorAll('details');"
                         " all.forEach(d => { d.open = true; }); return all.length; }")


def audit(page) -> list[dict]:
    """The WCAG 2.0/2.1 A and AA violations axe-core finds on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    return Axe().run(page, options=AXE_OPTIONS).response["violations"]


def report(violations: list[dict]) -> str:
    """Each violation's id, impact and help, and the targets that fail it."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"]:
            why = " ".join(line.strip() for line in (node.get("failureSummary") or "").splitlines()[1:])
            lines.append(f"    {' '.join(map(str, node['target']))}: {why}")
    return "\n".join(lines)


def test_axe_core_is_the_copy_the_package_ships():
    """No download: axe.min.js comes inside axe-playwright-python."""
    from axe_playwright_python.base import AXE_FILE_PATH, AXE_SCRIPT

    assert AXE_FILE_PATH.is_file() and AXE_SCRIPT.startswith("/*! axe v4."), AXE_FILE_PATH


def test_no_orientation_lock(site):
    """WCAG 1.3.4: nothing in the stylesheet depends on the screen's orientation."""
    assert "orientation" not in (site / "assets" / "style.css").read_text(encoding="utf-8")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("name", PAGES)
def test_axe_finds_no_wcag_violation(chromium, site, name, js, viewport):
    browser = need(chromium)
    context = _context(browser, js, viewport=viewport)
    try:
        page = context.new_page()
        requests, errors = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "assert") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        _open(page, site, name, js)
        if not js:
            assert page.evaluate("() => document.documentElement.hasAttribute('data-charts')") is False
            twin = page.evaluate("() => document.documentElement.outerHTML")
            disabled = browser.new_context(java_script_enabled=False, viewport=viewport)
            try:
                real = disabled.new_page()
                real.goto(_url(site, name), wait_until="load")
                assert real.evaluate("() => document.documentElement.outerHTML") == twin, (
                    "the page without its scripts is not the page with JavaScript disabled")
            finally:
                disabled.close()
        how = f"JS {'on' if js else 'off'}, {viewport['width']} px wide"
        first = audit(page)
        assert not first, f"{name} as first seen ({how}):\n{report(first)}"
        assert _open_all_details(page) > 0
        opened = audit(page)
        assert not opened, f"{name} with every <details> open ({how}):\n{report(opened)}"
        site_uri = site.resolve().as_uri() + "/"
        assert all(url.startswith(site_uri) for url in requests), f"fetched outside the site: {requests}"
        assert errors == []
    finally:
        context.close()


# ---------------------------------------------------------------------------------------------
# Keyboard
# ---------------------------------------------------------------------------------------------

# Every element the Tab key should stop at, in document order, each tagged with its position
# (a JS property, not an attribute) and described, with its look unfocused.
TAB_STOPS = """() => {
    const selector = 'a[href], area[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), ' +
        'select:not([disabled]), textarea:not([disabled]), summary, iframe, [contenteditable=""], ' +
        '[contenteditable="true"], [tabindex]';
    const inClosedDetails = el => {
        for (let d = el.parentElement && el.parentElement.closest('details'); d; d = d.parentElement &&
             d.parentElement.closest('details')) {
            const summary = d.querySelector(':scope > summary');
            if (!d.open && !(summary && summary.contains(el))) return true;
        }
        return false;
    };
    const stops = Array.from(document.querySelectorAll(selector)).filter(el =>
        el.tabIndex >= 0 && !inClosedDetails(el) && el.checkVisibility({visibilityProperty: true}));
    return stops.map((el, i) => {
        el.__tabStop = i;
        const s = getComputedStyle(el);
        return {index: i, tag: el.tagName.toLowerCase(), id: el.id, cls: el.getAttribute('class') || '',
                text: (el.textContent || '').trim().slice(0, 60),
                look: [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join(' / ')};
    });
}"""

# The focused element: its tab stop, its look, the colour behind it and whether it is on screen.
FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return null;
    const s = getComputedStyle(el);
    let behind = 'rgb(255, 255, 255)';
    for (let p = el.parentElement; p; p = p.parentElement) {
        const bg = getComputedStyle(p).backgroundColor;
        if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') { behind = bg; break; }
    }
    const r = el.getBoundingClientRect();
    return {index: el.__tabStop === undefined ? null : el.__tabStop, id: el.id, tag: el.tagName.toLowerCase(),
            look: [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join(' / '),
            outline: s.outlineStyle !== 'none' ? parseFloat(s.outlineWidth) : 0, outlineColor: s.outlineColor,
            shadow: s.boxShadow, behind,
            onScreen: r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 &&
                      r.left < innerWidth && r.top < innerHeight};
}"""


def _luminance(colour: str) -> float:
    r, g, b = (int(float(v)) / 255 for v in re.findall(r"[\d.]+", colour)[:3])
    return sum(w * (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
               for w, c in zip((0.2126, 0.7152, 0.0722), (r, g, b)))


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours (alpha ignored)."""
    la, lb = _luminance(a), _luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def _walk_tab_order(page) -> tuple[list[dict], list[dict]]:
    """(the expected stops, what Tab focused, one entry per press) from the top of the page (just
    loaded, nothing focused yet) until the focus comes back to the first stop."""
    stops = page.evaluate(TAB_STOPS)
    focused = []
    for _ in range(len(stops) + 4):
        page.keyboard.press("Tab")
        now = page.evaluate(FOCUSED)
        focused.append(now)
        if len(focused) > 1 and now and now["index"] == 0:
            break
    return stops, focused


def _check_tab_order(name: str, stops: list[dict], focused: list[dict]) -> None:
    reached = [f["index"] for f in focused if f is not None]
    assert None not in reached, f"{name}: Tab stopped on an element that is not a link, summary or control: " \
                                f"{[f for f in focused if f and f['index'] is None]}"
    assert reached[-1] == 0 and reached[:-1] == list(range(len(stops))), (
        f"{name}: Tab does not reach every stop once, in document order, and cycle: "
        f"missed {[s for s in stops if s['index'] not in reached]}, order {reached}")
    for f in focused:
        if f is None:
            continue
        stop = stops[f["index"]]
        where = f"{name}: {stop['tag']}#{stop['id']}.{stop['cls']} {stop['text']!r}"
        assert f["look"] != stop["look"], f"{where}: focus changes nothing ({f['look']})"
        assert f["outline"] >= 2 or f["shadow"] != "none", f"{where}: no focus ring ({f['look']})"
        if f["outline"] >= 2:
            assert contrast(f["outlineColor"], f["behind"]) >= 3, (
                f"{where}: focus ring {f['outlineColor']} on {f['behind']} is under 3:1")
        assert f["onScreen"], f"{where}: focused off screen"


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("name", PAGES)
def test_keyboard_reaches_everything_in_order_with_visible_focus(chromium, site, data, name, js):
    browser = need(chromium)
    context = browser.new_context(java_script_enabled=js, viewport=DESKTOP)
    try:
        page = context.new_page()
        _open(page, site, name, js)
        stops, focused = _walk_tab_order(page)
        assert stops[0]["cls"] == "skip-link", f"{name}: the skip link is not the first stop: {stops[0]}"
        assert any(s["tag"] == "summary" for s in stops) and sum(s["tag"] == "a" for s in stops) > 3
        if js and name == "index.html":
            charts = [s for s in stops if s["tag"] == "svg"]
            assert len(charts) == len(measures_of(data)), "every drawn chart is a stop (arrow-key readout)"
        _check_tab_order(name, stops, focused)
        # Every <details> opened: the tables' scroll regions become stops too, in order.
        _open(page, site, name, js)
        assert _open_all_details(page) > 0
        stops, focused = _walk_tab_order(page)
        assert any("table-scroll" in s["cls"] for s in stops) or name != "index.html"
        _check_tab_order(name + " (details open)", stops, focused)
    finally:
        context.close()


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("name", PAGES)
def test_skip_link_and_summaries_work_from_the_keyboard(chromium, site, name, js):
    browser = need(chromium)
    context = browser.new_context(java_script_enabled=js, viewport=DESKTOP)
    try:
        page = context.new_page()
        _open(page, site, name, js)
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.className") == "skip-link"
        assert page.evaluate("() => document.activeElement.getBoundingClientRect().left") >= 0, "shown on focus"
        page.keyboard.press("Enter")
        assert page.evaluate("() => document.activeElement.id") == "main", "the skip link moves focus to main"
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)"), (
            "the next Tab after the skip link goes into main")
        count = page.locator("details").count()
        assert count > 0
        for i in range(count):
            details = page.locator("details").nth(i)
            summary = details.locator(":scope > summary")
            summary.focus()
            assert details.evaluate("d => d.open") is False
            page.keyboard.press("Enter")
            assert details.evaluate("d => d.open") is True, f"Enter on {summary.inner_text()!r} opens it"
            inside = details.evaluate("d => Array.from(d.children).filter(c => c.tagName !== 'SUMMARY')"
                                      ".every(c => c.checkVisibility())")
            assert inside, f"{summary.inner_text()!r}: its content shows"
            page.keyboard.press("Enter")
            assert details.evaluate("d => d.open") is False, f"Enter again on {summary.inner_text()!r} closes it"
    finally:
        context.close()


# ---------------------------------------------------------------------------------------------
# Print
# ---------------------------------------------------------------------------------------------

PRINTED = """(minPx) => {
    const visible = el => el.checkVisibility({visibilityProperty: true, opacityProperty: true}) &&
        (r => r.width > 1 && r.height > 1)(el.getBoundingClientRect());
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const el = node.parentElement;
        if (!node.textContent.trim() || !el || el.closest('script, style') || !visible(el)) continue;
        const s = getComputedStyle(el);
        const svgText = el instanceof SVGElement;
        const scale = svgText && el.getScreenCTM() ? el.getScreenCTM().a : 1;
        texts.push({text: node.textContent.trim().slice(0, 40), tag: el.tagName.toLowerCase(),
                    cls: el.getAttribute('class') || '', px: parseFloat(s.fontSize) * scale,
                    colour: svgText ? s.fill : s.color});
    }
    const shown = sel => Array.from(document.querySelectorAll(sel)).filter(visible).length;
    return {
        texts,
        small: texts.filter(t => t.px < minPx - 0.01),
        body: getComputedStyle(document.body).backgroundColor,
        html: getComputedStyle(document.documentElement).backgroundColor,
        header: getComputedStyle(document.querySelector('.site-header')).backgroundColor,
        scrollWidth: document.documentElement.scrollWidth, width: innerWidth,
        overflowing: Array.from(document.querySelectorAll('.table-scroll, table, pre, .measure, section'))
            .filter(el => el.scrollWidth > el.clientWidth + 1)
            .map(el => (el.getAttribute('class') || el.tagName) + ' ' + el.scrollWidth + '>' + el.clientWidth),
        chrome: shown('.skip-link') + shown('nav'),
        tables: document.querySelectorAll('table').length, tablesShown: shown('table'),
        badges: Array.from(document.querySelectorAll('.status')).map(b => ({
            key: b.getAttribute('data-status'), shown: visible(b), text: b.innerText.replace(/\s+/g, ' ').trim(),
            symbolShown: !!b.querySelector('.status-symbol') && visible(b.querySelector('.status-symbol'))})),
    };
}"""


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("name", PAGES)
def test_prints_legibly_on_a4(chromium, site, name, js):
    browser = need(chromium)
    context = browser.new_context(java_script_enabled=js, viewport={"width": A4_PRINT_WIDTH, "height": 1000})
    try:
        page = context.new_page()
        _open(page, site, name, js)
        page.emulate_media(media="print")
        printed = page.evaluate(PRINTED, MIN_PRINT_PX)
        white = "rgb(255, 255, 255)"
        assert printed["body"] == white and printed["header"] == white, (printed["body"], printed["header"])
        assert printed["html"] in (white, "rgba(0, 0, 0, 0)"), printed["html"]
        dim = [t for t in printed["texts"] if contrast(t["colour"], white) < 4.5]
        assert not dim, f"{name}: text too light to print on white: {dim[:10]}"
        assert not printed["small"], f"{name}: text under 9pt in print: {printed['small'][:10]}"
        assert printed["scrollWidth"] <= printed["width"], (
            f"{name}: wider than A4 in print: {printed['scrollWidth']}px > {printed['width']}px")
        assert not printed["overflowing"], f"{name}: overflows sideways in print: {printed['overflowing'][:10]}"
        assert printed["chrome"] == 0, f"{name}: the skip link or a navigation is printed"
        # Every table prints, from the <details> it sits in (::details-content, no JavaScript needed).
        assert printed["tablesShown"] == printed["tables"], (name, printed["tablesShown"], printed["tables"])
        for badge in printed["badges"]:
            label, symbol = STATUSES[badge["key"]][0], STATUSES[badge["key"]][2]
            assert badge["shown"] and badge["symbolShown"] and badge["text"] == f"{symbol} {label}", (
                f"{name}: a status prints without its symbol and word: {badge}")
        if name == "index.html":
            assert len(printed["badges"]) > 12
        pdf = page.pdf(format="A4", prefer_css_page_size=True)
        pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        assert pdf.startswith(b"%PDF-") and 1 <= pages <= 80, (len(pdf), pages)
    finally:
        context.close()


# ---------------------------------------------------------------------------------------------
# Charts and statuses: never only a picture, never only a colour
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_every_chart_has_a_text_alternative_and_a_data_table(chromium, site, data, js):
    browser = need(chromium)
    context = browser.new_context(java_script_enabled=js, viewport=DESKTOP)
    try:
        page = context.new_page()
        _open(page, site, "index.html", js)
        for measure in measures_of(data):
            card = page.locator(f"#{article_id(measure['code'])}")
            chart = card.locator("figure.trend svg")
            assert chart.count() == 1, measure["code"]
            assert chart.get_attribute("class") == ("trend-chart" if js else "sparkline")
            assert chart.get_attribute("role") == "img"
            label = chart.get_attribute("aria-label") or ""
            caption = card.locator("figure.trend figcaption").text_content().strip()
            assert label.startswith("Monthly trend, ") and label == caption, (measure["code"], label, caption)
            table = card.locator("details.monthly table")
            assert table.locator("caption").text_content().strip(), measure["code"]
            assert table.locator("thead th").all_text_contents() == ["Month", "Value", "Target", "Status"]
            assert table.locator("tbody tr").count() == len(measure["trend"]), measure["code"]
    finally:
        context.close()


@pytest.mark.parametrize("name", PAGES)
def test_every_status_has_its_symbol_and_word(chromium, site, name):
    browser = need(chromium)
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(_url(site, name), wait_until="load")
        _open_all_details(page)
        badges = page.evaluate("""() => Array.from(document.querySelectorAll('.status')).map(b => {
            const symbol = b.querySelector(':scope > .status-symbol');
            return {key: b.getAttribute('data-status'), symbol: symbol ? symbol.textContent : null,
                    hidden: symbol ? symbol.getAttribute('aria-hidden') : null,
                    words: Array.from(b.childNodes).filter(n => n !== symbol).map(n => n.textContent).join('').trim(),
                    shown: b.checkVisibility()}; })""")
        if name == "index.html":
            assert len(badges) > 12 and {b["key"] for b in badges} == set(STATUSES)
        for badge in badges:
            label, _, symbol = STATUSES[badge["key"]]
            assert badge["symbol"] == symbol and badge["hidden"] == "true", badge
            assert badge["words"] == label and badge["shown"], badge
    finally:
        context.close()
