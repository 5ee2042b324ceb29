"""The bad-input corpus: broken deliveries of every kind, each with the outcome it must produce.

Each case is something a department really sends on a bad day. The outcome is one of:
- `failed`: the run fails with a message naming the source, the file (or page) and the reason;
- `quarantined`: the quality gate stops the batch, naming the check; nothing reaches core;
- `rejected`: row-level rules set the bad rows aside in ops.rejected_row; the rest loads;
- `warning`: the batch loads and the quality gate records a warning;
- `loaded`: the input is unusual but valid, and loads as it should.
Never a crash without a message; never a bad row in core. Real servers throughout: PostgreSQL,
a SeaweedFS S3 server (fire CAD and health lab drops), a folder of workbooks (DNS), and the
311 call center's HTTP server.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math

import openpyxl
import pytest

from aim import db
from aim.dag_builders.ingest import build_ingest_dag
from aim.settings import sources_dir
from aim.sources import load_source_config
from aim_demo.databases import query
from aim_demo import code_enforcement, fire_dispatch, lead_testing
from aim_demo.call_center import CallCenterServer
from aim_demo.drops import upload_folder
from aim_demo.s3_server import start_s3_server
from aim_demo.systems import aws_connection, folder_connection, http_connection
from test_hostile_files import with_shared_strings

pytestmark = pytest.mark.clock  # the corpus builds its history relative to the suite's today

CAD = "mfd-cad-landing"
FIRE = load_source_config(sources_dir() / "mfd_dispatch_incidents.yaml")


def baseline_now(today: dt.date) -> dt.datetime:
    """The corpus's calendar: the baseline history ends late on the day six days before the suite's
    `today`; the days after it are free for new-day cases."""
    return dt.datetime.combine(today - dt.timedelta(days=6), dt.time(23, 59))


class City:
    """The demo systems and the warehouse, with the corpus's calendar (`base_now`, its day `d0`)."""

    def __init__(self, warehouse, s3, drops, landing, call_center, today):
        self.warehouse, self.s3, self.drops, self.landing, self.call_center = warehouse, s3, drops, landing, call_center
        self.today = today
        self.base_now = baseline_now(today)
        self.d0 = self.base_now.date()

    def day(self, n):
        """A baseline day, distinct per case."""
        return self.d0 - dt.timedelta(days=n)

    def query(self, statement, params=None):
        return query(self.warehouse, statement, params)

    def run(self, source):
        dag_run = build_ingest_dag(load_source_config(sources_dir() / f"{source}.yaml")).test()
        (row,) = self.query(
            "SELECT status, message, rows_extracted, rows_rejected, rows_loaded, batch_id, warnings "
            "FROM ops.run_log WHERE source = %s AND run_id = %s", (source, dag_run.run_id))
        return dict(zip(("status", "message", "extracted", "rejected", "loaded", "batch_id", "warnings"), row))

    def core(self, source):
        return self.query(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                          f"FROM core.{source} t")[0]

    def failed_checks(self, batch_id, severity):
        return {r[0] for r in self.query(
            "SELECT expectation FROM ops.quality_result WHERE batch_id = %s AND NOT success AND severity = %s",
            (batch_id, severity))}

    def failed_rules(self, batch_id, severity="critical"):
        """The failed checks of a batch by what they say (description, else the expectation and column)."""
        return {r[0] for r in self.query(
            "SELECT coalesce(nullif(description, ''), expectation || ' on ' || coalesce(column_name, '-')) "
            "FROM ops.quality_result WHERE batch_id = %s AND NOT success AND severity = %s",
            (batch_id, severity))}

    def daily_history(self, day):
        """Rows per day in core over the volume check's lookback before `day` (what the gate compares with)."""
        volume = FIRE.quality.volume
        return [n for (n,) in self.query(
            "SELECT count(*) FROM core.mfd_dispatch_incidents WHERE call_received_at >= %s AND call_received_at < %s "
            "GROUP BY call_received_at::date", (day - dt.timedelta(days=volume.lookback_days), day))]

    def new_day_rows(self, day):
        """The CAD file the demo system would send for a day after the baseline, as rows."""
        data = fire_dispatch.day_csv(day, self.base_now + dt.timedelta(days=(day - self.d0).days + 1))
        return list(csv.reader(io.StringIO(data.decode(), newline="")))

    def forget_day(self, day):
        """Undo a new-day case: the file leaves the drop, its rows leave core."""
        self.delete_cad(day)
        with db.transaction(self.warehouse) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM core.mfd_dispatch_incidents WHERE call_received_at::date = %s", (day,))

    # --- fire CAD drops in S3 -------------------------------------------------------------------
    def cad_rows(self, day):
        text = (self.drops / "cad" / fire_dispatch.FILE_PATTERN.format(day)).read_text(encoding="utf-8")
        return list(csv.reader(io.StringIO(text, newline="")))

    def put_cad(self, day, data: bytes):
        self.s3.client().put_object(Bucket=CAD, Key=f"cad/{fire_dispatch.FILE_PATTERN.format(day)}", Body=data)

    def restore_cad(self, day):
        self.put_cad(day, (self.drops / "cad" / fire_dispatch.FILE_PATTERN.format(day)).read_bytes())

    def delete_cad(self, day):
        self.s3.client().delete_object(Bucket=CAD, Key=f"cad/{fire_dispatch.FILE_PATTERN.format(day)}")


