"""The city's 311 call center, simulated: service requests over a real HTTP API on loopback.

`generate_requests(now)` makes a year of realistic service requests (potholes, street lights,
missed garbage pickups, ...), about 190 a day, deterministically: every day is drawn from its own
seeded random generator, so the same `now` always gives the same data, and a later `now` keeps
every earlier request (same id, type, created_at) and adds the ones created since. Whether a
request is closed is decided by comparing its own seeded duration with `now`, so as `now` moves
on, open requests close and their `updated_at` moves with them.

`CallCenterServer` serves them as a paginated JSON API (`GET /api/v1/requests`), keyset style
(`updated_from` inclusive, `after` the last request id read) or next-link (page token) style, with
fault injection for tests: 5xx, timeouts, 429 + Retry-After, HTML error pages, truncated bodies,
dropped connections, bodies trickling in byte by byte, redirects. Its data can change while it
serves (`upsert`, `update`, and an `on_page` hook between pages), as a live system's does.

`write_file_export()` writes the call center's CSV "file export", which, like the city's real
export, has no request id.

    python -m aim_demo.call_center --port 8311        # serve until Ctrl-C
    python -m aim_demo.call_center --export 311.csv   # write the file export and exit

Times: `created_at` and `closed_at` are local wall-clock times in Milwaukee (America/Chicago)
without offset, "YYYY-MM-DDTHH:MM:SS", as the call center records them; `updated_at` is UTC,
"YYYY-MM-DDTHH:MM:SSZ", so that it sorts as text and never repeats across a DST change. A naive
`now` (or `updated_from`) is Milwaukee local time; an aware one is converted.
"""
from __future__ import annotations

import argparse
import base64
import bisect
import csv
import datetime as dt
import json
import math
import random
import sys
import threading
from collections import deque
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

HOST = "127.0.0.1"
API_PATH = "/api/v1/requests"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_SEED = 311

REQUEST_TYPES = (
    "POTHOLE",
    "STREET LIGHT OUT",
    "MISSED GARBAGE PICKUP",
    "ABANDONED VEHICLE",
    "GRAFFITI",
    "ILLEGAL DUMPING",
    "TREE DEBRIS",
)
CLOSURE_REASONS = ("REPAIRED", "COMPLETED", "DUPLICATE", "NO ISSUE FOUND", "REFERRED")
EXPORT_HEADER = ("Request Type", "Created", "Closed", "Status", "Closure Reason", "Address", "District")

# ---------------------------------------------------------------------------------------------
# Volume: requests per day by type = base * month factor * weekday factor (* holiday, storm).
# The bases give about 190 requests a day over a year.
_BASE_PER_DAY = {
    "POTHOLE": 30.0,
    "STREET LIGHT OUT": 33.0,
    "MISSED GARBAGE PICKUP": 54.0,
    "ABANDONED VEHICLE": 22.0,
    "GRAFFITI": 17.0,
    "ILLEGAL DUMPING": 27.0,
    "TREE DEBRIS": 13.0,
}
#                    Jan  Feb  Mar  Apr  May  Jun  Jul  Aug  Sep  Oct  Nov  Dec
_MONTH_FACTOR = {
    "POTHOLE":         (1.3, 1.8, 2.4, 2.2, 1.5, 0.9, 0.6, 0.5, 0.5, 0.6, 0.8, 1.0),  # freeze-thaw: spring peak
    "STREET LIGHT OUT": (1.3, 1.2, 1.0, 0.9, 0.8, 0.8, 0.9, 0.9, 1.0, 1.1, 1.3, 1.4),  # long nights
    "MISSED GARBAGE PICKUP": (1.0, 0.9, 0.9, 1.0, 1.0, 1.1, 1.1, 1.1, 1.0, 1.0, 1.0, 1.0),
    "ABANDONED VEHICLE": (0.9, 0.9, 1.0, 1.0, 1.1, 1.1, 1.1, 1.1, 1.0, 1.0, 0.9, 0.9),
    "GRAFFITI":        (0.6, 0.6, 0.8, 1.0, 1.2, 1.4, 1.4, 1.4, 1.2, 1.0, 0.8, 0.6),
    "ILLEGAL DUMPING": (0.7, 0.7, 0.9, 1.0, 1.2, 1.3, 1.3, 1.3, 1.1, 1.0, 0.8, 0.7),
    "TREE DEBRIS":     (0.5, 0.5, 0.7, 1.0, 1.3, 1.5, 1.5, 1.4, 1.1, 1.0, 0.8, 0.6),
}
#                  Mon   Tue   Wed   Thu   Fri   Sat   Sun
_WEEKDAY_FACTOR = (1.15, 1.10, 1.05, 1.00, 0.95, 0.70, 0.60)
_GARBAGE_WEEKDAY_FACTOR = (1.30, 1.20, 1.15, 1.15, 1.10, 0.40, 0.15)  # reported the day after pickup

