"""The AIM measures (`sql/measures/*.sql`) on small fixtures, and the police demo's recent history.

Each measure runs on a fresh database (migrated, with the source tables made from their
configurations and the geography reference table), over a window of three months (one
`measure_period` row each). Its output is compared with two expectations: one worked out by hand
(the arithmetic is in the comments) and one computed in plain Python from the same fixture rows.
The same three months as one period, a quarter, must follow the rule the file's header declares.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
import statistics
import subprocess
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from aim.db import normalize_url
from aim.migrations import migrate
from aim.settings import sources_dir
from aim.sources import load_source_config
from aim.tables import ensure_tables
from aim_demo import embedded_pg, mpd_rms
from aim_demo.databases import libpq_dsn

ROOT = Path(__file__).resolve().parents[1]
MEASURES = ROOT / "sql" / "measures"
MILWAUKEE = ZoneInfo("America/Chicago")
CODES = ["SAF-01", "SAF-02", "SAF-03", "SAF-04", "ECO-01", "ECO-02",
         "CHI-01", "CHI-02", "PHY-01", "PHY-02", "PHY-03", "PHY-04"]
SOURCES = ["mpd_crime_incidents", "mfd_dispatch_incidents", "dpw_service_requests",
           "dns_code_enforcement_orders", "mhd_lead_tests"]
OUTPUT = [("period_start", "date"), ("geography_type", "text"), ("geography_code", "text"),
          ("value", "numeric"), ("numerator", "numeric"), ("denominator", "numeric")]

# core.ref_geography_stat as the model's migration seeds it
CITY_POPULATION, CITY_HOUSEHOLDS = 577_222, 230_889
DISTRICT_POPULATION, DISTRICT_HOUSEHOLDS = 38_481, 15_393
REF_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS core.ref_geography_stat (
    geography_type text, geography_code text, stat text, value numeric, source text, as_of_year int
)
"""

JAN, FEB, MAR = dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)
WINDOW = (JAN, MAR)  # three months; March is left empty in every fixture
CITY = ("citywide", "all")


def ald(n: int) -> tuple[str, str]:
    return ("aldermanic_district", str(n))


def pol(n: int) -> tuple[str, str]:
    return ("police_district", str(n))


def measure_file(code: str) -> Path:
    return MEASURES / f"{code.lower().replace('-', '_')}.sql"


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# --- the warehouse ---------------------------------------------------------------------------

class Warehouse:
    def __init__(self, url: str, as_of: dt.datetime | None = None):
        self.url = url
        self.as_of = as_of  # Milwaukee wall time the measures run at: ops.local_now() on this connection
        self.conn = psycopg2.connect(libpq_dsn(normalize_url(url).render_as_string(hide_password=False)))

    def execute(self, statement: str, params=None) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(statement, params)

    def insert(self, table: str, rows: list[dict]) -> None:
        """Rows into core.<table>, as a merge would leave them (trace columns filled)."""
        with self.conn, self.conn.cursor() as cur:
            for row in rows:
                columns = list(row) + ["_batch_id", "_run_id"]
                cur.execute(
                    f"INSERT INTO core.{table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                    [*row.values(), "test-batch", "test-run"],
                )

    def run(self, code: str, start: dt.date, end: dt.date):
        """The measure's file as written, over the months of the window (start's month to end's, one
        `measure_period` row each); returns (column names and types, rows)."""
        return self.run_periods(code, month_periods((start, end)))

    def run_periods(self, code: str, periods: list[tuple[dt.date, dt.date]]):
        """The measure's file as written, `measure_period` holding these (start, last day) periods."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS measure_period")
            cur.execute("CREATE TEMP TABLE measure_period (period_start date NOT NULL, period_end date NOT NULL)")
            for start, end in periods:
                cur.execute("INSERT INTO measure_period VALUES (%s, %s)", (start, end))
            cur.execute(measure_file(code).read_text(encoding="utf-8"))
            rows = cur.fetchall()
            description = [(c.name, c.type_code) for c in cur.description]
            cur.execute("SELECT oid, typname FROM pg_type WHERE oid = ANY(%s)", ([t for _, t in description],))
            types = dict(cur.fetchall())
        return [(name, types[oid]) for name, oid in description], rows

    def close(self):
        self.conn.close()


def seed_reference(wh: Warehouse) -> None:
    """core.ref_geography_stat with the city's figures, unless the model's migration already holds them."""
    figures = [("citywide", "all", "population", CITY_POPULATION), ("citywide", "all", "households", CITY_HOUSEHOLDS)]
    for n in range(1, 16):
        figures += [("aldermanic_district", str(n), "population", DISTRICT_POPULATION),
                    ("aldermanic_district", str(n), "households", DISTRICT_HOUSEHOLDS)]
    wh.execute(REF_TABLE_SQL)
    for geography_type, code, stat, value in figures:
        wh.execute(
            """
            INSERT INTO core.ref_geography_stat (geography_type, geography_code, stat, value, source, as_of_year)
            SELECT %(t)s, %(c)s, %(s)s, %(v)s, 'test seed', 2020
            WHERE NOT EXISTS (SELECT 1 FROM core.ref_geography_stat
                              WHERE geography_type = %(t)s AND geography_code = %(c)s AND stat = %(s)s)
            """,
            {"t": geography_type, "c": code, "s": stat, "v": value},
        )


@pytest.fixture
def warehouse(new_database, clock):
    """A fresh, migrated warehouse with every source's core table and the geography reference."""
    url = new_database("aim_measures")
    migrate(url)
    wh = Warehouse(url, clock.replace(tzinfo=None))
    with wh.conn, wh.conn.cursor() as cur:
        for source in SOURCES:
            ensure_tables(cur, load_source_config(sources_dir() / f"{source}.yaml"))
    seed_reference(wh)
    yield wh
    wh.close()


# --- comparing results -----------------------------------------------------------------------

def as_result(rows) -> dict:
    """{(period_start, geography_type, geography_code): (value, numerator, denominator)}, one row per key."""
    result = {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in rows}
    assert len(result) == len(rows), "one row per month and geography"
    return result


def assert_same(rows, expected: dict, label: str) -> None:
    actual = as_result(rows)
    assert sorted(actual) == sorted(expected), f"{label}: rows differ"
    for key, numbers in expected.items():
        for got, want in zip(actual[key], numbers):
            if want is None:
                assert got is None, f"{label} {key}: expected NULL, got {got}"
            else:
                assert got is not None and float(got) == pytest.approx(float(want), rel=1e-12, abs=1e-12), \
                    f"{label} {key}: {actual[key]} != {numbers}"


def check(wh: Warehouse, code: str, window, by_hand: dict, in_python: dict) -> None:
    columns, rows = wh.run(code, *window)
    assert columns == OUTPUT
    assert [r[:3] for r in rows] == sorted(
        (r[:3] for r in rows), key=lambda k: (k[0], k[1] != "citywide", k[1], k[2].zfill(2))
    ), "rows are ordered by month, then citywide, then districts in number order"
    assert_same(rows, by_hand, f"{code} by hand")
    assert_same(rows, in_python, f"{code} in Python")


