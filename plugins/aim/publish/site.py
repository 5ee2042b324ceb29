"""The public AIM scorecard as a static site: index.html, two assets and the measures' definition
files, relative links only.

    render_site(data, out_dir) -> [out_dir/index.html, (out_dir/data.html,) out_dir/assets/style.css,
                                   out_dir/assets/charts.js, out_dir/definitions/<file>.sql ...]

`data` is what the platform builds from the warehouse's marts views (see docs/scorecard-site.md):
a title, `as_of`, the four strategic priorities with their measures (latest value, target, status
and completeness, up to 24 months of trend, fiscal quarters and years, values by aldermanic
district, the definition file, the source data sets and the departments' commentary) and the open
data sets to link to. With data["catalog"] (aim.publish.open_data_page), the site also has the open
data page, data.html; both pages share one page shell (`page_shell`) and a site navigation, and the
measures' source data link to their data set's entry on data.html.

The page works without a server and without the network: opened from a folder (file://) or from
an S3 bucket or prefix. Everything a reader needs is server-rendered HTML: every measure's name,
latest value, target, status and period, grouped under its priority, a small SVG sparkline, a
table of the monthly values, a table of the fiscal quarters and years and a table by district.
JavaScript (assets/charts.js, no libraries) only enhances: it reads the trend data embedded in the
page (<script type="application/json">) and replaces each sparkline with a larger chart with axes,
the target line and a readout.

Completeness is shown, never hidden: a month without source data is a gap in the line (and reads
"No data", never 0); a provisional month (data still arriving) is drawn dashed with an open marker
and reads "Provisional" with the days covered; only a complete period gets an on/off-track status.

Every text value is escaped (names and definitions come from a hand-edited workbook). The output
is deterministic: the same data gives byte-identical files; the only date in it is data['as_of']
(and each measure's own data_as_of).
"""
from __future__ import annotations

import html
import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

ASSETS_SOURCE = Path(__file__).with_name("site_assets")
ASSET_FILES = ("style.css", "charts.js")
ASSETS_DIR = "assets"  # inside out_dir
DEFINITIONS_DIR = "definitions"  # inside out_dir: each measure's SQL file, as given
DEFINITION_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.sql$")

DEFAULT_TITLE = "City of Milwaukee - AIM Scorecard"

# Status: (label shown, CSS class, symbol shown beside the label: never colour alone).
STATUSES: dict[str, tuple[str, str, str]] = {
    "on track": ("On track", "on-track", "\u2713"),            # check mark
    "within tolerance": ("Within tolerance", "within-tolerance", "\u2248"),  # almost equal
    "off track": ("Off track", "off-track", "\u2715"),         # multiplication x
    "no target": ("No target", "no-target", "\u2013"),         # en dash
    "no value": ("No value", "no-value", "\u2205"),            # empty set
    "provisional": ("Provisional", "provisional", "\u25cc"),   # dotted circle
    "no data": ("No data", "no-data", "\u2298"),               # circled slash
}
STATUS_HELP = {
    "on track": "meets or beats the target",
    "within tolerance": "misses the target by no more than the tolerance (5% of the target by default)",
    "off track": "misses the target by more than the tolerance",
    "no target": "no target is set for the fiscal year",
    "no value": "no value has been reported yet, or it cannot be computed (e.g. a percentage of nothing)",
    "provisional": "the period's data is not complete yet (days not delivered, or still within the source's "
                   "reporting lag): the value may change, so it is not compared with the target yet",
    "no data": "the source delivered no data for the period: there is no value (never a 0) and no status",
}
STATUS_RULE = ("Only a complete period (every day delivered and past its sources' reporting lag) is called on "
               "track, within tolerance or off track; a month, quarter or year still incomplete is provisional.")
UNIT_NAMES = {"count": "count", "percent": "percent", "rate": "rate per 1,000",
              "minutes": "minutes", "days": "days"}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
# Milwaukee is on Central Time: name the two offsets it uses, show any other as an offset.
ZONE_NAMES = {-6 * 3600: "CST", -5 * 3600: "CDT"}
PERIOD = re.compile(r"^(\d{4})-(\d{2})$")

SEPARATOR = ' <span aria-hidden="true">&middot;</span> '
SPARK_W, SPARK_H, SPARK_PAD = 160.0, 40.0, 3.0