# Hour of day a request comes in (phone lines 7-19 plus the web form around the clock).
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 12, 13, 13, 12, 11, 12, 12, 11, 10, 9, 7, 5, 4, 3, 2, 1)
_HOUR_CUM = tuple(sum(_HOUR_WEIGHTS[: i + 1]) for i in range(24))

# Closure reason weights by type (decided at intake: the outcome is fixed, only its time is not).
_REASON_WEIGHTS = {
    "POTHOLE": {"REPAIRED": 75, "DUPLICATE": 12, "NO ISSUE FOUND": 8, "REFERRED": 5},
    "STREET LIGHT OUT": {"REPAIRED": 80, "DUPLICATE": 10, "NO ISSUE FOUND": 5, "REFERRED": 5},
    "MISSED GARBAGE PICKUP": {"COMPLETED": 80, "NO ISSUE FOUND": 15, "DUPLICATE": 5},
    "ABANDONED VEHICLE": {"COMPLETED": 55, "NO ISSUE FOUND": 25, "DUPLICATE": 10, "REFERRED": 10},
    "GRAFFITI": {"COMPLETED": 70, "REFERRED": 15, "DUPLICATE": 8, "NO ISSUE FOUND": 7},
    "ILLEGAL DUMPING": {"COMPLETED": 80, "DUPLICATE": 8, "NO ISSUE FOUND": 7, "REFERRED": 5},
    "TREE DEBRIS": {"COMPLETED": 80, "DUPLICATE": 8, "NO ISSUE FOUND": 7, "REFERRED": 5},
}
_REASON_TABLE = {
    t: (tuple(w), tuple(sum(list(w.values())[: i + 1]) for i in range(len(w))))
    for t, w in _REASON_WEIGHTS.items()
}

# Time to close, hours: log-normal (median, sigma). Potholes mostly 1-5 days, street lights
# 2-10, garbage 1-2, abandoned vehicles 5-30.
_DURATION = {
    "POTHOLE": (60.0, 0.45),
    "STREET LIGHT OUT": (120.0, 0.40),
    "MISSED GARBAGE PICKUP": (32.0, 0.22),
    "ABANDONED VEHICLE": (300.0, 0.45),
    "GRAFFITI": (130.0, 0.60),
    "ILLEGAL DUMPING": (100.0, 0.55),
    "TREE DEBRIS": (150.0, 0.70),
}
_STALLED_SHARE = 0.015  # requests that sit open for months (backlogs, waiting on another agency)

