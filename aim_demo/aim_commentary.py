"""Budget and Management: the AIM commentary workbook, the departments' notes on their measures.

One workbook, `aim_commentary.xlsx`, beside the registry: sheet "Commentary", a one-row header
(Measure Code, Month, Why it moved, What we are doing, When to expect change), one row per measure
and month. The departments send a note on each of their measures for the last two months; the
budget office enters them as text cells ("2026-10", so Excel does not turn the month into a date).
The notes are written to stay true whichever way the demo's numbers move.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from aim_demo.aim_registry import MEASURES
from aim_demo.drops import write_if_changed, xlsx_bytes

FILE_NAME = "aim_commentary.xlsx"
SHEET = "Commentary"
HEADER = ("Measure Code", "Month", "Why it moved", "What we are doing", "When to expect change")

# code: [(why it moved, what we are doing, when to expect change) for the month before last,
#        (...) for last month]
NOTES: dict[str, list[tuple[str, str, str]]] = {
    "SAF-01": [
        ("Thefts from vehicles and retail thefts made up most Part 1 incidents, concentrated in the "
         "downtown and near south side districts.",
         "Districts 2 and 5 added directed patrols at the hours thefts peak, and the department ran a "
         "'lock it or lose it' campaign with the Business Improvement Districts.",
         "The department expects the effect of the patrols to show in two to three months of data."),
        ("Motor vehicle thefts stayed the largest single category; other Part 1 offenses were close "
         "to the same month last year.",
         "Officers are working with the manufacturers' anti-theft software program and handing out "
         "steering wheel locks at district stations.",
         "Progress will be reviewed with the budget office at the next quarterly AIM session."),
    ],
    "SAF-02": [
        ("Aggravated assaults account for most violent incidents; a few incidents with several "
         "victims each raise the monthly rate.",
         "The Office of Violence Prevention's interrupters are working in the two districts with the "
         "highest rates, alongside focused deterrence call-ins.",
         "Violent crime is seasonal: the department expects the rate to ease through the winter months."),
        ("The rate is close to the fiscal year's target; robberies are lower than a year ago.",
         "Investigations continue to prioritize shootings, with the crime gun intelligence center "
         "tracing every recovered firearm.",
         "The department will report the effect of the winter deployment in the next quarter."),
    ],
    "SAF-03": [
        ("Road construction on two arterials lengthened travel from three stations to part of their "
         "first-due areas.",
         "Dispatch now recommends the closest unit by live travel time, and companies pre-position "
         "during the construction hours.",
         "The construction ends this season; response times should recover once the lanes reopen."),
        ("Two engine companies were out of service for repairs for part of the month, so neighboring "
         "companies covered their areas.",
         "Both engines are back in service, and a reserve engine is now staffed during repairs.",
         "The department expects the share to return to its usual level next month."),
    ],
    "SAF-04": [
        ("EMS call volume rose with respiratory illness, and more calls were answered by units from "
         "outside their first-due area.",
         "A peak-time ambulance was added on weekday afternoons, and the nurse navigation line now "
         "takes low-acuity calls.",
         "The peak-time unit runs through the winter; its effect will show in the next two months."),
        ("Hospital handoff times kept units out of service longer, which delays the next response.",
         "The department and the hospitals agreed on a 30-minute handoff standard and now report it "
         "weekly.",
         "The department expects shorter handoffs to show in response times within a quarter."),
    ],
    "ECO-01": [
        ("Many orders due this month were for exterior repairs that owners postponed until contractors "
         "were available.",
         "Inspectors call owners two weeks before the due date and grant documented extensions where "
         "a contract is signed.",
         "Compliance is expected to improve as the extended orders come due over the next two months."),
        ("Orders on vacant buildings, where the owner is hard to reach, were a larger share of the "
         "orders due.",
         "The department refers unreachable owners of vacant buildings to the city attorney sooner and "
         "works with the Compliance Loan Program for owner-occupants.",
         "The effect of the earlier referrals should be visible in the next quarter's results."),
    ],
    "ECO-02": [
        ("A backlog of re-inspections after the summer complaint season lengthened the time to record "
         "compliance.",
         "Re-inspections are scheduled by due date, and two inspectors were reassigned to clear the "
         "backlog.",
         "The department expects the backlog to be cleared within two months."),
        ("Complex orders on larger buildings, which take longer to complete, closed this month.",
         "Owners of larger buildings now get a pre-inspection meeting to agree on a repair schedule.",
         "The median is expected to settle once the older orders are closed."),
    ],
    "CHI-01": [
        ("Fewer children were tested at the start of the school year than the department planned, "
         "as clinics focused on immunizations.",
         "The Health Department is offering lead tests at the same visits as immunizations and at "
         "WIC appointments.",
         "Testing numbers are expected to rise over the next two months as the combined visits start."),
        ("Testing is close to the monthly target after the combined visits began.",
         "Outreach continues in the ZIP codes with the oldest housing, with reminder letters to "
         "families of one- and two-year-olds.",
         "The department will review the year's testing against the target at the fiscal year end."),
    ],
    "CHI-02": [
        ("Elevated results are concentrated in ZIP codes with older housing, as in previous years.",
         "Every child with an elevated result gets a home visit and an inspection of the home for "
         "lead hazards.",
         "The share moves slowly: the department expects progress over the fiscal year, not month to month."),
        ("Late lab results for the month are still coming in; the share may change when they arrive.",
         "Lead hazard abatement continues in the homes where children with elevated levels live.",
         "The month will be final once the lab's re-sent file is complete."),
    ],
    "PHY-01": [
        ("Freeze-thaw cycles opened more potholes than crews could close within three days.",
         "Public Works added a second hot-patch crew and extended shifts on weekdays.",
         "With the added crew, the department expects to be back on target within a month."),
        ("Requests were closed faster after the second crew started.",
         "Crews are grouping requests by route to close more of them per shift.",
         "The department will keep the second crew through the end of the freeze-thaw season."),
    ],
    "PHY-02": [
        ("A rise in bulky item and graffiti requests, which take longer to close, raised the median.",
         "Requests are now routed to the right crew at intake, without a second assignment step.",
         "The department expects the change in routing to shorten the median within two months."),
        ("The median is near the target; a few request types remain slow.",
         "Public Works reviews the slowest request types weekly with the call center.",
         "Progress will be reported at the next quarterly AIM session."),
    ],
    "PHY-03": [
        ("Missed pickups rose on routes with new drivers after the seasonal staffing change.",
         "New drivers ride each route with an experienced driver before driving it alone, and "
         "supervisors check missed-pickup reports daily.",
         "The department expects the rate to fall as the new drivers learn their routes."),
        ("Holiday schedule changes moved pickups on some routes, and some carts were set out on the "
         "usual day.",
         "The holiday schedule was mailed with the water bill and posted on the city's website.",
         "The rate usually returns to normal the month after the holidays."),
    ],
    "PHY-04": [
        ("Copper wire theft caused outages on whole circuits, which take longer to repair than a "
         "single lamp.",
         "Crews are replacing stolen wire with theft-resistant cable on the circuits hit most often.",
         "Repairs of whole circuits are expected to be complete by the end of the next month."),
        ("Most outages were single lamps, repaired within the five days.",
         "The lighting crews continue night patrols to find outages before they are reported.",
         "The department expects to stay on target through the winter."),
    ],
}


def _month(now: datetime, back: int) -> str:
    """The month `back` months before `now`'s, as YYYY-MM."""
    index = now.year * 12 + now.month - 1 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def commentary_rows(now: datetime) -> list[tuple[str, str, str, str, str]]:
    """The workbook's rows at `now`: every measure's notes on the month before last and last month."""
    assert set(NOTES) == set(MEASURES), "every registry measure has its department's notes"
    rows = []
    for code in MEASURES:
        for back, (why, action, outlook) in zip((2, 1), NOTES[code]):
            rows.append((code, _month(now, back), why, action, outlook))
    return rows


def commentary_workbook(now: datetime, rows: list[tuple] | None = None) -> bytes:
    """The commentary workbook as it stands at `now` (with `rows` instead of the demo's notes, when given)."""
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    for col, name in enumerate(HEADER, start=1):
        ws.cell(row=1, column=col, value=name).font = Font(bold=True)
    for r, row in enumerate(commentary_rows(now) if rows is None else rows, start=2):
        for col, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=col, value=value)
            cell.number_format = "@"  # text: the month stays "2026-10"
            if col > 2:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    for letter, width in zip("ABCDE", (12, 10, 60, 60, 50)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    # Last edited when the month's notes were entered.
    return xlsx_bytes(wb, modified=datetime(now.year, now.month, 1, 9, 0), created=datetime(2024, 12, 2, 10, 0))


def write_drops(folder: Path, now: datetime, days: int = 365) -> list[Path]:
    """Write (or rewrite when changed) the commentary workbook as of `now`; returns [the file]."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    write_if_changed(path, commentary_workbook(now))
    return [path]
