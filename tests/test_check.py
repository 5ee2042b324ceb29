"""`python -m aim.check` (`aim.check.main`): what it checks before a deploy, and that it says so.

- Each source's suite names only the source's columns: in `column`, `column_list`,
  `column_A`/`column_B`, and in its row queries, read from their text without a warehouse and run
  on an empty batch with one (`--warehouse` or AIM_WAREHOUSE_URL). A row query GX cannot format
  (a brace other than `{batch}`) is a problem too.
- The data set inventory: a data set made from a source names a configured source and lists only
  columns the source publishes.
- With a warehouse, a released data set whose source has never merged a batch is a problem.
- Any problem makes the exit status 1; the shipped configuration has none.

Each test writes a small source, suite and inventory into tmp_path (AIM_SOURCES_DIR,
AIM_EXPECTATIONS_DIR, AIM_DATASETS_DIR); the warehouse tests share one migrated database.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aim import check, db
from aim.migrations import migrate

SOURCE = "qa_hydrants"
SOURCE_YAML = {
    "source": SOURCE, "department": "Quality assurance", "system": "hydrant inspections", "kind": "file",
    "connection_id": "qa_drop", "schedule": None, "owner": "qa",
    "extract": {"location": "hydrants", "pattern": "hydrants_*.csv", "format": {"kind": "csv"}},
    "key": ["hydrant_id"],
    "columns": [
        {"name": "hydrant_id", "privacy": "public"},
        {"name": "ald", "type": "smallint", "privacy": "public"},
        {"name": "inspected_on", "type": "date", "privacy": "public"},
        {"name": "inspector", "privacy": "personal"},
    ],
    "expectation_suite": f"{SOURCE}.json",
}
DISTRICT = {"type": "expect_column_values_to_be_in_set", "severity": "critical",
            "kwargs": {"column": "ald", "value_set": [str(n) for n in range(1, 16)]}}
NOT_FUTURE = {"type": "unexpected_rows_expectation", "description": "inspected_on is not in the future",
              "severity": "critical", "kwargs": {"unexpected_rows_query":
                                                 "SELECT * FROM {batch} WHERE ops.try_timestamp(inspected_on) "
                                                 "> ops.local_now() AND inspector NOT LIKE 'TEST%'"}}


def dataset(**fields) -> dict:
    return {
        "id": "qa-hydrant-inspections", "title": "Hydrant inspections", "description": "Every inspection.",
        "keywords": ["hydrants"], "contact": {"name": "QA", "email": "qa@milwaukee.gov"},
        "license": "https://creativecommons.org/licenses/by/4.0/", "accrual_periodicity": "R/P1D",
        "department": "Quality assurance", "steward": "QA", "sensitivity": "public",
        "release_status": "published", "release_priority": 1, "source": SOURCE, "temporal_column": "inspected_on",
        **fields,
    }


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A sources folder with one source, its suite, and an inventory with its data set."""
    for name in ("sources", "expectations", "datasets"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("AIM_SOURCES_DIR", str(tmp_path / "sources"))
    monkeypatch.setenv("AIM_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    monkeypatch.setenv("AIM_DATASETS_DIR", str(tmp_path / "datasets"))
    monkeypatch.delenv("AIM_WAREHOUSE_URL", raising=False)
    (tmp_path / "sources" / f"{SOURCE}.yaml").write_text(yaml.safe_dump(SOURCE_YAML))
    write_suite(tmp_path, DISTRICT, NOT_FUTURE)
    write_dataset(tmp_path, dataset())
    return tmp_path


def write_suite(folder: Path, *expectations: dict) -> None:
    (folder / "expectations" / f"{SOURCE}.json").write_text(
        json.dumps({"name": SOURCE, "expectations": list(expectations)}))


def write_dataset(folder: Path, fields: dict) -> None:
    (folder / "datasets" / f"{fields['id']}.yaml").write_text(yaml.safe_dump(fields))


def run(capsys, *args: str) -> tuple[int, str]:
    status = check.main(list(args))
    return status, capsys.readouterr().out


@pytest.fixture(scope="module")
def warehouse(new_database) -> str:
    url = new_database("aim_check")
    migrate(url)
    return url


def test_a_clean_project_passes_and_says_what_was_checked(project, capsys):
    status, out = run(capsys)
    assert status == 0, out
    assert f"{project / 'sources' / SOURCE}.yaml: ok" in out
    assert ("generated from the configuration: 8 critical checks: 4 columns exist; key (hydrant_id) not null and "
            "unique; 2 typed columns cast (rows that do not are set aside)") in out
    assert "suite columns are the source's (row queries read as text: no warehouse to run them on)" in out
    assert "1 data sets checked: the 1 made from a source name a configured source" in out
    assert "released data sets' sources have loaded: not checked (no warehouse" in out, \
        "a check it could not make is named as not made"


MISSING = [
    pytest.param({"type": "expect_column_values_to_not_be_null", "severity": "critical",
                  "kwargs": {"column": "pressure"}}, id="column"),
    pytest.param({"type": "expect_compound_columns_to_be_unique", "severity": "critical",
                  "kwargs": {"column_list": ["hydrant_id", "pressure"]}}, id="column_list"),
    pytest.param({"type": "expect_column_pair_values_to_be_equal", "severity": "warning",
                  "kwargs": {"column_A": "ald", "column_B": "pressure"}}, id="column_A-B"),
    pytest.param({"type": "unexpected_rows_expectation", "description": "pressure is positive", "severity": "critical",
                  "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE ops.try_numeric(pressure) <= 0"}},
                 id="row-query"),
    pytest.param({"type": "unexpected_rows_expectation", "description": "quoted", "severity": "critical",
                  "kwargs": {"unexpected_rows_query": 'SELECT * FROM {batch} WHERE "pressure"::int <= 0'}},
                 id="row-query-quoted"),
]


@pytest.mark.parametrize("expectation", MISSING)
def test_a_suite_column_the_source_lacks_is_a_problem_without_a_warehouse(project, capsys, expectation):
    write_suite(project, DISTRICT, expectation)
    status, out = run(capsys)
    assert status == 1
    assert f"{SOURCE}.yaml: PROBLEM" in out and "names columns the source does not have: ['pressure']" in out, out


@pytest.mark.parametrize("expectation", MISSING)
def test_a_suite_column_the_source_lacks_is_a_problem_with_a_warehouse(project, capsys, warehouse, expectation):
    write_suite(project, DISTRICT, expectation)
    status, out = run(capsys, "--warehouse", warehouse)
    assert status == 1
    assert f"{SOURCE}.yaml: PROBLEM" in out, out
    if expectation["type"] == "unexpected_rows_expectation":
        assert "does not run in the warehouse" in out and 'column "pressure" does not exist' in out, \
            "the row query ran on an empty batch of the source's columns, and PostgreSQL named the column"
    else:
        assert "names columns the source does not have: ['pressure']" in out


def test_a_row_query_that_runs_on_the_warehouse_passes(project, capsys, warehouse):
    _, out = run(capsys, "--warehouse", warehouse)  # the status also says whether the source has loaded: not here
    assert "suite columns are the source's (row queries run on an empty batch in the warehouse)" in out
    assert f"{SOURCE}.yaml: ok" in out, out


def test_a_row_query_great_expectations_cannot_format_is_a_problem(project, capsys):
    write_suite(project, {"type": "unexpected_rows_expectation", "description": "three digits", "severity": "critical",
                          "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE ald !~ '^[0-9]{3}$'"}})
    status, out = run(capsys)
    assert status == 1 and "row query (three digits) has braces other than {batch}" in out, out


