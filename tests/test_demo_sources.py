"""The demo department systems that drop files: CAD (fire/EMS), DNS orders, lead tests, AIM registry.

Each generator must be deterministic for a given `now`, keep history stable as `now` moves on
(only the growing current file(s) change, plus the DNS weeks the department re-sends), and
produce the shapes and flaws the platform's ingestion has to cope with.
"""
from __future__ import annotations

import csv
import io
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from aim.storage import sha256_file
from aim_demo import aim_registry, code_enforcement, drops, fire_dispatch, lead_testing

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 26, 14, 30)
GENERATORS = {
    "fire_dispatch": fire_dispatch,
    "code_enforcement": code_enforcement,
    "lead_testing": lead_testing,
    "aim_registry": aim_registry,
}


def _snapshot(paths) -> dict[str, tuple[bytes, int, int]]:
    out = {}
    for p in paths:
        st = p.stat()
        out[p.name] = (p.read_bytes(), st.st_mtime_ns, st.st_ino)
    return out


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in drops.list_files(folder)}


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {name for name in before if name in after and before[name] != after[name]}


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> dict[str, tuple[Path, list[Path]]]:
    """A year of drops of every system at NOW, generated once: name -> (folder, files)."""
    out = {}
    for name, module in GENERATORS.items():
        folder = tmp_path_factory.mktemp(name)
        out[name] = (folder, module.write_drops(folder, NOW))
    return out


def _cad_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _ts(value: str) -> datetime | None:
    if not value:
        return None
    assert len(value) == 19 and value[10] == " ", value  # YYYY-MM-DD HH:MM:SS
    return datetime.fromisoformat(value)