def counts_grid(months, geographies, counts: dict) -> dict:
    """Every month and geography: the count (0 when absent), with NULL numerator and denominator."""
    return {(m, *g): (counts.get((m, *g), 0), None, None) for m in months for g in geographies}


# --- the same measures, in plain Python -------------------------------------------------------

def months_of(window) -> list[dt.date]:
    start, end = window
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def month_periods(window) -> list[tuple[dt.date, dt.date]]:
    """The months of the window as `measure_period` rows: (first day, last day)."""
    return [(month, next_month(month) - dt.timedelta(days=1)) for month in months_of(window)]


def month_start(value) -> dt.date:
    return dt.date(value.year, value.month, 1)


def places(row, police: bool = False) -> list[tuple[str, str]]:
    """Where a row counts: citywide, and its districts when it has valid ones."""
    found = [CITY]
    if row.get("ald") is not None and 1 <= row["ald"] <= 15:
        found.append(ald(row["ald"]))
    if police and row.get("police") is not None and 1 <= row["police"] <= 7:
        found.append(pol(row["police"]))
    return found


def py_groups(rows, window, month_field, keep, police=False) -> dict:
    """{(month, type, code): [rows]} for the rows kept whose month is in the window."""
    months = set(months_of(window))
    groups = defaultdict(list)
    for row in rows:
        if row.get(month_field) is None or not keep(row):
            continue
        month = month_start(row[month_field])
        if month in months:
            for place in places(row, police):
                groups[(month, *place)].append(row)
    return groups


def py_count(rows, window, month_field, keep, geographies, police=False) -> dict:
    groups = py_groups(rows, window, month_field, keep, police)
    return {(m, *g): (len(groups.get((m, *g), [])), None, None) for m in months_of(window) for g in geographies}


def py_share(rows, window, month_field, keep, success, scale=100) -> dict:
    groups = py_groups(rows, window, month_field, keep)
    result = {}
    for key, members in groups.items():
        numerator = sum(1 for r in members if success(r))
        result[key] = (Fraction(scale * numerator, len(members)), numerator, len(members))
    return result


def py_median(rows, window, month_field, keep, value) -> dict:
    groups = py_groups(rows, window, month_field, keep)
    return {key: (statistics.median(value(r) for r in members), None, None) for key, members in groups.items()}


def py_period_median(rows, period, month_field, keep, value) -> dict:
    """The median over a period of whole months (a quarter, a year) as one: {(first day, type, code): ...}."""
    merged = defaultdict(list)
    for (_, *place), members in py_groups(rows, period, month_field, keep).items():
        merged[(period[0], *place)].extend(members)
    return {key: (statistics.median(value(r) for r in members), None, None) for key, members in merged.items()}


def py_rate(rows, window, month_field, keep, denominators: dict) -> dict:
    groups = py_groups(rows, window, month_field, keep)
    return {(m, *g): (Fraction(1000 * len(groups.get((m, *g), [])), den), len(groups.get((m, *g), [])), den)
            for m in months_of(window) for g, den in denominators.items()}


DISTRICTS = [CITY] + [ald(n) for n in range(1, 16)]
ALL_GEOGRAPHIES = DISTRICTS + [pol(n) for n in range(1, 8)]
POPULATION = {CITY: CITY_POPULATION, **{ald(n): DISTRICT_POPULATION for n in range(1, 16)}}
HOUSEHOLDS = {CITY: CITY_HOUSEHOLDS, **{ald(n): DISTRICT_HOUSEHOLDS for n in range(1, 16)}}


# --- police: SAF-01, SAF-02 -------------------------------------------------------------------

FLAGS = ["arson", "assault_offense", "burglary", "criminal_damage", "homicide", "locked_vehicle", "robbery",
         "sex_offense", "theft", "vehicle_theft"]
PART_1 = set(FLAGS) - {"criminal_damage"}
VIOLENT = {"homicide", "sex_offense", "robbery", "assault_offense"}


def incident(num, reported_at, ald_, police, *flags):
    return {"incident_num": num, "reported_at": ts(reported_at), "ald": ald_, "police": police,
            **{f: f in flags for f in FLAGS}}


SAF_01_ROWS = [
    incident("A1", "2025-01-05 10:00:00", 3, 2, "theft"),
    incident("A2", "2025-01-20 23:59:59", 3, 2, "robbery", "assault_offense"),  # two flags: once
    incident("A3", "2025-01-31 23:59:59", None, 5, "burglary"),  # no aldermanic district
    incident("A4", "2025-01-15 12:00:00", 7, None, "homicide"),  # no police district
    incident("A5", "2025-01-10 08:00:00", 3, 2, "criminal_damage"),  # criminal damage alone: not Part 1
    incident("A12", "2025-01-07 18:30:00", 1, 1, "sex_offense"),
    incident("A6", "2025-02-01 00:00:00", 15, 7, "arson", "criminal_damage"),
    incident("A9", "2025-02-14 09:00:00", None, None, "vehicle_theft"),  # no district at all: citywide only
    incident("A11", "2025-02-03 22:00:00", 1, 1, "locked_vehicle"),
    incident("A13", "2025-01-22 12:00:00", 16, 8, "theft"),  # districts out of range (an RMS typo): citywide only
    incident("A14", "2025-02-22 12:00:00", 0, 0, "burglary"),  # districts out of range: citywide only
    incident("A7", "2024-12-31 23:59:59", 3, 2, "theft"),  # before the window
    incident("A8", "2025-04-01 00:00:00", 3, 2, "theft"),  # after the window
]


def test_saf_01_part_1_crimes(warehouse):
    rows = SAF_01_ROWS
    warehouse.insert("mpd_crime_incidents", rows)

    # January: A1, A2, A3, A4, A12, A13 = 6 citywide; ald 3: A1, A2 = 2; ald 7: A4; ald 1: A12;
    #          police 2: A1, A2 = 2; police 5: A3; police 1: A12. (A13's district 16 and police 8 exist nowhere.)
    # February: A6, A9, A11, A14 = 4 citywide; ald 15: A6; ald 1: A11; police 7: A6; police 1: A11.
    # March: nothing, every geography 0.
    by_hand = counts_grid(months_of(WINDOW), ALL_GEOGRAPHIES, {
        (JAN, *CITY): 6, (JAN, *ald(3)): 2, (JAN, *ald(7)): 1, (JAN, *ald(1)): 1,
        (JAN, *pol(2)): 2, (JAN, *pol(5)): 1, (JAN, *pol(1)): 1,
        (FEB, *CITY): 4, (FEB, *ald(15)): 1, (FEB, *ald(1)): 1, (FEB, *pol(7)): 1, (FEB, *pol(1)): 1,
    })
    assert len(by_hand) == 3 * (1 + 15 + 7)
    in_python = py_count(rows, WINDOW, "reported_at", lambda r: any(r[f] for f in PART_1), ALL_GEOGRAPHIES,
                         police=True)
    check(warehouse, "SAF-01", WINDOW, by_hand, in_python)