@pytest.mark.parametrize("batch", ["{batch} AS b", "{batch} b"])
def test_an_alias_on_the_batch_is_a_problem(project, capsys, batch):
    write_suite(project, {"type": "unexpected_rows_expectation", "description": "aliased", "severity": "critical",
                          "kwargs": {"unexpected_rows_query": f"SELECT * FROM {batch} WHERE b.ald = '0'"}})
    status, out = run(capsys)
    assert status == 1 and "row query (aliased) gives {batch} an alias" in out, out


def test_identifiers_in_a_row_query_are_its_columns():
    query = ("SELECT * FROM {batch} WHERE ops.try_timestamp(b.issued_on) > ops.local_now() - interval '2 days' "
             "AND \"Status\" = 'OPEN' AND length(note) > 10 AND ald::smallint IN (1, 2) AND x IS NOT NULL "
             "AND complied_on IS NULL AND reading::double precision > 0 AND zip ~ '^532[0-9]{2}$' "
             "AND extract(year FROM ops.try_timestamp(month)) > 2015")
    assert check.identifiers_in(query) == {"issued_on", "Status", "note", "ald", "x", "complied_on", "reading", "zip",
                                           "month"}


def test_a_repeated_generated_check_is_a_note_not_a_problem(project, capsys):
    write_suite(project, DISTRICT, {"type": "expect_column_to_exist", "severity": "critical",
                                    "kwargs": {"column": "ald"}})
    status, out = run(capsys)
    assert status == 0, out
    assert "note: 1 suite expectation(s) repeat generated checks and can go" in out


# ---- the inventory -------------------------------------------------------------------------------