# Streets: (name, lowest house number, highest, ((up to house number, aldermanic district), ...)).
# Real Milwaukee street names; the district bands along each street are approximate.
_STREETS: tuple[tuple[str, int, int, tuple[tuple[int, int], ...]], ...] = (
    ("N 1ST ST", 300, 5600, ((1800, 4), (5600, 6))),
    ("N 6TH ST", 300, 5000, ((1600, 4), (3200, 6), (5000, 1))),
    ("N 12TH ST", 300, 5400, ((1400, 4), (2600, 15), (5400, 1))),
    ("N 20TH ST", 300, 5800, ((1500, 4), (3200, 15), (5800, 1))),
    ("N 27TH ST", 100, 7400, ((1400, 4), (3400, 15), (4800, 7), (6400, 1), (7400, 9))),
    ("N 35TH ST", 100, 6900, ((1000, 10), (3000, 15), (4600, 7), (6900, 1))),
    ("N 43RD ST", 100, 7000, ((1700, 10), (4600, 7), (7000, 2))),
    ("N 51ST ST", 100, 6800, ((2000, 10), (4000, 7), (6800, 2))),
    ("N 60TH ST", 100, 8000, ((2500, 10), (4200, 5), (6800, 2), (8000, 9))),
    ("N 76TH ST", 100, 9400, ((2600, 10), (4600, 5), (7000, 2), (9400, 9))),
    ("N 91ST ST", 2000, 9000, ((4500, 5), (6800, 2), (9000, 9))),
    ("N 107TH ST", 3000, 9700, ((5200, 5), (9700, 9))),
    ("N HOLTON ST", 1800, 5400, ((5400, 6),)),
    ("N MARTIN LUTHER KING JR DR", 900, 4000, ((1400, 4), (4000, 6))),
    ("N TEUTONIA AV", 1900, 8000, ((3200, 15), (6400, 1), (8000, 9))),
    ("N SHERMAN BLVD", 2200, 5200, ((2600, 15), (5200, 7))),
    ("N HOPKINS ST", 2600, 5300, ((5300, 1),)),
    ("N GREEN BAY AV", 2600, 6900, ((3600, 6), (6900, 1))),
    ("N OAKLAND AV", 1400, 3400, ((3400, 3),)),
    ("N FARWELL AV", 1100, 2800, ((2800, 3),)),
    ("N DOWNER AV", 2000, 3400, ((3400, 3),)),
    ("N HUMBOLDT BLVD", 1200, 3700, ((2400, 3), (3700, 6))),
    ("N PORT WASHINGTON RD", 3000, 6000, ((6000, 6),)),
    ("N WATER ST", 100, 2000, ((1200, 4), (2000, 3))),
    ("S 1ST ST", 100, 3400, ((1400, 12), (3400, 14))),
    ("S 6TH ST", 100, 5000, ((1800, 12), (3400, 14), (5000, 13))),
    ("S 13TH ST", 100, 7500, ((2000, 12), (3500, 14), (7500, 13))),
    ("S 16TH ST", 100, 4500, ((1000, 12), (2700, 8), (4500, 13))),
    ("S 20TH ST", 100, 7000, ((2800, 8), (7000, 13))),
    ("S 27TH ST", 100, 9000, ((2000, 8), (3500, 11), (9000, 13))),
    ("S 35TH ST", 100, 6000, ((2500, 8), (6000, 11))),
    ("S 43RD ST", 1000, 5500, ((2500, 8), (5500, 11))),
    ("S 76TH ST", 1800, 7000, ((7000, 11),)),
    ("S KINNICKINNIC AV", 1800, 3500, ((2200, 12), (3500, 14))),
    ("S HOWELL AV", 1500, 9000, ((2400, 12), (4500, 14), (9000, 13))),
    ("S CHASE AV", 2500, 4500, ((4500, 14),)),
    ("S PENNSYLVANIA AV", 3300, 5000, ((5000, 14),)),
    ("S LAYTON BLVD", 1000, 3000, ((3000, 8),)),
    ("S MUSKEGO AV", 1600, 2800, ((2800, 8),)),
    ("W CAPITOL DR", 100, 12000, ((1900, 6), (3500, 1), (6000, 7), (12000, 5))),
    ("W NORTH AV", 100, 6000, ((1600, 6), (3500, 15), (6000, 10))),
    ("E NORTH AV", 100, 2400, ((2400, 3),)),
    ("W CENTER ST", 100, 10000, ((1900, 6), (3800, 15), (6000, 7), (10000, 5))),
    ("W BURLEIGH ST", 100, 10000, ((1900, 6), (3500, 15), (6000, 7), (10000, 5))),
    ("W LOCUST ST", 100, 6000, ((1800, 6), (3600, 15), (6000, 7))),
    ("E LOCUST ST", 100, 3000, ((800, 6), (3000, 3))),
    ("W KEEFE AV", 100, 6000, ((1800, 6), (3500, 1), (6000, 7))),
    ("W HAMPTON AV", 100, 12000, ((6000, 1), (9200, 2), (12000, 5))),
    ("W VILLARD AV", 100, 8000, ((5000, 1), (8000, 2))),
    ("W SILVER SPRING DR", 100, 12000, ((3500, 1), (9600, 2), (12000, 9))),
    ("W MILL RD", 1600, 10000, ((4000, 1), (10000, 9))),
    ("W GOOD HOPE RD", 1800, 12000, ((12000, 9),)),
    ("W BROWN DEER RD", 3000, 12000, ((12000, 9),)),
    ("W FOND DU LAC AV", 1800, 9000, ((3200, 15), (4900, 7), (7000, 2), (9000, 9))),
    ("W APPLETON AV", 3200, 12000, ((4400, 7), (6800, 2), (12000, 5))),
    ("W LISBON AV", 1800, 8000, ((3600, 15), (5200, 7), (8000, 10))),
    ("W ATKINSON AV", 1700, 4400, ((2600, 6), (4400, 1))),
    ("W VLIET ST", 100, 6000, ((1600, 4), (3500, 15), (6000, 10))),
    ("W WALNUT ST", 200, 3000, ((1300, 4), (3000, 15))),
    ("W STATE ST", 100, 8000, ((3500, 4), (8000, 10))),
    ("W HIGHLAND BLVD", 100, 4000, ((4000, 4),)),
    ("W WISCONSIN AV", 100, 7800, ((4000, 4), (7800, 10))),
    ("W BLUEMOUND RD", 2600, 10000, ((10000, 10),)),
    ("E BRADY ST", 100, 1800, ((1800, 3),)),
    ("W GREENFIELD AV", 100, 3800, ((1600, 12), (3800, 8))),
    ("W NATIONAL AV", 100, 3400, ((1500, 12), (3400, 8))),
    ("W MITCHELL ST", 100, 3600, ((1500, 12), (3600, 8))),
    ("W BURNHAM ST", 100, 3500, ((1500, 12), (3500, 8))),
    ("W BECHER ST", 100, 4000, ((1500, 12), (4000, 8))),
    ("W LINCOLN AV", 100, 3900, ((1500, 12), (3900, 8))),
    ("W FOREST HOME AV", 1300, 8000, ((2700, 8), (8000, 11))),
    ("W CLEVELAND AV", 100, 10000, ((1600, 14), (3500, 8), (10000, 11))),
    ("W OKLAHOMA AV", 100, 9000, ((1600, 14), (2700, 13), (9000, 11))),
    ("E OKLAHOMA AV", 100, 2800, ((2800, 14),)),
    ("W MORGAN AV", 100, 8000, ((1600, 14), (2700, 13), (8000, 11))),
    ("W HOLT AV", 100, 4000, ((1600, 14), (4000, 13))),
    ("W LAYTON AV", 100, 11000, ((2700, 13), (11000, 11))),
    ("W GRANGE AV", 100, 5000, ((2700, 13), (5000, 11))),
    ("W COLLEGE AV", 100, 11000, ((2700, 13), (11000, 11))),
    ("E RUSSELL AV", 100, 1000, ((1000, 14),)),
)