SAF_02_ROWS = [
    incident("B1", "2025-01-02 01:00:00", 3, 2, "robbery", "assault_offense"),  # two flags: once
    incident("B2", "2025-01-09 14:00:00", 3, 2, "homicide"),
    incident("B3", "2025-01-30 20:00:00", None, 4, "sex_offense"),  # citywide only
    incident("B4", "2025-01-12 11:00:00", 5, 3, "theft"),  # not violent
    incident("B5", "2025-02-10 02:00:00", 5, 3, "assault_offense"),
    incident("B6", "2025-02-28 23:59:00", 12, 2, "robbery"),
    incident("B7", "2025-04-01 00:00:00", 12, 2, "robbery"),  # after the window
]


def test_saf_02_violent_crime_per_1000_residents(warehouse):
    rows = SAF_02_ROWS
    warehouse.insert("mpd_crime_incidents", rows)

    # January: citywide B1, B2, B3 = 3 -> 1000 * 3 / 577222 = 0.0051973...; ald 3: B1, B2 = 2 -> 1000 * 2 / 38481.
    # February: citywide B5, B6 = 2; ald 5: B5 = 1 -> 1000 / 38481; ald 12: B6 = 1.
    # March: 0 everywhere (value 0, numerator 0, denominator the population). No police districts.
    counts = {(JAN, *CITY): 3, (JAN, *ald(3)): 2, (FEB, *CITY): 2, (FEB, *ald(5)): 1, (FEB, *ald(12)): 1}
    by_hand = {}
    for month in (JAN, FEB, MAR):
        for geography, population in POPULATION.items():
            n = counts.get((month, *geography), 0)
            by_hand[(month, *geography)] = (Fraction(1000 * n, population), n, population)
    assert by_hand[(JAN, *CITY)][0] == Fraction(3000, 577222)
    in_python = py_rate(rows, WINDOW, "reported_at", lambda r: any(r[f] for f in VIOLENT), POPULATION)
    check(warehouse, "SAF-02", WINDOW, by_hand, in_python)


# --- fire and EMS: SAF-03, SAF-04 -------------------------------------------------------------

def call(num, kind, ald_, received, dispatched, on_scene_seconds):
    """A CAD incident: on scene `on_scene_seconds` after dispatch (None: not recorded)."""
    received_at = ts(received)
    dispatched_at = ts(dispatched) if dispatched else None
    on_scene_at = (dispatched_at or received_at) + dt.timedelta(seconds=on_scene_seconds) \
        if on_scene_seconds is not None else None
    return {"incident_number": num, "incident_type": kind, "priority": 1, "address": "100 E WELLS ST",
            "ald": ald_, "call_received_at": received_at, "dispatched_at": dispatched_at,
            "on_scene_at": on_scene_at}


def timed(row) -> bool:
    return row["dispatched_at"] is not None and row["on_scene_at"] is not None \
        and row["on_scene_at"] >= row["dispatched_at"]


SAF_03_ROWS = [
    call("C1", "FIRE", 2, "2025-01-03 09:59:00", "2025-01-03 10:00:00", 320),  # exactly 5:20: within
    call("C2", "FIRE", 2, "2025-01-04 09:59:00", "2025-01-04 10:00:00", 321),  # one second over
    call("C3", "FIRE", None, "2025-01-05 09:59:00", "2025-01-05 10:00:00", 240),  # citywide only
    call("C4", "FIRE", 2, "2025-01-06 09:59:00", "2025-01-06 10:00:00", None),  # never on scene: left out
    call("C5", "FIRE", 2, "2025-01-07 09:59:00", "2025-01-07 10:00:00", -30),  # on scene before dispatch: left out
    call("C6", "EMS", 2, "2025-01-08 09:59:00", "2025-01-08 10:00:00", 100),  # EMS: left out
    call("C7", "FIRE", 9, "2025-01-31 23:58:00", "2025-02-01 00:01:00", 200),  # January (the call's month)
    call("C8", "FIRE", 9, "2025-02-11 12:00:00", "2025-02-11 12:01:00", 600),
    call("C9", "FIRE", 9, "2025-02-12 12:00:00", None, 200),  # never dispatched: left out
    call("C10", "FIRE", 9, "2025-04-01 00:00:00", "2025-04-01 00:01:00", 60),  # after the window
]


def test_saf_03_fire_on_scene_within_5_20(warehouse):
    rows = SAF_03_ROWS
    warehouse.insert("mfd_dispatch_incidents", rows)

    # January: citywide C1, C2, C3, C7 -> within C1, C3, C7 = 3 of 4 = 75%; ald 2: C1, C2 = 1 of 2 = 50%;
    #          ald 9: C7 = 1 of 1 = 100%.
    # February: citywide C8 = 0 of 1 = 0%; ald 9 the same. March: no calls, no rows.
    by_hand = {
        (JAN, *CITY): (75, 3, 4), (JAN, *ald(2)): (50, 1, 2), (JAN, *ald(9)): (100, 1, 1),
        (FEB, *CITY): (0, 0, 1), (FEB, *ald(9)): (0, 0, 1),
    }
    in_python = py_share(rows, WINDOW, "call_received_at", lambda r: r["incident_type"] == "FIRE" and timed(r),
                         lambda r: r["on_scene_at"] - r["dispatched_at"] <= dt.timedelta(seconds=320))
    check(warehouse, "SAF-03", WINDOW, by_hand, in_python)


SAF_04_MEDIAN = ("call_received_at", lambda r: r["incident_type"] == "EMS" and timed(r),  # field, kept, minutes
                 lambda r: Fraction(int((r["on_scene_at"] - r["dispatched_at"]).total_seconds()), 60))
SAF_04_ROWS = [
    call("D1", "EMS", 4, "2025-01-03 10:00:00", "2025-01-03 10:01:00", 300),  # 5 minutes
    call("D2", "EMS", 4, "2025-01-04 10:00:00", "2025-01-04 10:01:00", 420),  # 7
    call("D3", "EMS", 4, "2025-01-05 10:00:00", "2025-01-05 10:01:00", 360),  # 6
    call("D4", "EMS", 4, "2025-01-06 10:00:00", "2025-01-06 10:01:00", 390),  # 6.5
    call("D5", "EMS", None, "2025-01-07 10:00:00", "2025-01-07 10:01:00", 240),  # 4, citywide only
    call("D6", "FIRE", 4, "2025-01-08 10:00:00", "2025-01-08 10:01:00", 1),  # fire: left out
    call("D7", "EMS", 4, "2025-01-09 10:00:00", "2025-01-09 10:01:00", None),  # no on-scene time
    call("D8", "EMS", 4, "2025-01-10 10:00:00", "2025-01-10 10:01:00", -60),  # negative: left out
    call("D9", "EMS", 10, "2025-02-03 10:00:00", "2025-02-03 10:01:00", 125),  # 2.0833 minutes
    call("D10", "EMS", 10, "2025-02-04 10:00:00", "2025-02-04 10:01:00", 0),  # on scene at dispatch: 0
    call("D11", "EMS", 10, "2024-12-31 23:59:59", "2025-01-01 00:01:00", 60),  # December's call
]


