"""Department commentary, from the budget office's workbook to the warehouse, the export and the
scorecard: ingested like any source (its quality suite sets bad notes aside with their reason),
versioned (an edited note keeps its history, a cleared one is withdrawn), readable by analysts in
`marts`, published in `aim-measure-values` and on the scorecard.

Real components: the workbook in a landing folder read through an `fs` connection, the ingest and
aim_measures DAGs run with `dag.test()` on a real PostgreSQL, the publication written to a folder.
"""
from __future__ import annotations

import csv
import datetime as dt
import html

import pytest

from aim.dag_builders.ingest import build_ingest_dag
from aim.dag_builders.measures import build_measures_dag
from aim.measures.runs import measure_sources
from aim.publish.publication import publish
from aim.settings import sources_dir
from aim.sources import load_source_config
from aim.storage import target_from_url
from aim_demo import aim_commentary, aim_registry, lead_testing
from aim_demo.databases import query
from aim_demo.drops import upload_folder, write_if_changed
from aim_demo.systems import aws_connection, folder_connection

SOURCE = "bmo_measure_commentary"


def month(now: dt.datetime, back: int) -> str:
    index = now.year * 12 + now.month - 1 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@pytest.fixture(scope="module")
def now(clock) -> dt.datetime:
    """The demo's wall clock: two hours before the suite's, on the hour (never in the future)."""
    return clock.replace(tzinfo=None, minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)


@pytest.fixture
def budget_office(new_database, airflow_db, s3_server, tmp_path, monkeypatch, now):
    """A warehouse, the budget office's landing folder holding the demo registry and commentary, and
    the health lab's drops (so CHI-01 and CHI-02 have values to comment on)."""
    landing = tmp_path / "landing"
    aim_registry.write_drops(landing / "budget", now)
    aim_commentary.write_drops(landing / "budget", now)
    lead_testing.write_drops(tmp_path / "mhd-lab", now)
    upload_folder(tmp_path / "mhd-lab", s3_server.client(), "mhd-lab-landing", "lead")
    monkeypatch.setenv("AIRFLOW_CONN_MHD_LAB_LANDING", aws_connection(s3_server))
    url = new_database("aim_commentary")
    monkeypatch.setenv("AIM_WAREHOUSE_URL", url)
    monkeypatch.setenv("AIM_EXPORT_URL", str(tmp_path / "exports"))
    monkeypatch.setenv("AIRFLOW_CONN_BMO_REGISTRY_DROP", folder_connection(landing))
    return url, landing / "budget" / aim_commentary.FILE_NAME


def ingest(source: str) -> str:
    """Run the source's ingest DAG; its run id."""
    run = build_ingest_dag(load_source_config(sources_dir() / f"{source}.yaml")).test()
    assert str(run.state) == "success", source
    return run.run_id


def sync(url: str) -> dict:
    """Run the aim_measures DAG; the sync counts it recorded."""
    run = build_measures_dag().test()
    assert str(run.state) == "success"
    return query(url, "SELECT registry FROM ops.measure_run WHERE run_id = %s", (run.run_id,))[0][0]


def notes(url: str, view: str = "marts.measure_commentary") -> dict[tuple[str, str], tuple]:
    columns = "version, reason, action, outlook" + (", valid_to IS NULL" if view.endswith("history") else "")
    return {(code, period, *rest[:1]) if view.endswith("history") else (code, period): tuple(rest)
            for code, period, *rest in query(url, f"SELECT measure_code, period_label, {columns} FROM {view}")}


def test_the_measures_dag_runs_when_the_commentary_changes():
    assert SOURCE in measure_sources()


def test_every_measure_of_the_demo_registry_has_notes_on_the_last_two_months(now):
    rows = aim_commentary.commentary_rows(now)
    assert {code for code, *_ in rows} == set(aim_registry.MEASURES)
    assert {period for _, period, *_ in rows} == {month(now, 1), month(now, 2)}
    assert all(len(text) <= 500 and "<" not in text for row in rows for text in row[2:])