# The pages of the site, as the site navigation lists them: (file, label). data.html is written
# (and listed) only when data["catalog"] is given.
INDEX_PAGE, DATA_PAGE = ("index.html", "Scorecard"), ("data.html", "Open data")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'")
EYEBROW = "Accountability in Management (AIM)"
# A department's note on a measure: (key, label), in the order shown.
COMMENTARY_PARTS = (("reason", "Why it moved"), ("action", "What we are doing"),
                    ("outlook", "When to expect change"))


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    """A finite float, or None for a missing, non-numeric or non-finite value."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    if text.startswith("-") and not any(c in "123456789" for c in text):
        text = text[1:]  # no "-0.0"
    return text


def format_value(value: Any, unit: str | None) -> str | None:
    """A measure value as the public reads it: count 2,104; percent 87.5%; rate 12.3 per 1,000;
    minutes 6.4 min; days 2.1 days. None when there is no value."""
    number = _number(value)
    if number is None:
        return None
    unit = (unit or "").strip().lower()
    if unit == "count":
        return _fixed(number, 0 if number == round(number) else 1)
    if unit == "percent":
        return f"{_fixed(number, 1)}%"
    if unit == "rate":
        return f"{_fixed(number, 1)} per 1,000"
    if unit == "minutes":
        return f"{_fixed(number, 1)} min"
    if unit == "days":
        return f"{_fixed(number, 1)} days"
    text = _fixed(number, 0 if number == round(number) else 1)
    return f"{text} {unit}" if unit else text


def format_period(period: Any, short: bool = False) -> str:
    """'2026-10' -> 'October 2026' ('Oct 2026' when short); any other form as given."""
    text = "" if period is None else str(period)
    match = PERIOD.match(text)
    if match and 1 <= int(match.group(2)) <= 12:
        month = MONTHS[int(match.group(2)) - 1]
        return f"{month[:3] if short else month} {match.group(1)}"
    return text


def format_as_of(as_of: Any) -> str:
    """'2026-11-26T14:00:00-06:00' -> 'November 26, 2026, 2:00 PM CST' (the local time as given)."""
    text = "" if as_of is None else str(as_of)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    date = f"{MONTHS[moment.month - 1]} {moment.day}, {moment.year}"
    if len(text) <= 10:  # a date only
        return date
    hour = moment.hour % 12 or 12
    clock = f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"
    offset = moment.utcoffset()
    if offset is None:
        return f"{date}, {clock}"
    seconds = int(offset.total_seconds())
    if seconds in ZONE_NAMES:
        zone = ZONE_NAMES[seconds]
    else:
        sign = "+" if seconds >= 0 else "\u2212"
        zone = f"UTC{sign}{abs(seconds) // 3600:02d}:{abs(seconds) % 3600 // 60:02d}"
    return f"{date}, {clock} {zone}"


def completeness_text(completeness: Any, days_in_period: Any = None, days_covered: Any = None,
                      days_settled: Any = None) -> str | None:
    """How complete a period's data is, in words: 'complete', 'no data', or 'provisional: 30 of 30
    days covered, 12 not yet past the reporting lag' (the days when known). None when unknown."""
    key = ("" if completeness is None else str(completeness)).strip().lower()
    if key in ("complete", "no data"):
        return key
    if key != "provisional":
        return None
    days, covered, settled = (None if n is None else int(_number(n) or 0)
                              for n in (days_in_period, days_covered, days_settled))
    if not days or covered is None:
        return "provisional"
    text = f"provisional: {covered} of {days} days covered"
    if settled is not None and settled < covered:
        text += f", {covered - settled} not yet past the reporting lag"
    return text


def _status(status: Any) -> tuple[str, str, str, str]:
    """(key, label, css class, symbol) of a status; an unknown one is shown as given."""
    key = ("" if status is None else str(status)).strip().lower()
    if key in STATUSES:
        return (key, *STATUSES[key])
    label = str(status).strip() if status else "Unknown"
    return (key or "unknown", label[:1].upper() + label[1:], "unknown", "?")


def _e(value: Any) -> str:
    """Escape a text value for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "measure"


def relative_href(href: Any) -> str:
    """A data set link as written into the page: it must be relative to the site folder (so the
    site works from file:// and from any bucket or prefix). Raises ValueError otherwise."""
    text = ("" if href is None else str(href)).strip()
    parts = urlsplit(text)
    if not text or parts.scheme or parts.netloc or text.startswith(("/", "\\")):
        raise ValueError(f"data set link {text!r} is not a relative link")
    return quote(text, safe="/:?#[]@!$&'()*+,;=%-._~")


def dataset_anchor(dataset_id: Any) -> str:
    """The id of a data set's entry on data.html (`dataset-<id>`)."""
    return "dataset-" + _slug(str(dataset_id or ""))


def measure_anchors(priorities: list[dict]) -> list[tuple[str, str]]:
    """(code, card id on index.html) of each measure, in page order: the id is `m-<code slug>`
    (the name's when there is no code), with `-x` added until it is unique."""
    anchors: list[tuple[str, str]] = []
    for priority in priorities or []:
        for measure in priority.get("measures") or []:
            code = str(measure.get("code") or "")
            anchor = "m-" + _slug(code or str(measure.get("name") or "Unnamed measure"))
            while any(anchor == taken for _, taken in anchors):
                anchor += "-x"
            anchors.append((code, anchor))
    return anchors


def _as_of_html(as_of: Any) -> str:
    return (f'<time datetime="{_e(as_of)}">{_e(format_as_of(as_of))}</time>' if as_of
            else '<span class="missing">unknown</span>')


def _days(count: Any) -> str:
    number = int(_number(count) or 0)
    return f"{number:,} day{'' if number == 1 else 's'}"


def freshness_html(freshness: Any) -> str:
    """A source's freshness (aim.freshness.SourceFreshness.public()) as the pages show it: the newest
    day it has data for ('YYYY-MM-DD'; a monthly source's newest month, 'YYYY-MM'), and when that is
    older than the source promises, a visible 'Late: newest data is N days old, promised within M
    days'. '' when there is nothing to show (not a dict)."""
    if not isinstance(freshness, dict):
        return ""
    newest = str(freshness.get("newest") or "")
    if not newest:
        return '<span class="missing">None yet</span>'
    text = format_period(newest) if PERIOD.match(newest) else format_as_of(newest)
    shown = f'<time datetime="{_e(newest)}">{_e(text)}</time>'
    if freshness.get("status") == "stale":
        shown += (f' <strong class="late">Late: newest data is {_days(freshness.get("age_days"))} old, promised '
                  f'within {_days(freshness.get("max_age_days"))}</strong>')
    return shown


def site_nav(current: str, pages: list[tuple[str, str]]) -> str:
    """The site navigation (one link per page, the current one marked); '' for a one-page site."""
    if len(pages) < 2:
        return ""
    mark = ' aria-current="page"'
    items = "".join(f'<li><a href="{_e(href)}"{mark if href == current else ""}>{_e(label)}</a></li>'
                    for href, label in pages)
    return f'<nav class="site-nav" aria-label="Site"><ul>{items}</ul></nav>'


def page_shell(*, title: str, heading: str, description: str, as_of: Any, current: str,
               pages: list[tuple[str, str]], skip_text: str, main: str, footer: str,
               scripts: tuple[str, ...] = (), tail: str = "") -> str:
    """A whole page of the site: head (charset, viewport, Content-Security-Policy, title, stylesheet,
    `scripts`), skip link, header (site navigation, h1 `heading`, "Data as of"), `main` and `footer`
    (HTML, as given) and `tail` (HTML before </body>). Text arguments are escaped."""
    head = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{_e(title)}</title>\n"
        f'<meta name="description" content="{_e(description)}">\n'
        f'<link rel="stylesheet" href="{ASSETS_DIR}/style.css">\n'
        + "".join(f'<script src="{_e(src)}" defer></script>\n' for src in scripts)
        + "</head>\n"
    )
    body = (
        f'<body>\n<a class="skip-link" href="#main">{_e(skip_text)}</a>\n'
        '<header class="site-header"><div class="wrap">'
        f"{site_nav(current, pages)}"
        f'<p class="eyebrow">{_e(EYEBROW)}</p>'
        f"<h1>{_e(heading)}</h1>"
        f'<p class="as-of">Data as of {_as_of_html(as_of)}</p>'
        "</div></header>\n"
        f'<main id="main" class="wrap" tabindex="-1">\n{main}</main>\n'  # the skip link moves focus here
        f'<footer class="site-footer"><div class="wrap">{footer}</div></footer>\n'
        f"{tail}"
        "</body>\n</html>\n"
    )
    return head + body