def test_saf_04_median_ems_response(warehouse):
    rows = SAF_04_ROWS
    warehouse.insert("mfd_dispatch_incidents", rows)

    # January: ald 4 [5, 6, 6.5, 7] -> (6 + 6.5) / 2 = 6.25; citywide [4, 5, 6, 6.5, 7] -> 6.
    # February: ald 10 and citywide [0, 125 s] -> 62.5 s = 1.041666... minutes. March: no rows.
    by_hand = {
        (JAN, *CITY): (6, None, None), (JAN, *ald(4)): (Fraction(25, 4), None, None),
        (FEB, *CITY): (Fraction(125, 120), None, None), (FEB, *ald(10)): (Fraction(125, 120), None, None),
    }
    in_python = py_median(rows, WINDOW, *SAF_04_MEDIAN)
    check(warehouse, "SAF-04", WINDOW, by_hand, in_python)


# --- code enforcement: ECO-01, ECO-02 ---------------------------------------------------------

def order(num, ald_, issued, due, complied):
    return {"order_number": num, "violation_type": "EXTERIOR PAINT", "status": "OPEN", "address": "1 N MAIN ST",
            "ald": ald_, "issued_on": d(issued) if issued else None, "compliance_due_on": d(due) if due else None,
            "complied_on": d(complied) if complied else None}


def next_month(month: dt.date) -> dt.date:
    return (month + dt.timedelta(days=32)).replace(day=1)


def on_time(r) -> bool:
    return r["complied_on"] is not None and r["complied_on"] <= r["compliance_due_on"]


ECO_01_ROWS = [
    order("E1", 6, "2024-12-01", "2025-01-10", "2025-01-10"),  # on the due date: on time
    order("E2", 6, "2024-12-01", "2025-01-20", "2025-01-25"),  # late
    order("E3", 6, "2024-12-01", "2025-01-31", None),  # not complied
    order("E4", None, "2024-12-01", "2025-01-15", "2025-01-01"),  # on time, citywide only
    order("E5", 11, "2025-01-05", "2025-02-05", "2025-02-04"),
    order("E6", 11, "2024-11-01", "2024-12-31", None),  # due before the window
    order("E7", 11, "2025-03-01", "2025-04-01", None),  # due after the window
    order("E11", 16, "2024-12-01", "2025-01-12", "2025-01-11"),  # district 16 does not exist: citywide only
]


@pytest.mark.clock
def test_eco_01_orders_complied_by_due_date(warehouse):
    rows = ECO_01_ROWS
    warehouse.insert("dns_code_enforcement_orders", rows)
    today = warehouse.as_of.date()

    # January: citywide E1, E2, E3, E4, E11 -> on time E1, E4, E11 = 3 of 5 = 60%; ald 6: E1, E2, E3 -> 1 of 3.
    # February: E5 on time: 100% citywide and in ald 11. March: nothing due, no rows.
    by_hand = {
        (JAN, *CITY): (60, 3, 5), (JAN, *ald(6)): (Fraction(100, 3), 1, 3),
        (FEB, *CITY): (100, 1, 1), (FEB, *ald(11)): (100, 1, 1),
    }
    in_python = py_share(rows, WINDOW, "compliance_due_on", lambda r: r["compliance_due_on"] < today, on_time)
    check(warehouse, "ECO-01", WINDOW, by_hand, in_python)

    # Only orders due before today count: one due yesterday (complied), one due today and one next
    # month (neither complied yet) -> only yesterday's, 1 of 1, whichever months these days fall in.
    yesterday = today - dt.timedelta(days=1)
    recent = [
        order("E8", 2, str(yesterday - dt.timedelta(days=30)), str(yesterday), str(yesterday)),
        order("E9", 2, str(today - dt.timedelta(days=30)), str(today), None),
        order("E10", 2, str(today - dt.timedelta(days=30)), str(next_month(today)), None),
    ]
    warehouse.insert("dns_code_enforcement_orders", recent)
    window = (month_start(yesterday), next_month(today))
    by_hand = {(month_start(yesterday), *CITY): (100, 1, 1), (month_start(yesterday), *ald(2)): (100, 1, 1)}
    in_python = py_share(rows + recent, window, "compliance_due_on", lambda r: r["compliance_due_on"] < today, on_time)
    check(warehouse, "ECO-01", window, by_hand, in_python)


ECO_02_MEDIAN = ("complied_on", lambda r: r["issued_on"] is not None,  # field, kept, days
                 lambda r: (r["complied_on"] - r["issued_on"]).days)
ECO_02_ROWS = [
    order("F1", 8, "2024-12-01", "2025-01-01", "2025-01-10"),  # 40 days
    order("F2", 8, "2025-01-01", "2025-01-15", "2025-01-11"),  # 10
    order("F3", None, "2025-01-05", "2025-02-01", "2025-01-31"),  # 26, citywide only
    order("F4", 8, "2025-01-05", "2025-02-01", None),  # not complied: left out
    order("F5", 8, "2025-01-20", "2025-02-20", "2025-02-01"),  # 12, February
    order("F6", 8, "2025-03-20", "2025-04-20", "2025-04-01"),  # complied after the window
]


def test_eco_02_median_days_to_compliance(warehouse):
    rows = ECO_02_ROWS
    warehouse.insert("dns_code_enforcement_orders", rows)

    # January: citywide [10, 26, 40] -> 26; ald 8 [10, 40] -> 25. February: [12] -> 12. March: no rows.
    by_hand = {
        (JAN, *CITY): (26, None, None), (JAN, *ald(8)): (25, None, None),
        (FEB, *CITY): (12, None, None), (FEB, *ald(8)): (12, None, None),
    }
    in_python = py_median(rows, WINDOW, *ECO_02_MEDIAN)
    check(warehouse, "ECO-02", WINDOW, by_hand, in_python)


# --- lead testing: CHI-01, CHI-02 -------------------------------------------------------------

LEAD_ROWS = [
    {"month": "2025-01", "zip": "53206", "age_group": "Under 1", "children_tested": 10, "children_elevated": 2},
    {"month": "2025-01", "zip": "53206", "age_group": "1-2 years", "children_tested": 20, "children_elevated": 1},
    {"month": "2025-01", "zip": "53212", "age_group": "3-5 years", "children_tested": 5, "children_elevated": 0},
    # elevated not reported: counts as tested (CHI-01) but not in the share (CHI-02)
    {"month": "2025-01", "zip": "53208", "age_group": "Under 1", "children_tested": 4, "children_elevated": None},
    {"month": "2025-02", "zip": "53206", "age_group": "Under 1", "children_tested": 0, "children_elevated": 0},
    {"month": "2024-12", "zip": "53206", "age_group": "Under 1", "children_tested": 99, "children_elevated": 9},
    {"month": "2025-04", "zip": "53206", "age_group": "Under 1", "children_tested": 77, "children_elevated": 7},
]


def lead_month(row) -> dt.date:
    return dt.date(int(row["month"][:4]), int(row["month"][5:]), 1)