def as_csv(rows, encoding="utf-8", delimiter=","):
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n", delimiter=delimiter).writerows(rows)
    return out.getvalue().encode(encoding)


@pytest.fixture(scope="module")
def city(new_database, airflow_db, tmp_path_factory, today):
    root = tmp_path_factory.mktemp("corpus")
    drops, landing = root / "drops", root / "landing"
    base_now = baseline_now(today)
    fire_dispatch.write_drops(drops / "cad", base_now, days=20)
    lead_testing.write_drops(drops / "lead", base_now, days=40)
    code_enforcement.write_drops(landing / "dns" / "orders", base_now, days=14)
    warehouse = new_database("aim_wh")
    with start_s3_server(root / "s3") as s3, CallCenterServer(now=base_now, days=20) as call_center, \
            pytest.MonkeyPatch.context() as env:
        upload_folder(drops / "cad", s3.client(), CAD, "cad")
        upload_folder(drops / "lead", s3.client(), "mhd-lab-landing", "lead")
        for name, value in {
            "AIM_WAREHOUSE_URL": warehouse, "AIM_EXPORT_URL": str(root / "exports"),
            "AIRFLOW_CONN_MFD_CAD_LANDING": aws_connection(s3), "AIRFLOW_CONN_MHD_LAB_LANDING": aws_connection(s3),
            "AIRFLOW_CONN_DNS_ORDERS_DROP": folder_connection(landing),
            "AIRFLOW_CONN_CALL_CENTER_API": http_connection(call_center.base_url),
        }.items():
            env.setenv(name, value)
        city = City(warehouse, s3, drops, landing, call_center, today)
        for source in ("mfd_dispatch_incidents", "mhd_lead_tests", "dns_code_enforcement_orders",
                       "dpw_service_requests"):
            assert city.run(source)["status"] == "success", source
        yield city


# ---- files that cannot be read: the run fails, naming the file and the reason ------------------

