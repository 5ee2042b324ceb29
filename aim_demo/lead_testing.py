"""Health Department: childhood blood lead testing, one CSV per month.

`lead_tests_YYYY-MM.csv` has one row per Milwaukee ZIP code and age group ("Under 1", "1-2 years",
"3-5 years"): how many children were tested that month and how many had an elevated blood lead
level (>= 3.5 ug/dL). The current month's file is partial and grows with `now`.

Every test of a month is drawn once (day reported, elevated or not) from a Random seeded with the
month and cell, and the export counts the tests reported by `now`, so history never changes and
`elevated <= tested` always holds. North-side ZIPs (53205, 53206, 53208, 53210, 53212, 53216)
test the most children and see elevated rates of ~8-15%; elsewhere 1-4%. A few cells test
nobody (0), including clinics that did not report.

Format, from the department's old system: cp1252, CRLF line endings, minimal quoting. The Notes
column is mostly empty; some notes hold non-ASCII text ("Données partielles – laboratoire",
"Müller Clinic reporting lag", "µg/dL confirmed by venous test").
"""
from __future__ import annotations

import csv
import io
import math
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

from aim_demo.drops import ZIP_CODES, seeded, write_if_changed

HEADER = ("Month", "ZIP Code", "Age Group", "Children Tested", "Children Elevated (>=3.5 ug/dL)", "Notes")
AGE_GROUPS = ("Under 1", "1-2 years", "3-5 years")
FILE_PATTERN = "lead_tests_{:%Y-%m}.csv"
ENCODING = "cp1252"

NORTH_SIDE = frozenset({"53205", "53206", "53208", "53210", "53212", "53216"})
# Mean children tested per month in the 1-2 years group (the most tested age), by ZIP.
_MEAN_TODDLERS = {
    "53202": 9, "53203": 3, "53204": 62, "53205": 64, "53206": 88, "53207": 30, "53208": 76,
    "53209": 66, "53210": 80, "53211": 16, "53212": 72, "53213": 14, "53214": 26, "53215": 70,
    "53216": 78, "53218": 68, "53219": 24, "53220": 18, "53221": 30, "53222": 22, "53223": 34,
    "53224": 30, "53225": 36, "53226": 8, "53233": 24, "53235": 6,
}
_AGE_SHARE = {"Under 1": 0.35, "1-2 years": 1.0, "3-5 years": 0.45}

PARTIAL_NOTE = "Données partielles – laboratoire"  # on some rows of the month still in progress
NOT_REPORTING_NOTE = "Clinic not reporting – see next month"
NOTES = (
    "Müller Clinic reporting lag",
    "µg/dL confirmed by venous test",
    "Résultats révisés – voir rapport",
    "Includes 2 capillary re-tests, venous pending",
    "Counts from WIC clinic added",
)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def _poisson(rng, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 60:  # normal approximation, plenty for a demo
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _zip_rate(zip_code: str) -> float:
    """Share of tested children with an elevated level, fixed per ZIP."""
    rng = seeded("lead-rate", zip_code)
    return rng.uniform(0.08, 0.15) if zip_code in NORTH_SIDE else rng.uniform(0.01, 0.04)


@lru_cache(maxsize=64)
def month_tests(month: date) -> tuple[tuple, ...]:
    """Per (ZIP, age group), the month's tests as (reported at, elevated) pairs plus the note.

    Rows in ZIP then age-group order: (zip, age group, ((reported_at, elevated), ...), note,
    lagging), `lagging` marking the cells whose laboratory flags them as partial until the month
    is over. Independent of `now`.
    """
    days_in_month = (_next_month(month) - month).days
    start = datetime.combine(month, time())
    season = 1.0 + 0.15 * math.cos(2 * math.pi * (month.month - 8) / 12)  # summer peak
    cells = []
    for zip_code in ZIP_CODES:
        rate = _zip_rate(zip_code)
        for age in AGE_GROUPS:
            rng = seeded("lead", month.isoformat(), zip_code, age)
            mean = _MEAN_TODDLERS[zip_code] * _AGE_SHARE[age] * season
            tested = min(120, _poisson(rng, mean))
            age_rate = rate * (0.6 if age == "Under 1" else 1.0)
            note = ""
            lagging = rng.random() < 0.2  # flagged as partial while the month is in progress
            if rng.random() < 0.015:  # clinic did not report this month
                tested = 0
                note = NOT_REPORTING_NOTE
            elif rng.random() < 0.04:
                note = NOTES[int(rng.random() * len(NOTES))]
            tests = sorted(
                (start + timedelta(seconds=int(rng.random() * days_in_month * 86400)), rng.random() < age_rate)
                for _ in range(tested)
            )
            cells.append((zip_code, age, tuple(tests), note, lagging))
    return tuple(cells)


def month_csv(month: date, now: datetime) -> bytes:
    """The month's file as exported at `now` (tests reported by `now`)."""
    complete = now >= datetime.combine(_next_month(month), time())
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(HEADER)
    for zip_code, age, tests, note, lagging in month_tests(month):
        tested = elevated = 0
        for reported_at, is_elevated in tests:
            if reported_at > now:
                break
            tested += 1
            elevated += is_elevated
        if not complete and lagging and not note:
            note = PARTIAL_NOTE
        writer.writerow((f"{month:%Y-%m}", zip_code, age, tested, elevated, note))
    return out.getvalue().encode(ENCODING)


def write_drops(folder: Path, now: datetime, days: int = 365) -> list[Path]:
    """Write (or rewrite when changed) every monthly file up to `now`; return the files (oldest first)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    month = _month_start((now - timedelta(days=days)).date())
    last = _month_start(now.date())
    paths = []
    while month <= last:
        path = folder / FILE_PATTERN.format(month)
        write_if_changed(path, month_csv(month, now))
        paths.append(path)
        month = _next_month(month)
    return paths