def test_chi_01_children_tested(warehouse):
    warehouse.insert("mhd_lead_tests", LEAD_ROWS)
    # January: 10 + 20 + 5 + 4 = 39. February: 0 tested -> 0. March: no rows reported -> 0.
    by_hand = counts_grid([JAN, FEB, MAR], [CITY], {(JAN, *CITY): 39})
    totals = defaultdict(int)
    for row in LEAD_ROWS:
        totals[lead_month(row)] += row["children_tested"]
    in_python = {(m, *CITY): (totals.get(m, 0), None, None) for m in months_of(WINDOW)}
    check(warehouse, "CHI-01", WINDOW, by_hand, in_python)


def test_chi_02_share_elevated(warehouse):
    warehouse.insert("mhd_lead_tests", LEAD_ROWS)
    # January: (2 + 1 + 0) / (10 + 20 + 5) = 3 / 35 = 8.5714...%. February: 0 tested -> no row. March: no row.
    by_hand = {(JAN, *CITY): (Fraction(300, 35), 3, 35)}
    tested, elevated = defaultdict(int), defaultdict(int)
    for row in LEAD_ROWS:
        if row["children_tested"] is not None and row["children_elevated"] is not None:
            tested[lead_month(row)] += row["children_tested"]
            elevated[lead_month(row)] += row["children_elevated"]
    in_python = {(m, *CITY): (Fraction(100 * elevated[m], tested[m]), elevated[m], tested[m])
                 for m in months_of(WINDOW) if tested.get(m)}
    check(warehouse, "CHI-02", WINDOW, by_hand, in_python)


# --- 311 requests: PHY-01 .. PHY-04 -----------------------------------------------------------

def request(rid, kind, ald_, created, closed):
    created_at = ts(created) if isinstance(created, str) else created
    closed_at = ts(closed) if isinstance(closed, str) else closed
    return {"request_id": rid, "request_type": kind, "ald": ald_, "created_at": created_at, "closed_at": closed_at,
            "status": "CLOSED" if closed_at else "OPEN", "address": "200 E WELLS ST"}


def within(days):
    return lambda r: r["closed_at"] is not None and r["closed_at"] - r["created_at"] <= dt.timedelta(days=days)


def old_enough(kind, days, now):
    return lambda r: r["request_type"] == kind and r["created_at"] <= now - dt.timedelta(days=days)


def closed_within_rows(kind, days):
    """PHY-01's (potholes, 3 days) and PHY-04's (street lights, 5 days) fixture."""
    limit = dt.timedelta(days=days)
    return [
        request("H1", kind, 13, "2025-01-03 08:00:00", ts("2025-01-03 08:00:00") + limit),  # exactly the limit
        request("H2", kind, 13, "2025-01-10 08:00:00", ts("2025-01-10 08:00:01") + limit),  # a second over
        request("H3", kind, 13, "2025-01-20 08:00:00", None),  # still open
        request("H4", kind, None, "2025-01-25 08:00:00", "2025-01-26 08:00:00"),  # citywide only
        request("H5", "GRAFFITI", 13, "2025-01-25 08:00:00", "2025-01-26 08:00:00"),  # another type
        request("H6", kind, 14, "2025-02-28 23:00:00", "2025-03-02 09:00:00"),  # February (created)
        request("H7", kind, 14, "2024-12-31 23:00:00", "2025-01-01 09:00:00"),  # created before the window
        request("H11", kind, 0, "2025-01-26 08:00:00", "2025-01-27 08:00:00"),  # district 0 does not exist: citywide only
    ]


def _closed_within_test(warehouse, code, kind, days):
    """PHY-01 (potholes, 3 days) and PHY-04 (street lights, 5 days) share their logic."""
    limit = dt.timedelta(days=days)
    rows = closed_within_rows(kind, days)
    warehouse.insert("dpw_service_requests", rows)
    now = warehouse.as_of

    # January: citywide H1, H2, H3, H4, H11 -> within H1, H4, H11 = 3 of 5 = 60%; ald 13: H1, H2, H3 -> 1 of 3.
    # February: H6 within: 100% citywide and in ald 14. March: nothing created, no rows.
    by_hand = {
        (JAN, *CITY): (60, 3, 5), (JAN, *ald(13)): (Fraction(100, 3), 1, 3),
        (FEB, *CITY): (100, 1, 1), (FEB, *ald(14)): (100, 1, 1),
    }
    in_python = py_share(rows, WINDOW, "created_at", old_enough(kind, days, now), within(days))
    check(warehouse, code, WINDOW, by_hand, in_python)

    # Requests too recent to judge are left out of the denominator, even one already closed.
    recent = [
        request("H8", kind, 3, now - limit - dt.timedelta(days=1), now - limit),  # old enough, closed in time
        request("H9", kind, 3, now - limit + dt.timedelta(days=1), None),  # too recent, open
        request("H10", kind, 3, now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)),  # too recent, closed
    ]
    warehouse.insert("dpw_service_requests", recent)
    window = (month_start(recent[0]["created_at"]), month_start(now))
    month = month_start(recent[0]["created_at"])
    by_hand = {(month, *CITY): (100, 1, 1), (month, *ald(3)): (100, 1, 1)}  # H8 only, whatever months these are
    in_python = py_share(rows + recent, window, "created_at", old_enough(kind, days, now), within(days))
    check(warehouse, code, window, by_hand, in_python)


@pytest.mark.clock
def test_phy_01_potholes_closed_within_3_days(warehouse):
    _closed_within_test(warehouse, "PHY-01", "POTHOLE", 3)


@pytest.mark.clock
def test_phy_04_street_lights_repaired_within_5_days(warehouse):
    # (H9 there is 4 days old: old enough for the pothole measure, not for street lights)
    _closed_within_test(warehouse, "PHY-04", "STREET LIGHT OUT", 5)


PHY_02_MEDIAN = ("closed_at", lambda r: r["created_at"] is not None,  # field, kept, days
                 lambda r: Fraction(int((r["closed_at"] - r["created_at"]).total_seconds()), 86400))
PHY_02_ROWS = [
    request("J1", "POTHOLE", 2, "2025-01-01 00:00:00", "2025-01-02 12:00:00"),  # 1.5 days
    request("J2", "TREE DEBRIS", 2, "2024-12-20 00:00:00", "2025-01-05 00:00:00"),  # 16 (closed in January)
    request("J3", "GRAFFITI", None, "2025-01-10 06:00:00", "2025-01-10 12:00:00"),  # 0.25, citywide only
    request("J4", "POTHOLE", 2, "2025-01-11 06:00:00", None),  # open: left out
    request("J5", "GRAFFITI", 2, "2025-01-30 00:00:00", "2025-02-01 00:00:00"),  # 2, February
    request("J6", "POTHOLE", 2, "2025-02-01 00:00:00", "2025-02-04 00:00:00"),  # 3
    request("J7", "POTHOLE", 2, "2025-03-30 00:00:00", "2025-04-01 00:00:00"),  # closed after the window
]