def _unbalanced_quote(rows):
    """Minimal quoting, and one address that opens a quote no one closes."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    at = rows[0].index("Address")
    return out.getvalue().replace(f",{rows[1][at]},", f',"{rows[1][at]},', 1).encode()


@pytest.mark.parametrize("case, make, expected", [
    ("empty file", lambda rows: b"", "is empty"),
    ("missing column", lambda rows: as_csv([r[:2] + r[3:] for r in rows]), "Priority"),
    ("renamed column", lambda rows: as_csv([["Call Recieved" if c == "Call Received" else c for c in rows[0]]] + rows[1:]),
     "Call Received"),
    ("wrong delimiter", lambda rows: as_csv(rows, delimiter=";"), "delimiter"),
    ("truncated last line", lambda rows: as_csv(rows)[:-40], "line"),
    ("unbalanced quote", lambda rows: _unbalanced_quote(rows), "unbalanced quote"),
    ("binary garbage named .csv", lambda rows: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "not a text CSV"),
])
def test_unreadable_file_fails_the_run_and_names_it(city, case, make, expected):
    day = city.day(2)
    before = city.core("mfd_dispatch_incidents")
    city.put_cad(day, make(city.cad_rows(day)))
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.restore_cad(day)
    assert log["status"] == "failed", case
    assert fire_dispatch.FILE_PATTERN.format(day) in log["message"] and expected in log["message"], log["message"]
    assert "mfd_dispatch_incidents" in log["message"]
    assert city.core("mfd_dispatch_incidents") == before


# ---- batches the quality gate stops: quarantined, nothing reaches core ---------------------------

def _duplicate_key(rows, city):
    return rows + [rows[1]]


def _shifted(row, columns, delta):
    """The row with the named timestamp columns moved by `delta` (so their order is kept)."""
    out = list(row)
    for column in columns:
        at = fire_dispatch.HEADER.index(column)
        out[at] = (dt.datetime.fromisoformat(out[at]) + delta).isoformat(sep=" ")
    return out


def _cleared_in_the_future(rows, city):
    """Three incidents of a past day whose clear time was typed a month ahead: nothing else is wrong
    with them (each time still follows the one before)."""
    ahead = dt.datetime.combine(city.today + dt.timedelta(days=30), dt.time(10)) \
        - dt.datetime.fromisoformat(rows[1][fire_dispatch.HEADER.index("Cleared")])
    return [rows[0]] + [_shifted(r, ["Cleared"], ahead) if i < 3 else r for i, r in enumerate(rows[1:])]


def _received_in_the_future(rows, city):
    """Three incidents whose every time lies a month ahead (a wrong year on the dispatcher's clock)."""
    times = ["Call Received", "Dispatched", "En Route", "On Scene", "Cleared"]
    return [rows[0]] + [_shifted(r, times, dt.timedelta(days=(city.today - city.day(3)).days + 30)) if i < 3 else r
                        for i, r in enumerate(rows[1:])]


@pytest.mark.parametrize("case, make, rule, alone", [
    ("duplicate keys", _duplicate_key, "expect_column_values_to_be_unique on incident_number", True),
    ("cleared in the future", _cleared_in_the_future, "cleared_at is not in the future (Milwaukee local time)", True),
    # the calls move to a day after the baseline: the days between are missing too, which the gate also reports
    ("received in the future", _received_in_the_future, "call_received_at is not in the future (Milwaukee local time)",
     False),
])
def test_bad_batch_is_quarantined(city, case, make, rule, alone):
    day = city.day(3)
    before = city.core("mfd_dispatch_incidents")
    city.put_cad(day, as_csv(make(city.cad_rows(day), city)))
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.restore_cad(day)
    assert log["status"] == "failed"
    failed = city.failed_rules(log["batch_id"])
    assert rule in failed, f"{case}: the rule that should stop the batch did not fire; failed: {failed}"
    if alone:
        assert failed == {rule}, f"{case}: only {rule!r} should fail, got {failed}"
    assert log["batch_id"] in log["message"]
    assert city.query("SELECT status FROM ops.batch WHERE batch_id = %s", (log["batch_id"],)) == [("quarantined",)]
    assert city.core("mfd_dispatch_incidents") == before


def test_volume_spike_far_above_history_is_quarantined(city):
    day = city.d0 + dt.timedelta(days=1)  # the first day after the baseline, so no day goes missing
    rows = city.new_day_rows(day)
    history = city.daily_history(day)
    assert len(history) >= 7, "the volume check needs a week of history to judge a day"
    # copies enough that the day is many times the history's BUSIEST day, so past any typical day
    copies = math.ceil(3 * FIRE.quality.volume.spike_factor * max(history) / (len(rows) - 1))
    spiked = [rows[0]] + [[f"{r[0]}{k}", *r[1:]] for k in range(copies) for r in rows[1:]]
    before = city.core("mfd_dispatch_incidents")
    city.put_cad(day, as_csv(spiked))
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.forget_day(day)
    assert log["status"] == "failed"
    assert "aim:daily_volume_spike" in city.failed_checks(log["batch_id"], "critical")
    assert city.core("mfd_dispatch_incidents") == before


# ---- rows the row-level rules set aside; the rest of the batch loads -----------------------------

def _with(rows, column, value, count=1):
    at = rows[0].index(column)
    return [rows[0]] + [[*r[:at], value, *r[at + 1:]] if i < count else r for i, r in enumerate(rows[1:])]


@pytest.mark.parametrize("case, column, value, rule", [
    ("unparseable date", "Call Received", "yesterday at noon", "call_received_at casts to timestamp"),
    ("10 MB single field", "Address", "1" * 10_000_000, "address is at most 1000 characters"),
])
def test_bad_rows_are_set_aside_and_the_rest_loads(city, case, column, value, rule):
    day = city.day(4)
    rows = city.cad_rows(day)
    city.put_cad(day, as_csv(_with(rows, column, value)))
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.restore_cad(day)
    assert log["status"] == "success", log["message"]
    assert log["rejected"] == 1 and log["extracted"] == len(rows) - 1
    (row_rule, row_data) = city.query(
        "SELECT rule, row_data FROM ops.rejected_row WHERE batch_id = %s", (log["batch_id"],))[0]
    assert row_rule == rule and row_data["incident_number"] == rows[1][0]
    stored = city.query("SELECT count(*) FROM core.mfd_dispatch_incidents WHERE length(address) > 1000")
    assert stored == [(0,)]


def test_text_and_negative_numbers_in_counts_are_set_aside(city):
    month = city.d0.replace(day=1)
    path = city.drops / "lead" / lead_testing.FILE_PATTERN.format(month)
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("cp1252"), newline="")))
    rows[1][3], rows[2][4] = "twelve", "-3"
    key = f"lead/{path.name}"
    city.s3.client().put_object(Bucket="mhd-lab-landing", Key=key, Body=as_csv(rows, "cp1252"))
    try:
        log = city.run("mhd_lead_tests")
    finally:
        city.s3.client().put_object(Bucket="mhd-lab-landing", Key=key, Body=path.read_bytes())
    assert log["status"] == "success", log["message"]
    assert log["rejected"] == 2
    assert {r[0] for r in city.query("SELECT rule FROM ops.rejected_row WHERE batch_id = %s", (log["batch_id"],))} == {
        "children_tested casts to integer", "children_elevated is a whole number, not negative"}, \
        "text in a count is set aside by the generated cast rule, a negative count by the suite's rule"


