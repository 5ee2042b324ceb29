"""Budget and Management: the AIM (Accountability in Management) measure registry workbook.

One workbook, `aim_registry.xlsx`, kept by hand by the budget office: one row per measure per
fiscal year (the current fiscal year and the previous one; fiscal year = calendar year) with that
year's target. It is rewritten only when its content changes, i.e. when a new fiscal year begins
(the new year's target rows appear, the oldest year's rows go, and the target that was still
pending is filled in).

Layout, as a hand-made sheet looks: sheet "Registry"; row 1 a title merged across all columns,
row 2 blank, rows 3-4 a two-row header (row 3 "Priority" ... "Frequency" each merged down over row
4, and "Target" merged over the last two columns; row 4 "Fiscal Year" and "Value" under it),
data from row 5, a blank row between priority groups, and stray spaces in a few cells.
Target Fiscal Year and Target Value are number cells; the Value is empty while a target is not
set (one measure for the current fiscal year).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from aim_demo.drops import write_if_changed, xlsx_bytes

FILE_NAME = "aim_registry.xlsx"
SHEET = "Registry"
TITLE = "City of Milwaukee - Accountability in Management (AIM) Measure Registry"
HEADER = ("Priority", "Department", "Activity", "Measure Code", "Measure Name", "Definition", "Unit",
          "Direction", "Frequency", "Target")
SUB_HEADER = ("Fiscal Year", "Value")
# Flattened column names of the data rows (what a loader maps the two-row header to).
COLUMNS = HEADER[:-1] + ("Target Fiscal Year", "Target Value")

SAFETY = "Safety and security for all neighborhoods and residents"
ECONOMY = "Economic opportunity and family-supporting employment"
CHILDREN = "Children's health and a path to success"
ASSETS = "Environmental and physical assets"
PRIORITIES = (SAFETY, ECONOMY, CHILDREN, ASSETS)
DEPARTMENTS = ("Police", "Fire", "Public Works", "Neighborhood Services", "Health", "Budget and Management")
HIGHER, LOWER = "Higher is better", "Lower is better"

# code: (priority, department, activity, name, definition, unit, direction,
#        target in FY2025, change of the target per fiscal year)
MEASURES: dict[str, tuple] = {
    "SAF-01": (SAFETY, "Police", "Patrol and investigations", "Reported Part 1 crime incidents",
               "Number of Part 1 crime incidents (homicide, sexual assault, robbery, aggravated assault, "
               "burglary, theft, motor vehicle theft, arson) reported to the Police Department in the month.",
               "count", LOWER, 2300, -50),
    "SAF-02": (SAFETY, "Police", "Patrol and investigations", "Violent crime incidents per 1,000 residents",
               "Reported homicides, sexual assaults, robberies and aggravated assaults in the month per "
               "1,000 city residents.", "rate", LOWER, 1.1, -0.05),
    "SAF-03": (SAFETY, "Fire", "Fire suppression", "Fire calls with on-scene within 5 min 20 s of dispatch",
               "Percentage of priority 1 fire incidents where the first unit arrived on scene within "
               "5 minutes 20 seconds of dispatch.", "percent", HIGHER, 85, 1),
    "SAF-04": (SAFETY, "Fire", "Emergency medical services", "Median EMS response time",
               "Median minutes from dispatch to the first unit on scene for EMS incidents in the month.",
               "minutes", LOWER, 7.5, -0.25),
    "ECO-01": (ECONOMY, "Neighborhood Services", "Code enforcement", "Code enforcement orders complied by due date",
               "Percentage of code enforcement orders due in the month that were complied with on or "
               "before the compliance due date.", "percent", HIGHER, 45, 2.5),
    "ECO-02": (ECONOMY, "Neighborhood Services", "Code enforcement", "Median days from order to compliance",
               "Median number of days between the issue of an order and its compliance, for orders "
               "complied with in the month.", "days", LOWER, 24, -1),
    "CHI-01": (CHILDREN, "Health", "Lead poisoning prevention", "Children tested for lead",
               "Number of children under 6 years old who received a blood lead test in the month.",
               "count", HIGHER, 2600, 100),
    "CHI-02": (CHILDREN, "Health", "Lead poisoning prevention",
               "Share of tested children with elevated blood lead level",
               "Percentage of children tested in the month whose blood lead level was 3.5 ug/dL or higher.",
               "percent", LOWER, 6.5, -0.5),
    "PHY-01": (ASSETS, "Public Works", "Street maintenance", "Pothole requests closed within 3 days",
               "Percentage of pothole service requests closed in the month within 3 days of being received.",
               "percent", HIGHER, 75, 2.5),
    "PHY-02": (ASSETS, "Public Works", "Street maintenance", "Median days to close a 311 request",
               "Median number of days from receipt to closure of the 311 service requests closed in the month.",
               "days", LOWER, 6, -0.5),
    "PHY-03": (ASSETS, "Public Works", "Sanitation", "Missed garbage pickups per 1,000 households",
               "Reported missed garbage collections in the month per 1,000 households served by city collection.",
               "rate", LOWER, 2.0, -0.1),
    "PHY-04": (ASSETS, "Public Works", "Lighting", "Street light outages repaired within 5 days",
               "Percentage of street light outages reported in the month that were repaired within 5 days.",
               "percent", HIGHER, 80, 2),
}
BASE_YEAR = 2025
PENDING_TARGET = "PHY-03"  # its current fiscal year's target is not set yet (empty Value)

# Hand-edit leftovers: (measure code, column name) -> the cell as typed.
_STRAY = {
    ("SAF-02", "Department"): " Police ",
    ("SAF-04", "Direction"): "Lower is better ",
    ("ECO-02", "Activity"): "Code enforcement ",
    ("CHI-01", "Unit"): " count",
    ("PHY-02", "Frequency"): "Monthly ",
}


def target(code: str, year: int) -> float | int:
    """The target of measure `code` for fiscal year `year`."""
    *_, base, step = MEASURES[code]
    value = round(base + step * (year - BASE_YEAR), 2)
    return int(value) if float(value).is_integer() else value


def registry_rows(now: datetime) -> list[tuple | None]:
    """The data rows for the fiscal years in force at `now` (None for the blank rows between priorities)."""
    current = now.year
    rows: list[tuple | None] = []
    for priority in PRIORITIES:
        if rows:
            rows.append(None)
        for code, (prio, dept, activity, name, definition, unit, direction, *_) in MEASURES.items():
            if prio != priority:
                continue
            for year in (current - 1, current):
                value = None if (code == PENDING_TARGET and year == current) else target(code, year)
                cells = dict(zip(COLUMNS, (prio, dept, activity, code, name, definition, unit, direction,
                                           "Monthly", year, value)))
                for column in COLUMNS:
                    if (code, column) in _STRAY:
                        cells[column] = _STRAY[(code, column)]
                rows.append(tuple(cells[c] for c in COLUMNS))
    return rows


def registry_workbook(now: datetime) -> bytes:
    """The registry workbook as it stands at `now`."""
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    last_col = len(COLUMNS)
    ws.cell(row=1, column=1, value=TITLE).font = Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last_col)

    bold, center = Font(bold=True), Alignment(horizontal="center", vertical="center", wrap_text=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for col, name in enumerate(HEADER, start=1):
        cell = ws.cell(row=3, column=col, value=name)
        cell.font, cell.alignment, cell.fill = bold, center, fill
    for col, name in enumerate(SUB_HEADER, start=last_col - 1):
        cell = ws.cell(row=4, column=col, value=name)
        cell.font, cell.alignment, cell.fill = bold, center, fill
    for col in range(1, last_col - 1):  # single headers span both header rows
        ws.merge_cells(start_row=3, start_column=col, end_row=4, end_column=col)
    ws.merge_cells(start_row=3, start_column=last_col - 1, end_row=3, end_column=last_col)

    for offset, row in enumerate(registry_rows(now)):
        if row is None:
            continue
        for col, value in enumerate(row, start=1):
            cell = ws.cell(row=5 + offset, column=col, value=value)
            if col == 6:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    for letter, width in zip("ABCDEFGHIJK", (34, 20, 26, 12, 40, 60, 9, 16, 11, 11, 9)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A5"

    # Last edited when the current fiscal year's targets were entered.
    return xlsx_bytes(wb, modified=datetime(now.year, 1, 6, 9, 15), created=datetime(2024, 12, 2, 10, 0))


def write_drops(folder: Path, now: datetime, days: int = 365) -> list[Path]:
    """Write (or rewrite when changed) the registry workbook as of `now`; returns [the file].

    `days` is accepted for the common generator API; the registry always covers the current and
    the previous fiscal year.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    write_if_changed(path, registry_workbook(now))
    return [path]