def test_phy_02_median_days_to_close(warehouse):
    rows = PHY_02_ROWS
    warehouse.insert("dpw_service_requests", rows)

    # January: citywide [0.25, 1.5, 16] -> 1.5; ald 2 [1.5, 16] -> 8.75. February: [2, 3] -> 2.5. March: no rows.
    by_hand = {
        (JAN, *CITY): (Fraction(3, 2), None, None), (JAN, *ald(2)): (Fraction(35, 4), None, None),
        (FEB, *CITY): (Fraction(5, 2), None, None), (FEB, *ald(2)): (Fraction(5, 2), None, None),
    }
    in_python = py_median(rows, WINDOW, *PHY_02_MEDIAN)
    check(warehouse, "PHY-02", WINDOW, by_hand, in_python)


def test_durations_are_elapsed_time_across_a_change_of_the_clocks(warehouse):
    # Milwaukee moved its clocks forward at 2:00 on 2025-03-09: noon to noon over it is 23 hours.
    warehouse.insert("dpw_service_requests", [
        request("S1", "POTHOLE", 2, "2025-03-08 12:00:00", "2025-03-09 12:00:00"),
        request("S2", "POTHOLE", 2, "2025-03-08 12:00:00", "2025-03-11 12:30:00"),  # 72.5 h on the clock, 71.5 h
    ])
    _, rows = warehouse.run("PHY-02", MAR, MAR)
    medians = {(r[1], r[2]): r[3] for r in rows}
    assert medians[CITY] == pytest.approx((23 + 71.5) / 2 / 24)
    _, rows = warehouse.run("PHY-01", MAR, MAR)  # within 3 days: 71.5 hours is, though the clock says 72.5
    assert {(r[1], r[2]): (r[4], r[5]) for r in rows}[CITY] == (2, 2)


PHY_03_ROWS = [
    request("K1", "MISSED GARBAGE PICKUP", 1, "2025-01-06 07:00:00", None),
    request("K2", "MISSED GARBAGE PICKUP", 1, "2025-01-31 23:59:59", "2025-02-01 10:00:00"),
    request("K3", "MISSED GARBAGE PICKUP", None, "2025-01-13 07:00:00", None),  # citywide only
    request("K4", "POTHOLE", 1, "2025-01-13 07:00:00", None),  # another type
    request("K5", "MISSED GARBAGE PICKUP", 15, "2025-02-01 00:00:00", None),
    request("K6", "MISSED GARBAGE PICKUP", 15, "2025-04-01 00:00:00", None),  # after the window
]


def test_phy_03_missed_garbage_per_1000_households(warehouse):
    rows = PHY_03_ROWS
    warehouse.insert("dpw_service_requests", rows)

    # January: citywide K1, K2, K3 = 3 -> 1000 * 3 / 230889; ald 1: K1, K2 = 2 -> 1000 * 2 / 15393 = 0.12993...
    # February: citywide K5 = 1 -> 1000 / 230889; ald 15: 1 -> 1000 / 15393. March: 0 everywhere.
    counts = {(JAN, *CITY): 3, (JAN, *ald(1)): 2, (FEB, *CITY): 1, (FEB, *ald(15)): 1}
    by_hand = {}
    for month in (JAN, FEB, MAR):
        for geography, households in HOUSEHOLDS.items():
            n = counts.get((month, *geography), 0)
            by_hand[(month, *geography)] = (Fraction(1000 * n, households), n, households)
    in_python = py_rate(rows, WINDOW, "created_at", lambda r: r["request_type"] == "MISSED GARBAGE PICKUP",
                        HOUSEHOLDS)
    check(warehouse, "PHY-03", WINDOW, by_hand, in_python)


# --- longer periods: a quarter from the same rows --------------------------------------------
#
# The platform runs the same file over fiscal quarters and years, and combines targets by the
# rule each file declares (`-- aggregation:`). Here each measure runs once over JAN..MAR 2025 as
# a single period, on its fixture above, and the quarter is checked against the months.

QUARTER = (JAN, dt.date(2025, 3, 31))
AGGREGATIONS = ("sum", "ratio", "median")
DECLARED = {"SAF-01": "sum", "SAF-02": "sum", "CHI-01": "sum", "PHY-03": "sum",
            "SAF-03": "ratio", "ECO-01": "ratio", "CHI-02": "ratio", "PHY-01": "ratio", "PHY-04": "ratio",
            "SAF-04": "median", "ECO-02": "median", "PHY-02": "median"}
FIXTURES = {  # code: (core table, fixture rows)
    "SAF-01": ("mpd_crime_incidents", SAF_01_ROWS), "SAF-02": ("mpd_crime_incidents", SAF_02_ROWS),
    "SAF-03": ("mfd_dispatch_incidents", SAF_03_ROWS), "SAF-04": ("mfd_dispatch_incidents", SAF_04_ROWS),
    "ECO-01": ("dns_code_enforcement_orders", ECO_01_ROWS), "ECO-02": ("dns_code_enforcement_orders", ECO_02_ROWS),
    "CHI-01": ("mhd_lead_tests", LEAD_ROWS), "CHI-02": ("mhd_lead_tests", LEAD_ROWS),
    "PHY-01": ("dpw_service_requests", closed_within_rows("POTHOLE", 3)),
    "PHY-02": ("dpw_service_requests", PHY_02_ROWS),
    "PHY-03": ("dpw_service_requests", PHY_03_ROWS),
    "PHY-04": ("dpw_service_requests", closed_within_rows("STREET LIGHT OUT", 5)),
}
MEDIANS = {"SAF-04": SAF_04_MEDIAN, "ECO-02": ECO_02_MEDIAN, "PHY-02": PHY_02_MEDIAN}


def aggregation(code: str) -> str | None:
    """The rule the file's header declares (`-- aggregation: sum`), None when it declares none."""
    found = re.findall(r"^-- aggregation: *(\S*) *$", measure_file(code).read_text(encoding="utf-8"), re.M)
    return found[0] if len(found) == 1 else None


def codes_aggregated_by(rule: str) -> list[str]:
    return [code for code in CODES if aggregation(code) == rule]


def months_and_quarter(wh: Warehouse, code: str):
    """The fixture in, the measure over the window's months and over the quarter as one period:
    ({(month, type, code): numbers}, the quarter's rows)."""
    table, rows = FIXTURES[code]
    wh.insert(table, rows)
    _, monthly = wh.run(code, *WINDOW)
    columns, quarterly = wh.run_periods(code, [QUARTER])
    assert columns == OUTPUT
    assert {r[0] for r in quarterly} <= {JAN}, "period_start is the period's first day"
    assert [r[1:3] for r in quarterly] == sorted((r[1:3] for r in quarterly),
                                                 key=lambda k: (k[0] != "citywide", k[0], k[1].zfill(2)))
    return as_result(monthly), quarterly


def by_place(months: dict) -> dict:
    """{(type, code): [(value, numerator, denominator) of each month with a row]}."""
    grouped = defaultdict(list)
    for (_, *place), numbers in months.items():
        grouped[tuple(place)].append(numbers)
    return grouped


def exact(number):
    return None if number is None else Fraction(number)