# ---------------------------------------------------------------------------------------------
# Page parts
# ---------------------------------------------------------------------------------------------

def _completeness(item: dict) -> str | None:
    """'complete', 'provisional', 'no data' or None, from an item's completeness (or its status)."""
    key = str(item.get("completeness") or "").strip().lower()
    if key in ("complete", "provisional", "no data"):
        return key
    status = str(item.get("status") or "").strip().lower()
    return status if status in ("provisional", "no data") else None


def _checked(item: dict, unit: str | None) -> dict:
    """A value with its target, status and completeness, checked and formatted once: the latest
    value, a month of the trend, a quarter or a year."""
    completeness = _completeness(item)
    # a period without source data has no value, whatever was passed: never a 0 for want of data
    value = None if completeness == "no data" else _number(item.get("value"))
    target = _number(item.get("target"))
    status = item.get("status") or ("no data" if completeness == "no data" else
                                    "provisional" if completeness == "provisional" and value is not None else
                                    "no value" if value is None else None)
    return {
        "period": None if item.get("period") is None else str(item.get("period")),
        "value": value, "target": target,
        "value_text": format_value(value, unit), "target_text": format_value(target, unit),
        "status": _status(status), "completeness": completeness,
        "note": completeness_text(completeness, item.get("days_in_period"), item.get("days_covered"),
                                  item.get("days_settled")),
        "provisional": completeness == "provisional", "no_data": completeness == "no data",
    }


def _definition_file(measure: dict) -> dict | None:
    """The measure's definition file, {name, text, href, computed_with}; ValueError for a file name
    that is not a plain `*.sql` name (it becomes a path in the site)."""
    found = measure.get("definition_file")
    if not found:
        return None
    name = str(found.get("name") or "")
    if not DEFINITION_FILE.match(name):
        raise ValueError(f"definition file {name!r} is not a plain .sql file name")
    return {"name": name, "text": str(found.get("text") or ""), "href": f"{DEFINITIONS_DIR}/{quote(name)}",
            "computed_with": found.get("computed_with")}


def _commentary(measure: dict, period: str | None) -> tuple[dict | None, list[dict]]:
    """The department's notes on a measure: (the note shown in the card: the one for the card's
    period, else the newest; the others, newest period first). A note without text is left out."""
    notes = []
    for note in measure.get("commentary") or []:
        parts = [(label, str(note.get(key)).strip()) for key, label in COMMENTARY_PARTS
                 if note.get(key) is not None and str(note.get(key)).strip()]
        if not parts:
            continue
        version = _number(note.get("version"))
        notes.append({"period": str(note.get("period") or ""),
                      "label": format_period(note.get("period") or note.get("period_label")),
                      "department": str(note.get("department") or measure.get("department") or "").strip(),
                      "updated": note.get("updated"), "first_published": note.get("first_published"),
                      "edited": version is not None and version > 1, "parts": parts})
    notes.sort(key=lambda n: n["period"], reverse=True)
    shown = next((n for n in notes if period and n["period"] == period), notes[0] if notes else None)
    return shown, [n for n in notes if n is not shown]


