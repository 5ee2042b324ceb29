"""Department of Neighborhood Services (DNS): code enforcement orders, one Excel workbook per week.

`dns_orders_YYYY-Www.xlsx` (ISO week) lists the orders ISSUED in that week (Monday-Sunday), each
with its status as of the export. The current week's workbook grows as orders are issued. The
department re-sends the workbooks of the last 8 weeks (the current week and the 7 before it)
with their statuses brought up to date, keeping the file name; a week's workbook is frozen as
of 8 weeks after the week began, so older files never change.

Layout, as the hand-edited export looks: sheet "Orders"; row 1 a title merged across all columns
("Department of Neighborhood Services - Orders Issued, Week of YYYY-MM-DD"), row 2 blank, row 3
the header, data from row 4 with an occasional blank row in it. Dates are Excel date cells,
Aldermanic District a number cell; ~2% of the text values carry a stray leading/trailing space.

Each order's whole life (compliance, referral, closure) is drawn once from a Random seeded with
its week; the export then shows what had happened by the as-of date. About 120-180 orders a week;
in the frozen workbooks ~60% of orders show complied (~70% of those by the due date), ~6%
referred to the City Attorney, ~8% closed for lack of access, the rest still open.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from aim_demo.drops import address, district_for, seeded, write_if_changed, xlsx_bytes

HEADER = (
    "Order Number", "Violation Type", "Issued", "Compliance Due", "Complied Date", "Status",
    "Address", "Aldermanic District",
)
SHEET = "Orders"
FILE_PATTERN = "dns_orders_{year:04d}-W{week:02d}.xlsx"
RESEND_WEEKS = 8  # the current week and the 7 before it are re-sent with updated statuses

OPEN, COMPLIED, REFERRED, NO_ACCESS = "OPEN", "COMPLIED", "REFERRED TO CITY ATTORNEY", "CLOSED - NO ACCESS"

# violation type -> (relative frequency, days allowed to comply)
VIOLATIONS = {
    "EXTERIOR PAINT": (14, 60),
    "GUTTERS AND DOWNSPOUTS": (11, 60),
    "ACCUMULATION OF DEBRIS": (20, 14),
    "BROKEN WINDOW": (12, 30),
    "PORCH OR STEPS": (10, 30),
    "ROOF REPAIR": (8, 60),
    "GRAFFITI": (9, 14),
    "VACANT BUILDING REGISTRATION": (6, 30),
    "SMOKE DETECTOR": (6, 14),
    "ELECTRICAL HAZARD": (4, 14),
}
_VIOLATION_NAMES = tuple(VIOLATIONS)
# Underlying odds of an order's life. An export shows the state at most 8 weeks after issue,
# when some stragglers (all late 60-day orders) have not complied yet: as exported, ~60% of
# orders show complied, ~70% of those by the due date.
COMPLY_SHARE = 0.72
ON_TIME_SHARE = 0.60
_VIOLATION_WEIGHTS = tuple(w for w, _ in VIOLATIONS.values())


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def file_name(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return FILE_PATTERN.format(year=year, week=week)


def as_of(monday: date, now: datetime) -> date:
    """The date whose state the week's workbook shows at `now` (frozen 8 weeks after the week began)."""
    return min(now.date(), monday + timedelta(weeks=RESEND_WEEKS))


@lru_cache(maxsize=512)
def _issue_times(monday: date) -> tuple[datetime, ...]:
    """When the week's orders were issued (inspectors key orders in on weekdays, a few on Saturday)."""
    rng = seeded("dns-schedule", monday.isoformat())
    rand = rng.random
    count = 120 + int(rand() * 61)
    times = []
    for _ in range(count):
        day = min(int(rand() * 5.15), 5)  # Monday-Friday, ~3% on Saturday
        if day < 5:
            minute = 7 * 60 + 30 + int(rand() * 9.5 * 60)  # 07:30-17:00
        else:
            minute = 9 * 60 + int(rand() * 3 * 60)  # 09:00-12:00
        times.append(datetime.combine(monday + timedelta(days=day), time()) + timedelta(minutes=minute, seconds=int(rand() * 60)))
    return tuple(sorted(times))


@lru_cache(maxsize=64)
def _year_offsets(year: int) -> dict[date, int]:
    """Monday -> how many orders of calendar year `year` were issued in earlier weeks of that year."""
    offsets: dict[date, int] = {}
    total = 0
    monday = week_monday(date(year, 1, 1))
    while monday <= date(year, 12, 31):
        offsets[monday] = total
        total += sum(1 for t in _issue_times(monday) if t.year == year)
        monday += timedelta(weeks=1)
    return offsets