@pytest.mark.parametrize("code", codes_aggregated_by("sum"))
def test_a_quarter_of_a_sum_measure_is_the_sum_of_its_months(warehouse, code):
    months, quarterly = months_and_quarter(warehouse, code)
    expected = {}
    for place, numbers in by_place(months).items():
        assert len(numbers) == 3, f"{code} {place}: a count has a row every month"
        numerators = [exact(n) for _, n, _ in numbers]
        denominators = {exact(den) for _, _, den in numbers}
        assert len(denominators) == 1, f"{code} {place}: one population (households) figure for every month"
        expected[(JAN, *place)] = (sum(exact(v) for v, _, _ in numbers),
                                   None if None in numerators else sum(numerators), denominators.pop())
    assert any(v for v, _, _ in expected.values()), f"{code}: the fixture counts something in the quarter"
    assert_same(quarterly, expected, f"{code} quarter")


@pytest.mark.parametrize("code", codes_aggregated_by("ratio"))
def test_a_quarter_of_a_ratio_measure_divides_its_months_summed_numerators_and_denominators(warehouse, code):
    months, quarterly = months_and_quarter(warehouse, code)
    scales = {round(float(v) * float(den) / float(n), 9) for v, n, den in months.values() if n}
    assert scales == {100}, f"{code}: the months are percentages"
    expected = {}
    for place, numbers in by_place(months).items():
        numerator, denominator = sum(exact(n) for _, n, _ in numbers), sum(exact(den) for _, _, den in numbers)
        expected[(JAN, *place)] = (100 * numerator / denominator, numerator, denominator)
    assert expected, f"{code}: the fixture has rows in the quarter"
    assert_same(quarterly, expected, f"{code} quarter")


# The quarters' medians by hand (all rows of January to March; December's and April's left out):
# SAF-04 citywide [0, 2.083, 4, 5, 6, 6.5, 7] min -> 5; ald 4 [5, 6, 6.5, 7] -> 6.25; ald 10 [0, 125 s] -> 1.0417.
# ECO-02 citywide [10, 12, 26, 40] days -> 19; ald 8 [10, 12, 40] -> 12.
# PHY-02 citywide [0.25, 1.5, 2, 3, 16] days -> 2; ald 2 [1.5, 2, 3, 16] -> 2.5.
QUARTER_MEDIANS_BY_HAND = {
    "SAF-04": {CITY: 5, ald(4): Fraction(25, 4), ald(10): Fraction(125, 120)},
    "ECO-02": {CITY: 19, ald(8): 12},
    "PHY-02": {CITY: 2, ald(2): Fraction(5, 2)},
}


@pytest.mark.parametrize("code", codes_aggregated_by("median"))
def test_a_quarter_of_a_median_measure_is_the_median_of_the_quarters_rows(warehouse, code):
    _, quarterly = months_and_quarter(warehouse, code)
    by_hand = {(JAN, *place): (median, None, None) for place, median in QUARTER_MEDIANS_BY_HAND[code].items()}
    in_python = py_period_median(FIXTURES[code][1], QUARTER, *MEDIANS[code])
    assert_same(quarterly, by_hand, f"{code} quarter by hand")
    assert_same(quarterly, in_python, f"{code} quarter in Python")


def test_lead_months_not_written_yyyy_mm_are_in_no_period(warehouse):
    """A month column out of form neither fails the lead measures nor lands in a period."""
    odd = [{"month": month, "zip": "53206", "age_group": "Under 1", "children_tested": 1000, "children_elevated": 500}
           for month in ("2025-00", "2025-13", "2025-1", "2025-01 ", " 2025-02", "2025/03", "Jan 2025", "")]
    warehouse.insert("mhd_lead_tests", LEAD_ROWS + odd)
    # As without them: January 39 tested, 3 elevated of 35; February and March nothing. The quarter the same.
    january_share = {(JAN, *CITY): (Fraction(300, 35), 3, 35)}
    assert_same(warehouse.run("CHI-01", *WINDOW)[1], counts_grid(months_of(WINDOW), [CITY], {(JAN, *CITY): 39}),
                "CHI-01 months")
    assert_same(warehouse.run("CHI-02", *WINDOW)[1], january_share, "CHI-02 months")
    assert_same(warehouse.run_periods("CHI-01", [QUARTER])[1], {(JAN, *CITY): (39, None, None)}, "CHI-01 quarter")
    assert_same(warehouse.run_periods("CHI-02", [QUARTER])[1], january_share, "CHI-02 quarter")


# --- the files themselves ---------------------------------------------------------------------

HEADER = re.compile(
    r"\A-- measure: (?P<code>[A-Z]{3}-\d{2})\n"
    r"-- name: (?P<name>\S.*)\n"
    r"(?P<reads>(?:-- reads: core\.[a-z_]+ \([a-z_]+\)\n)+)"
    r"(?:-- reference: core\.ref_geography_stat \((?:population|households)\)\n)?"
    r"-- geographies: (?P<geographies>[a-z_, ]+)\n"
    r"-- aggregation: (?P<aggregation>\S+)\n"
)
GEOGRAPHIES = {"citywide", "aldermanic_district", "police_district"}
WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|CREATE|DROP|ALTER|TRUNCATE|GRANT|REVOKE|COPY|SET|RESET|BEGIN|"
                    r"COMMIT|ROLLBACK|CALL|DO|LOCK|VACUUM|ANALYZE|INTO)\b", re.IGNORECASE)


def statements(text: str) -> list[str]:
    """The file's SQL statements, comments and string literals blanked out."""
    body = re.sub(r"'(?:[^']|'')*'", "''", "\n".join(line.split("--", 1)[0] for line in text.splitlines()))
    return [s.strip() for s in body.split(";") if s.strip()]


def test_the_twelve_files_exist_and_nothing_else():
    assert sorted(p.name for p in MEASURES.glob("*.sql")) == sorted(measure_file(c).name for c in CODES)


@pytest.mark.parametrize("code", CODES)
def test_header_and_one_select(code):
    text = measure_file(code).read_text(encoding="utf-8")
    header = HEADER.match(text)
    assert header, f"{code}: header lines missing or out of order"
    assert header["code"] == code
    for table, column in re.findall(r"-- reads: core\.([a-z_]+) \(([a-z_]+)\)", header["reads"]):
        config = load_source_config(sources_dir() / f"{table}.yaml")  # a configured source
        assert config.column(column).type in ("date", "timestamp", "timestamptz") or column == "month"
        assert f"core.{table}" in text.split(header.group(0), 1)[1], f"{code} reads {table}"
    geographies = [g.strip() for g in header["geographies"].split(",")]
    assert geographies[0] == "citywide" and set(geographies) <= GEOGRAPHIES
    assert header["aggregation"] in AGGREGATIONS, f"{code}: aggregation {header['aggregation']!r}"
    assert header["aggregation"] == aggregation(code) == DECLARED[code]
    assert "CREATE TEMP TABLE measure_period" in text and f"\\i sql/measures/{measure_file(code).name}" in text
    assert "measure_window" not in text and not re.search(r"^-- Month:", text, re.M)

    (statement,) = statements(text)
    assert re.match(r"(WITH|SELECT)\b", statement), f"{code} is one SELECT"
    assert not WRITES.search(statement), f"{code}: {WRITES.search(statement).group(0)} in a measure"
    assert text.rstrip().endswith(";"), f"{code} ends its statement (psql runs it on the semicolon)"