def _measure_model(measure: dict, datasets_page: dict[str, dict] | None = None) -> dict:
    """The measure with its values checked and formatted once, for the HTML and the embedded JSON.
    `datasets_page`: the data sets listed on data.html, by id (None: there is no data.html)."""
    unit = measure.get("unit")
    latest = _checked(measure.get("latest") or {}, unit)
    trend = []
    for point in measure.get("trend") or []:
        checked = _checked(point, unit)
        checked.update(period=str(point.get("period") or ""), label=format_period(point.get("period"), short=True))
        trend.append(checked)
    rollups = [_checked(row, unit) for row in measure.get("rollups") or []]
    districts = []
    for row in measure.get("districts") or []:
        v = _number(row.get("value"))
        districts.append({"district": row.get("district"), "value": v,
                          "value_text": format_value(v, unit),
                          "status": row.get("status") or ("no value" if v is None else None)})
    sources = []
    for source in measure.get("sources") or []:
        sets = []
        for d in source.get("datasets") or []:
            listed = None if datasets_page is None else datasets_page.get(str(d.get("id")))
            sets.append({"title": d.get("title") or d.get("id"), "href": relative_href(d.get("href")),
                         # its entry on data.html; a data set listed there but not published yet has no file
                         "page_href": f"{DATA_PAGE[0]}#{dataset_anchor(d.get('id'))}" if listed else None,
                         "published": not listed or bool(listed.get("downloads"))})
        sources.append({"source": source.get("source"), "datasets": sets, "freshness": source.get("freshness")})
    shown, earlier = _commentary(measure, latest["period"])
    return {
        "code": str(measure.get("code") or ""),
        "name": str(measure.get("name") or measure.get("code") or "Unnamed measure"),
        "department": measure.get("department"),
        "unit": unit,
        "direction": (measure.get("direction") or "").strip().lower(),
        "definition": measure.get("definition"),
        **latest,
        "data_as_of": (measure.get("latest") or {}).get("data_as_of"),
        "trend": trend,
        "rollups": rollups,
        "districts": districts,
        "definition_file": _definition_file(measure),
        "sources": sources,
        "commentary": shown, "earlier_commentary": earlier,
    }


def _details_table(css: str, summary: str, caption: str, headers: tuple[str, ...], rows: str) -> str:
    """A table closed in a `<details>` element: `caption` is escaped HTML, `rows` the body's rows.
    The table scrolls sideways in a labelled region that takes keyboard focus (a narrow screen or a
    zoomed page can be scrolled without a pointer)."""
    head = "".join(f'<th scope="col">{h}</th>' for h in headers)
    label = re.sub(r"<[^>]*>", "", caption).replace('"', "&quot;")
    return (f'<details class="{css}"><summary>{summary}</summary>'
            f'<div class="table-scroll" role="region" tabindex="0" aria-label="{label}"><table>'
            f'<caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></details>')


def _status_badge(status: tuple[str, str, str, str], tag: str = "span") -> str:
    key, label, css, symbol = status
    return (f'<{tag} class="status status-{css}" data-status="{_e(key)}">'
            f'<span class="status-symbol" aria-hidden="true">{_e(symbol)}</span> {_e(label)}</{tag}>')


def _status_cell(item: dict) -> str:
    """A status badge, with the days covered of a provisional period beside it."""
    note = ""
    if item["provisional"] and item["note"]:
        note = f' <span class="completeness">{_e(item["note"].removeprefix("provisional: "))}</span>'
    return _status_badge(item["status"]) + note


def _status_counts(models: list[dict]) -> list[tuple[tuple[str, str, str, str], int]]:
    counts: dict[str, int] = {}
    seen: dict[str, tuple[str, str, str, str]] = {}
    for model in models:
        key = model["status"][0]
        counts[key] = counts.get(key, 0) + 1
        seen.setdefault(key, model["status"])
    order = [k for k in STATUSES if k in counts] + sorted(k for k in counts if k not in STATUSES)
    return [(seen[k], counts[k]) for k in order]


def _counts_list(models: list[dict], css: str) -> str:
    items = "".join(f'<li>{_status_badge(status)} <span class="count">{count}</span></li>'
                    for status, count in _status_counts(models))
    return f'<ul class="{css}">{items}</ul>' if items else ""


def _segments(points: list[dict]) -> list[tuple[str, int, int]]:
    """Runs of consecutive months that both have a value, as (kind, first, last): 'provisional'
    where either end of a step is provisional, else 'complete'. A month without a value breaks
    the line: nothing is drawn across it."""
    runs: list[list] = []
    for i in range(len(points) - 1):
        a, b = points[i], points[i + 1]
        if a["value"] is None or b["value"] is None:
            continue
        kind = "provisional" if a["provisional"] or b["provisional"] else "complete"
        if runs and runs[-1][0] == kind and runs[-1][2] == i:
            runs[-1][2] = i + 1
        else:
            runs.append([kind, i, i + 1])
    return [tuple(run) for run in runs]