@lru_cache(maxsize=512)
def week_orders(monday: date) -> tuple[dict, ...]:
    """Every order issued in the week starting `monday`, with its whole life (independent of `now`)."""
    rng = seeded("dns-orders", monday.isoformat())
    rand = rng.random
    seen: dict[int, int] = {}
    orders = []
    for issued in _issue_times(monday):
        year = issued.year
        seen[year] = seen.get(year, 0) + 1
        number = f"ORD-{year % 100:02d}{_year_offsets(year)[monday] + seen[year]:06d}"
        violation = rng.choices(_VIOLATION_NAMES, _VIOLATION_WEIGHTS)[0]
        due = issued.date() + timedelta(days=VIOLATIONS[violation][1])
        addr = address(rng)
        complied = closed = referred = None
        u = rand()
        if u < COMPLY_SHARE:  # complied; most on or before the due date, stragglers soon after
            if rand() < ON_TIME_SHARE:
                complied = issued.date() + timedelta(days=2 + int(rand() * (due - issued.date()).days - 1))
            else:
                complied = due + timedelta(days=1 + min(90, int(rng.expovariate(1 / 12))))
                if complied > due + timedelta(days=30):  # referred first, complied afterwards
                    referred = due + timedelta(days=21 + int(rand() * 9))
        elif u < COMPLY_SHARE + 0.08:  # inspector could never get in
            closed = issued.date() + timedelta(days=15 + int(rand() * 31))
        elif rand() < 0.55:  # still not complied: sent on to the City Attorney
            referred = due + timedelta(days=10 + int(rand() * 31))
        spaces = [rand() < 0.02 for _ in range(3)]  # stray spaces in Violation Type, Status, Address
        pad = rand() < 0.5
        orders.append({
            "number": number, "violation": violation, "issued": issued, "due": due, "address": addr,
            "district": district_for(addr), "complied": complied, "closed": closed, "referred": referred,
            "spaces": spaces, "pad_left": pad,
        })
    return tuple(orders)


@lru_cache(maxsize=512)
def _blank_rows_before(monday: date) -> frozenset[int]:
    """Indexes of the orders that a stray blank row precedes in this week's export (hand edits)."""
    rng = seeded("dns-blank-rows", monday.isoformat())
    u = rng.random()
    blanks = 0 if u < 0.45 else 1 if u < 0.85 else 2
    return frozenset(rng.randrange(3, 120) for _ in range(blanks))


def status(order: dict, on: date) -> tuple[str, date | None]:
    """(Status, Complied Date) of an order as of the date `on`."""
    if order["complied"] is not None and order["complied"] <= on:
        return COMPLIED, order["complied"]
    if order["closed"] is not None and order["closed"] <= on:
        return NO_ACCESS, None
    if order["referred"] is not None and order["referred"] <= on:
        return REFERRED, None
    return OPEN, None


def _stray(value: str, flag: bool, left: bool) -> str:
    if not flag:
        return value
    return f" {value}" if left else f"{value} "


def week_rows(monday: date, now: datetime) -> list[tuple | None]:
    """The data rows of the week's workbook at `now` (None for a stray blank row)."""
    on = as_of(monday, now)
    blanks = _blank_rows_before(monday)
    rows: list[tuple | None] = []
    for index, order in enumerate(week_orders(monday)):
        if order["issued"] > now:
            break
        if index in blanks:
            rows.append(None)
        state, complied = status(order, on)
        s_violation, s_status, s_address = order["spaces"]
        left = order["pad_left"]
        rows.append((
            order["number"], _stray(order["violation"], s_violation, left), order["issued"].date(),
            order["due"], complied, _stray(state, s_status, left), _stray(order["address"], s_address, left),
            order["district"],
        ))
    return rows


def week_workbook(monday: date, now: datetime) -> bytes:
    """The week's workbook as exported at `now`."""
    rows = week_rows(monday, now)
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    ws.cell(row=1, column=1, value=f"Department of Neighborhood Services - Orders Issued, Week of {monday:%Y-%m-%d}")
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
    for col, name in enumerate(HEADER, start=1):
        cell = ws.cell(row=3, column=col, value=name)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
    for offset, row in enumerate(rows):
        if row is None:
            continue
        for col, value in enumerate(row, start=1):
            cell = ws.cell(row=4 + offset, column=col, value=value)
            if col in (3, 4, 5) and value is not None:
                cell.number_format = "mm/dd/yyyy"
    for letter, width in zip("ABCDEFGH", (14, 30, 12, 15, 14, 28, 30, 11)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A4"

    # Document times follow the content, so an unchanged week gives byte-identical files.
    on = as_of(monday, now)
    events = [datetime.combine(monday, time(7))]
    for order in week_orders(monday)[: sum(r is not None for r in rows)]:
        events.append(order["issued"])
        events.extend(datetime.combine(d, time()) for d in (order["complied"], order["closed"], order["referred"])
                      if d is not None and d <= on)
    return xlsx_bytes(wb, modified=max(events), created=datetime.combine(monday, time(6)))


def write_drops(folder: Path, now: datetime, days: int = 365) -> list[Path]:
    """Write (or rewrite when changed) every weekly workbook up to `now`; return the files (oldest first)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    monday = week_monday((now - timedelta(days=days)).date())
    last = week_monday(now.date())
    paths = []
    while monday <= last:
        path = folder / file_name(monday)
        write_if_changed(path, week_workbook(monday, now))
        paths.append(path)
        monday += timedelta(weeks=1)
    return paths