def test_notes_are_versioned_bad_ones_set_aside_and_published_on_the_export_and_the_scorecard(budget_office, now):
    url, workbook = budget_office
    ingest("bmo_aim_registry")
    ingest("mhd_lead_tests")
    ingest(SOURCE)
    first = sync(url)
    demo = aim_commentary.commentary_rows(now)
    assert first["notes_written"] == len(demo) == 24 and first["notes_withdrawn"] == 0
    shown = notes(url)
    assert set(shown) == {(code, period) for code, period, *_ in demo}
    assert {version for version, *_ in shown.values()} == {1}
    code, period, why, action, outlook = demo[0]
    assert shown[(code, period)] == (1, why, action, outlook)

    # the same workbook again: nothing changes
    assert sync(url)["notes_written"] == 0
    assert query(url, "SELECT count(*) FROM core.aim_commentary") == [(24,)]

    # the budget office edits one note, clears another, and enters six it should not have
    edited, cleared = ("SAF-01", month(now, 1)), ("PHY-04", month(now, 1))
    bad = [
        ("XYZ-99", month(now, 1), "A measure the registry does not have.", None, None),
        ("SAF-02", month(now, -2), "A month that has not happened yet.", None, None),  # -1: maybe the clock's month
        ("SAF-03", month(now, 3), "<script>alert('x')</script> Markup is not plain text.", None, None),
        ("SAF-04", month(now, 3), "Call the district office at (414) 286-2489 for details.", None, None),
        ("ECO-01", month(now, 3), "Details at https://city.milwaukee.gov/dns", None, None),
        ("ECO-02", month(now, 3), "x" * 501, None, None),
    ]
    rows = []
    for row in demo:
        if tuple(row[:2]) == edited:
            row = (*row[:2], "Thefts from vehicles fell after the directed patrols began.", *row[3:])
        if tuple(row[:2]) == cleared:
            row = (*row[:2], None, None, None)
        rows.append(row)
    write_if_changed(workbook, aim_commentary.commentary_workbook(now, rows + bad))
    run_id = ingest(SOURCE)
    rejected = dict(query(url, "SELECT row_data->>'measure_code', rule FROM ops.rejected_row WHERE source = %s "
                               "AND run_id = %s", (SOURCE, run_id)))
    assert rejected == {
        "XYZ-99": "the measure code is in the AIM registry",
        "SAF-02": "the month is not in the future",
        "SAF-03": "the note is plain text: no markup (< or >) and no control characters",
        "SAF-04": "the note has no e-mail address or phone number (nothing that reaches a person)",
        "ECO-01": "the note has no links (http://, https://, www.)",
        "ECO-02": "each part of the note is at most 500 characters",
    }
    second = sync(url)
    assert (second["notes_written"], second["notes_withdrawn"]) == (1, 1)

    shown = notes(url)
    assert shown[edited][:2] == (2, "Thefts from vehicles fell after the directed patrols began.")
    assert cleared not in shown and len(shown) == 23
    assert not {(code, period) for code, period, *_ in bad} & set(shown)
    history = notes(url, "marts.measure_commentary_history")
    assert history[(*edited, 1)][1] == demo[[tuple(r[:2]) for r in demo].index(edited)][2]  # version 1 kept
    assert history[(*edited, 1)][-1] is False and history[(*edited, 2)][-1] is True
    assert history[(*cleared, 1)][-1] is False  # withdrawn, kept
    (closed, opened), = query(url, """
        SELECT v1.valid_to, v2.valid_from FROM core.aim_commentary v1 JOIN core.aim_commentary v2
        USING (measure_code, period_start) WHERE v1.version = 1 AND v2.version = 2""")
    assert closed == opened

    # analysts read both views
    with_role = query(url, "SELECT has_table_privilege('aim_analyst', 'marts.measure_commentary', 'SELECT'), "
                           "has_table_privilege('aim_analyst', 'marts.measure_commentary_history', 'SELECT'), "
                           "has_table_privilege('aim_analyst', 'core.aim_commentary', 'SELECT')")
    assert with_role == [(True, True, False)]

    # published: in the measure export, on the citywide month's row only, and on the scorecard
    exports = target_from_url(str(budget_office[1].parents[2] / "exports"))
    publish(run_id="commentary", target=exports)
    root = budget_office[1].parents[2] / "exports"
    with open(root / "latest" / "aim-measure-values" / "aim-measure-values.csv", newline="") as f:
        with_note = [r for r in csv.DictReader(f) if r["commentary_reason"]]
    by_key = {(r["measure_code"], r["period_label"]): r for r in with_note}
    assert set(by_key) <= set(shown) and len(with_note) == len(by_key)
    lead = {k for k in shown if k[0] in ("CHI-01", "CHI-02")}
    assert lead and lead <= set(by_key)  # the measures with values carry their notes
    assert by_key[("CHI-01", month(now, 1))]["commentary_action"] == shown[("CHI-01", month(now, 1))][2]
    assert all(r["period_type"] == "month" and r["geography_type"] == "citywide" for r in with_note)
    page = (root / "site" / "index.html").read_text(encoding="utf-8")
    assert html.escape("Thefts from vehicles fell after the directed patrols began.") in page
    assert "alert(" not in page