def _sparkline(model: dict, label: str) -> str:
    """A small server-rendered SVG of the trend (value line, dashed target line): a chart that
    shows without JavaScript. Provisional steps are dashed with open markers, months without
    source data are shaded gaps. charts.js replaces it with the full chart."""
    points = model["trend"]
    if not points:
        return '<p class="no-trend">No monthly values yet.</p>'
    numbers = [p[k] for p in points for k in ("value", "target") if p[k] is not None] or [0.0]
    low, high = min(numbers), max(numbers)
    if high == low:
        low, high = low - 1, high + 1
    step = (SPARK_W - 2 * SPARK_PAD) / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return SPARK_PAD + i * step if len(points) > 1 else SPARK_W / 2

    def y(v: float) -> float:
        return SPARK_H - SPARK_PAD - (v - low) / (high - low) * (SPARK_H - 2 * SPARK_PAD)

    shapes = []
    for i, point in enumerate(points):
        if point["no_data"]:
            width = step if len(points) > 1 else SPARK_W - 2 * SPARK_PAD
            shapes.append(f'<rect class="spark-no-data" x="{x(i) - width / 2:.1f}" y="0" width="{width:.1f}" '
                          f'height="{SPARK_H:g}" data-period="{_e(point["period"])}"/>')
    target, pen = [], False
    for i, point in enumerate(points):
        if point["target"] is None:
            pen = False
            continue
        target.append(f'{"L" if pen else "M"}{x(i):.1f},{y(point["target"]):.1f}')
        pen = True
    if target:
        shapes.append(f'<path class="spark-target" d="{"".join(target)}"/>')
    for kind in ("complete", "provisional"):
        d = "".join("M" + "L".join(f"{x(i):.1f},{y(points[i]['value']):.1f}" for i in range(first, last + 1))
                    for k, first, last in _segments(points) if k == kind)
        if d:
            shapes.append(f'<path class="spark-value{" spark-provisional" if kind == "provisional" else ""}" d="{d}"/>')
    valued = [i for i, p in enumerate(points) if p["value"] is not None]
    for i in valued:
        point = points[i]
        isolated = all(j not in valued for j in (i - 1, i + 1))
        if i == valued[-1]:
            css = "spark-last" + (" spark-provisional" if point["provisional"] else "")
        elif point["provisional"]:
            css = "spark-point spark-provisional"
        elif isolated:
            css = "spark-point"
        else:
            continue
        shapes.append(f'<circle class="{css}" cx="{x(i):.1f}" cy="{y(point["value"]):.1f}" r="2.5" '
                      f'data-period="{_e(point["period"])}"/>')
    return (f'<svg class="sparkline" viewBox="0 0 {SPARK_W:g} {SPARK_H:g}" width="{SPARK_W:g}" '
            f'height="{SPARK_H:g}" role="img" aria-label="{_e(label)}" focusable="false">'
            + "".join(shapes) + "</svg>")


def _trend_summary(model: dict) -> str:
    trend = model["trend"]
    if not trend:
        return "No monthly values yet"
    valued = [p for p in trend if p["value"] is not None]
    span = f"{trend[0]['label']} to {trend[-1]['label']}"

    def shown(point: dict) -> str:
        return f"{point['value_text']} in {point['label']}" + (" (provisional)" if point["provisional"] else "")

    if not valued:
        text = f"Monthly trend, {span}: no values yet"
    elif len(valued) == 1:
        text = f"Monthly trend, {span}: {shown(valued[0])}"
    else:
        text = f"Monthly trend, {span}: from {shown(valued[0])} to {shown(valued[-1])}"
    provisional = [p["label"] for p in trend if p["provisional"]]
    no_data = [p["label"] for p in trend if p["no_data"]]
    if provisional:
        text += f". Provisional (data still coming in): {', '.join(provisional)}"
    if no_data:
        text += f". No data (a gap in the line): {', '.join(no_data)}"
    return text


def _table_value(item: dict) -> str:
    if item["value_text"] is not None:
        return _e(item["value_text"])
    return f'<span class="missing">{"No data" if item["no_data"] else "No value"}</span>'


def _table_value_text(text: str | None) -> str:
    return _e(text) if text is not None else '<span class="missing">No value</span>'


def _table_target(text: str | None) -> str:
    return _e(text) if text is not None else '<span class="missing">No target</span>'


def _provenance_html(model: dict) -> str:
    """Where the number comes from: the date of its data, its definition file and its source data sets."""
    rows = []
    if model["data_as_of"]:
        rows.append('<div><dt>Data as of</dt><dd><time datetime="{0}">{1}</time></dd></div>'.format(
            _e(model["data_as_of"]), _e(format_as_of(model["data_as_of"]))))
    definition = model["definition_file"]
    if definition:
        note = (' <span class="note">(changed since these values were computed)</span>'
                if definition["computed_with"] is False else "")
        rows.append(f'<div><dt>Definition</dt><dd><a href="{_e(definition["href"])}" type="text/plain">'
                    f'{_e(definition["name"])}</a> <span class="format">(SQL)</span>{note}</dd></div>')
    items = []
    for source in model["sources"]:
        # how fresh the source is: its newest data, and a Late note when older than it promises
        fresh = freshness_html(source.get("freshness"))
        fresh = f'{SEPARATOR}<span class="freshness">newest data {fresh}</span>' if fresh else ""
        for dataset in source["datasets"]:
            ext = Path(urlsplit(dataset["href"]).path).suffix.lstrip(".").upper()
            if dataset["page_href"]:  # its entry on data.html, and the file itself once it is published
                file_link = (f'<a href="{_e(dataset["href"])}">{_e(ext or "File")}<span class="visually-hidden">: '
                             f'{_e(dataset["title"])}</span></a>' if dataset["published"] else "not published yet")
                items.append(f'<li><a href="{_e(dataset["page_href"])}">{_e(dataset["title"])}</a> '
                             f'<span class="format">({file_link})</span>{fresh}</li>')
                continue
            items.append(f'<li><a href="{_e(dataset["href"])}">{_e(dataset["title"])}</a>'
                         + (f' <span class="format">({_e(ext)})</span>' if ext else "") + f"{fresh}</li>")
        if not source["datasets"]:
            items.append(f'<li><code>{_e(source["source"])}</code> (not published as open data){fresh}</li>')
    if items:
        rows.append(f'<div><dt>Source data</dt><dd><ul class="source-data">{"".join(items)}</ul></dd></div>')
    return f'<dl class="provenance">{"".join(rows)}</dl>' if rows else ""


def _from_department(name: str) -> str:
    """'Police' -> 'From the Police Department'; a name that says what it is is kept as it is."""
    if not name:
        return "From the department"
    if re.search(r"\b(department|office|board|commission|bureau|library)\b", name, re.IGNORECASE):
        return f"From the {name}"
    return f"From the {name} Department"


