"""Fire and EMS computer-aided dispatch (CAD): one CSV of incidents per day.

`cad_incidents_YYYY-MM-DD.csv` lists the incidents whose call was received that day (America/
Chicago local time, naive). Today's file holds the calls received up to `now` and grows during
the day. Every day's incidents are generated in full from a Random seeded with the date, then
cut at `now`: times after `now` are left empty (units still on the way / still on scene), so a
later `now` only adds rows and fills in times. A day's file stops changing once its last call
has cleared (at most ~3 hours after midnight).

Times are naive America/Chicago wall-clock times (none in the hour skipped when daylight saving
time begins). Format, as the CAD export writes it: UTF-8, CRLF line endings, every value quoted, "" for a
missing value. About 250 incidents a day (more in summer and in the evening), ~78% EMS.

Realistic flaws: ~3% cancelled en route (On Scene and Cleared empty), ~2% without an En Route
time, a few with On Scene empty but Cleared present, and the calls still active at `now`.
"""
from __future__ import annotations

import math
from functools import lru_cache
from datetime import date, datetime, time, timedelta
from pathlib import Path

from aim_demo.drops import address, district_for, seeded, write_if_changed

HEADER = (
    "Incident Number", "Incident Type", "Priority", "Address", "Aldermanic District",
    "Call Received", "Dispatched", "En Route", "On Scene", "Cleared",
)
FILE_PATTERN = "cad_incidents_{:%Y-%m-%d}.csv"

# Relative call volume by hour of day (quiet before dawn, busiest late afternoon/evening).
_HOUR_WEIGHTS = (
    3.0, 2.6, 2.3, 2.0, 1.8, 1.9, 2.4, 3.2, 3.9, 4.3, 4.6, 4.8,
    4.9, 5.0, 5.1, 5.3, 5.6, 5.8, 5.9, 5.7, 5.3, 4.8, 4.2, 3.5,
)
_HOUR_CUM = [sum(_HOUR_WEIGHTS[: i + 1]) for i in range(24)]


def _daily_volume(rng, day: date) -> int:
    """~250 a day: +/-12% with the season (peak late July), busier Friday/Saturday, some noise."""
    season = 1.0 + 0.12 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 205) / 365.25)
    weekday = (1.0, 0.97, 0.97, 0.98, 1.04, 1.07, 1.0)[day.weekday()]
    return max(150, round(rng.gauss(250 * season * weekday, 12)))


_HMS = tuple(f"{h:02d}:{m:02d}:{x:02d}" for h in range(24) for m in range(60) for x in range(60))


def _line(values) -> str:
    """One CSV record the way the CAD export writes it: every value quoted, CRLF (no value holds a quote)."""
    return '"' + '","'.join(map(str, values)) + '"\r\n'


def _clocks(day: date, times) -> list[str]:
    """'YYYY-MM-DD HH:MM:SS' for each time in seconds after the day's midnight ("" for None)."""
    today, tomorrow = f"{day} ", f"{day + timedelta(days=1)} "
    return ["" if t is None else today + _HMS[t] if t < 86400 else tomorrow + _HMS[t - 86400] for t in times]


@lru_cache(maxsize=1024)
def day_incidents(day: date) -> tuple[tuple, ...]:
    """Every incident of `day` as the CAD knows it once the day is over (independent of `now`).

    One tuple per incident, in the order the calls were received: ((number, type, priority,
    address, district), (received, dispatched, en_route, on_scene, cleared), full CSV line), the
    five times in seconds after the day's midnight (None when never recorded).
    """
    rng = seeded("cad", day.isoformat())
    rand = rng.random
    count = _daily_volume(rng, day)
    received = sorted(_pick_hour(rand) * 3600 + int(rand() * 3600) for _ in range(count))
    gap = _spring_forward(day)
    if gap:  # a 23-hour day: the clock skips 02:00-02:59 (times below are elapsed seconds until the end)
        received = [t for t in received if t + 3600 < 86400]
    prefix = f"F{day:%y%m%d}"

    incidents = []
    for seq, call in enumerate(received, start=1):
        kind = "EMS" if rand() < 0.78 else "FIRE"
        u = rand()
        priority = 1 if u < 0.30 else 2 if u < 0.80 else 3
        addr = address(rng)
        dispatched = call + 30 + int(rand() * 91)        # 30-120 s after the call
        en_route = dispatched + 30 + int(rand() * 121)   # 30-150 s after dispatch
        if kind == "FIRE":
            if priority == 1:  # most first-due engines arrive within 5 min 20 s of dispatch
                travel = min(540.0, 180 + rng.expovariate(1 / 70))
            else:
                travel = rng.triangular(180, 540, 300)
            busy = rng.triangular(15, 75, 25)
        else:
            travel = rng.triangular(240, 600, 330) if priority == 1 else rng.triangular(240, 720, 430)
            busy = rng.triangular(25, 90, 50)
        on_scene = dispatched + round(travel)
        cleared = on_scene + round(busy * 60)
        flaw = rand()
        if flaw < 0.03:  # cancelled en route
            on_scene = cleared = None
        elif flaw < 0.05:  # en route never keyed in
            en_route = None
        elif flaw < 0.056:  # arrival never keyed in, cleared later
            on_scene = None
        times = (call, dispatched, en_route, on_scene, cleared)
        if gap:  # elapsed seconds -> wall clock
            times = tuple(t if t is None or t < 7200 else t + 3600 for t in times)
        row = (f"{prefix}{seq:04d}", kind, priority, addr, district_for(addr))
        incidents.append((row, times, _line((*row, *_clocks(day, times)))))
    return tuple(incidents)


def _spring_forward(day: date) -> bool:
    """True on the day US daylight saving time begins (second Sunday of March, 02:00 -> 03:00).

    No time in the file falls in the skipped hour, and spans across it are an hour shorter than
    the naive difference. (When DST ends the file's naive times simply run on, in order: spans
    across the repeated 01:00-01:59 hour equal the naive difference, as on any other day.)
    """
    return day.month == 3 and day.weekday() == 6 and 8 <= day.day <= 14


def _pick_hour(rand) -> int:
    x = rand() * _HOUR_CUM[-1]
    for hour, cum in enumerate(_HOUR_CUM):
        if x < cum:
            return hour
    return 23


def day_csv(day: date, now: datetime) -> bytes:
    """The day's file as exported at `now`: calls received by `now`, times after `now` empty."""
    cutoff = (now - datetime.combine(day, time())) // timedelta(seconds=1)  # `now` in the day's seconds
    parts = [_line(HEADER)]
    for row, times, line in day_incidents(day):
        if times[0] > cutoff:
            break
        if all(t is None or t <= cutoff for t in times):
            parts.append(line)
        else:  # still active at `now`: what has not happened yet is empty
            parts.append(_line((*row, *_clocks(day, [t if t is not None and t <= cutoff else None for t in times]))))
    return "".join(parts).encode("utf-8")


def write_drops(folder: Path, now: datetime, days: int = 365) -> list[Path]:
    """Write (or rewrite when changed) every daily CAD file up to `now`; return the files (oldest first)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    today = now.date()
    paths = []
    for offset in range(days, -1, -1):
        day = today - timedelta(days=offset)
        path = folder / FILE_PATTERN.format(day)
        write_if_changed(path, day_csv(day, now))
        paths.append(path)
    return paths
