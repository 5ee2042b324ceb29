"""The public scorecard's data, from the analysts' views, and its publication under `site/`.

What residents see is what analysts query: `marts.scorecard` (latest complete month, target,
status), `marts.measure_history` (the trend) and `marts.values_by_district`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from aim import clock, db
from aim.publish.datasets import DatasetConfig
from aim.publish.site import render_site
from aim.storage import ExportTarget

TREND_MONTHS = 24
_MEDIA = {".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript"}
PRIORITY_ORDER = ("Safety", "Economic", "Children", "Environmental")


def _number(value):
    return None if value is None else float(value)


def scorecard_data(url: str, datasets: list[DatasetConfig]) -> dict:
    """The site's data: the four priorities, each measure's latest citywide value against its target,
    its trend and its district breakdown, the data's as-of time, and links to the data sets."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT measure_code, measure_name, priority, department, unit, direction, period_label, value,
                   target_value, status, data_as_of
            FROM marts.scorecard WHERE geography_type = 'citywide' ORDER BY measure_code""")
        latest = cur.fetchall()
        cur.execute("SELECT measure_code, definition FROM marts.measure_definitions WHERE valid_to IS NULL")
        definitions = dict(cur.fetchall())
        cur.execute("""
            SELECT measure_code, period_label, value, target_value FROM (
                SELECT *, row_number() OVER (PARTITION BY measure_code ORDER BY period_start DESC) AS n
                FROM marts.measure_history
                WHERE geography_type = 'citywide' AND period_type = 'month' AND NOT is_partial_month) h
            WHERE n <= %s ORDER BY measure_code, period_label""", (TREND_MONTHS,))
        trends: dict[str, list] = {}
        for code, period, value, target in cur.fetchall():
            trends.setdefault(code, []).append({"period": period, "value": _number(value), "target": _number(target)})
        cur.execute("""
            SELECT measure_code, geography_code, value, status FROM marts.scorecard
            WHERE geography_type = 'aldermanic_district' ORDER BY measure_code, geography_code::int""")
        districts: dict[str, list] = {}
        for code, district, value, status in cur.fetchall():
            districts.setdefault(code, []).append({"district": district, "value": _number(value), "status": status})
    priorities: dict[str, list] = {}
    as_of = None
    for code, name, priority, department, unit, direction, period, value, target, status, data_as_of in latest:
        as_of = max(filter(None, [as_of, data_as_of]), default=None)
        priorities.setdefault(priority, []).append({
            "code": code, "name": name, "department": department, "unit": unit, "direction": direction,
            "definition": definitions.get(code, ""),
            "latest": {"period": period, "value": _number(value), "target": _number(target), "status": status},
            "trend": trends.get(code, []), "districts": districts.get(code, []),
        })
    ordered = sorted(priorities.items(), key=lambda kv: next(
        (i for i, word in enumerate(PRIORITY_ORDER) if kv[0].startswith(word)), len(PRIORITY_ORDER)))
    return {
        "title": "City of Milwaukee - AIM Scorecard",
        "as_of": (as_of or clock.now()).astimezone(clock.LOCAL_ZONE).replace(
            microsecond=0).isoformat(),
        "priorities": [{"name": name, "measures": measures} for name, measures in ordered],
        "datasets": [{"id": d.id, "title": d.title, "href": f"../latest/{d.id}/{d.id}.csv"}
                     for d in datasets if d.released],
    }


def publish_site(url: str, target: ExportTarget, datasets: list[DatasetConfig]) -> list[str]:
    """Render the scorecard and publish the files that changed under `site/`; returns their paths."""
    written = []
    with tempfile.TemporaryDirectory(prefix="aim-site-") as tmp:
        for path in render_site(scorecard_data(url, datasets), Path(tmp)):
            relpath = f"site/{path.relative_to(tmp).as_posix()}"
            if target.publish_if_changed(path, relpath, _MEDIA.get(path.suffix, "application/octet-stream")):
                written.append(relpath)
    return written
