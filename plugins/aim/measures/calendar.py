"""The reporting calendar: months, fiscal quarters and fiscal years, and `core.aim_period`.

The fiscal year starts in the month AIM_FISCAL_YEAR_START_MONTH (default 1) and is named by the
calendar year it ends in.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

from psycopg2.extras import execute_values

from aim import clock, settings

PERIOD_TYPES = ("month", "quarter", "fiscal_year")


def month_start(day: dt.date) -> dt.date:
    """The first day of the month of `day`."""
    return dt.date(day.year, day.month, 1)


def current_month() -> dt.date:
    """The first day of the current month in Milwaukee (the platform's clock)."""
    return month_start(clock.local_today())


def add_months(month: dt.date, count: int) -> dt.date:
    """The first day of the month `count` months after the month of `month`."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_month(text: str) -> dt.date:
    """'YYYY-MM' as the first day of that month; ValueError otherwise."""
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text or ""):
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}")
    return dt.date(int(text[:4]), int(text[5:]), 1)


def months_in(start: dt.date, end: dt.date) -> list[dt.date]:
    """First days of the months from `start` through `end`, inclusive."""
    months, month = [], month_start(start)
    while month <= end:
        months.append(month)
        month = add_months(month, 1)
    return months


def month_ranges(months: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Runs of consecutive months as (first, last) pairs: [Jan, Feb, May] -> [(Jan, Feb), (May, May)]."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for month in sorted(set(months)):
        if ranges and add_months(ranges[-1][1], 1) == month:
            ranges[-1] = (ranges[-1][0], month)
        else:
            ranges.append((month, month))
    return ranges


def fiscal_year_of(month: dt.date, fiscal_start_month: int) -> tuple[int, int]:
    """(fiscal year, fiscal quarter) of a month; the fiscal year is named by the calendar year it ends in."""
    year = month.year + (1 if fiscal_start_month > 1 and month.month >= fiscal_start_month else 0)
    return year, (month.month - fiscal_start_month) % 12 // 3 + 1


def _fiscal_year_start(fiscal_year: int, fiscal_start_month: int) -> dt.date:
    return dt.date(fiscal_year - (1 if fiscal_start_month > 1 else 0), fiscal_start_month, 1)


def periods_for(start: dt.date, end: dt.date, fiscal_start_month: int) -> list[tuple]:
    """The month, fiscal quarter and fiscal year periods covering `start`..`end`, as
    (period_type, period_start, period_end, fiscal_year, fiscal_quarter, label) tuples."""
    periods: dict[tuple[str, dt.date], tuple] = {}
    for month in months_in(start, end):
        year, quarter = fiscal_year_of(month, fiscal_start_month)
        last_day = add_months(month, 1) - dt.timedelta(days=1)
        periods[("month", month)] = ("month", month, last_day, year, quarter, f"{month:%Y-%m}")
        year_start = _fiscal_year_start(year, fiscal_start_month)
        quarter_start = add_months(year_start, 3 * (quarter - 1))
        periods[("quarter", quarter_start)] = (
            "quarter", quarter_start, add_months(quarter_start, 3) - dt.timedelta(days=1), year, quarter,
            f"FY{year} Q{quarter}",
        )
        periods[("fiscal_year", year_start)] = (
            "fiscal_year", year_start, add_months(year_start, 12) - dt.timedelta(days=1), year, None, f"FY{year}",
        )
    return sorted(periods.values(), key=lambda p: (p[1], p[0]))


def ensure_periods(cur, start: dt.date, end: dt.date, fiscal_start_month: int | None = None) -> int:
    """Make sure `core.aim_period` has the months from `start` through `end`, and the fiscal quarters
    and fiscal years they fall in; returns the number of period rows written (0 when all existed).

    `fiscal_start_month` defaults to settings.fiscal_year_start_month(). An existing month whose
    fiscal year or quarter no longer matches it is corrected; quarters and years of another
    fiscal calendar are left as they are (changing the fiscal calendar is a migration).
    """
    fiscal_start_month = fiscal_start_month or settings.fiscal_year_start_month()
    rows = periods_for(month_start(start), month_start(end), fiscal_start_month)
    if not rows:
        return 0
    written = execute_values(
        cur,
        """
        INSERT INTO core.aim_period (period_type, period_start, period_end, fiscal_year, fiscal_quarter, label)
        VALUES %s
        ON CONFLICT (period_type, period_start) DO UPDATE
           SET period_end = EXCLUDED.period_end, fiscal_year = EXCLUDED.fiscal_year,
               fiscal_quarter = EXCLUDED.fiscal_quarter, label = EXCLUDED.label
         WHERE (core.aim_period.period_end, core.aim_period.fiscal_year, core.aim_period.fiscal_quarter,
                core.aim_period.label)
               IS DISTINCT FROM (EXCLUDED.period_end, EXCLUDED.fiscal_year, EXCLUDED.fiscal_quarter, EXCLUDED.label)
        RETURNING 1
        """,
        rows,
        fetch=True,
    )
    return len(written)



def periods_containing(months: Iterable[dt.date], fiscal_start_month: int | None = None) -> dict[str, list[tuple[dt.date, dt.date]]]:
    """Per period type ('month', 'quarter', 'fiscal_year'), the (first day, last day) of every period
    that contains one of `months`, in order: the months themselves, their fiscal quarters and years."""
    fiscal_start_month = fiscal_start_month or settings.fiscal_year_start_month()
    found: dict[str, set[tuple[dt.date, dt.date]]] = {kind: set() for kind in PERIOD_TYPES}
    for month in {month_start(m) for m in months}:
        for kind, start, end, *_ in periods_for(month, month, fiscal_start_month):
            found[kind].add((start, end))
    return {kind: sorted(found[kind]) for kind in PERIOD_TYPES}