# ---------------------------------------------------------------------------------------------
# Milwaukee time (America/Chicago) by the US rules in force since 2007, without tzdata: DST from
# 02:00 on the second Sunday of March to 02:00 on the first Sunday of November.

@lru_cache(maxsize=None)
def _dst_bounds(year: int) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    """(start local, end local, start UTC, end UTC) of daylight saving time in `year`."""
    march1 = dt.date(year, 3, 1)
    second_sunday = march1 + dt.timedelta(days=(6 - march1.weekday()) % 7 + 7)
    nov1 = dt.date(year, 11, 1)
    first_sunday = nov1 + dt.timedelta(days=(6 - nov1.weekday()) % 7)
    start_local = dt.datetime.combine(second_sunday, dt.time(2))
    end_local = dt.datetime.combine(first_sunday, dt.time(2))  # 02:00 CDT becomes 01:00 CST
    return start_local, end_local, start_local + dt.timedelta(hours=6), end_local + dt.timedelta(hours=5)


def _local_to_utc(local: dt.datetime) -> dt.datetime:
    """Naive Milwaukee wall time -> naive UTC (ambiguous fall-back hour: the first, CDT)."""
    start, end, _, _ = _dst_bounds(local.year)
    return local + (_HOURS_5 if start <= local < end else _HOURS_6)


def _utc_to_local(utc: dt.datetime) -> dt.datetime:
    """Naive UTC -> naive Milwaukee wall time."""
    _, _, start, end = _dst_bounds(utc.year)
    return utc - (_HOURS_5 if start <= utc < end else _HOURS_6)


_HOURS_5 = dt.timedelta(hours=5)
_HOURS_6 = dt.timedelta(hours=6)


def _as_local(value: dt.datetime) -> dt.datetime:
    """A datetime as naive Milwaukee wall time (naive input already is)."""
    if value.tzinfo is None:
        return value
    return _utc_to_local(value.astimezone(dt.timezone.utc).replace(tzinfo=None))


def _as_utc(value: dt.datetime) -> dt.datetime:
    """A datetime as naive UTC (naive input is Milwaukee wall time)."""
    if value.tzinfo is None:
        return _local_to_utc(value)
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _utc_text(utc: dt.datetime) -> str:
    return utc.isoformat(timespec="seconds") + "Z"


# ---------------------------------------------------------------------------------------------
# Generation

@lru_cache(maxsize=None)
def _garbage_holiday_boost(year: int) -> frozenset[dt.date]:
    """The two days after each collection holiday, when missed pickups pile up."""
    def nth_weekday(month: int, weekday: int, n: int) -> dt.date:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))

    may31 = dt.date(year, 5, 31)
    holidays = [
        dt.date(year, 1, 1),
        may31 - dt.timedelta(days=may31.weekday()),  # Memorial Day
        dt.date(year, 7, 4),
        nth_weekday(9, 0, 1),  # Labor Day
        nth_weekday(11, 3, 4),  # Thanksgiving
        dt.date(year, 12, 25),
    ]
    return frozenset(h + dt.timedelta(days=k) for h in holidays for k in (1, 2))


def _day_rng(seed: int, day: dt.date, purpose: str) -> random.Random:
    return random.Random(f"{seed}:{day.toordinal()}:{purpose}")