def test_every_file_runs_in_psql_as_its_header_says(new_database):
    """The header's two psql lines, verbatim, on an empty warehouse: the right columns, in order."""
    url = new_database("aim_measures_psql")
    migrate(url)
    wh = Warehouse(url)
    try:
        with wh.conn, wh.conn.cursor() as cur:
            for source in SOURCES:
                ensure_tables(cur, load_source_config(sources_dir() / f"{source}.yaml"))
        seed_reference(wh)
    finally:
        wh.close()
    psql = embedded_pg.psql_path()
    for code in CODES:
        text = measure_file(code).read_text(encoding="utf-8")
        create = re.search(r"^--   (CREATE TEMP TABLE measure_period .*;)$", text, re.M).group(1)
        include = re.search(r"^--   (\\i sql/measures/\S+)$", text, re.M).group(1)
        result = subprocess.run(
            [str(psql), "-X", "-v", "ON_ERROR_STOP=1", "-A", "-F", "|", "-d", libpq_dsn(url), "-c", create, "-c", include],
            cwd=ROOT, capture_output=True, text=True,
        )
        assert result.returncode == 0, f"{code}: {result.stderr}"
        lines = result.stdout.splitlines()
        assert lines[0] == "SELECT 1"
        assert lines[1] == "|".join(name for name, _ in OUTPUT), code


# --- the police demo's recent history ---------------------------------------------------------

SYNTH_NOW = dt.datetime(2025, 11, 5, 14, 37, 12)  # a year that spans both DST changes
WIBR_INCIDENTS = 20_246


def expected_synthesized(now: dt.datetime, days: int = 365) -> dict[str, dict]:
    """What synthesize_recent should add, rebuilt in Python from the WIBR file: {number: row}."""
    wibr = defaultdict(list)
    for row in mpd_rms.read_wibr():
        wibr[row["reported_at"][:10]].append(row)
    result = {}
    for back in range(days - 1, -1, -1):
        day = now.date() - dt.timedelta(days=back)
        offset = (day - dt.date(2000, 1, 1)).days
        months = [m for m in range(1, 8) if day.day <= calendar.monthrange(2023, m)[1]]
        source = dt.date(2023, months[offset % len(months)], day.day)
        templates = sorted(wibr[str(source)], key=lambda r: (r["reported_at"], r["incident_num"]))
        kept = [r for position, r in enumerate(templates, 1) if position % 4 != offset % 4]
        for sequence, row in enumerate(kept, 1):
            reported = dt.datetime.combine(day, dt.time.fromisoformat(row["reported_at"][11:]))
            if reported <= now:
                result[f"S{day:%y%m%d}{sequence:04d}"] = {**row, "reported_at": reported}
    return result


def _rms_rows(rms_url: str) -> dict[str, dict]:
    """The synthesized incidents, by number, with updated_at as Milwaukee wall-clock time."""
    conn = psycopg2.connect(libpq_dsn(rms_url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT *, updated_at AT TIME ZONE 'America/Chicago' AS updated_local FROM rms.incident "
                        "WHERE incident_num LIKE 'S%'")
            names = [c.name for c in cur.description]
            return {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
    finally:
        conn.close()


def _rms_count(rms_url: str, where: str) -> int:
    conn = psycopg2.connect(libpq_dsn(rms_url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM rms.incident WHERE {where}")
            return cur.fetchone()[0]
    finally:
        conn.close()


def _same_as_template(got: dict, want: dict) -> bool:
    def num(v):
        return None if v is None else float(v)
    return (
        got["reported_at"] == want["reported_at"]
        and all(got[c] == want[c] for c in ("location", "weapon_used", "tract", "ward", "zip"))
        and all(got[c] == (None if want[c] is None else int(want[c])) for c in ("ald", "nsp", "police"))
        and num(got["rough_x"]) == num(want["rough_x"]) and num(got["rough_y"]) == num(want["rough_y"])
        and all(got[f] == int(want[f]) for f in FLAGS)
    )


def _nonexistent_local(value: dt.datetime) -> bool:
    """A wall-clock time skipped by the spring DST change (it has no single UTC instant)."""
    back = value.replace(tzinfo=MILWAUKEE).astimezone(dt.timezone.utc).astimezone(MILWAUKEE).replace(tzinfo=None)
    return back != value


@pytest.fixture
def rms(new_database):
    """A freshly seeded police RMS for each test: what one test synthesizes, another never sees."""
    url = new_database("mpd_rms_recent")
    assert mpd_rms.seed(url) == WIBR_INCIDENTS
    return url


def test_synthesize_recent_resamples_the_real_incidents(rms):
    expected = expected_synthesized(SYNTH_NOW)
    assert mpd_rms.synthesize_recent(rms, SYNTH_NOW) == len(expected)

    got = _rms_rows(rms)
    assert sorted(got) == sorted(expected)  # the same numbers: deterministic, nothing more, nothing less
    for number, row in got.items():
        assert re.fullmatch(r"S\d{10}", number) and len(number) <= 20
        assert number[1:7] == row["reported_at"].strftime("%y%m%d")
        assert _same_as_template(row, expected[number]), number
        updated = min(row["reported_at"] + dt.timedelta(hours=1), SYNTH_NOW)
        assert row["updated_local"] == updated or _nonexistent_local(updated), number

    # every one of the 365 days up to now has incidents, none before and none after now
    per_day = defaultdict(int)
    for row in got.values():
        per_day[row["reported_at"].date()] += 1
    first = SYNTH_NOW.date() - dt.timedelta(days=364)
    assert min(per_day) == first and max(per_day) == SYNTH_NOW.date() and len(per_day) == 365
    assert max(row["reported_at"] for row in got.values()) <= SYNTH_NOW
    full_days = [n for day, n in per_day.items() if day < SYNTH_NOW.date()]
    assert 60 <= statistics.mean(full_days) <= 80, statistics.mean(full_days)
    assert min(full_days) >= 25 and max(full_days) <= 110
    # the real incidents are untouched
    assert _rms_count(rms, "incident_num !~ '^S'") == WIBR_INCIDENTS


def test_synthesize_recent_rerun_adds_nothing_and_later_only_what_happened_since(rms):
    mpd_rms.synthesize_recent(rms, SYNTH_NOW)
    before = _rms_rows(rms)
    assert mpd_rms.synthesize_recent(rms, SYNTH_NOW) == 0
    assert _rms_rows(rms) == before

    later = SYNTH_NOW + dt.timedelta(days=1, hours=3)
    new = {n for n, r in expected_synthesized(later).items() if r["reported_at"] > SYNTH_NOW}
    assert mpd_rms.synthesize_recent(rms, later) == len(new) > 0
    after = _rms_rows(rms)
    assert set(after) == set(before) | new
    assert {n: after[n] for n in before} == before  # what was there keeps its numbers and values
    for number in new:  # an hour after the report, never after the run's now
        assert after[number]["updated_local"] == min(after[number]["reported_at"] + dt.timedelta(hours=1), later)
    assert max(r["updated_local"] for r in after.values()) <= later
