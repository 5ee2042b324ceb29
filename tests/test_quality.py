"""Validating one landed batch with its Great Expectations suite (`aim.quality`), in a real PostgreSQL.

- `validate_batch` runs the suite on the batch alone; each result carries its GX severity:
  a failed `critical` expectation blocks (`ValidationOutcome.success` false), a failed `warning`
  is listed in `warnings` and the batch goes on; an expectation that errors counts as failed.
- `ValidationOutcome.failure_message` names the source, the batch and every failed critical
  expectation with sample values, and nothing that only warned.
- A suite file that cannot be used raises `SuiteError` naming the file.
- The real suites in `expectations/` run the same way (the health department's lead tests).

Small suites are written into tmp_path (`AIM_EXPECTATIONS_DIR`, per test); the tests share one
warehouse database, each staging and validating batches of its own (unique batch ids).
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from aim import db, quality
from aim.migrations import migrate
from aim.settings import sources_dir
from aim.sources import SourceConfig, load_source_config
from aim.staging import copy_chunks
from aim.tables import ensure_tables

SOURCE = "qa_hydrants"
CONFIG = SourceConfig.model_validate({
    "source": SOURCE, "department": "Quality assurance", "system": "hydrant inspections", "kind": "file",
    "schedule": None, "owner": "qa",
    "extract": {"location": "hydrants", "format": {"kind": "csv"}},
    "key": ["hydrant_id"],
    "columns": [
        {"name": "hydrant_id"},
        {"name": "ald", "type": "smallint"},
        {"name": "inspected_on", "type": "date"},
        {"name": "pressure", "type": "integer"},
    ],
    "expectation_suite": f"{SOURCE}.json",
})
UNIQUE = {"type": "expect_column_values_to_be_unique", "severity": "critical", "kwargs": {"column": "hydrant_id"}}
DISTRICT = {"type": "expect_column_values_to_be_in_set", "description": "aldermanic districts 1-15",
            "severity": "critical", "kwargs": {"column": "ald", "value_set": [str(n) for n in range(1, 16)]}}
PRESSURE = {"type": "expect_column_values_to_be_in_set", "description": "usual pressure readings",
            "severity": "warning", "kwargs": {"column": "pressure", "value_set": ["40", "50", "60"]}}
PARSES = {"type": "unexpected_rows_expectation", "description": "inspected_on parses as a date",
          "severity": "critical", "kwargs": {"unexpected_rows_query":
                                             "SELECT * FROM {batch} WHERE ops.try_timestamp(inspected_on) IS NULL"}}
GOOD = [("H-1", "3", "2026-06-01", "50"), ("H-2", "15", "2026-06-02", "60"), ("H-3", "7", "2026-06-03", "40")]


@pytest.fixture(scope="module")
def warehouse(new_database) -> str:
    url = new_database("aim_quality")
    migrate(url)
    with db.transaction(url) as conn, conn.cursor() as cur:
        ensure_tables(cur, CONFIG)
    return url


@pytest.fixture
def suites(tmp_path, monkeypatch) -> Path:
    """The folder the platform reads suites from, for this test."""
    folder = tmp_path / "expectations"
    folder.mkdir()
    monkeypatch.setenv("AIM_EXPECTATIONS_DIR", str(folder))
    return folder


@pytest.fixture
def batch():
    """Factory: a batch id no other test uses, readable in messages."""
    return lambda label: f"{label}-{uuid.uuid4().hex[:8]}"


def write_suite(folder: Path, *expectations: dict) -> Path:
    path = folder / f"{SOURCE}.json"
    path.write_text(json.dumps({"name": SOURCE, "expectations": list(expectations)}), encoding="utf-8")
    return path


def stage(url: str, batch_id: str, rows: list[tuple], config: SourceConfig = CONFIG) -> None:
    with db.transaction(url) as conn, conn.cursor() as cur:
        ensure_tables(cur, config)
        copy_chunks(cur, config.staging_table, config.column_names, batch_id, [rows])


def kinds(results: list[dict]) -> list[tuple]:
    return sorted((r["expectation"], r["column_name"] or r["description"]) for r in results)


def test_a_failed_critical_expectation_blocks_and_a_failed_warning_does_not(warehouse, suites, batch):
    write_suite(suites, UNIQUE, DISTRICT, PRESSURE)
    blocked_id, warned_id = batch("blocked"), batch("warned")
    stage(warehouse, blocked_id, GOOD + [("H-1", "3", "2026-06-04", "55")])  # H-1 twice, and an unusual pressure
    stage(warehouse, warned_id, GOOD + [("H-4", "3", "2026-06-04", "55")])  # only the unusual pressure

    blocked = quality.validate_batch(warehouse, CONFIG, batch_id=blocked_id)
    warned = quality.validate_batch(warehouse, CONFIG, batch_id=warned_id)

    assert not blocked.success, "a failed critical expectation blocks the batch"
    assert kinds(blocked.failed_critical) == [("expect_column_values_to_be_unique", "hydrant_id")]
    assert kinds(blocked.warnings) == [("expect_column_values_to_be_in_set", "pressure")], \
        "a failed warning is listed apart from the critical failures"
    assert warned.success, "a batch whose only failures are warnings goes on"
    assert warned.failed_critical == []
    (warning,) = warned.warnings
    assert (warning["severity"], warning["unexpected_count"], warning["unexpected_sample"]) == ("warning", 1, ["55"]), \
        "a warning is recorded with its count and the offending values"
    assert len(warned.results) == 3 and all(r["success"] for r in warned.results if r is not warning), \
        "every expectation of the suite has a result"


def test_only_the_batch_is_validated(warehouse, suites, batch):
    write_suite(suites, UNIQUE, DISTRICT)
    older, newer = batch("older"), batch("newer")
    stage(warehouse, older, [("H-1", "99", "2026-06-01", "50"), ("H-1", "99", "2026-06-01", "50")])
    stage(warehouse, newer, GOOD)

    outcome = quality.validate_batch(warehouse, CONFIG, batch_id=newer)

    assert outcome.success, "rows of other batches in staging (duplicates, district 99) do not count against this one"
    assert quality.validate_batch(warehouse, CONFIG, batch_id=older).success is False


def test_the_failure_message_names_source_batch_each_critical_failure_and_samples(warehouse, suites, batch):
    write_suite(suites, UNIQUE, DISTRICT, PRESSURE, PARSES)
    bad = batch("bad")
    stage(warehouse, bad, GOOD + [("H-1", "99", "2026-06-04", "55"), ("H-9", "3", "June 5th", "50")])

    outcome = quality.validate_batch(warehouse, CONFIG, batch_id=bad)
    message = outcome.failure_message(SOURCE, bad)

    assert f"source {SOURCE}" in message and f"batch {bad}" in message, "the message names the source and the batch"
    assert "3 critical expectation(s)" in message, "the message counts the failed critical expectations"
    assert "expect_column_values_to_be_unique on hydrant_id" in message and '"H-1"' in message, \
        "a duplicate key is named with its column and sample value"
    assert "expect_column_values_to_be_in_set on ald (aldermanic districts 1-15)" in message and '"99"' in message, \
        "an unexpected district is named with its column, description and sample value"
    assert "unexpected_rows_expectation (inspected_on parses as a date): 1 unexpected" in message, \
        "a row rule is named by its description and count"
    assert "pressure" not in message and "usual pressure readings" not in message, \
        "a failed warning is not part of the failure message"


@pytest.mark.xfail(strict=True, reason=(
    "BUG plugins/aim/quality.py:166 validate_batch asks GX for result_format SUMMARY, and GX 1.x returns "
    "unexpected_rows_expectation's offending rows (details.unexpected_rows) only for COMPLETE: _sample's fallback "
    "(line 100) never sees them, so these checks have no sample in ops.quality_result or in the failure message"))
def test_a_failed_row_rule_carries_sample_rows(warehouse, suites, batch):
    write_suite(suites, PARSES)
    bad = batch("bad")
    stage(warehouse, bad, GOOD + [("H-9", "3", "June 5th", "50")])

    (result,) = quality.validate_batch(warehouse, CONFIG, batch_id=bad).failed_critical

    assert result["unexpected_sample"], "a failed critical check has sample values (docs/quality.md: with samples)"
    assert "June 5th" in json.dumps(result["unexpected_sample"])


@pytest.mark.parametrize("broken", [
    {"type": "expect_column_values_to_not_be_null", "severity": "critical", "kwargs": {"column": "no_such_column"}},
    {"type": "unexpected_rows_expectation", "description": "bad SQL", "severity": "critical",
     "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE no_such_column = 1"}},
], ids=["missing-column", "bad-sql"])
def test_an_expectation_that_errors_counts_as_failed(warehouse, suites, batch, broken):
    write_suite(suites, UNIQUE, broken)
    batch_id = batch("b")
    stage(warehouse, batch_id, GOOD)

    outcome = quality.validate_batch(warehouse, CONFIG, batch_id=batch_id)

    assert not outcome.success, "an expectation that cannot be evaluated fails; a critical one blocks the batch"
    assert [r["expectation"] for r in outcome.failed_critical] == [broken["type"]]


def test_an_expectation_that_errors_records_why(warehouse, suites, batch):
    write_suite(suites, {"type": "expect_column_values_to_not_be_null", "severity": "critical",
                         "kwargs": {"column": "no_such_column"}})
    batch_id = batch("b")
    stage(warehouse, batch_id, GOOD)

    outcome = quality.validate_batch(warehouse, CONFIG, batch_id=batch_id)

    (failed,) = outcome.failed_critical
    assert failed["error"] and "no_such_column" in failed["error"], "the result records the error"
    assert "error:" in outcome.failure_message(SOURCE, batch_id)


def test_the_outcome_sorts_results_by_severity_without_a_database():
    results = [
        {"expectation": "a", "column_name": None, "severity": "critical", "success": True},
        {"expectation": "b", "column_name": "x", "severity": "critical", "success": False,
         "unexpected_count": 2, "unexpected_sample": ["1", "2", "3", "4"]},
        {"expectation": "c", "column_name": None, "severity": "warning", "success": False},
    ]
    outcome = quality.ValidationOutcome(suite="s", results=results)
    assert (outcome.success, outcome.failed_critical, outcome.warnings) == (False, [results[1]], [results[2]])
    assert outcome.failure_message("src", "b-1") == (
        'quality gate failed for source src, batch b-1: 1 critical expectation(s) of suite s failed: '
        'b on x: 2 unexpected, e.g. ["1", "2", "3"]'
    ), "the message is one line: source, batch, suite, each failed critical check with its count and first samples"
    assert quality.ValidationOutcome(suite="s", results=[results[0], results[2]]).success, \
        "warnings alone never block"


# ---- suites that cannot be used ------------------------------------------------------------------

USABLE = {"name": SOURCE, "expectations": [UNIQUE]}
@pytest.mark.parametrize("text", [
    pytest.param("{\"name\": \"qa_hydrants\", \"expectations\": [", id="truncated-json"),
    pytest.param(json.dumps({**USABLE, "expectations": [{"type": "expect_column_values_to_be_sorted_by_magic",
                                                         "kwargs": {"column": "ald"}}]}), id="unknown-expectation"),
    pytest.param(json.dumps({**USABLE, "expectations": [{**UNIQUE, "severity": "urgent"}]}), id="unknown-severity"),
    pytest.param(None, id="missing-file"),
    pytest.param("[]", id="not-an-object"),
    pytest.param(json.dumps({"expectations": [UNIQUE]}), id="no-name"),
    pytest.param(json.dumps({**USABLE, "expectations": [{"type": "expect_column_to_exist", "kwargs": {}}]}),
                 id="missing-argument"),
    pytest.param(json.dumps({**USABLE, "expectations": [{"kwargs": {"column": "ald"}}]}), id="no-type"),
])
def test_a_suite_that_cannot_be_used_is_a_suite_error_naming_the_file(warehouse, suites, batch, text):
    path = suites / f"{SOURCE}.json"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    batch_id = batch("b")
    stage(warehouse, batch_id, GOOD)

    with pytest.raises(quality.SuiteError) as raised:
        quality.validate_batch(warehouse, CONFIG, batch_id=batch_id)

    assert str(path) in str(raised.value), "the error names the suite file, so the operator knows what to fix"


def test_a_usable_suite_loads_every_expectation(suites):
    path = write_suite(suites, UNIQUE, DISTRICT, PRESSURE, PARSES)
    suite = quality.load_suite(path)
    assert (suite.name, len(suite.expectations)) == (SOURCE, 4)


# ---- a real suite --------------------------------------------------------------------------------

def test_the_real_lead_testing_suite_blocks_a_zip_code_outside_milwaukee(warehouse, tmp_path, batch):
    config = load_source_config(sources_dir() / "mhd_lead_tests.yaml")  # and expectations/mhd_lead_tests.json
    rows = [("2026-05", "53206", "1-2 years", "40", "3", None), ("2026-05", "53206", "3-5 years", "35", "1", None),
            ("2026-05", "53212", "Under 1", "12", "0", "retest scheduled")]
    good_id, bad_id = batch("lead-good"), batch("lead-bad")
    stage(warehouse, good_id, rows, config)
    stage(warehouse, bad_id, rows + [("2026-05", "60601", "1-2 years", "9", "0", None)], config)

    good = quality.validate_batch(warehouse, config, batch_id=good_id, data_docs=tmp_path / "docs")
    bad = quality.validate_batch(warehouse, config, batch_id=bad_id)

    assert good.success and good.failed_critical == [], "a month of valid counts passes the real suite"
    assert len(good.results) == len(json.loads((Path(__file__).parents[1] / "expectations/mhd_lead_tests.json")
                                               .read_text(encoding="utf-8"))["expectations"]), \
        "every expectation of the real suite is evaluated"
    assert [(r["expectation"], r["column_name"], r["unexpected_sample"]) for r in bad.failed_critical] == [
        ("expect_column_values_to_be_in_set", "zip", ["60601"])
    ], "a Chicago ZIP code fails the critical Milwaukee ZIP code check, with the value as sample"
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 1 and good_id in pages[0].name, \
        "with data_docs, the validation's Data Docs page is built there"