@lru_cache(maxsize=4096)
def _day_counts(day: dt.date, seed: int) -> tuple[int, ...]:
    """Requests of each type (in REQUEST_TYPES order) created on `day`."""
    rng = _day_rng(seed, day, "counts")
    month, weekday = day.month - 1, day.weekday()
    storm = day.month in (5, 6, 7, 8) and rng.random() < 0.04
    counts = []
    for request_type in REQUEST_TYPES:
        mean = _BASE_PER_DAY[request_type] * _MONTH_FACTOR[request_type][month]
        if request_type == "MISSED GARBAGE PICKUP":
            mean *= _GARBAGE_WEEKDAY_FACTOR[weekday]
            if day in _garbage_holiday_boost(day.year):
                mean *= 1.8
        else:
            mean *= _WEEKDAY_FACTOR[weekday]
        if storm and request_type in ("TREE DEBRIS", "STREET LIGHT OUT"):
            mean *= 5.0 if request_type == "TREE DEBRIS" else 1.8
        if request_type == "ILLEGAL DUMPING" and day.day <= 3:
            mean *= 1.3  # month-end move-outs
        counts.append(max(0, round(rng.gauss(mean, math.sqrt(mean)))))
    return tuple(counts)


@lru_cache(maxsize=64)
def _year_offsets(year: int, seed: int) -> dict[dt.date, int]:
    """Requests created in `year` before each day: the base of that day's id sequence."""
    offsets, total = {}, 0
    day = dt.date(year, 1, 1)
    while day.year == year:
        offsets[day] = total
        total += sum(_day_counts(day, seed))
        day += dt.timedelta(days=1)
    return offsets


def _district(bands: tuple[tuple[int, int], ...], number: int) -> int:
    for upper, district in bands:
        if number <= upper:
            return district
    return bands[-1][1]


def _day_requests(day: dt.date, seed: int) -> list[tuple]:
    """Everything about the requests created on `day` that does not depend on `now`.

    Tuples (request_id, type, created local, created UTC, reason, closed local, closed UTC,
    address, district), in creation order.
    """
    counts = _day_counts(day, seed)
    rng = _day_rng(seed, day, "requests")
    midnight = dt.datetime.combine(day, dt.time())
    start_dst, _, _, _ = _dst_bounds(day.year)
    arrivals = []
    for request_type, count in zip(REQUEST_TYPES, counts):
        for _ in range(count):
            hour = bisect.bisect_right(_HOUR_CUM, rng.random() * _HOUR_CUM[-1])
            arrivals.append((hour * 3600 + rng.randrange(3600), request_type))
    arrivals.sort()
    sequence = _year_offsets(day.year, seed)[day]
    out = []
    for n, (seconds, request_type) in enumerate(arrivals, start=sequence + 1):
        created = midnight + dt.timedelta(seconds=seconds)
        if start_dst <= created < start_dst + _ONE_HOUR:
            created += _ONE_HOUR  # 02:xx does not exist on the spring-forward night
        created_utc = _local_to_utc(created)
        name, low, high, bands = _STREETS[rng.randrange(len(_STREETS))]
        number = rng.randint(low, high)
        reasons, cum = _REASON_TABLE[request_type]
        reason = reasons[bisect.bisect_right(cum, rng.random() * cum[-1])]
        if rng.random() < _STALLED_SHARE:
            hours = rng.uniform(45 * 24, 400 * 24)
        elif reason == "DUPLICATE":
            hours = rng.uniform(1.0, 24.0)  # merged into the open request quickly
        else:
            median, sigma = _DURATION[request_type]
            hours = rng.lognormvariate(math.log(median), sigma)
            if reason == "NO ISSUE FOUND":
                hours *= 0.6
        # At least an hour, so that closed_at >= created_at holds on local wall time too (the
        # fall-back hour repeats).
        closed_utc = created_utc + dt.timedelta(seconds=max(3600, round(hours * 3600)))
        out.append((
            f"SR-{day.year}-{n:07d}", request_type, created, created_utc, reason,
            _utc_to_local(closed_utc), closed_utc, f"{number} {name}", _district(bands, number),
        ))
    return out


_ONE_HOUR = dt.timedelta(hours=1)


def generate_requests(now: dt.datetime, days: int = 365, seed: int = DEFAULT_SEED) -> Iterator[dict[str, Any]]:
    """Service requests created in the `days` calendar days up to `now` (today partly), oldest first.

    Deterministic in (`now`, `days`, `seed`); a later `now` with the same first day
    (`days` larger by the same number of days) keeps every earlier request and adds newer ones.
    A request is CLOSED once its seeded closing time is at or before `now`.
    """
    now_local = _as_local(now)
    now_utc = _as_utc(now)
    first_day = now_local.date() - dt.timedelta(days=days - 1)
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        for (request_id, request_type, created, created_utc, reason, closed, closed_utc,
             address, district) in _day_requests(day, seed):
            if created_utc > now_utc:
                break
            is_closed = closed_utc <= now_utc
            yield {
                "request_id": request_id,
                "request_type": request_type,
                "status": "CLOSED" if is_closed else "OPEN",
                "created_at": created.isoformat(),
                "closed_at": closed.isoformat() if is_closed else None,
                "closure_reason": reason if is_closed else None,
                "address": address,
                "aldermanic_district": district,
                "updated_at": _utc_text(closed_utc if is_closed else created_utc),
            }