def _elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time between two naive Chicago wall-clock times in a CAD file: the naive difference,
    less the hour skipped when daylight saving time begins (02:00 on the second Sunday of March)."""
    march_1 = date(start.year, 3, 1)
    spring = datetime.combine(march_1 + timedelta(days=(6 - march_1.weekday()) % 7 + 7), datetime.min.time()).replace(hour=2)
    return end - start - (timedelta(hours=1) if start < spring <= end else timedelta(0))


def _xlsx_rows(path: Path, sheet: str, first_data_row: int) -> list[tuple]:
    ws = openpyxl.load_workbook(path)[sheet]
    return list(ws.iter_rows(min_row=first_data_row, values_only=True))


# ----------------------------------------------------------------------------- drops helpers

def test_write_if_changed_is_atomic_and_leaves_identical_files_alone(tmp_path):
    path = tmp_path / "sub" / "a.csv"
    assert drops.write_if_changed(path, b"one\r\n") is True
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    inode = path.stat().st_ino
    assert drops.write_if_changed(path, b"one\r\n") is False
    assert path.stat().st_mtime_ns == 1_000_000_000 and path.stat().st_ino == inode
    assert drops.write_if_changed(path, b"two\r\n") is True
    assert path.read_bytes() == b"two\r\n"
    assert path.stat().st_ino != inode  # replaced, not rewritten in place
    assert [p.name for p in path.parent.iterdir()] == ["a.csv"]  # no temp files left behind


def test_geography_and_addresses():
    assert len(drops.STREETS) >= 60 and len(set(drops.STREETS)) == len(drops.STREETS)
    assert {"N 27TH ST", "W CAPITOL DR", "S KINNICKINNIC AV", "N MARTIN L KING JR DR"} <= set(drops.STREETS)
    assert len(drops.ZIP_CODES) == 26 and "53206" in drops.ZIP_CODES
    assert drops.ALDERMANIC_DISTRICTS == tuple(range(1, 16))
    rng = drops.seeded("test")
    for _ in range(500):
        addr = drops.address(rng)
        number, street = addr.split(" ", 1)
        assert 100 <= int(number) <= 9999 and street in drops.STREETS
        assert drops.district_for(addr) in drops.ALDERMANIC_DISTRICTS
        assert drops.district_for(addr) == drops.district_for(addr)


# ----------------------------------------------------------------------------- all generators

@pytest.mark.parametrize("name", GENERATORS)
def test_same_now_gives_identical_bytes_and_rewrites_nothing(name, year, tmp_path):
    folder, paths = year[name]
    before = _snapshot(paths)
    again = GENERATORS[name].write_drops(folder, NOW)
    assert again == paths
    assert _snapshot(again) == before  # same bytes, same mtimes, same inodes: nothing rewritten
    other = GENERATORS[name].write_drops(tmp_path, NOW)
    assert {p.name: p.read_bytes() for p in other} == {k: v[0] for k, v in before.items()}


def test_files_do_not_depend_on_the_process(year, tmp_path):
    """Same bytes from a fresh interpreter with another hash seed (no set-order or clock leaks)."""
    script = (
        "import sys; from datetime import datetime; from pathlib import Path\n"
        "from aim_demo import aim_registry, code_enforcement, fire_dispatch, lead_testing\n"
        "for m in (aim_registry, code_enforcement, fire_dispatch, lead_testing):\n"
        "    m.write_drops(Path(sys.argv[1]) / m.__name__.rsplit('.', 1)[1], datetime(2026, 11, 26, 14, 30))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env, cwd=ROOT)
    for name, (folder, _) in year.items():
        assert _contents(tmp_path / name) == _contents(folder), name


def test_a_full_year_of_every_source_is_fast(tmp_path):
    timings = {}
    for name, module in GENERATORS.items():
        started = time.perf_counter()
        module.write_drops(tmp_path / name, NOW + timedelta(minutes=1))
        timings[name] = time.perf_counter() - started
    assert sum(timings.values()) < 30, timings


# ----------------------------------------------------------------------------- CAD

CAD_HEADER = ('"Incident Number","Incident Type","Priority","Address","Aldermanic District",'
              '"Call Received","Dispatched","En Route","On Scene","Cleared"')
QUOTED_LINE = re.compile(r'^"[^"]*"(,"[^"]*")*$')


def test_cad_files_cover_a_year_with_exact_format(year):
    folder, paths = year["fire_dispatch"]
    days = [date.fromisoformat(p.name[len("cad_incidents_"):-len(".csv")]) for p in paths]
    assert days == [NOW.date() - timedelta(days=n) for n in range(365, -1, -1)]
    assert all(p.name == f"cad_incidents_{d:%Y-%m-%d}.csv" for p, d in zip(paths, days))
    for path in paths[::15] + paths[-2:]:
        raw = path.read_bytes()
        raw.decode("utf-8")
        assert raw.endswith(b"\r\n") and raw.count(b"\n") == raw.count(b"\r\n")
        lines = raw.decode("utf-8").split("\r\n")[:-1]
        assert lines[0] == CAD_HEADER
        assert all(QUOTED_LINE.match(line) and line.count('","') == 9 for line in lines), path.name


def test_cad_invariants_volumes_and_flaws(year):
    _, paths = year["fire_dispatch"]
    numbers, per_day, rows_all = set(), {}, []
    for path in paths:
        day = date.fromisoformat(path.name[14:24])
        rows = _cad_rows(path)
        per_day[day] = len(rows)
        for row in rows:
            assert re.fullmatch(r"F\d{10}", row["Incident Number"])
            assert row["Incident Number"][1:7] == f"{day:%y%m%d}"
            assert row["Incident Number"] not in numbers
            numbers.add(row["Incident Number"])
            assert row["Incident Type"] in ("FIRE", "EMS") and row["Priority"] in ("1", "2", "3")
            assert int(row["Aldermanic District"]) in range(1, 16)
            assert re.fullmatch(r"\d{3,4} [NSEW] .+", row["Address"])
            times = [_ts(row[c]) for c in ("Call Received", "Dispatched", "En Route", "On Scene", "Cleared")]
            assert times[0] is not None and times[0].date() == day
            present = [t for t in times if t is not None]
            assert present == sorted(present), row
            assert max(present) <= NOW, row
        rows_all.extend(rows)

    full_days = [n for d, n in per_day.items() if d < NOW.date()]
    assert min(full_days) >= 180 and max(full_days) <= 340
    assert 235 <= statistics.mean(full_days) <= 265
    summer = statistics.mean(n for d, n in per_day.items() if d.month in (6, 7, 8))
    winter = statistics.mean(n for d, n in per_day.items() if d.month in (12, 1, 2))
    assert summer > winter * 1.1
    evening = sum(1 for r in rows_all if 17 <= int(r["Call Received"][11:13]) <= 21)
    early = sum(1 for r in rows_all if 2 <= int(r["Call Received"][11:13]) <= 6)
    assert evening > 2 * early

    n = len(rows_all)
    types = Counter(r["Incident Type"] for r in rows_all)
    assert 0.75 <= types["EMS"] / n <= 0.81
    prio = Counter(r["Priority"] for r in rows_all)
    assert abs(prio["1"] / n - 0.30) < 0.03 and abs(prio["2"] / n - 0.50) < 0.03 and abs(prio["3"] / n - 0.20) < 0.03

    done = [r for r in rows_all if _ts(r["Call Received"]) < NOW - timedelta(hours=3)]
    cancelled = sum(1 for r in done if not r["On Scene"] and not r["Cleared"])
    no_en_route = sum(1 for r in done if not r["En Route"])
    no_on_scene = sum(1 for r in done if not r["On Scene"] and r["Cleared"])
    assert 0.02 <= cancelled / len(done) <= 0.04
    assert 0.012 <= no_en_route / len(done) <= 0.03
    assert 0 < no_on_scene / len(done) <= 0.015

    def seconds(r, a, b):
        return _elapsed(_ts(r[a]), _ts(r[b])).total_seconds()

    for r in done:
        assert 30 <= seconds(r, "Call Received", "Dispatched") <= 120
        if r["En Route"]:
            assert 30 <= seconds(r, "Dispatched", "En Route") <= 150
        if r["On Scene"]:
            low, high = (180, 540) if r["Incident Type"] == "FIRE" else (240, 720)
            assert low <= seconds(r, "Dispatched", "On Scene") <= high
            if r["Cleared"]:
                assert 15 * 60 <= seconds(r, "On Scene", "Cleared") <= 90 * 60
    fire_p1 = [r for r in done if r["Incident Type"] == "FIRE" and r["Priority"] == "1" and r["On Scene"]]
    within = sum(1 for r in fire_p1 if seconds(r, "Dispatched", "On Scene") <= 320)
    assert within / len(fire_p1) >= 0.8
    ems = [seconds(r, "Dispatched", "On Scene") for r in done if r["Incident Type"] == "EMS" and r["On Scene"]]
    fire = [seconds(r, "Dispatched", "On Scene") for r in done if r["Incident Type"] == "FIRE" and r["On Scene"]]
    assert statistics.median(ems) > statistics.median(fire)

    # Today's file: only calls received so far; recent ones are still active (Cleared empty).
    today = _cad_rows(paths[-1])
    assert today and max(_ts(r["Call Received"]) for r in today) <= NOW
    active = [r for r in today if not r["Cleared"] and r["On Scene"]]
    assert active
    assert all(_ts(r["Call Received"]) >= NOW - timedelta(hours=3) for r in active)
    assert any(not r["Cleared"] for r in today if _ts(r["Call Received"]) >= NOW - timedelta(hours=2))


def test_cad_times_exist_on_the_daylight_saving_days():
    spring, fall = date(2026, 3, 8), date(2026, 11, 1)
    rows = list(csv.DictReader(io.StringIO(fire_dispatch.day_csv(spring, NOW).decode())))
    stamps = [r[c] for r in rows for c in ("Call Received", "Dispatched", "En Route", "On Scene", "Cleared") if r[c]]
    assert rows and not [s for s in stamps if s.startswith("2026-03-08 02:")]  # 02:00-02:59 never happened
    for r in rows:  # still within the stated bounds when measured in real time
        assert timedelta(seconds=30) <= _elapsed(_ts(r["Call Received"]), _ts(r["Dispatched"])) <= timedelta(seconds=120)
        if r["On Scene"] and r["Cleared"]:
            assert _elapsed(_ts(r["On Scene"]), _ts(r["Cleared"])) <= timedelta(minutes=90)
    crossing = [r for r in rows if r["Cleared"] and r["Call Received"] < "2026-03-08 02" < r["Cleared"]]
    assert crossing  # some calls span the skipped hour
    # the helper's spring-forward instant is right: it matches the zone database
    chicago = ZoneInfo("America/Chicago")
    before, after = datetime(2026, 3, 8, 1, 59, tzinfo=chicago), datetime(2026, 3, 8, 3, 0, tzinfo=chicago)
    assert after.astimezone(timezone.utc) - before.astimezone(timezone.utc) == _elapsed(before.replace(tzinfo=None), after.replace(tzinfo=None))
    assert len(rows) < len(list(csv.DictReader(io.StringIO(fire_dispatch.day_csv(fall, NOW).decode()))))


def test_cad_later_the_same_day_only_today_grows(year, tmp_path):
    folder, paths = year["fire_dispatch"]
    before = _contents(folder)
    later = NOW.replace(hour=18)
    fire_dispatch.write_drops(tmp_path, later)
    after = _contents(tmp_path)
    today = paths[-1].name
    assert _changed(before, after) == {today}
    old, new = _cad_rows(paths[-1]), _cad_rows(tmp_path / today)
    assert len(new) > len(old)
    assert [r["Incident Number"] for r in new[: len(old)]] == [r["Incident Number"] for r in old]
    settled = [r for r in old if _ts(r["Call Received"]) < NOW - timedelta(hours=3)]
    assert settled and new[: len(settled)] == settled
    for o, n in zip(old, new):  # times only get filled in, never change
        for column, value in o.items():
            assert value == n[column] or value == ""


def test_cad_next_day_adds_a_file_and_freezes_yesterday(year, tmp_path):
    folder, paths = year["fire_dispatch"]
    before = _contents(folder)
    tomorrow = NOW + timedelta(days=1)
    new_paths = fire_dispatch.write_drops(tmp_path, tomorrow)
    after = _contents(tmp_path)
    assert new_paths[-1].name == f"cad_incidents_{tomorrow:%Y-%m-%d}.csv"
    assert _changed(before, after) == {paths[-1].name}
    assert len(_cad_rows(tmp_path / paths[-1].name)) > len(_cad_rows(paths[-1]))
    assert all(r["Cleared"] or not r["On Scene"] for r in _cad_rows(tmp_path / paths[-1].name))


# ----------------------------------------------------------------------------- DNS

DNS_HEADER = ("Order Number", "Violation Type", "Issued", "Compliance Due", "Complied Date", "Status",
              "Address", "Aldermanic District")
DNS_STATUSES = {"OPEN", "COMPLIED", "REFERRED TO CITY ATTORNEY", "CLOSED - NO ACCESS"}


def _monday(path: Path) -> date:
    year_, week = re.fullmatch(r"dns_orders_(\d{4})-W(\d{2})\.xlsx", path.name).groups()
    return date.fromisocalendar(int(year_), int(week), 1)


def _dns_orders(path: Path) -> list[tuple]:
    return [r for r in _xlsx_rows(path, "Orders", 4) if any(v is not None for v in r)]


def test_dns_workbooks_layout(year):
    _, paths = year["code_enforcement"]
    mondays = [_monday(p) for p in paths]
    assert mondays == sorted(mondays) and len(mondays) >= 53
    assert all(b - a == timedelta(weeks=1) for a, b in zip(mondays, mondays[1:]))
    assert mondays[0] <= NOW.date() - timedelta(days=365) and mondays[-1] == NOW.date() - timedelta(days=NOW.weekday())
    blank_rows = 0
    for path, monday in zip(paths, mondays):
        wb = openpyxl.load_workbook(path)
        assert wb.sheetnames == ["Orders"]
        ws = wb["Orders"]
        assert [str(r) for r in ws.merged_cells.ranges] == ["A1:H1"]
        assert ws["A1"].value == f"Department of Neighborhood Services - Orders Issued, Week of {monday:%Y-%m-%d}"
        assert all(c.value is None for c in ws[2])
        assert tuple(c.value for c in ws[3]) == DNS_HEADER
        rows = list(ws.iter_rows(min_row=4))
        blank_rows += sum(1 for r in rows if all(c.value is None for c in r))
        for r in rows:
            if all(c.value is None for c in r):
                continue
            assert r[2].is_date and r[3].is_date and isinstance(r[7].value, int)
            assert r[4].value is None or r[4].is_date
    assert blank_rows >= 10


def test_dns_invariants_and_volumes(year):
    _, paths = year["code_enforcement"]
    numbers, counts, stray, text_values = set(), [], 0, 0
    complied = on_time = old_orders = 0
    for path in paths:
        monday = _monday(path)
        orders = _dns_orders(path)
        if monday + timedelta(days=7) <= NOW.date():
            counts.append(len(orders))
        for number, violation, issued, due, complied_on, status, addr, district in orders:
            assert re.fullmatch(r"ORD-\d{8}", number) and number[4:6] == f"{issued:%y}"
            assert number not in numbers
            numbers.add(number)
            assert monday <= issued.date() < monday + timedelta(days=7) and issued <= NOW
            assert (due - issued).days in (14, 30, 60)
            assert violation.strip() in code_enforcement.VIOLATIONS
            assert status.strip() in DNS_STATUSES
            assert district in range(1, 16)
            assert (complied_on is not None) == (status.strip() == "COMPLIED")
            if complied_on is not None:
                assert issued < complied_on <= NOW
            for text in (violation, status, addr):
                text_values += 1
                stray += text != text.strip()
            if monday + timedelta(weeks=12) <= NOW.date():
                old_orders += 1
                if complied_on is not None:
                    complied += 1
                    on_time += complied_on <= due
    assert min(counts) >= 120 and max(counts) <= 180
    assert 0.01 <= stray / text_values <= 0.03
    assert 0.55 <= complied / old_orders <= 0.65
    assert 0.62 <= on_time / complied <= 0.78
    statuses = Counter(r[5].strip() for p in paths[:-10] for r in _dns_orders(p))
    assert set(statuses) == DNS_STATUSES


def test_dns_later_the_same_day_only_the_current_week_grows(year, tmp_path):
    folder, paths = year["code_enforcement"]
    before = _contents(folder)
    code_enforcement.write_drops(tmp_path, NOW.replace(hour=16, minute=45))
    assert _changed(before, _contents(tmp_path)) == {paths[-1].name}
    old, new = _dns_orders(paths[-1]), _dns_orders(tmp_path / paths[-1].name)
    assert len(new) > len(old) and new[: len(old)] == old


def test_dns_next_week_resends_only_the_last_eight_weeks(year, tmp_path):
    folder, paths = year["code_enforcement"]
    before = _contents(folder)
    later = NOW + timedelta(days=7)
    new_paths = code_enforcement.write_drops(tmp_path, later)
    after = _contents(tmp_path)
    changed = _changed(before, after)
    recent = {p.name for p in paths if _monday(p) > NOW.date() - timedelta(weeks=8)}
    assert len(recent) == 8
    assert paths[-1].name in changed and changed <= recent
    assert len(changed) >= 3  # statuses of recent weeks moved on
    assert new_paths[-1].name not in before and _dns_orders(new_paths[-1])
    for name in changed:  # same orders, statuses only move forward
        old, new = _dns_orders(folder / name), _dns_orders(tmp_path / name)
        assert [r[0] for r in new[: len(old)]] == [r[0] for r in old]
        for o, n in zip(old, new):
            assert o[:4] == n[:4] and o[6:] == n[6:]
            if o[5].strip() == "COMPLIED":
                assert n[4] == o[4] and n[5] == o[5]


# ----------------------------------------------------------------------------- lead

LEAD_HEADER = "Month,ZIP Code,Age Group,Children Tested,Children Elevated (>=3.5 ug/dL),Notes"


def _lead_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="cp1252") as fh:
        return list(csv.DictReader(fh))


def test_lead_files_format_and_encoding(year):
    _, paths = year["lead_testing"]
    months = [p.name[len("lead_tests_"):-len(".csv")] for p in paths]
    assert len(months) >= 13 and months[-1] == f"{NOW:%Y-%m}" and months[0] <= f"{NOW - timedelta(days=365):%Y-%m}"
    not_utf8 = 0
    non_ascii_notes = set()
    for path, month in zip(paths, months):
        raw = path.read_bytes()
        text = raw.decode("cp1252")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            not_utf8 += 1
        assert raw.count(b"\n") == raw.count(b"\r\n") and raw.endswith(b"\r\n")
        lines = text.split("\r\n")[:-1]
        assert lines[0] == LEAD_HEADER
        for line, row in zip(lines, csv.reader(io.StringIO(text))):  # minimal quoting
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow(row)
            assert buf.getvalue() == line
        rows = _lead_rows(path)
        assert len(rows) == 26 * 3
        assert {(r["ZIP Code"], r["Age Group"]) for r in rows} == {
            (z, a) for z in drops.ZIP_CODES for a in ("Under 1", "1-2 years", "3-5 years")}
        assert all(r["Month"] == month for r in rows)
        non_ascii_notes |= {r["Notes"] for r in rows if not r["Notes"].isascii()}
    assert not_utf8 >= 2
    assert "Données partielles – laboratoire" in non_ascii_notes
    assert {"Müller Clinic reporting lag", "µg/dL confirmed by venous test"} & non_ascii_notes
    empty_notes = sum(1 for p in paths[:-1] for r in _lead_rows(p) if not r["Notes"])
    assert empty_notes / (78 * (len(paths) - 1)) > 0.9


def test_lead_counts_are_plausible(year):
    _, paths = year["lead_testing"]
    north, other = [0, 0], [0, 0]
    zeros = 0
    by_age = Counter()
    for path in paths[:-1]:
        for r in _lead_rows(path):
            tested, elevated = int(r["Children Tested"]), int(r["Children Elevated (>=3.5 ug/dL)"])
            assert 0 <= elevated <= tested <= 120
            zeros += tested == 0
            by_age[r["Age Group"]] += tested
            bucket = north if r["ZIP Code"] in lead_testing.NORTH_SIDE else other
            bucket[0] += tested
            bucket[1] += elevated
    assert zeros >= 3
    assert by_age["1-2 years"] > by_age["3-5 years"] > 0 and by_age["1-2 years"] > by_age["Under 1"] > 0
    assert 0.08 <= north[1] / north[0] <= 0.15
    assert 0.01 <= other[1] / other[0] <= 0.04
    per_zip = Counter()
    for r in _lead_rows(paths[-2]):
        per_zip[r["ZIP Code"]] += int(r["Children Tested"])
    assert min(per_zip[z] for z in lead_testing.NORTH_SIDE) > statistics.median(per_zip.values())


def test_lead_current_month_grows_then_completes(year, tmp_path):
    folder, paths = year["lead_testing"]
    before = _contents(folder)
    current = paths[-1].name

    lead_testing.write_drops(tmp_path / "later", NOW + timedelta(hours=6))
    assert _changed(before, _contents(tmp_path / "later")) == {current}

    nxt = datetime(2026, 12, 3, 9, 0)
    lead_testing.write_drops(tmp_path / "next", nxt)
    after = _contents(tmp_path / "next")
    assert _changed(before, after) == {current}
    assert "lead_tests_2026-12.csv" in after
    old, new = _lead_rows(paths[-1]), _lead_rows(tmp_path / "next" / current)
    assert sum(int(r["Children Tested"]) for r in new) > sum(int(r["Children Tested"]) for r in old)
    for o, n in zip(old, new):
        assert int(n["Children Tested"]) >= int(o["Children Tested"])
        assert int(n["Children Elevated (>=3.5 ug/dL)"]) >= int(o["Children Elevated (>=3.5 ug/dL)"])
    assert not any("partielles" in r["Notes"] for r in new)


# ----------------------------------------------------------------------------- registry

REGISTRY_HEADER = ("Priority", "Department", "Activity", "Measure Code", "Measure Name", "Definition", "Unit",
                   "Direction", "Frequency", "Target")


def test_registry_layout(year):
    _, paths = year["aim_registry"]
    assert [p.name for p in paths] == ["aim_registry.xlsx"]
    wb = openpyxl.load_workbook(paths[0])
    assert wb.sheetnames == ["Registry"]
    ws = wb["Registry"]
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert merged == {"A1:K1", "J3:K3"} | {f"{c}3:{c}4" for c in "ABCDEFGHI"}
    assert ws["A1"].value == "City of Milwaukee - Accountability in Management (AIM) Measure Registry"
    assert all(c.value is None for c in ws[2])
    assert tuple(c.value for c in ws[3])[:10] == REGISTRY_HEADER and ws["K3"].value is None
    assert tuple(c.value for c in ws[4]) == (None,) * 9 + ("Fiscal Year", "Value")

    rows = list(ws.iter_rows(min_row=5, values_only=True))
    blanks = [i for i, r in enumerate(rows) if all(v is None for v in r)]
    data = [r for r in rows if any(v is not None for v in r)]
    assert len(blanks) == 3 and rows[0] is not None and any(v is not None for v in rows[-1])
    # each blank row separates two priority groups
    for i in blanks:
        assert rows[i - 1][0] != rows[i + 1][0]
    assert len({r[3].strip() for r in data}) >= 12
    assert {r[0] for r in data} == set(aim_registry.PRIORITIES)
    assert {r[1].strip() for r in data} >= {"Police", "Fire", "Public Works", "Neighborhood Services", "Health"}
    assert {r[1].strip() for r in data} <= set(aim_registry.DEPARTMENTS)
    assert {r[6].strip() for r in data} <= {"count", "percent", "rate", "minutes", "days"}
    assert {r[7].strip() for r in data} == {"Higher is better", "Lower is better"}
    assert {r[8].strip() for r in data} == {"Monthly"}
    assert all(isinstance(r[9], int) for r in data)
    assert all(r[10] is None or isinstance(r[10], (int, float)) for r in data)
    stray = [v for r in data for v in r if isinstance(v, str) and v != v.strip()]
    assert " Police " in stray and "Lower is better " in stray
    years = Counter(r[9] for r in data)
    assert years == {2025: len(data) // 2, 2026: len(data) // 2}
    assert sorted((r[3], r[9]) for r in data) == sorted({(r[3], r[9]) for r in data})  # one row per measure/year
    assert sum(1 for r in data if r[10] is None) == 1
    assert all(r[5].endswith(".") and len(r[5]) > 30 for r in data)


def test_registry_changes_only_with_the_fiscal_year(year, tmp_path):
    folder, paths = year["aim_registry"]
    snapshot = _snapshot(paths)
    assert aim_registry.write_drops(folder, datetime(2026, 12, 31, 23, 0)) == paths
    assert _snapshot(paths) == snapshot  # same fiscal year: not rewritten

    aim_registry.write_drops(tmp_path, datetime(2027, 1, 2, 8, 0))
    new = tmp_path / "aim_registry.xlsx"
    assert new.read_bytes() != paths[0].read_bytes()
    data = [r for r in _xlsx_rows(new, "Registry", 5) if any(v is not None for v in r)]
    assert {r[9] for r in data} == {2026, 2027}
    assert sum(1 for r in data if r[10] is None) == 1


# ----------------------------------------------------------------------------- S3

def test_upload_folder_sends_only_changed_files(tmp_path):
    from aim_demo.s3_server import start_s3_server

    source = tmp_path / "drops"
    for name, module in GENERATORS.items():
        module.write_drops(source / name, NOW, days=20)
    files = drops.list_files(source)
    (source / ".partial.tmp").write_bytes(b"ignored")

    with start_s3_server(tmp_path / "s3") as server:
        s3 = server.client()
        assert drops.upload_folder(source, s3, "aim-landing", "demo/") == len(files)  # bucket created
        keys = drops.list_objects(s3, "aim-landing", "demo")
        assert keys == sorted(f"demo/{p.relative_to(source).as_posix()}" for p in files)
        cad = f"demo/fire_dispatch/cad_incidents_{NOW:%Y-%m-%d}.csv"
        obj = s3.get_object(Bucket="aim-landing", Key=cad)
        assert obj["Body"].read() == (source / "fire_dispatch" / cad.rsplit("/", 1)[1]).read_bytes()
        assert obj["Metadata"]["sha256"] == sha256_file(source / "fire_dispatch" / cad.rsplit("/", 1)[1])

        assert drops.upload_folder(source, s3, "aim-landing", "demo/") == 0  # nothing changed

        later = NOW + timedelta(hours=1)
        before = {p: p.read_bytes() for p in files}
        for name, module in GENERATORS.items():
            module.write_drops(source / name, later, days=20)
        changed = [p for p in files if p.read_bytes() != before[p]]
        assert changed  # at least today's CAD file and this week's DNS workbook
        assert drops.upload_folder(source, s3, "aim-landing", "demo") == len(changed)
        assert drops.upload_folder(source, s3, "aim-landing", "demo") == 0


def test_make_airflow_ui_starts_airflow_from_this_environment_without_an_activated_venv():
    """`airflow standalone` starts its scheduler, API server and the rest as `airflow ...` processes
    found on PATH: from a shell that has not activated the virtual environment they were not found
    (FileNotFoundError: 'airflow'). The environment `make airflow-ui` gives it finds this one's."""
    from aim_demo.__main__ import standalone_environment

    env = standalone_environment({**os.environ, "PATH": "/usr/bin:/bin"})  # a fresh shell's PATH

    result = subprocess.run(["airflow", "version"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    import airflow

    assert result.stdout.strip().splitlines()[-1] == airflow.__version__
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
