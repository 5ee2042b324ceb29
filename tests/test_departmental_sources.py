"""Every departmental source through Airflow (`dag.test()`), from its demo system to `core`.

Real servers throughout: PostgreSQL, the SeaweedFS S3 server holding the CAD and lab drops, the
311 call center's HTTP server, and folders of Excel workbooks. Expected counts are computed
here from the demo systems' own files and records, not by the platform's readers.
"""
from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest

from aim.dag_builders.ingest import build_ingest_dag
from aim.settings import sources_dir
from aim.sources import load_source_config
from aim_demo import call_center
from aim_demo.databases import libpq_dsn, query
from aim_demo.systems import demo_systems

NEW_SOURCES = ["bmo_aim_registry", "bmo_measure_commentary", "dns_code_enforcement_orders", "dpw_service_requests",
               "mfd_dispatch_incidents", "mhd_lead_tests"]


class Warehouse:
    def __init__(self, url: str):
        self.url = url
        self.first_runs: dict[str, tuple[str, dict, int]] = {}  # each source's first run: state, log, rows in core

    def query(self, statement: str, params=None):
        return query(self.url, statement, params)

    def run(self, source: str):
        dag_run = build_ingest_dag(load_source_config(sources_dir() / f"{source}.yaml")).test()
        (log,) = self.query(
            "SELECT status, rows_extracted, rows_loaded, message FROM ops.run_log WHERE source = %s AND run_id = %s",
            (source, dag_run.run_id),
        )
        return str(dag_run.state), dict(zip(("status", "extracted", "loaded", "message"), log))

    def fingerprint(self, source: str):
        return self.query(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM core.{source} t")[0]


@pytest.fixture(scope="module")
def now(clock) -> dt.datetime:
    """The demo systems' clock (Milwaukee wall time): four hours before the suite's, on the hour
    (in the past, since the suites refuse records from the future)."""
    return clock.replace(tzinfo=None, minute=0, second=0, microsecond=0) - dt.timedelta(hours=4)


@pytest.fixture(scope="module")
def later(now) -> dt.datetime:
    """Three hours after `now`: on some clocks (02:30 in Milwaukee) it is already the next day."""
    return now + dt.timedelta(hours=3)


@pytest.fixture(scope="module")
def city(new_database, s3_server, airflow_db, tmp_path_factory, now):
    """Every demo system at `now`, and a warehouse into which each source has run once."""
    state = tmp_path_factory.mktemp("city")
    warehouse, rms = new_database("aim_wh"), new_database("mpd_rms")
    with pytest.MonkeyPatch.context() as env:
        with demo_systems(state, libpq_dsn(rms), now, police_new=0, s3_server=s3_server) as connections:
            for name, value in connections.items():
                env.setenv(name, value)
            env.setenv("AIM_WAREHOUSE_URL", warehouse)
            env.setenv("AIM_EXPORT_URL", str(state / "exports"))
            helper = Warehouse(warehouse)
            expected = _expected_counts(state, now)
            for source in NEW_SOURCES:
                helper.first_runs[source] = (*helper.run(source), helper.fingerprint(source)[0])
            yield helper, state, rms, expected


def _csv_rows(path, encoding="utf-8"):
    with open(path, newline="", encoding=encoding) as f:
        return list(csv.DictReader(f))


def _expected_counts(state, now) -> dict[str, int]:
    drops = state / "drops"
    dns = 0
    for path in (state / "landing" / "dns" / "orders").glob("*.xlsx"):
        sheet = openpyxl.load_workbook(path, read_only=True)["Orders"]
        dns += sum(1 for row in sheet.iter_rows(min_row=4, values_only=True) if any(v is not None for v in row))
    registry = openpyxl.load_workbook(state / "landing" / "budget" / "aim_registry.xlsx", read_only=True)["Registry"]
    commentary = openpyxl.load_workbook(state / "landing" / "budget" / "aim_commentary.xlsx", read_only=True)["Commentary"]
    return {
        "mfd_dispatch_incidents": sum(len(_csv_rows(p)) for p in (drops / "mfd-cad").glob("*.csv")),
        "mhd_lead_tests": sum(len(_csv_rows(p, "cp1252")) for p in (drops / "mhd-lab").glob("*.csv")),
        "dpw_service_requests": sum(1 for _ in call_center.generate_requests(now)),
        "dns_code_enforcement_orders": dns,
        "bmo_aim_registry": sum(
            1 for row in registry.iter_rows(min_row=5, values_only=True) if any(v is not None for v in row)
        ),
        "bmo_measure_commentary": sum(1 for row in commentary.iter_rows(min_row=2, values_only=True) if any(row)),
    }


def test_every_source_loads_everything_its_system_holds(city):
    warehouse, state, _, expected = city
    assert expected["dpw_service_requests"] > 50_000 and expected["mfd_dispatch_incidents"] > 50_000

    for source in NEW_SOURCES:
        state_, log, rows_in_core = warehouse.first_runs[source]
        assert state_ == "success", f"{source}: {log['message']}"
        assert log["extracted"] == log["loaded"] == expected[source], source
        assert rows_in_core == expected[source], source


def test_values_arrive_typed_and_clean(city, now):
    warehouse, state, _, _ = city
    # cp1252 text decoded, stray spaces in the hand-edited registry trimmed, merged two-row header read
    assert warehouse.query("SELECT count(*) FROM core.mhd_lead_tests WHERE notes LIKE '%Données%'")[0][0] > 0
    assert warehouse.query("SELECT DISTINCT department FROM core.bmo_aim_registry WHERE department LIKE '%Police%'") \
        == [("Police",)]
    assert warehouse.query("SELECT min(target_fiscal_year), max(target_fiscal_year) FROM core.bmo_aim_registry") \
        == [(now.year - 1, now.year)]
    # Excel date cells become dates; HTTP JSON timestamps become timestamps
    assert warehouse.query("SELECT pg_typeof(issued_on)::text FROM core.dns_code_enforcement_orders LIMIT 1") == [("date",)]
    assert warehouse.query(
        "SELECT count(*) FROM core.dpw_service_requests WHERE status = 'CLOSED' AND closed_at < created_at"
    ) == [(0,)]
    # a CAD incident matches its line in the day's file
    day = now.date() - dt.timedelta(days=10)
    first = _csv_rows(state / "drops" / "mfd-cad" / f"cad_incidents_{day}.csv")[0]
    (row,) = warehouse.query(
        "SELECT incident_type, address, call_received_at::text FROM core.mfd_dispatch_incidents WHERE incident_number = %s",
        (first["Incident Number"],),
    )
    assert row == (first["Incident Type"], first["Address"], first["Call Received"])


def _requests_to_read(warehouse, requests) -> int:
    """API records the next 311 run reads: updated at or after the stored watermark less the overlap window."""
    (value,) = warehouse.query("SELECT value FROM ops.watermark WHERE source = 'dpw_service_requests'")[0]
    overlap = load_source_config(sources_dir() / "dpw_service_requests.yaml").extract.overlap_seconds
    since = dt.datetime.fromisoformat(value) - dt.timedelta(seconds=overlap)
    return sum(1 for r in requests if dt.datetime.fromisoformat(r["updated_at"]) >= since)


def test_a_second_run_moves_nothing(city, now):
    warehouse, _, _, _ = city
    before = {s: warehouse.fingerprint(s) for s in NEW_SOURCES}
    overlap = _requests_to_read(warehouse, call_center.generate_requests(now))

    for source in NEW_SOURCES:
        state_, log = warehouse.run(source)
        assert state_ == "success", f"{source}: {log['message']}"
        reread = overlap if source == "dpw_service_requests" else 0  # the API's overlap window, read again
        assert (log["extracted"], log["loaded"]) == (reread, 0), source

    assert {s: warehouse.fingerprint(s) for s in NEW_SOURCES} == before


def _cad_files(state) -> dict[str, dict[str, dict]]:
    """Every CAD drop file by name: its incidents by number."""
    return {p.name: {r["Incident Number"]: r for r in _csv_rows(p)} for p in (state / "drops" / "mfd-cad").glob("*.csv")}


@pytest.mark.clock
def test_later_only_what_changed_moves(city, s3_server, now, later):
    warehouse, state, rms, _ = city
    files_before = _cad_files(state)
    old_requests = {r["request_id"]: r for r in call_center.generate_requests(now)}
    new_requests = {r["request_id"]: r for r in call_center.generate_requests(later)}
    to_read = _requests_to_read(warehouse, new_requests.values())

    with demo_systems(state, libpq_dsn(rms), later, police_new=0, s3_server=s3_server) as connections, \
            pytest.MonkeyPatch.context() as env:
        for name, value in connections.items():
            env.setenv(name, value)
        runs = {source: warehouse.run(source) for source in NEW_SOURCES}  # every source settles at `later`
    fire_state, fire = runs["mfd_dispatch_incidents"]
    calls_state, calls = runs["dpw_service_requests"]
    assert {s: state for s, (state, _) in runs.items()} == {s: "success" for s in NEW_SOURCES}, runs

    files_after = _cad_files(state)
    # every new or rewritten file lands whole (today's, and after midnight a new day's); only the
    # incidents that are new or changed in them move into core
    resent = {name: rows for name, rows in files_after.items() if files_before.get(name) != rows}
    incidents_before = {n: r for rows in files_before.values() for n, r in rows.items()}
    changed = [n for rows in resent.values() for n, r in rows.items() if incidents_before.get(n) != r]
    assert fire_state == "success", fire["message"]
    assert resent, "the demo CAD sends today's file again as calls clear"
    assert fire["extracted"] == sum(len(rows) for rows in resent.values())
    assert fire["loaded"] == len(changed) > 0
    moved = [i for i, r in new_requests.items() if old_requests.get(i) != r]
    assert calls_state == "success", calls["message"]
    assert (calls["extracted"], calls["loaded"]) == (to_read, len(moved)) and moved, \
        "the 311 run reads what moved since the watermark, less the overlap, and merges only what moved"


def test_a_file_sent_twice_is_loaded_once_and_a_corrected_one_again(city, s3_server, now):
    warehouse, state, _, _ = city
    client = s3_server.client()
    day = now.date() - dt.timedelta(days=30)
    key = f"cad/cad_incidents_{day}.csv"
    body = client.get_object(Bucket="mfd-cad-landing", Key=key)["Body"].read()
    client.put_object(Bucket="mfd-cad-landing", Key=key, Body=body)  # the same file, delivered again

    state_, log = warehouse.run("mfd_dispatch_incidents")
    assert state_ == "success", log["message"]
    assert (log["extracted"], log["loaded"]) == (0, 0)

    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    rows[1][3] = "100 E WELLS ST"  # the department corrects one address and re-sends the file
    corrected = io.StringIO()
    csv.writer(corrected, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    client.put_object(Bucket="mfd-cad-landing", Key=key, Body=corrected.getvalue().encode("utf-8"))

    state_, log = warehouse.run("mfd_dispatch_incidents")
    assert state_ == "success", log["message"]
    assert (log["extracted"], log["loaded"]) == (len(rows) - 1, 1)
    assert warehouse.query(
        "SELECT address FROM core.mfd_dispatch_incidents WHERE incident_number = %s", (rows[1][0],)
    ) == [("100 E WELLS ST",)]
    assert warehouse.query(
        "SELECT count(*), count(*) FILTER (WHERE status = 'merged') FROM ops.source_file "
        "WHERE source = 'mfd_dispatch_incidents' AND file_key = %s", (f"cad_incidents_{day}.csv",)
    ) == [(2, 2)]