def write_file_export(path: Path, now: dt.datetime, days: int = 365, seed: int = DEFAULT_SEED) -> int:
    """Write the call center's CSV file export (no request id); the number of rows written.

    UTF-8, CRLF line ends, every value quoted; an open request's Closed and Closure Reason are "".
    """
    path = Path(path)
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        for r in generate_requests(now, days, seed):
            writer.writerow((
                r["request_type"], r["created_at"], r["closed_at"] or "", r["status"],
                r["closure_reason"] or "", r["address"], r["aldermanic_district"],
            ))
            rows += 1
    return rows


# ---------------------------------------------------------------------------------------------
# HTTP server

_HTML_PAGE = """<!DOCTYPE html>
<html><head><title>{status} {reason}</title></head>
<body><center><h1>{status} {reason}</h1></center><hr><center>nginx</center>
<p>City of Milwaukee 311 - the service is temporarily unavailable. Please try again later.</p>
</body></html>
"""


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API behind a proxy
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: "_Server"
    error_content_type = "application/json"
    error_message_format = '{"error": "%(code)d %(message)s"}'

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802
        try:
            self._get()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client gave up (e.g. its read timed out)

    def _get(self) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        owner._record(parts.path, query)
        fault = owner._next_fault()
        if fault is not None:
            kind = fault[0]
            if kind == "timeout":
                if owner._stopping.wait(float(fault[1])):
                    self.close_connection = True
                    return
            elif kind == "status":
                self._send(int(fault[1]), {"error": f"injected HTTP {fault[1]}"})
                return
            elif kind == "retry_after":
                self._send(429, {"error": "rate limit exceeded"}, headers={"Retry-After": str(fault[1])})
                return
            elif kind == "html":
                status = int(fault[1])
                page = _HTML_PAGE.format(status=status, reason=self.responses.get(status, ("",))[0])
                self._send_bytes(status, page.encode(), "text/html; charset=utf-8")
                return
            elif kind == "body":
                self._send_bytes(int(fault[1]), str(fault[3]).encode(), str(fault[2]))
                return
            elif kind == "json":
                self._send(int(fault[2]) if len(fault) > 2 else 200, fault[1])
                return
            elif kind == "disconnect":
                self.close_connection = True  # no status line, no headers: the socket just closes
                return
            elif kind == "redirect":
                location = str(fault[2]).replace("{query}", parts.query)
                self._send(int(fault[1]), {"error": "moved"}, headers={"Location": location})
                return
            elif kind == "chunked":
                self._send_chunked(int(fault[1]), str(fault[3]).encode(), str(fault[2]))
                return
            elif kind not in ("truncated", "partial", "trickle", "ok"):
                raise ValueError(f"unknown fault {fault!r}")
        if owner.api_token is not None and self.headers.get("X-App-Token") != owner.api_token:
            self._send(401, {"error": "missing or invalid X-App-Token"})
            return
        if parts.path.rstrip("/") != API_PATH:
            self._send(404, {"error": f"no such endpoint: {parts.path}"})
            return
        try:
            body = owner._page(query)
        except _BadRequest as exc:
            self._send(400, {"error": str(exc)})
            return
        owner._page_built()
        if fault is not None and fault[0] == "truncated":
            self._send_bytes(200, body[: len(body) // 2], "application/json")  # consistent, but cut
        elif fault is not None and fault[0] == "partial":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))  # announces all, sends half
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif fault is not None and fault[0] == "trickle":
            self._trickle(body, float(fault[1]))
        else:
            self._send_bytes(200, body, "application/json")

    def _trickle(self, body: bytes, seconds_per_byte: float) -> None:
        """Headers at once, then the body one byte at a time (until the client hangs up)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        for i in range(len(body)):
            if self.server.owner._stopping.wait(seconds_per_byte):
                break
            self.wfile.write(body[i:i + 1])
            self.wfile.flush()
        self.close_connection = True

    def _send_chunked(self, status: int, body: bytes, content_type: str) -> None:
        """`body` in chunked transfer encoding: no Content-Length announces its size."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 65536):
            chunk = body[start:start + 65536]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "CallCenterServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (e.g. on a body too large or too slow) is not an error here."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