def test_a_data_set_naming_an_unknown_source_is_a_problem(project, capsys):
    write_dataset(project, dataset(id="qa-valves", source="qa_valves", temporal_column=None))
    status, out = run(capsys)
    assert status == 1
    assert f"{project / 'datasets' / 'qa-valves.yaml'}: PROBLEM" in out
    assert "source 'qa_valves' is not a configured source" in out, out


@pytest.mark.parametrize("fields, problem", [
    ({"columns": [{"name": "pressure"}]}, "column 'pressure' is not a column source qa_hydrants publishes"),
    ({"columns": [{"name": "inspector"}]}, "column 'inspector' is not a column source qa_hydrants publishes"),
    ({"columns": [{"name": "ald", "type": "integer"}]}, "column 'ald' is integer here, smallint in source qa_hydrants"),
    ({"temporal_column": "inspected_at"}, "temporal_column 'inspected_at' is not one of the data set's columns"),
], ids=["no-such-column", "dropped-column", "other-type", "temporal-column"])
def test_a_data_set_whose_columns_are_not_the_sources_is_a_problem(project, capsys, fields, problem):
    write_dataset(project, dataset(**fields))
    status, out = run(capsys)
    assert status == 1 and problem in out, out


def test_a_column_without_a_privacy_class_is_a_problem_naming_the_file_and_the_column(project, capsys):
    raw = {**SOURCE_YAML, "columns": [*SOURCE_YAML["columns"], {"name": "caller_comment"}]}
    (project / "sources" / f"{SOURCE}.yaml").write_text(yaml.safe_dump(raw))
    status, out = run(capsys)
    assert status == 1 and f"{project / 'sources' / SOURCE}.yaml" in out, out
    assert "column caller_comment declares no privacy class" in out, out


@pytest.mark.parametrize("fields, problem", [
    ({"small_cells": {"columns": ["pressure"]}}, "small_cells names columns source qa_hydrants does not publish: "
                                                 "['pressure']"),
    ({"contains": ["free_text"]}, "a data set that contains free_text cannot be public"),
], ids=["small-cells-column", "free-text-public"])
def test_an_unsafe_or_wrong_privacy_setting_of_a_data_set_is_a_problem(project, capsys, fields, problem):
    write_dataset(project, dataset(**fields))
    status, out = run(capsys)
    assert status == 1 and problem in out, out


def test_a_data_set_file_that_does_not_validate_is_a_problem(project, capsys):
    write_dataset(project, dataset(id="qa-broken", release_priority=0))
    status, out = run(capsys)
    assert status == 1 and "qa-broken.yaml: PROBLEM" in out and "release_priority" in out, out


def test_a_released_data_set_whose_source_never_loaded_is_a_problem(project, capsys, warehouse):
    write_dataset(project, dataset(id="qa-hydrants-draft", release_status="inventoried"))
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ops.batch WHERE source = %s", (SOURCE,))
        cur.execute("INSERT INTO ops.batch (batch_id, source, run_id, status) VALUES "
                    "('qa-landed', %s, 'r1', 'landed'), ('qa-quarantined', %s, 'r2', 'quarantined')", (SOURCE, SOURCE))

    status, out = run(capsys, "--warehouse", warehouse)

    assert status == 1
    assert f"{project / 'datasets' / 'qa-hydrant-inspections.yaml'}: PROBLEM" in out
    assert f"released (published), but source {SOURCE} has never merged a batch into the warehouse" in out, \
        "batches landed or quarantined are not a load"
    assert "qa-hydrants-draft.yaml: PROBLEM" not in out, "a data set not released may wait for its source"

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO ops.batch (batch_id, source, run_id, status) VALUES ('qa-merged', %s, 'r3', 'merged')",
                    (SOURCE,))
    status, out = run(capsys, "--warehouse", warehouse)
    assert status == 0, out
    assert f"released data sets' sources that have merged a batch: {SOURCE}" in out


def test_the_warehouse_url_may_come_from_the_environment(project, capsys, warehouse, monkeypatch):
    monkeypatch.setenv("AIM_WAREHOUSE_URL", warehouse)
    status, out = run(capsys)
    assert "row queries run on an empty batch in the warehouse" in out, out


def test_an_unreachable_warehouse_is_a_problem_that_does_not_show_the_password(project, capsys, unused_port):
    status, out = run(capsys, "--warehouse", f"postgresql://aim:s3cret@127.0.0.1:{unused_port}/aim")
    assert status == 1
    assert "cannot connect" in out and "s3cret" not in out, out


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the shipped configuration -------------------------------------------------------------------

def test_the_shipped_sources_suites_and_inventory_have_no_problem(capsys, monkeypatch):
    monkeypatch.delenv("AIM_WAREHOUSE_URL", raising=False)
    status, out = run(capsys)
    assert status == 0, out
