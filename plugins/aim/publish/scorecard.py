"""The public scorecard's data, from the analysts' views, and its publication under `site/`.

What residents see is what analysts query: `marts.measure_definitions` (every current measure),
`marts.scorecard` (latest complete month, else the latest provisional one: value, target,
status), `marts.measure_history` (the monthly trend, with provisional and no-data months, and the
fiscal quarters and years), the district rows of `marts.scorecard` and the departments' notes
(`marts.measure_commentary`). Each measure also links to
its definition, the SQL file `core.aim_measure_file` says computed it (published with the site,
byte for byte, under `site/definitions/`), and to the released data sets of the sources it reads.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from aim import clock, db, settings
from aim.freshness import current as current_freshness
from aim.measures import MeasureError, add_months, fiscal_year_of, parse_measure_file
from aim.measures.files import file_name_for_code
from aim.publish.datasets import DatasetConfig
from aim.publish.site import render_site
from aim.storage import ExportTarget

TREND_MONTHS = 24
_MEDIA = {".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript",
          ".sql": "text/plain; charset=utf-8"}
PRIORITY_ORDER = ("Safety", "Economic", "Children", "Environmental")
_COVERAGE = ("completeness", "days_in_period", "days_covered", "days_settled")


def _number(value):
    return None if value is None else float(value)


def _iso(moment):
    """A moment as the page writes it: Milwaukee time, to the second, with its offset."""
    return None if moment is None else moment.astimezone(clock.LOCAL_ZONE).replace(microsecond=0).isoformat()


def _trend(rows: list[tuple]) -> list[dict]:
    """The monthly points, oldest first; a month missing between two rows is a point without a
    value (a gap in the line, never bridged)."""
    points = []
    for start, label, value, target, status, *coverage in rows:
        while points and add_months(points[-1]["start"], 1) < start:
            missing = add_months(points[-1]["start"], 1)
            points.append({"start": missing, "period": f"{missing:%Y-%m}", "value": None, "target": None,
                           "status": None, **dict.fromkeys(_COVERAGE)})
        points.append({"start": start, "period": label, "value": _number(value), "target": _number(target),
                       "status": status, **dict(zip(_COVERAGE, coverage))})
    return [{k: v for k, v in p.items() if k != "start"} for p in points]


def _definition(code: str, recorded: tuple | None) -> tuple[dict | None, list[str]]:
    """The measure's definition file (name, text as stored, whether it is the one its values were
    computed with) and the sources it reads: as `core.aim_measure_file` recorded them, else (a
    measure not computed yet) the measure's file in the measures folder, as its header declares."""
    folder = settings.measures_dir()
    if recorded:
        file_name, sha256, sources = recorded
        path = folder / file_name
    else:
        path, sha256, sources = folder / file_name_for_code(code), None, []
        try:
            sources = sorted({read.table for read in parse_measure_file(path).dated_reads}) if path.is_file() else []
        except MeasureError:
            sources = []
    if not path.is_file():
        return None, list(sources)
    content = path.read_bytes()
    return {"name": path.name, "text": content.decode("utf-8"),
            "computed_with": None if sha256 is None else hashlib.sha256(content).hexdigest() == sha256}, list(sources)