class CallCenterServer:
    """The 311 API on loopback: `GET /api/v1/requests`, with fault injection and live data.

    Query parameters:
    - `updated_from` (ISO 8601; naive is Milwaukee local time): records with updated_at at or
      after it (inclusive, compared at the second: a fraction is dropped);
    - `after` (a request_id, only with `updated_from`, else 400): keyset paging, the records
      whose (updated_at, request_id) comes after (updated_from, after);
    - `limit` (default 100, at most 1000);
    - `page_token` (from a `next` link): the keyset cursor of the page before, with the same
      lower bound; it replaces the other parameters.
    Answer: {"results": [...], "total": N, "next": relative URL | null}, ordered by
    (updated_at, request_id); `total` counts the records from the lower bound on.

    `now`: the fixed time the data is generated for (None: the current time), once, at start().
    `api_token`: when set, requests must carry it in the `X-App-Token` header (401 otherwise).

    Live data, for tests of records changing while a client pages through (thread safe):
    `upsert(record)` adds a record or replaces the one with its request_id; `update(request_id,
    **fields)` changes fields of one, its updated_at set to the current UTC time unless given;
    `on_page`, when set, is called with the number of pages served so far (1 for the first)
    after each page's body is built and before it is sent, so a test can change records
    between two pages. `reset()` clears `on_page` and that count.
    """

    def __init__(
        self,
        now: dt.datetime | None = None,
        *,
        port: int = 0,
        days: int = 365,
        seed: int = DEFAULT_SEED,
        api_token: str | None = None,
        host: str = HOST,
        verbose: bool = False,
    ) -> None:
        self.now = now
        self.port = port
        self.days = days
        self.seed = seed
        self.api_token = api_token
        self.host = host
        self.verbose = verbose
        self.requests_log: list[tuple[str, dict[str, str]]] = []
        self.on_page: Callable[[int], None] | None = None
        self._pages_served = 0
        self._faults: deque[tuple] = deque()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        # Three lists in API order, (updated_at, request_id), kept in step; and where each id is.
        self._records: list[dict[str, Any]] = []
        self._keys: list[tuple[str, str]] = []
        self._encoded: list[bytes] = []
        self._updated_at: dict[str, str] = {}

    # -- data ----------------------------------------------------------------------------------
    @property
    def records(self) -> list[dict[str, Any]]:
        """The records served, in API order (updated_at, request_id): a snapshot (a new list).

        Change them with `update` or `upsert`, not in place (what is served is encoded apart).
        """
        with self._lock:
            return list(self._records)

    def _load(self) -> None:
        now = self.now if self.now is not None else dt.datetime.now(dt.timezone.utc)
        records = sorted(generate_requests(now, self.days, self.seed), key=lambda r: (r["updated_at"], r["request_id"]))
        with self._lock:
            self._records = records
            self._keys = [(r["updated_at"], r["request_id"]) for r in records]
            self._encoded = [json.dumps(r, separators=(",", ":")).encode() for r in records]
            self._updated_at = {r["request_id"]: r["updated_at"] for r in records}

    def upsert(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add `record`, or replace the one with its request_id; the record as now served.

        Its updated_at is taken from the record, or is the current UTC time when it has none.
        """
        if not record.get("request_id"):
            raise ValueError("a record needs a request_id")
        record = dict(record)
        if not record.get("updated_at"):
            record["updated_at"] = _utc_text(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0))
        key = (str(record["updated_at"]), str(record["request_id"]))
        with self._lock:
            old = self._updated_at.get(key[1])
            if old is not None:
                at = bisect.bisect_left(self._keys, (old, key[1]))
                del self._records[at], self._keys[at], self._encoded[at]
            at = bisect.bisect_left(self._keys, key)
            self._records.insert(at, record)
            self._keys.insert(at, key)
            self._encoded.insert(at, json.dumps(record, separators=(",", ":")).encode())
            self._updated_at[key[1]] = key[0]
        return dict(record)

    def update(self, request_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of the record `request_id` (KeyError if there is none); the record as now
        served. Its updated_at becomes the current UTC time unless `fields` gives one."""
        if "request_id" in fields:
            raise ValueError("update() does not change a request_id; upsert() the new record instead")
        with self._lock:
            updated_at = self._updated_at.get(request_id)
            if updated_at is None:
                raise KeyError(request_id)
            current = self._records[bisect.bisect_left(self._keys, (updated_at, request_id))]
            return self.upsert({**current, "updated_at": None, **fields})

    def _page_built(self) -> None:
        """Count a page served and call `on_page` with the count (outside the lock)."""
        with self._lock:
            self._pages_served += 1
            served, hook = self._pages_served, self.on_page
        if hook is not None:
            hook(served)

    def _page(self, query: dict[str, str]) -> bytes:
        """The JSON body answering `query` (raises _BadRequest)."""
        token = query.get("page_token")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
                since, after, limit = state["s"], tuple(state["a"]), int(state["l"])
            except (ValueError, KeyError, TypeError):
                raise _BadRequest("invalid page_token") from None
        else:
            since = self._parse_from(query.get("updated_from"))
            limit = self._int(query, "limit", DEFAULT_LIMIT)
            after = None
            if "after" in query:
                if since is None:
                    raise _BadRequest("after needs updated_from (the updated_at of the record it names)")
                after = (since, query["after"])
        limit = max(1, min(limit, MAX_LIMIT))
        with self._lock:
            first = bisect.bisect_left(self._keys, (since, "")) if since else 0
            begin = max(first, bisect.bisect_right(self._keys, after)) if after else first
            end = min(begin + limit, len(self._keys))
            next_link = None
            if end < len(self._keys):
                state = {"s": since, "a": list(self._keys[end - 1]), "l": limit}
                raw = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode())
                next_link = f"{API_PATH}?{urlencode({'page_token': raw.rstrip(b'=').decode()})}"
            return b"".join((
                b'{"results":[', b",".join(self._encoded[begin:end]), b'],"total":',
                str(len(self._keys) - first).encode(), b',"next":', json.dumps(next_link).encode(), b"}",
            ))

    @staticmethod
    def _int(query: dict[str, str], name: str, default: int) -> int:
        try:
            value = int(query.get(name, default))
        except ValueError:
            raise _BadRequest(f"{name} must be an integer") from None
        if value < 0:
            raise _BadRequest(f"{name} must not be negative")
        return value

    @staticmethod
    def _parse_from(value: str | None) -> str | None:
        """`updated_from` as UTC text to compare with updated_at, floored to the second.

        Floored, so still inclusive: a record in the same second as a bound with a fraction is
        at or after it.
        """
        if not value:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _BadRequest(f"updated_from is not an ISO 8601 date-time: {value[:40]!r}") from None
        return _utc_text(_as_utc(parsed).replace(microsecond=0))

    # -- faults and log ------------------------------------------------------------------------
    def inject(self, *faults: tuple) -> None:
        """Queue faults, consumed one per request in order.

        ("status", code), ("timeout", seconds), ("retry_after", seconds or HTTP date),
        ("html", status), ("truncated",) (consistent headers, body cut in half),
        ("partial",) (Content-Length of the whole body, half sent, connection closed),
        ("disconnect",) (no response at all), ("json", payload[, status]),
        ("body", status, content_type, text), ("chunked", status, content_type, text) (the same
        in chunked transfer encoding: no Content-Length), ("trickle", seconds_per_byte) (the
        answer's headers at once, then its body one byte at a time), ("redirect", status,
        location) ("{query}" in location becomes the request's query string), ("ok",) (no
        fault: answer normally).
        """
        known = {"status", "timeout", "retry_after", "html", "truncated", "partial", "disconnect", "json", "body",
                 "chunked", "trickle", "redirect", "ok"}
        for fault in faults:
            if not fault or fault[0] not in known:
                raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(known)}")
        with self._lock:
            self._faults.extend(faults)

    def pending_faults(self) -> int:
        """Faults queued and not yet consumed."""
        with self._lock:
            return len(self._faults)

    def reset(self) -> None:
        """Forget queued faults, the request log, the pages served count and `on_page` (not the data)."""
        with self._lock:
            self._faults.clear()
            self.requests_log.clear()
            self._pages_served = 0
            self.on_page = None

    def _next_fault(self) -> tuple | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _record(self, path: str, query: dict[str, str]) -> None:
        with self._lock:
            self.requests_log.append((path, query))

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT of the running server."""
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> "CallCenterServer":
        """Generate the data (first start only) and serve it from a background thread."""
        if self._httpd is not None:
            return self
        if not self._records:
            self._load()
        self._stopping.clear()
        httpd = _Server((self.host, self.port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                         name="call-center", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (handlers still sleeping on a fault wake up)."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> "CallCenterServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m aim_demo.call_center`: serve the API until Ctrl-C, or write the file export."""
    parser = argparse.ArgumentParser(prog="python -m aim_demo.call_center", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8311, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--days", type=int, default=365, help="days of history (default 365)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--now", type=dt.datetime.fromisoformat, default=None,
                        help="generate as of this time (ISO 8601; default: now)")
    parser.add_argument("--export", type=Path, metavar="CSV", help="write the CSV file export here and exit")
    args = parser.parse_args(argv)
    if args.export:
        now = args.now or dt.datetime.now(dt.timezone.utc)
        rows = write_file_export(args.export, now, args.days, args.seed)
        print(f"wrote {rows} rows to {args.export}")
        return 0
    server = CallCenterServer(args.now, port=args.port, days=args.days, seed=args.seed, verbose=True)
    server.start()
    print(f"311 call center: {len(server.records)} requests at {server.base_url}{API_PATH} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