def _note_ids(model: dict, anchor: str) -> dict[int, str]:
    """The element id of each note of the card (by id() of the note): `<card>-note-<period>`."""
    ids: dict[int, str] = {}
    for note in ([model["commentary"]] if model["commentary"] else []) + model["earlier_commentary"]:
        found = f"{anchor}-note-{_slug(note['period']) if note['period'] else 'undated'}"
        while found in ids.values():
            found += "-x"
        ids[id(note)] = found
    return ids


def _note_html(note: dict, note_id: str) -> str:
    """One department note: who and which month (a heading), when it was updated, and its parts."""
    heading = f"{_from_department(note['department'])}, {note['label'] or 'undated'}"
    meta = []
    if note["updated"]:
        meta.append(f'Updated <time datetime="{_e(note["updated"])}">{_e(format_as_of(str(note["updated"])[:10]))}'
                    "</time>")
    if note["edited"]:
        first = note["first_published"]
        meta.append("edited" + (f'; first published <time datetime="{_e(first)}">{_e(format_as_of(str(first)[:10]))}'
                                "</time>" if first else ""))
    parts = "".join(f"<div><dt>{_e(label)}</dt><dd>{_e(text)}</dd></div>" for label, text in note["parts"])
    return (f'<div class="commentary-note" id="{note_id}">'
            f'<h4 class="commentary-heading">{_e(heading)}</h4>'
            + (f'<p class="commentary-updated">{" (".join(meta)}{")" if len(meta) > 1 else ""}</p>' if meta else "")
            + f'<dl class="commentary-parts">{parts}</dl></div>')


def _commentary_html(model: dict, note_ids: dict[int, str]) -> str:
    """The department's note for the card's period (else its newest), the others in a closed <details>."""
    shown, others = model["commentary"], model["earlier_commentary"]
    if not shown:
        return ""
    html_ = _note_html(shown, note_ids[id(shown)])
    if others:
        word = "Earlier" if all(n["period"] <= shown["period"] for n in others) else "Other"
        html_ += (f'<details class="commentary-earlier"><summary>{word} commentary ({len(others)})</summary>'
                  + "".join(_note_html(n, note_ids[id(n)]) for n in others) + "</details>")
    return f'<div class="commentary">{html_}</div>'


def _month_cell(point: dict, notes: dict[str, str]) -> str:
    """A month of the monthly table, with a link to the department's note on it when there is one."""
    cell = f'<time datetime="{_e(point["period"])}">{_e(format_period(point["period"]))}</time>'
    if point["period"] in notes:
        cell += (f' <a class="note-link" href="#{notes[point["period"]]}">note<span class="visually-hidden">: '
                 f'commentary on {_e(format_period(point["period"]))}</span></a>')
    return cell


def _measure_html(model: dict, index: int, anchor: str) -> str:
    code, name = model["code"], model["name"]
    note_ids = _note_ids(model, anchor)
    notes_by_month = {}
    for note in ([model["commentary"]] if model["commentary"] else []) + model["earlier_commentary"]:
        notes_by_month.setdefault(note["period"], note_ids[id(note)])
    period = model["period"]
    period_html = (f'<time datetime="{_e(period)}">{_e(format_period(period))}</time>'
                   if period else '<span class="missing">None yet</span>')
    target_html = (_e(model["target_text"]) if model["target_text"] is not None
                   else '<span class="missing">No target</span>')
    direction = {"higher": "Higher is better", "lower": "Lower is better"}.get(model["direction"], "")
    meta = [f'<span class="code">{_e(code)}</span>'] if code else []
    if model["department"]:
        meta.append(f'<span class="department">{_e(model["department"])}</span>')
    unit_name = UNIT_NAMES.get((model["unit"] or "").strip().lower(), model["unit"] or "")
    completeness = ""
    if model["provisional"]:
        completeness = (f'<p class="completeness">{_e((model["note"] or "provisional").capitalize())}. Not yet '
                        "compared with the target: the month is not complete.</p>")
    elif model["no_data"]:
        completeness = ('<p class="completeness">No data: the sources delivered nothing for this month, so there '
                        "is no value and no status.</p>")

    parts = [
        f'<article class="measure status-{model["status"][2]}" id="{anchor}" '
        f'aria-labelledby="{anchor}-name">',
        f'<p class="measure-meta">{SEPARATOR.join(meta)}</p>' if meta else "",
        f'<h3 class="measure-name" id="{anchor}-name">{_e(name)}</h3>',
        _status_badge(model["status"], "p"),
        completeness,
        '<dl class="figures">',
        f'<div class="figure latest"><dt>Latest</dt><dd class="value">{_table_value(model)}</dd></div>',
        f'<div class="figure target"><dt>Target</dt><dd>{target_html}</dd></div>',
        f'<div class="figure period"><dt>Period</dt><dd>{period_html}</dd></div>',
        "</dl>",
    ]
    notes = [n for n in (direction, f"Unit: {unit_name}" if unit_name else "") if n]
    if notes:
        parts.append(f'<p class="direction">{_e(" · ".join(notes))}</p>')
    parts.append(_commentary_html(model, note_ids))
    summary = _trend_summary(model)
    parts.append(f'<figure class="trend" data-index="{index}">'
                 f'<div class="chart">{_sparkline(model, summary)}</div>'
                 f'<figcaption>{_e(summary)}</figcaption></figure>')
    if model["definition"]:
        parts.append('<details class="definition"><summary>Definition</summary>'
                     f'<p>{_e(model["definition"])}</p></details>')
    parts.append(_provenance_html(model))
    if model["trend"]:
        rows = "".join(
            f'<tr><th scope="row">{_month_cell(p, notes_by_month)}</th>'
            f'<td>{_table_value(p)}</td><td>{_table_target(p["target_text"])}</td><td>{_status_cell(p)}</td></tr>'
            for p in reversed(model["trend"]))
        parts.append(_details_table("monthly", f'Monthly values ({len(model["trend"])} months)',
                                    f"{_e(name)}: monthly values, newest first",
                                    ("Month", "Value", "Target", "Status"), rows))
    if model["rollups"]:
        rows = "".join(
            f'<tr><th scope="row">{_e(r["period"])}</th><td>{_table_value(r)}</td>'
            f'<td>{_table_target(r["target_text"])}</td><td>{_status_cell(r)}</td></tr>'
            for r in model["rollups"])
        parts.append(_details_table("rollups", "Fiscal quarters and years",
                                    f"{_e(name)}: this fiscal year by quarter, and the fiscal years, citywide",
                                    ("Period", "Value", "Target", "Status"), rows))
    if model["districts"]:
        rows = "".join(
            f'<tr><th scope="row">{_e(d["district"])}</th><td>{_table_value_text(d["value_text"])}</td>'
            f'<td>{_status_badge(_status(d["status"]))}</td></tr>'
            for d in model["districts"])
        when = f", {format_period(period)}" if period else ""
        parts.append(_details_table("districts", f'By aldermanic district ({len(model["districts"])})',
                                    f"{_e(name)} by aldermanic district{_e(when)}", ("District", "Value", "Status"),
                                    rows))
    else:
        parts.append('<p class="citywide-only">Reported citywide only.</p>')
    parts.append("</article>")
    return "".join(p for p in parts if p)