def scorecard_data(url: str, datasets: list[DatasetConfig], freshness: dict[str, dict] | None = None) -> dict:
    """The site's data: the four priorities, each measure's latest citywide value against its target
    (or why there is none), its monthly trend, its fiscal quarters and years, its district
    breakdown, its department's notes (newest month first), its definition file and source data sets, the data's as-of time, and links to the
    data sets. Each source of a measure has its `freshness` (`aim.freshness.SourceFreshness.public()`,
    None for a source without configuration): from `freshness` by source, else computed now."""
    fiscal_year = fiscal_year_of(clock.local_today(), settings.fiscal_year_start_month())[0]
    with db.transaction(url) as conn, conn.cursor() as cur:
        # every current measure, with its latest citywide month if it has one
        cur.execute("""
            SELECT d.measure_code, d.measure_name, d.priority, d.department, d.unit, d.direction, d.definition,
                   s.period_label, s.value, s.target_value, s.status, s.data_as_of,
                   s.completeness, h.days_in_period, h.days_covered, h.days_settled
            FROM marts.measure_definitions d
            LEFT JOIN marts.scorecard s ON s.measure_code = d.measure_code AND s.geography_type = 'citywide'
            LEFT JOIN marts.measure_history h
                   ON h.measure_code = s.measure_code AND h.geography_type = 'citywide'
                  AND h.period_type = 'month' AND h.period_start = s.period_start
            WHERE d.is_current ORDER BY d.measure_code""")
        latest = cur.fetchall()
        # the latest months of each measure, provisional and no-data months included
        cur.execute("""
            SELECT measure_code, period_start, period_label, value, target_value, status,
                   completeness, days_in_period, days_covered, days_settled
            FROM (SELECT *, max(period_start) OVER (PARTITION BY measure_code) AS newest
                  FROM marts.measure_history WHERE geography_type = 'citywide' AND period_type = 'month') h
            WHERE period_start > newest - make_interval(months => %s)
            ORDER BY measure_code, period_start""", (TREND_MONTHS,))
        monthly: dict[str, list] = {}
        for code, *row in cur.fetchall():
            monthly.setdefault(code, []).append(row)
        # this fiscal year's quarters and the year itself, then last fiscal year
        cur.execute("""
            SELECT measure_code, period_type, period_label, value, target_value, status,
                   completeness, days_in_period, days_covered, days_settled
            FROM marts.measure_history
            WHERE geography_type = 'citywide'
              AND (period_type IN ('quarter', 'fiscal_year') AND fiscal_year = %(year)s
                   OR period_type = 'fiscal_year' AND fiscal_year = %(year)s - 1)
            ORDER BY measure_code, fiscal_year DESC, period_type = 'fiscal_year', period_start""",
                    {"year": fiscal_year})
        rollups: dict[str, list] = {}
        for code, kind, period, value, target, status, *coverage in cur.fetchall():
            rollups.setdefault(code, []).append({
                "period": period, "period_type": kind, "value": _number(value), "target": _number(target),
                "status": status, **dict(zip(_COVERAGE, coverage))})
        cur.execute("""
            SELECT measure_code, geography_code, value, status FROM marts.scorecard
            WHERE geography_type = 'aldermanic_district' ORDER BY measure_code, geography_code::int""")
        districts: dict[str, list] = {}
        for code, district, value, status in cur.fetchall():
            districts.setdefault(code, []).append({"district": district, "value": _number(value), "status": status})
        cur.execute("SELECT measure_code, file_name, sha256, sources FROM core.aim_measure_file")
        files = {code: tuple(rest) for code, *rest in cur.fetchall()}
        # the departments' notes, newest month first
        cur.execute("""
            SELECT measure_code, period_label, department, reason, action, outlook, version, updated_at,
                   first_published_at
            FROM marts.measure_commentary ORDER BY measure_code, period_start DESC""")
        commentary: dict[str, list] = {}
        for code, period, department, reason, action, outlook, version, updated, first in cur.fetchall():
            commentary.setdefault(code, []).append({
                "period": period, "period_label": period, "department": department, "reason": reason,
                "action": action, "outlook": outlook, "version": version, "updated": _iso(updated),
                "first_published": _iso(first)})

    released = [d for d in datasets if d.released]
    priorities: dict[str, list] = {}
    as_of = None
    for (code, name, priority, department, unit, direction, definition, period, value, target, status, data_as_of,
         *coverage) in latest:
        as_of = max(filter(None, [as_of, data_as_of]), default=None)
        trend = _trend(monthly.get(code, []))
        shown = {"period": period, "value": _number(value), "target": _number(target),
                 "status": status or "no value", "data_as_of": _iso(data_as_of), **dict(zip(_COVERAGE, coverage))}
        if value is None and trend and trend[-1]["completeness"] == "no data":
            # no value anywhere, and the latest month has no source data: say so, not "no value"
            shown = {**{k: trend[-1][k] for k in ("period", "value", "target", "status", *_COVERAGE)},
                     "data_as_of": None}
        definition_file, sources = _definition(code, files.get(code))
        priorities.setdefault(priority, []).append({
            "code": code, "name": name, "department": department, "unit": unit, "direction": direction,
            "definition": definition or "", "latest": shown, "trend": trend, "rollups": rollups.get(code, []),
            "districts": districts.get(code, []), "definition_file": definition_file,
            "commentary": commentary.get(code, []),
            "sources": [{"source": source,
                         "datasets": [{"id": d.id, "title": d.title, "href": f"../latest/{d.id}/{d.id}.csv"}
                                      for d in released if d.source == source]}
                        for source in sources],
        })
    if freshness is None:
        freshness = {source: f.public() for source, f in current_freshness(
            url, {s["source"] for measures in priorities.values() for m in measures for s in m["sources"]}).items()}
    for measures in priorities.values():
        for measure in measures:
            for source in measure["sources"]:
                source["freshness"] = freshness.get(source["source"])
    ordered = sorted(priorities.items(), key=lambda kv: next(
        (i for i, word in enumerate(PRIORITY_ORDER) if kv[0].startswith(word)), len(PRIORITY_ORDER)))
    return {
        "title": "City of Milwaukee - AIM Scorecard",
        "as_of": _iso(as_of or clock.now()),
        "priorities": [{"name": name, "measures": measures} for name, measures in ordered],
        "datasets": [{"id": d.id, "title": d.title, "href": f"../latest/{d.id}/{d.id}.csv"} for d in released],
    }


def publish_site(url: str, target: ExportTarget, datasets: list[DatasetConfig],
                 freshness: dict[str, dict] | None = None) -> list[str]:
    """Render the scorecard (with its measures' definition files) and the open data page (data.html)
    and publish the files that changed under `site/`; returns their paths. `freshness`: the sources'
    freshness by source (`SourceFreshness.public()`), else computed now."""
    from aim.publish.open_data_page import open_data_page_data

    written = []
    if freshness is None:
        freshness = {source: f.public() for source, f in current_freshness(url).items()}
    page = {**scorecard_data(url, datasets, freshness),
            "catalog": open_data_page_data(url, datasets, target.read_bytes, freshness=freshness)}
    with tempfile.TemporaryDirectory(prefix="aim-site-") as tmp:
        for path in render_site(page, Path(tmp)):
            relpath = f"site/{path.relative_to(tmp).as_posix()}"
            if target.publish_if_changed(path, relpath, _MEDIA.get(path.suffix, "application/octet-stream")):
                written.append(relpath)
    return written