# ---- unusual but valid input: loads, with a warning where someone should look --------------------

def test_extra_column_loads_and_is_reported(city):
    day = city.day(5)
    rows = city.cad_rows(day)
    city.put_cad(day, as_csv([r + (["Dispatcher"] if i == 0 else ["D. Smith"]) for i, r in enumerate(rows)]))
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.restore_cad(day)
    assert log["status"] == "success", log["message"]
    assert log["loaded"] == 0  # the same incidents, unchanged
    assert "aim:file_extra_columns" in city.failed_checks(log["batch_id"], "warning")
    assert "dispatcher" not in {c[0] for c in city.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'mfd_dispatch_incidents'")}


def test_header_only_file_loads_nothing_and_is_reported(city):
    day = city.day(6)
    city.put_cad(day, as_csv(city.cad_rows(day)[:1]))
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.restore_cad(day)
    assert log["status"] == "success" and log["extracted"] == 0
    assert "aim:file_has_rows" in city.failed_checks(log["batch_id"], "warning")


def test_volume_drop_far_below_history_is_a_warning(city):
    day = city.d0 + dt.timedelta(days=1)  # the first day after the baseline
    rows = city.new_day_rows(day)
    history = city.daily_history(day)
    assert len(history) >= 7, "the volume check needs a week of history to judge a day"
    # fewer calls than a share of the QUIETEST day in the history, so under that share of any typical day
    keep = math.floor(FIRE.quality.volume.drop_share * min(history) / 2)
    assert keep >= 1, f"the history's quietest day ({min(history)} calls) is too quiet to build this case"
    city.put_cad(day, as_csv(rows[: 1 + keep]))
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.forget_day(day)
    assert log["status"] == "success", log["message"]
    assert "aim:daily_volume_drop" in city.failed_checks(log["batch_id"], "warning")
    assert log["warnings"] >= 1


def test_cp1252_file_with_non_ascii_names_loads_them_correctly(city):
    day = city.day(7)
    rows = _with(city.cad_rows(day), "Address", "2846 N PEÑA ST")
    city.put_cad(day, as_csv(rows, "cp1252"))
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.restore_cad(day)
    assert log["status"] == "success", log["message"]
    assert city.query("SELECT address FROM core.mfd_dispatch_incidents WHERE incident_number = %s",
                      (rows[1][0],)) == [("2846 N PEÑA ST",)]


def test_sql_injection_strings_are_stored_verbatim_and_never_run(city):
    day = city.day(8)
    attack = "1 N 1ST ST'); DROP TABLE core.mfd_dispatch_incidents; --"
    rows = _with(_with(city.cad_rows(day), "Address", attack), "Incident Type", "EMS")
    city.put_cad(day, as_csv(rows))
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.restore_cad(day)
    assert log["status"] == "success", log["message"]
    assert city.query("SELECT address FROM core.mfd_dispatch_incidents WHERE incident_number = %s",
                      (rows[1][0],)) == [(attack,)]


def test_same_file_delivered_twice_is_loaded_once(city):
    day = city.day(9)
    city.restore_cad(day)  # the department's transfer job sends the same bytes again
    log = city.run("mfd_dispatch_incidents")
    assert log["status"] == "success" and (log["extracted"], log["loaded"]) == (0, 0)
    assert city.query("SELECT count(*) FROM ops.source_file WHERE file_key = %s",
                      (fire_dispatch.FILE_PATTERN.format(day),)) == [(1,)]


def test_workbook_with_the_data_on_the_second_sheet_loads(city):
    folder = city.landing / "dns" / "orders"
    source = sorted(folder.glob("*.xlsx"))[0]
    book = openpyxl.load_workbook(source)
    cover = book.create_sheet("Read me", 0)
    cover["A1"] = "Orders are on the next sheet."
    book["Orders"]["B4"] = "BROKEN WINDOW"  # and one change, so something moves
    target = folder / "dns_orders_resent.xlsx"
    book.save(target)
    try:
        log = city.run("dns_code_enforcement_orders")
    finally:
        target.unlink()
    assert log["status"] == "success", log["message"]
    assert log["loaded"] == 1


# ---- hostile files: refused before they are parsed, or never reached ------------------------------

def test_zip_bomb_workbook_fails_the_run_naming_the_file_and_the_limit(city):
    """A weekly workbook with a 60 MiB shared strings part packed into ~60 KB: refused from the
    zip's directory before openpyxl parses anything; the run fails like any unreadable file."""
    folder = city.landing / "dns" / "orders"
    before = city.core("dns_code_enforcement_orders")
    bomb = with_shared_strings(folder / "dns_orders_bomb.xlsx", sorted(folder.glob("*.xlsx"))[0], 60)
    try:
        log = city.run("dns_code_enforcement_orders")
    finally:
        bomb.unlink()
    assert log["status"] == "failed"
    assert "dns_code_enforcement_orders" in log["message"], log["message"]
    assert "dns_orders_bomb.xlsx: zip member xl/sharedStrings.xml expands" in log["message"], log["message"]
    assert "above the limit of 100:1 (max_compression_ratio)" in log["message"], log["message"]
    assert city.core("dns_code_enforcement_orders") == before


def test_workbook_linked_from_outside_the_drop_folder_is_never_read(city, tmp_path):
    folder = city.landing / "dns" / "orders"
    book = openpyxl.load_workbook(sorted(folder.glob("*.xlsx"))[0])
    book["Orders"]["B4"] = "PLANTED FROM OUTSIDE"
    outside = tmp_path / "dns_orders_planted.xlsx"
    book.save(outside)
    link = folder / "dns_orders_linked.xlsx"
    link.symlink_to(outside)
    try:
        log = city.run("dns_code_enforcement_orders")
    finally:
        link.unlink()
    assert log["status"] == "success", log["message"]
    assert (log["extracted"], log["loaded"]) == (0, 0), "the linked workbook is not in the drop"
    assert city.query("SELECT count(*) FROM core.dns_code_enforcement_orders "
                      "WHERE violation_type = 'PLANTED FROM OUTSIDE'") == [(0,)]


# ---- web API pages that are not the expected JSON: the run fails, nothing is merged --------------

@pytest.mark.parametrize("case, fault, expected", [
    ("HTML error page", ("html", 502), "HTML"),
    ("truncated page", ("truncated",), "invalid JSON"),
])
def test_bad_api_page_fails_the_run(city, case, fault, expected):
    before = city.core("dpw_service_requests")
    city.call_center.inject(*[fault] * 3)  # the first try and both retries
    log = city.run("dpw_service_requests")
    city.call_center.reset()
    assert log["status"] == "failed", case
    assert expected in log["message"] and "page 1" in log["message"], log["message"]
    assert city.core("dpw_service_requests") == before


# ---- a lost day: the gate fails the batch that would hide it -------------------------------------

def test_a_whole_missing_day_is_a_failure(city):
    missing, present = city.d0 + dt.timedelta(days=3), city.d0 + dt.timedelta(days=4)
    rows = fire_dispatch.day_csv(present, city.base_now + dt.timedelta(days=5))
    city.put_cad(present, rows)
    try:
        log = city.run("mfd_dispatch_incidents")
    finally:
        city.delete_cad(present)
    assert log["status"] == "failed"
    assert "aim:no_missing_day" in city.failed_checks(log["batch_id"], "critical")
    assert missing.isoformat() in log["message"]