def _embedded_json(payload: Any) -> str:
    """JSON safe inside a <script> element: '<', '>' and '&' as \\u escapes, so no text in it
    can close the element or open a comment."""
    text = json.dumps(payload, ensure_ascii=True, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _chart_payload(model: dict) -> dict:
    return {
        "code": model["code"], "name": model["name"], "unit": model["unit"],
        "direction": model["direction"], "status": model["status"][0], "status_class": model["status"][2],
        "period": model["period"],
        "points": [{"period": p["period"], "label": p["label"], "value": p["value"], "target": p["target"],
                    "value_text": p["value_text"], "target_text": p["target_text"], "status": p["status"][0],
                    "completeness": p["completeness"], "note": p["note"]} for p in model["trend"]],
    }


def _site_pages(data: dict) -> list[tuple[str, str]]:
    """The pages render_site writes for `data`: index.html, and data.html when data["catalog"] is given."""
    return [INDEX_PAGE] + ([DATA_PAGE] if data.get("catalog") else [])


def _datasets_page(data: dict) -> dict[str, dict] | None:
    """The data sets data.html lists (released and retired), by id; None when there is no data.html."""
    catalog = data.get("catalog")
    if not catalog:
        return None
    return {str(d.get("id")): d for key in ("released", "retired") for d in catalog.get(key) or []}


def _open_data_html(data: dict) -> str:
    """The scorecard's "Open data" section: the open data page and its data sets, else (no data.html)
    the data sets' files."""
    catalog = data.get("catalog")
    if catalog:
        items = []
        for dataset in catalog.get("released") or []:
            when = (f'updated {_e(frequency_words(dataset.get("frequency")).lower())}' if dataset.get("downloads")
                    else "not published yet")
            title = _e(dataset.get("title") or dataset.get("id"))
            items.append(f'<li><a href="{DATA_PAGE[0]}#{dataset_anchor(dataset.get("id"))}">{title}</a> '
                         f'<span class="format">({when})</span> <code>{_e(dataset.get("id"))}</code></li>')
        listed = (f'<ul class="datasets">{"".join(items)}</ul>' if items
                  else "<p>No data sets are published yet.</p>")
        return ('<section class="open-data" id="data" aria-labelledby="data-heading">'
                '<h2 id="data-heading">Open data</h2>'
                f'<p>The data behind these measures is open data. <a href="{DATA_PAGE[0]}">Browse the open data '
                'sets</a>: downloads in CSV, JSON and Parquet, data dictionaries, update schedules and archives.</p>'
                f"{listed}</section>\n")
    links = []
    for dataset in data.get("datasets") or []:
        href = relative_href(dataset.get("href"))
        label = dataset.get("title") or dataset.get("id") or href
        ext = Path(urlsplit(href).path).suffix.lstrip(".").upper()
        item = f'<li><a href="{_e(href)}">{_e(label)}</a>'
        if ext:
            item += f' <span class="format">({_e(ext)})</span>'
        if dataset.get("id"):
            item += f' <code>{_e(dataset.get("id"))}</code>'
        links.append(item + "</li>")
    datasets_html = (f'<ul class="datasets">{"".join(links)}</ul>' if links
                     else "<p>No data sets are published yet.</p>")
    return ('<section class="open-data" id="data" aria-labelledby="data-heading">'
            '<h2 id="data-heading">Open data</h2>'
            "<p>The data behind these measures, as published by the data platform:</p>"
            f"{datasets_html}</section>\n")


def frequency_words(periodicity: Any) -> str:
    """How often a data set is updated, in words: R/PT1H -> 'Hourly', R/P1D 'Daily', R/P1W 'Weekly',
    R/P1M 'Monthly', R/P1Y 'Yearly', irregular 'As needed'; anything else as given."""
    text = "" if periodicity is None else str(periodicity).strip()
    return {"R/PT1H": "Hourly", "R/P1D": "Daily", "R/P1W": "Weekly", "R/P1M": "Monthly", "R/P1Y": "Yearly",
            "irregular": "As needed"}.get(text, text)


def render_html(data: dict) -> str:
    """The scorecard page (index.html) as text."""
    title = str(data.get("title") or DEFAULT_TITLE)
    as_of = data.get("as_of")
    priorities = data.get("priorities") or []
    datasets_page = _datasets_page(data)

    models: list[dict] = []
    sections: list[str] = []
    nav: list[str] = []
    anchors = iter(measure_anchors(priorities))
    for number, priority in enumerate(priorities, start=1):
        name = str(priority.get("name") or f"Priority {number}")
        section_models = []
        cards = []
        for measure in priority.get("measures") or []:
            model = _measure_model(measure, datasets_page)
            cards.append(_measure_html(model, len(models), next(anchors)[1]))
            models.append(model)
            section_models.append(model)
        pid = f"priority-{number}"
        count = len(section_models)
        nav.append(f'<li><a href="#{pid}">{_e(name)}</a> <span class="nav-count">'
                   f'({count} measure{"" if count == 1 else "s"})</span></li>')
        body = "".join(cards) if cards else '<p class="empty">No measures in this priority yet.</p>'
        sections.append(
            f'<section class="priority" id="{pid}" aria-labelledby="{pid}-heading">'
            f'<h2 id="{pid}-heading"><span class="priority-number">Priority {number}</span> {_e(name)}</h2>'
            f'{_counts_list(section_models, "status-counts small")}'
            f'<div class="measures">{body}</div></section>')

    total = len(models)
    legend = "".join(f'<li>{_status_badge(_status(k))}: {_e(text)}.</li>' for k, text in STATUS_HELP.items())
    payload = {"as_of": as_of, "measures": [_chart_payload(m) for m in models]}
    main = (
        '<section class="summary" aria-labelledby="summary-heading">'
        '<h2 id="summary-heading">At a glance</h2>'
        f'<p class="lede">{total} measure{"" if total == 1 else "s"} across {len(priorities)} strategic '
        f'priorit{"y" if len(priorities) == 1 else "ies"}, each showing its latest complete month against its target '
        '(or its latest provisional month, while none is complete).</p>'
        f'<p class="status-rule">{_e(STATUS_RULE)}</p>'
        f'{_counts_list(models, "status-counts")}'
        f'<nav aria-label="Strategic priorities"><ol class="priority-nav">{"".join(nav)}</ol></nav>'
        f'<details class="legend"><summary>What the statuses mean</summary><ul>{legend}</ul></details>'
        "</section>\n"
        + "\n".join(sections) + "\n"
        + _open_data_html(data)
    )
    footer = (f"<p>{_e(title)}. Data as of {_as_of_html(as_of)}. Values are monthly, with fiscal quarters and "
              "years; a status compares a complete period with its target. A month whose data is still coming in "
              "is provisional (dashed in the charts), and one without source data is a gap, never a 0.</p>")
    return page_shell(
        title=title, heading=title, as_of=as_of, current=INDEX_PAGE[0], pages=_site_pages(data),
        description=f"{total} performance measures of the City of Milwaukee against their targets, as of "
                    f"{format_as_of(as_of)}.",
        skip_text="Skip to the scorecard", main=main, footer=footer, scripts=(f"{ASSETS_DIR}/charts.js",),
        tail=f'<script type="application/json" id="aim-data">{_embedded_json(payload)}</script>\n')


def _definition_files(data: dict) -> dict[str, str]:
    """The definition files to publish, by file name (ValueError for a bad name, or for one name
    given two different contents)."""
    files: dict[str, str] = {}
    for priority in data.get("priorities") or []:
        for measure in priority.get("measures") or []:
            found = _definition_file(measure)
            if found is None:
                continue
            if files.get(found["name"], found["text"]) != found["text"]:
                raise ValueError(f"definition file {found['name']!r} is given with two different contents")
            files[found["name"]] = found["text"]
    return files


def render_site(data: dict, out_dir: Path) -> list[Path]:
    """Write the static scorecard (index.html, assets and the measures' definition files) into out_dir,
    and the open data page (data.html) when data["catalog"] is given; returns the files written.
    Deterministic: the same data gives byte-identical files (no timestamps other than the data's). A
    definition file is written with exactly the text given."""
    from aim.publish.open_data_page import render_open_data_html  # it builds on this module's page shell

    out_dir = Path(out_dir)
    pages = {INDEX_PAGE[0]: render_html(data).encode("utf-8")}
    if data.get("catalog"):
        pages[DATA_PAGE[0]] = render_open_data_html(data).encode("utf-8")
    definitions = _definition_files(data)
    (out_dir / ASSETS_DIR).mkdir(parents=True, exist_ok=True)
    written = []
    for name, page in pages.items():
        written.append(out_dir / name)
        written[-1].write_bytes(page)
    for name in ASSET_FILES:
        target = out_dir / ASSETS_DIR / name
        target.write_bytes((ASSETS_SOURCE / name).read_bytes())
        written.append(target)
    if definitions:
        (out_dir / DEFINITIONS_DIR).mkdir(exist_ok=True)
    for name, text in sorted(definitions.items()):
        target = out_dir / DEFINITIONS_DIR / name
        target.write_bytes(text.encode("utf-8"))
        written.append(target)
    return written
