"""Validating one landed batch with its Great Expectations suite (`aim.quality`), in a real PostgreSQL.

- `validate_batch` runs the suite on the batch alone; each result carries its GX severity:
  a failed `critical` expectation blocks (`ValidationOutcome.success` false), a failed `warning`
  is listed in `warnings` and the batch goes on; an expectation that errors counts as failed.
- The suite is the checks generated from the source's configuration (`aim.generated_checks`:
  columns exist, key not null and unique, every typed column casts, the watermark is not in the
  future) followed by the suite file's business rules (`suite_expectations`).
- `ops.casts_to` (migration 0016; 0024 asks pg_input_is_valid on PostgreSQL 16+), which the cast checks use, agrees with PostgreSQL's own cast,
  the merge's, on a corpus of good and bad values of every column type.
- `ValidationOutcome.failure_message` names the source, the batch and every failed critical
  expectation with sample values, and nothing that only warned.
- A suite file that cannot be used raises `SuiteError` naming the file.
- The real suites in `expectations/` run the same way (the health department's lead tests).

Small suites are written into tmp_path (`AIM_EXPECTATIONS_DIR`, per test); the tests share one
warehouse database, each staging and validating batches of its own (unique batch ids).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest

from aim import db, gate, quality, row_scan
from aim.generated_checks import generated_expectations, key_values_sql, suite_expectations
from aim.merge import merge_statement
from aim.migrations import migrate
from aim.settings import sources_dir
from aim.sources import SourceConfig, load_source_config
from aim.staging import copy_chunks
from aim.tables import ensure_tables
from aim_demo.databases import query

SOURCE = "qa_hydrants"
CONFIG = SourceConfig.model_validate({
    "source": SOURCE, "department": "Quality assurance", "system": "hydrant inspections", "kind": "file",
    "schedule": None, "owner": "qa",
    "extract": {"location": "hydrants", "format": {"kind": "csv"}},
    "key": ["hydrant_id"],
    "columns": [
        {"name": "hydrant_id", "privacy": "public"},
        {"name": "ald", "type": "smallint", "privacy": "public"},
        {"name": "inspected_on", "type": "date", "privacy": "public"},
        {"name": "pressure", "type": "integer", "privacy": "public"},
    ],
    "expectation_suite": f"{SOURCE}.json",
})
UNIQUE = {"type": "expect_column_values_to_be_unique", "severity": "critical", "kwargs": {"column": "hydrant_id"}}
DISTRICT = {"type": "expect_column_values_to_be_in_set", "description": "aldermanic districts 1-15",
            "severity": "critical", "kwargs": {"column": "ald", "value_set": [str(n) for n in range(1, 16)]}}
PRESSURE = {"type": "expect_column_values_to_be_in_set", "description": "usual pressure readings",
            "severity": "warning", "kwargs": {"column": "pressure", "value_set": ["40", "50", "60"]}}
NOT_FUTURE = {"type": "unexpected_rows_expectation", "description": "inspected_on is not in the future",
              "severity": "critical", "kwargs": {"unexpected_rows_query":
                                                 "SELECT * FROM {batch} WHERE ops.try_timestamp(inspected_on) > "
                                                 "ops.local_now()"}}
GOOD = [("H-1", "3", "2026-06-01", "50"), ("H-2", "15", "2026-06-02", "60"), ("H-3", "7", "2026-06-03", "40")]
GENERATED = len(generated_expectations(CONFIG))  # 4 columns exist, key not null, key unique, 3 casts


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
    write_suite(suites, DISTRICT, PRESSURE)  # the key's uniqueness is generated from the configuration
    blocked_id, warned_id = batch("blocked"), batch("warned")
    stage(warehouse, blocked_id, GOOD + [("H-1", "3", "2026-06-04", "55")])  # H-1 twice, and an unusual pressure
    stage(warehouse, warned_id, GOOD + [("H-4", "3", "2026-06-04", "55")])  # only the unusual pressure

    blocked = quality.validate_batch(warehouse, CONFIG, batch_id=blocked_id)
    warned = quality.validate_batch(warehouse, CONFIG, batch_id=warned_id)

    assert not blocked.success, "a failed critical expectation blocks the batch"
    assert kinds(blocked.failed_critical) == [("expect_column_values_to_be_unique", "hydrant_id")], \
        "the duplicate key fails the generated uniqueness check, once"
    assert kinds(blocked.warnings) == [("expect_column_values_to_be_in_set", "pressure")], \
        "a failed warning is listed apart from the critical failures"
    assert warned.success, "a batch whose only failures are warnings goes on"
    assert warned.failed_critical == []
    (warning,) = warned.warnings
    assert (warning["severity"], warning["unexpected_count"], warning["unexpected_sample"]) == ("warning", 1, ["55"]), \
        "a warning is recorded with its count and the offending values"
    assert len(warned.results) == GENERATED + 2 and all(r["success"] for r in warned.results if r is not warning), \
        "every expectation of the suite, generated and written, has a result"


def test_only_the_batch_is_validated(warehouse, suites, batch):
    write_suite(suites, DISTRICT)
    older, newer = batch("older"), batch("newer")
    stage(warehouse, older, [("H-1", "99", "2026-06-01", "50"), ("H-1", "99", "2026-06-01", "50")])
    stage(warehouse, newer, GOOD)

    outcome = quality.validate_batch(warehouse, CONFIG, batch_id=newer)

    assert outcome.success, "rows of other batches in staging (duplicates, district 99) do not count against this one"
    assert quality.validate_batch(warehouse, CONFIG, batch_id=older).success is False


def test_the_failure_message_names_source_batch_each_critical_failure_and_samples(warehouse, suites, batch):
    write_suite(suites, DISTRICT, PRESSURE, NOT_FUTURE)
    bad = batch("bad")
    stage(warehouse, bad, GOOD + [("H-1", "99", "2026-06-04", "55"), ("H-9", "3", "2030-06-05", "50")])

    outcome = quality.validate_batch(warehouse, CONFIG, batch_id=bad)
    message = outcome.failure_message(SOURCE, bad)

    assert f"source {SOURCE}" in message and f"batch {bad}" in message, "the message names the source and the batch"
    assert "3 critical expectation(s)" in message, "the message counts the failed critical expectations"
    assert "expect_column_values_to_be_unique on hydrant_id" in message and '"H-1"' in message, \
        "a duplicate key is named with its column and sample value"
    assert "expect_column_values_to_be_in_set on ald (aldermanic districts 1-15)" in message and '"99"' in message, \
        "an unexpected district is named with its column, description and sample value"
    assert "unexpected_rows_expectation (inspected_on is not in the future): 1 unexpected" in message, \
        "a row rule is named by its description and count"
    assert '"inspected_on": "2030-06-05"' in message, "a row rule's failure shows a sample of its rows"
    assert "usual pressure readings" not in message, "a failed warning is not part of the failure message"


def test_a_failed_row_rule_carries_sample_rows(warehouse, suites, batch):
    write_suite(suites, NOT_FUTURE)
    bad = batch("bad")
    stage(warehouse, bad, GOOD + [("H-9", "3", "2030-06-05", "50")])

    (result,) = quality.validate_batch(warehouse, CONFIG, batch_id=bad).failed_critical

    assert result["unexpected_sample"], "a failed critical check has sample values (docs/quality.md: with samples)"
    assert "2030-06-05" in json.dumps(result["unexpected_sample"])


@pytest.mark.parametrize("broken", [
    {"type": "expect_column_values_to_not_be_null", "severity": "critical", "kwargs": {"column": "no_such_column"}},
    {"type": "unexpected_rows_expectation", "description": "bad SQL", "severity": "critical",
     "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE no_such_column = 1"}},
], ids=["missing-column", "bad-sql"])
def test_an_expectation_that_errors_counts_as_failed(warehouse, suites, batch, broken):
    write_suite(suites, DISTRICT, broken)
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
    path = write_suite(suites, UNIQUE, DISTRICT, PRESSURE, NOT_FUTURE)
    suite = quality.load_suite(path)
    assert (suite.name, len(suite.expectations)) == (SOURCE, 4), "load_suite is the file as written"
    built = quality.build_suite(CONFIG, path)
    assert (built.name, len(built.expectations)) == (SOURCE, GENERATED + 4), \
        "the suite a batch is validated with is the generated checks and then the file's"


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
    suite_file = Path(__file__).parents[1] / "expectations/mhd_lead_tests.json"
    assert len(good.results) == len(suite_expectations(config, suite_file)) \
        == len(generated_expectations(config)) + len(json.loads(suite_file.read_text(encoding="utf-8"))["expectations"]), \
        "every expectation of the real suite, and every check generated for the source, is evaluated"
    assert [(r["expectation"], r["column_name"], r["unexpected_sample"]) for r in bad.failed_critical] == [
        ("expect_column_values_to_be_in_set", "zip", ["60601"])
    ], "a Chicago ZIP code fails the critical Milwaukee ZIP code check, with the value as sample"
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 1 and good_id in pages[0].name, \
        "with data_docs, the validation's Data Docs page is built there"


def test_data_docs_templates_are_compiled_once_not_for_every_validation(warehouse, tmp_path, batch, monkeypatch):
    """GX makes a new Jinja environment for every view it renders: without a bytecode cache it
    compiled its page templates again for every validation (0.4 s). The second validation's
    Data Docs compile none, and show the same page."""
    import jinja2

    compiled = []
    compile_template = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda env, source, name=None, *a, **k: compiled.append(name) or compile_template(env, source, name, *a, **k))
    config = load_source_config(sources_dir() / "mhd_lead_tests.yaml")
    rows = [("2026-05", "53206", "1-2 years", "40", "3", None)]
    pages = []
    for label in ("first", "second"):
        batch_id = batch(f"docs-{label}")
        stage(warehouse, batch_id, rows, config)
        compiled.clear()
        quality.validate_batch(warehouse, config, batch_id=batch_id, data_docs=tmp_path / label)
        [page] = (tmp_path / label / "validations").rglob("*.html")
        pages.append((batch_id, page.read_text(encoding="utf-8")))
    assert compiled == [], f"templates compiled again: {sorted(set(compiled))}"
    assert all(batch_id in page and "zip" in page for batch_id, page in pages), "each page shows its validation"


def test_data_docs_are_built_when_the_template_cache_folder_was_removed(warehouse, tmp_path, batch, monkeypatch):
    """A long-running worker outlives a clean-up of the temp directory: its templates are compiled
    again, and the validation's Data Docs are built as ever."""
    from great_expectations.render.view.view import DefaultJinjaView

    cache = DefaultJinjaView().env.bytecode_cache
    monkeypatch.setattr(cache, "directory", str(tmp_path / "removed"))  # a folder no longer there
    config = load_source_config(sources_dir() / "mhd_lead_tests.yaml")
    batch_id = batch("docs-no-cache")
    stage(warehouse, batch_id, [("2026-05", "53206", "1-2 years", "40", "3", None)], config)

    outcome = quality.validate_batch(warehouse, config, batch_id=batch_id, data_docs=tmp_path / "docs")

    assert outcome.success
    [page] = (tmp_path / "docs" / "validations").rglob("*.html")
    assert batch_id in page.read_text(encoding="utf-8")


# ---- checks generated from the configuration -----------------------------------------------------

METERS = "qa_meters"
ALLOWANCE = 300


def meters_source(*, future_rows: str = "reject", clock_skew_seconds: int = ALLOWANCE,
                  key: tuple[str, ...] = ("meter_id",), max_rejected_share: float = 0.01) -> SourceConfig:
    """A database source read by a watermark, with a column of most types the merge casts to."""
    return SourceConfig.model_validate({
        "source": METERS, "department": "Quality assurance", "system": "water meter readings", "kind": "sql",
        "connection_id": "qa_meters_db", "schedule": None, "owner": "qa",
        "extract": {"table": "meters.reading", "watermark_column": "updated_at",
                    "clock_skew_seconds": clock_skew_seconds, "future_rows": future_rows},
        "key": list(key),
        "columns": [
            {"name": "meter_id", "privacy": "public"},
            {"name": "read_at", "type": "timestamp", "privacy": "public"},
            {"name": "ward", "type": "smallint", "privacy": "public"},
            {"name": "active", "type": "boolean", "privacy": "public"},
            {"name": "reading", "type": "numeric", "privacy": "public"},
            {"name": "updated_at", "type": "timestamptz", "privacy": "public"},
        ],
        "expectation_suite": f"{METERS}.json",
        "quality": {"max_rejected_share": max_rejected_share},
    })


def meter_rows(n: int, clock: dt.datetime, prefix: str = "M") -> list[list]:
    """`n` readings that pass every generated check; the last one's watermark is ahead of the
    clock, but within the allowance (200 s of 300 s)."""
    rows = [[f"{prefix}-{i}", f"2026-06-{1 + i % 28:02d} 0{i % 10}:15:00", str(1 + i % 15), "t" if i % 2 else "no",
             f"{i}.5", (clock - dt.timedelta(hours=1)).isoformat()] for i in range(n)]
    rows[-1][5] = (clock + dt.timedelta(seconds=200)).isoformat()
    return rows


def meters_suite(folder: Path, *expectations: dict) -> Path:
    path = folder / f"{METERS}.json"
    path.write_text(json.dumps({"name": METERS, "expectations": list(expectations)}), encoding="utf-8")
    return path


def failed(outcome: quality.ValidationOutcome) -> list[str]:
    """The failed critical checks by what they say: the description, else the expectation and column."""
    return sorted(r["description"] or f"{r['expectation']} on {r['column_name']}" for r in outcome.failed_critical)


def row_rules(config: SourceConfig, suite_path: Path) -> list[gate.RowRule]:
    """The row-level reject rules of the source's whole suite, generated ones first (what the gate
    takes from `suite_expectations`: the rules marked meta.reject_rows)."""
    return [gate.RowRule(e["description"], e["kwargs"]["unexpected_rows_query"])
            for e in suite_expectations(config, suite_path) if (e.get("meta") or {}).get("reject_rows")]


def with_value(rows: list[list], at: int, column: str, value) -> list[list]:
    changed = [list(r) for r in rows]
    changed[at][[c.name for c in meters_source().columns].index(column)] = value
    return changed


@pytest.mark.parametrize("column, value, rule", [
    ("read_at", "2026-06-31 10:00", "read_at casts to timestamp"),
    ("read_at", "yesterday at noon", "read_at casts to timestamp"),
    ("ward", "40000", "ward casts to smallint"),
    ("ward", "3.0", "ward casts to smallint"),
    ("active", "maybe", "active casts to boolean"),
    ("reading", "12,5", "reading casts to numeric"),
    ("updated_at", "2026-06-17 10:15 Mars/Olympus", "updated_at casts to timestamptz"),
    ("meter_id", None, "expect_column_values_to_not_be_null on meter_id"),
    ("meter_id", "M-0", "the key (meter_id, updated_at) is unique in the batch (comparing updated_at as timestamptz, "
                        "as the merge does)"),  # the first row's key again, at the same watermark
    ("updated_at", "+400 s", f"updated_at is not later than now + {ALLOWANCE} s (clock skew allowance)"),
], ids=["bad-timestamp", "no-such-time", "smallint-out-of-range", "smallint-with-decimals", "bad-boolean",
        "decimal-comma", "unknown-time-zone", "null-key", "duplicate-key", "future-watermark"])
def test_the_generated_checks_catch_what_would_stop_the_merge(warehouse, suites, batch, clock, column, value, rule):
    config = meters_source()
    meters_suite(suites)  # no business rules: everything here is generated
    if value == "+400 s":
        value = (clock + dt.timedelta(seconds=ALLOWANCE + 100)).isoformat()
    good_id, bad_id = batch("meters-good"), batch("meters-bad")
    rows = meter_rows(20, clock)
    stage(warehouse, good_id, [tuple(r) for r in rows], config)
    stage(warehouse, bad_id, [tuple(r) for r in with_value(rows, 7, column, value)], config)

    good = quality.validate_batch(warehouse, config, batch_id=good_id)
    bad = quality.validate_batch(warehouse, config, batch_id=bad_id)

    assert good.success, ("a batch of values that cast, with a watermark 200 s ahead of the clock (within the "
                          f"{ALLOWANCE} s allowance), passes: {failed(good)}")
    assert failed(bad) == [rule], f"{column}={value!r} fails exactly the check {rule!r}"
    (result,) = bad.failed_critical
    assert result["unexpected_count"] == (2 if "is unique" in rule else 1), \
        "the check counts the offending row (both rows of a duplicated key)"


def test_rows_that_would_not_cast_are_set_aside_and_the_rest_merges(warehouse, suites, batch, clock):
    config = meters_source(max_rejected_share=0.1)
    path = meters_suite(suites)
    rows = meter_rows(60, clock)  # 5 bad rows of 60: within the 10% the source may set aside
    bad = {3: ("read_at", "2026-02-30 08:00"), 5: ("ward", "-32769"), 8: ("active", "yes please"),
           13: ("reading", "1e1000000"), 21: ("updated_at", (clock + dt.timedelta(days=2)).isoformat())}
    for at, (column, value) in bad.items():
        rows = with_value(rows, at, column, value)
    batch_id = batch("meters-mixed")
    stage(warehouse, batch_id, [tuple(r) for r in rows], config)

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        rejected, _ = gate.reject_rows(cur, config, row_rules(config, path), batch_id=batch_id, run_id="qa-run",
                                       landed=len(rows))
    set_aside = {r[0]["meter_id"]: r[1] for r in query(
        warehouse, "SELECT row_data, rule FROM ops.rejected_row WHERE batch_id = %s", (batch_id,))}

    assert rejected == len(bad)
    assert set_aside == {
        "M-3": "read_at casts to timestamp", "M-5": "ward casts to smallint", "M-8": "active casts to boolean",
        "M-13": "reading casts to numeric",
        "M-21": f"updated_at is not later than now + {ALLOWANCE} s (clock skew allowance)",
    }, "each row that would stop the merge is set aside, named by its column and type (or the watermark rule)"

    outcome = quality.validate_batch(warehouse, config, batch_id=batch_id)
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute(merge_statement(config), {"batch_id": batch_id, "run_id": "qa-run"})  # the merge's own casts
    merged = query(warehouse, "SELECT count(*) FROM core.qa_meters WHERE _batch_id = %s", (batch_id,))

    assert outcome.success, f"what is left passes the whole suite: {failed(outcome)}"
    assert merged == [(len(rows) - len(bad),)], "the merge casts every value left without an error"


@pytest.mark.parametrize("skew, ahead, passes", [(300, 299, True), (300, 301, False), (0, 1, False), (3600, 3000, True)])
def test_the_watermark_allowance_is_the_sources_clock_skew(warehouse, suites, batch, clock, skew, ahead, passes):
    config = meters_source(clock_skew_seconds=skew, future_rows="fail")
    meters_suite(suites)
    rows = with_value(meter_rows(5, clock), 2, "updated_at", (clock + dt.timedelta(seconds=ahead)).isoformat())
    rows[-1][5] = clock.isoformat()
    batch_id = batch("meters-ahead")
    stage(warehouse, batch_id, [tuple(r) for r in rows], config)

    outcome = quality.validate_batch(warehouse, config, batch_id=batch_id)

    rule = f"updated_at is not later than now + {skew} s (clock skew allowance)"
    assert failed(outcome) == ([] if passes else [rule]), \
        f"a watermark {ahead} s ahead of the platform's clock is {'within' if passes else 'past'} {skew} s"


def test_future_rows_fail_the_batch_unless_the_source_rejects_them():
    rejecting = {e["description"] for e in generated_expectations(meters_source(future_rows="reject"))
                 if e["meta"].get("reject_rows")}
    failing = {e["description"] for e in generated_expectations(meters_source(future_rows="fail"))
               if e["meta"].get("reject_rows")}
    rule = f"updated_at is not later than now + {ALLOWANCE} s (clock skew allowance)"
    assert rule in rejecting and rule not in failing, \
        "future_rows: reject makes the watermark check a row-level rule; fail leaves it a critical check of the batch"


def test_a_typed_key_is_unique_as_the_merge_compares_it(warehouse, suites, batch, clock):
    config = meters_source(key=("meter_id", "ward"))
    meters_suite(suites)
    rows = meter_rows(6, clock)
    rows[1][0], rows[1][2] = rows[0][0], f" {rows[0][2]}"  # the same meter and ward, spelled differently
    for at in (3, 4):  # meter M-x in ward 'x', twice: a value that does not cast, not a duplicate key
        rows[at][0], rows[at][2] = "M-x", "x"
    batch_id = batch("meters-typed-key")
    stage(warehouse, batch_id, [tuple(r) for r in rows], config)

    outcome = quality.validate_batch(warehouse, config, batch_id=batch_id)

    by_rule = {r["description"]: r["unexpected_count"] for r in outcome.failed_critical}
    assert by_rule == {
        "the key (meter_id, ward, updated_at) is unique in the batch (comparing ward as smallint, updated_at as timestamptz, as the merge does)": 2,
        "ward casts to smallint": 2,
    }, "'3' and ' 3' are one ward to the merge's ON CONFLICT; values that do not cast are the cast check's alone"


def test_the_key_check_stays_linear_when_the_server_knows_the_batchs_size(warehouse, suites, batch, clock):
    """Autovacuum analyzes staging soon after a big batch lands. Told the batch's size, PostgreSQL
    judged the key check's `IN (SELECT ... GROUP BY ... HAVING count(*) > 1)`, inside the combined
    count, too big to hash, and with a parallel plan each worker re-ran it for every row:
    quadratic (a 1M-row batch, over eight minutes). Here a small work_mem makes 20,000 rows big,
    and enable_material off stands in for the parallel plan (nothing keeps the sub-plan's result)."""
    config = meters_source()
    meters_suite(suites)
    rows = meter_rows(20_000, clock)
    rows[1][0] = rows[0][0]  # one key twice: the check must still find it, with a sample
    batch_id = batch("meters-analyzed")
    stage(warehouse, batch_id, [tuple(r) for r in rows], config)
    database = db.normalize_url(warehouse).database
    settings = {"work_mem": "64kB", "enable_material": "off", "statement_timeout": "20s"}  # the old way: timed out
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute(f"ANALYZE {'.'.join(config.staging_table)}")  # what autovacuum would do
        for name, value in settings.items():  # for every connection validation opens
            cur.execute(f'ALTER DATABASE "{database}" SET {name} = %s', (value,))
    try:
        outcome = quality.validate_batch(warehouse, config, batch_id=batch_id)
    finally:
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            for name in settings:
                cur.execute(f'ALTER DATABASE "{database}" RESET {name}')

    (key_check,) = [r for r in outcome.results if (r["description"] or "").startswith("the key (meter_id")]
    assert key_check["error"] is None
    assert key_check["unexpected_count"] == 2
    assert sorted(row["meter_id"] for row in key_check["unexpected_sample"]) == ["M-0", "M-0"]
    assert failed(outcome) == [key_check["description"]], "nothing else fails"


def test_the_generated_checks_follow_the_configuration():
    config = meters_source(key=("meter_id", "ward"))
    generated = generated_expectations(config)
    by_type: dict[str, list[dict]] = {}
    for e in generated:
        by_type.setdefault(e["type"], []).append(e)

    assert all(e["severity"] == "critical" and e["meta"]["generated"] for e in generated)
    assert [e["kwargs"]["column"] for e in by_type["expect_column_to_exist"]] == config.column_names
    assert [e["kwargs"]["column"] for e in by_type["expect_column_values_to_not_be_null"]] == ["meter_id", "ward"]
    rules = {e["description"]: bool(e["meta"].get("reject_rows")) for e in by_type["unexpected_rows_expectation"]}
    assert rules == {
        "the key (meter_id, ward, updated_at) is unique in the batch (comparing ward as smallint, updated_at as timestamptz, as the merge does)": False,
        "read_at casts to timestamp": True, "ward casts to smallint": True, "active casts to boolean": True,
        "reading casts to numeric": True, "updated_at casts to timestamptz": True,
        f"updated_at is not later than now + {ALLOWANCE} s (clock skew allowance)": True,
    }, "a cast rule for every typed column (none for text), set aside row by row; the watermark rule last"
    text_key = generated_expectations(load_source_config(sources_dir() / "mhd_lead_tests.yaml"))
    assert [e["kwargs"] for e in text_key if e["type"] == "expect_compound_columns_to_be_unique"] == [
        {"column_list": ["month", "zip", "age_group"]}], "a key of several text columns is one compound check"
    assert not [e for e in text_key if "clock skew" in e.get("description", "")], "a file source has no watermark to check"
    assert not [e for e in generated_expectations(CONFIG) if "clock skew" in e.get("description", "")]


# ---- ops.casts_to agrees with PostgreSQL's cast --------------------------------------------------

CAST_CORPUS = {  # type: (values that cast, values that do not)
    "smallint": (["0", "32767", "-32768", " 12 ", "+5", "007", "\t9\n"],
                 ["32768", "-32769", "1.0", "1e3", "", " ", "abc", "12a", "--1"]),
    "integer": (["2147483647", "-2147483648", "42", " -7 "],
                ["2147483648", "-2147483649", "4.2", "forty-two", "", "99999999999"]),
    "bigint": (["9223372036854775807", "-9223372036854775808", "2147483648"],
               ["9223372036854775808", "1.5", "", "NaN"]),
    "numeric": (["1.5", "-0.001", ".5", "5.", "1e5", "-1.5E-3", "NaN", " 12.50 ", "123456789012345678901234567890"],
                ["1,5", "", "1e", "e5", "1.2.3", "$5", "1e1000000", "five"]),
    "double precision": (["1.5", "1e308", "-1e-300", "NaN", "Infinity", "-inf", " 3.25 ", "1.7976931348623157e308",
                          "0x10"],  # strtod reads hexadecimal: 16 to PostgreSQL, so to ops.casts_to
                         ["1e309", "1e-400", "1,5", "", "pi", "1.5.2"]),
    "boolean": (["true", "FALSE", " yes ", "n", "on", "off", "1", "0", "t", "F", "Y", "of", "tru"],
                ["o", "2", "maybe", "", "yes please", "-1", "ja"]),
    "date": (["2026-06-01", "2024-02-29", "06/01/2026", "June 5, 2026", "20260601", "2026-06-01 10:00", "epoch",
              "infinity", "yesterday", "2026-6-1", "2026-12-28", "2026-01-31", "1000-01-01", "2999-12-28", "2026-12-28 "],
             ["2026-02-29", "2026-13-01", "2026-06-31", "June 5th", "", "13/01/2026", "not a date", "2026-06-01 25:00",
              "2026-00-10", "2026-01-00", "2026-04-31", "0000-01-01", "2026-12-28x"]),
    "timestamp": (["2026-06-01 10:00:00", "2026-06-01T10:00:00", "2026-06-01 10:00:00.123456", "2026-06-01",
                   "2026-06-01 24:00:00", "2026-06-01T10:00:00Z", "2026-06-01 10:00:00-05", "now", "today",
                   "06/01/2026 10:00 PM", "2026-06-01 10:00:60"],  # a leap second: the next minute
                  ["2026-06-01 25:00:00", "2026-06-01 10:60", "2026-02-30 10:00", "current", "", "10:00",
                   "2026-06-01 10:00:00 Mars/Olympus", "yesterday at noon", "2026-06-01 1:00:0x",
                   "2026-06-31T10:00:00"]),
    "timestamptz": (["2026-06-01 10:00:00-05", "2026-06-01 10:00:00 America/Chicago", "2026-06-01T15:00:00Z",
                     "2026-06-01 10:00:00", "2026-03-08 02:30:00 America/Chicago", "infinity",
                     "2026-11-01 01:30:00", "2026-06-01 10:00:00.5-0600", "2026-06-01T10:00:00+14:00",
                     "2026-06-01 10:00:00-06:30", "2026-06-29 10:00:00-05", "2026-06-01 10:00:00+1"],
                    ["2026-06-01 10:00:00 Mars/Olympus", "2026-06-01 10:00:00+25", "2026-06-31 10:00", "", "noon",
                     "2026-06-01 10:00:00-06:60", "2026-06-01 10:00:00.1234567890123x"]),
}


# Values whose answer depends on the server: PostgreSQL 16 reads hexadecimal and underscores in
# integers, 15 does not. Only agreement with the server's own cast is checked for them.
CAST_EITHER_WAY = {"smallint": ["0x1F", "1_000"], "integer": ["0o17", "1_000_000"], "bigint": ["0b101"]}


def test_casts_to_agrees_with_the_merges_cast_on_a_corpus_of_every_type(warehouse):
    disagreements, misjudged = [], []
    conn = psycopg2.connect(db.normalize_url(warehouse).render_as_string(hide_password=False)
                            .replace("postgresql+psycopg2", "postgresql"))
    try:
        with conn.cursor() as cur:
            for type_name, (good, bad) in CAST_CORPUS.items():
                either = [(v, None) for v in CAST_EITHER_WAY.get(type_name, [])]
                for value, expected in [*((v, True) for v in good), *((v, False) for v in bad), *either]:
                    cur.execute("SELECT ops.casts_to(%s, %s)", (value, type_name))
                    said = cur.fetchone()[0]
                    cur.execute("SAVEPOINT probe")
                    try:
                        cur.execute(f"SELECT %s::{type_name}", (value,))  # the merge's cast: value::type
                        casts = True
                        cur.execute("RELEASE SAVEPOINT probe")
                    except psycopg2.DataError:
                        casts = False
                        cur.execute("ROLLBACK TO SAVEPOINT probe")
                    if said is not casts:
                        disagreements.append((type_name, value, said, casts))
                    if expected is not None and casts is not expected:
                        misjudged.append((type_name, value, casts))
            cur.execute("SELECT ops.casts_to(NULL, 'date'), ops.casts_to('anything', 'text')")
            assert cur.fetchone() == (True, True), "NULL casts to NULL; every text is text"
    finally:
        conn.close()
    assert disagreements == [], "ops.casts_to says (type, value, casts_to, the cast) differently from the cast"
    assert misjudged == [], "the corpus's good values cast and its bad ones do not (else it tests less than it says)"


def test_casts_to_refuses_a_type_it_does_not_check(warehouse):
    with pytest.raises(psycopg2.Error, match="no cast check for type 'json'"):
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            cur.execute("SELECT ops.casts_to('{}', 'json')")


def test_the_parse_and_cast_functions_work_in_a_parallel_query(warehouse):
    """A check on a batch big enough for a parallel plan: PostgreSQL 15 refuses a subtransaction (an
    exception block) in a parallel worker, so there the functions must keep the plan serial."""
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version_num")
        force = "debug_parallel_query" if int(cur.fetchone()[0]) >= 160000 else "force_parallel_mode"
        cur.execute(f"SET LOCAL {force} = on")  # every parallel-safe plan runs in a worker
        cur.execute("CREATE TABLE public.parallel_values (value text)")  # not temporary: those never go parallel
        cur.execute("INSERT INTO public.parallel_values VALUES ('2026-06-01 10:00'), ('not a time'), ('12.5'), ('x')")
        cur.execute("SELECT count(ops.try_timestamp(value)), count(ops.try_numeric(value)), "
                    "count(*) FILTER (WHERE ops.casts_to(value, 'date')) FROM public.parallel_values")
        assert cur.fetchone() == (1, 1, 1)
        conn.rollback()


# ---- one scan for the row queries (aim.row_scan) ------------------------------------------------

@pytest.fixture
def batch_reads(monkeypatch) -> list[str]:
    """The statements that read a batch of the qa source, from every connection the platform opens
    (its own and Great Expectations'), recorded as the real server runs them."""
    reads: list[str] = []

    class Recording(psycopg2.extensions.cursor):
        def execute(self, statement, params=None):
            text = statement if isinstance(statement, str) else (
                statement.decode() if isinstance(statement, bytes) else statement.as_string(self))
            if f"staging.{SOURCE}" in text.replace('"', "") and "_batch_id" in text:
                reads.append(text)
            return super().execute(statement, params)

    connect = psycopg2.connect
    monkeypatch.setattr(psycopg2, "connect", lambda *args, **kwargs: connect(*args, cursor_factory=Recording, **kwargs))
    return reads


@pytest.fixture
def scan_statements(monkeypatch) -> list[str]:
    """The statements `aim.row_scan` runs (each through `_try`), recorded as the real server runs them."""
    statements: list[str] = []
    spied = row_scan._try
    monkeypatch.setattr(row_scan, "_try", lambda cur, statement: statements.append(statement) or spied(cur, statement))
    return statements


def many_rules(n: int) -> list[dict]:
    """`n` business rules of the usual shape, none of which GOOD breaks."""
    return [{"type": "unexpected_rows_expectation", "description": f"pressure is not {1000 + i}", "severity": "critical",
             "kwargs": {"unexpected_rows_query": f"SELECT * FROM {{batch}} WHERE pressure = '{1000 + i}'"}}
            for i in range(n)]


def test_validation_reads_the_batch_a_bounded_number_of_times_whatever_the_suites_size(warehouse, suites, batch,
                                                                                      batch_reads):
    reads, outcomes = {}, {}
    for rules in (2, 40):
        path = write_suite(suites, DISTRICT, NOT_FUTURE, *many_rules(rules))
        batch_id = batch(f"rules{rules}")
        stage(warehouse, batch_id, GOOD)
        batch_reads.clear()
        with db.transaction(warehouse) as conn, conn.cursor() as cur:  # the gate, then the suite, as validate runs them
            gate.reject_rows(cur, CONFIG, row_rules(CONFIG, path), batch_id=batch_id, run_id="qa-run", landed=len(GOOD))
        outcomes[rules] = quality.validate_batch(warehouse, CONFIG, batch_id=batch_id)
        reads[rules] = len(batch_reads)

    assert outcomes[2].success and outcomes[40].success
    assert len(outcomes[40].results) == len(outcomes[2].results) + 38, "every rule has its result"
    assert reads[40] == reads[2], f"38 more row rules read the batch {reads[40] - reads[2]} more times"
    combined = [r for r in batch_reads if "count(*) FILTER" in r]
    assert len(combined) == 1, "the suite counts its row queries in one scan; the gate's cast rules (every value casts) in none"


def test_a_parse_function_of_a_column_that_casts_is_counted_as_the_cast(warehouse, batch, clock, scan_statements):
    """`ops.try_timestamp` and `ops.try_numeric` are a PL/pgSQL call per value on PostgreSQL 15: for a
    column whose every value casts, the scan uses the cast itself, with the same counts."""

    config = meters_source()
    conditions = ["ops.try_timestamp(read_at) >= '2026-06-15'", 'ops.try_timestamp("read_at") < \'2026-06-03\'',
                  "ops.try_numeric(reading) > 10",
                  "ops.try_numeric(reading) > (SELECT min(ops.try_numeric(reading)) FROM {batch})"]
    statements = scan_statements

    def expected(rows):
        times = [dt.datetime.fromisoformat(r[1]) for r in rows if r[1] != "soon"]
        readings = [float(r[4]) for r in rows]
        return [sum(t >= dt.datetime(2026, 6, 15) for t in times), sum(t < dt.datetime(2026, 6, 3) for t in times),
                sum(v > 10 for v in readings), sum(v > min(readings) for v in readings)]

    for label, rows in (("casts", meter_rows(40, clock)), ("one-does-not", with_value(meter_rows(40, clock), 7, "read_at", "soon"))):
        batch_id = batch(f"parse-{label}")
        stage(warehouse, batch_id, [tuple(r) for r in rows], config)
        statements.clear()
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            counted = row_scan.count_rows(cur, config.staging_table, batch_id, conditions, config.typed_columns)
        assert [c.rows for c in counted] == expected(rows), label
        scan = statements[-1]
        assert "ops.try_numeric(reading) > 10" not in scan and '"reading"::numeric > 10' in scan
        assert "(SELECT min(ops.try_numeric(reading))" in scan, "in a subquery the name could be another table's"
        assert ("ops.try_timestamp(read_at)" in scan) == (label == "one-does-not"), "the cast only where every value casts"


def test_the_platforms_clock_is_read_once_per_scan_not_once_per_row(warehouse, batch, clock, scan_statements):
    """`ops.clock_now()` and `ops.local_now()` hold one value per statement, yet written in a
    condition PostgreSQL evaluates them for every row (0.3 s of CPU per 1M rows for the local
    time): the scan reads each once, as a subquery, and counts the same rows."""
    config = meters_source()
    rows = with_value(meter_rows(40, clock), 3, "updated_at", (clock + dt.timedelta(hours=2)).isoformat())
    batch_id = batch("clock")
    stage(warehouse, batch_id, [tuple(r) for r in rows], config)
    conditions = ["updated_at::timestamptz > ops.clock_now()",
                  "updated_at::timestamptz AT TIME ZONE 'America/Chicago' > ops.local_now()"]
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        counted = row_scan.count_rows(cur, config.staging_table, batch_id, conditions, config.typed_columns)
        assert [c.rows for c in counted] == [2, 2], "the row 2 hours ahead and the one 200 s ahead, by the suite's clock"
        cur.execute("EXPLAIN (FORMAT JSON) " + scan_statements[-1])
        plan = cur.fetchone()[0][0]["Plan"]
    once, nodes = [], [plan]
    while nodes:
        node = nodes.pop()
        once += [node["Subplan Name"]] if node.get("Subplan Name", "").startswith("InitPlan") else []
        nodes.extend(node.get("Plans", []))
    assert len(once) == 2, f"each clock read once, before the scan: {once}"


def test_the_cast_rules_of_columns_whose_every_value_casts_cost_no_scan(warehouse, batch, clock, scan_statements):
    """A cast rule (the value there, not casting) of a column whose every value casts is 0 rows:
    after the whole-batch cast that found it so, the batch is not read again to count it."""
    from aim.generated_checks import does_not_cast_sql, quoted

    config = meters_source()
    conditions = [does_not_cast_sql(quoted(column), type_) for column, type_ in config.typed_columns]
    statements = scan_statements

    for label, rows in (("casts", meter_rows(40, clock)), ("one-does-not", with_value(meter_rows(40, clock), 7, "read_at", "soon"))):
        batch_id = batch(f"cast-rules-{label}")
        stage(warehouse, batch_id, [tuple(r) for r in rows], config)
        statements.clear()
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            counted = row_scan.count_rows(cur, config.staging_table, batch_id, conditions, config.typed_columns)
        expected = [int(label == "one-does-not" and column == "read_at") for column, _ in config.typed_columns]
        assert [c.rows for c in counted] == expected, label
        scans = [s for s in statements if "FILTER" in s]
        if label == "casts":
            assert scans == [], "every rule is 0 rows: nothing to scan for"
        else:
            assert len(scans) == 1 and "ops.casts_to(\"read_at\"" in scans[0] and "reading" not in scans[0], \
                "only the column with a value that does not cast is scanned for"


def test_the_gate_knows_a_batch_holds_each_key_once_comparing_keys_as_the_merge_does(warehouse, batch, clock):
    """`each_key_once`: no two rows of the batch hold one key, typed as the merge compares it."""
    cases = {
        "each-once": (meters_source(), meter_rows(20, clock), True),
        "read-twice": (meters_source(), meter_rows(20, clock) + [with_value(meter_rows(20, clock), 3, "updated_at",
                                                                            clock.isoformat())[3]], False),
        "two-spellings": (meters_source(key=("ward",)), with_value(meter_rows(2, clock), 1, "ward", "01"), False),
        "two-numbers": (meters_source(key=("ward",)), meter_rows(2, clock), True),
    }
    found = {}
    for label, (config, rows, _) in cases.items():
        batch_id = batch(label)
        stage(warehouse, batch_id, [tuple(r) for r in rows], config)
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            castable = row_scan.columns_that_cast(cur, config.staging_table, batch_id, config.typed_columns)
            found[label] = gate.each_key_once(cur, config, batch_id, castable)
    assert found == {label: expected for label, (_, _, expected) in cases.items()}


def test_the_key_check_of_a_batch_holding_each_key_once_costs_no_scan(warehouse, batch, clock, scan_statements):
    """Told the key's values are unique in the batch, the key and watermark check is 0 rows without
    its `GROUP BY`; a check grouping by other values is still counted."""
    config = meters_source()
    (key_check,) = [row_scan.condition_of(e["kwargs"]["unexpected_rows_query"]) for e in generated_expectations(config)
                    if "is unique in the batch" in (e.get("description") or "")]
    same_time = '"read_at" IN (SELECT "read_at" FROM {batch} GROUP BY 1 HAVING count(*) > 1)'
    rows = with_value(meter_rows(20, clock), 5, "read_at", meter_rows(20, clock)[4][1])  # rows 4 and 5: one time
    batch_id = batch("each-once")
    stage(warehouse, batch_id, [tuple(r) for r in rows], config)
    statements = scan_statements

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        counted = row_scan.count_rows(cur, config.staging_table, batch_id, [key_check, same_time], config.typed_columns,
                                      unique_values=key_values_sql(config))

    assert [c.rows for c in counted] == [0, 2]
    grouped = [s for s in statements if "GROUP BY" in s]
    assert len(grouped) == 1 and '"read_at"' in grouped[0] and "meter_id" not in grouped[0], grouped


def test_a_row_query_that_fails_does_not_stop_the_others_being_counted(warehouse, suites, batch):
    broken = {"type": "unexpected_rows_expectation", "description": "bad SQL", "severity": "critical",
              "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE no_such_column = 1"}}
    write_suite(suites, NOT_FUTURE, broken, *many_rules(1))
    bad = batch("bad")
    stage(warehouse, bad, GOOD + [("H-9", "3", "2030-06-05", "50")])

    results = {r["description"]: r for r in quality.validate_batch(warehouse, CONFIG, batch_id=bad).results}

    assert results["bad SQL"]["success"] is False and "no_such_column" in results["bad SQL"]["error"]
    assert results["inspected_on is not in the future"]["unexpected_count"] == 1
    assert results["pressure is not 1000"]["success"] is True and results["pressure is not 1000"]["unexpected_count"] == 0
    assert results["inspected_on casts to date"]["success"] is True


@pytest.mark.parametrize("query, condition", [
    ("SELECT * FROM {batch} WHERE a > 1", "a > 1"),
    ("select *\n  from {batch}\n where a ~ '^(limit|order by)$';", "a ~ '^(limit|order by)$'"),
    ("SELECT * FROM {batch} WHERE (a, b) IN (SELECT a, b FROM {batch} GROUP BY 1, 2 HAVING count(*) > 1)",
     "(a, b) IN (SELECT a, b FROM {batch} GROUP BY 1, 2 HAVING count(*) > 1)"),
    ("SELECT * FROM {batch} WHERE a > 1 ORDER BY a", None),
    ("SELECT * FROM {batch} WHERE a > 1 LIMIT 5", None),
    ("SELECT * FROM {batch} WHERE a > 1 -- a note", None),
    ("SELECT * FROM {batch} WHERE a > 1 UNION SELECT * FROM {batch}", None),
    ("SELECT a FROM {batch} WHERE a > 1", None),
    ("SELECT * FROM {batch} JOIN core.x USING (a) WHERE a > 1", None),
    ("SELECT * FROM {batch} WHERE a ~ '[0-9]{3}'", None),  # a stray brace: left to GX, which names the error
], ids=["plain", "keywords-in-a-literal", "grouped-subquery", "order-by", "limit", "comment", "union",
        "not-every-column", "join", "stray-brace"])
def test_only_a_row_query_of_the_usual_shape_is_combined(query, condition):
    from aim.row_scan import condition_of

    assert condition_of(query) == condition


def test_the_checks_counted_in_one_scan_say_what_great_expectations_says(warehouse, suites, batch, monkeypatch):
    from aim import scan_checks

    regex = {"type": "expect_column_values_to_match_regex", "severity": "critical", "description": "H- and digits",
             "kwargs": {"column": "hydrant_id", "regex": "^H-[0-9]{1,3}$", "mostly": 0.5}}
    some_null = {"type": "expect_column_values_to_not_be_null", "severity": "warning",
                 "kwargs": {"column": "pressure", "mostly": 0.9}}
    empty_set = {"type": "expect_column_values_to_be_in_set", "severity": "warning",
                 "kwargs": {"column": "inspected_on", "value_set": []}}
    write_suite(suites, DISTRICT, PRESSURE, NOT_FUTURE, regex, some_null, empty_set)
    batch_id = batch("parity")
    stage(warehouse, batch_id, GOOD + [("H-4", "99", "2030-06-05", None), ("X-5", None, "2026-06-05", "55"),
                                       ("H-6", "99", "2026-06-06", "70"), ("H-7777", "3", None, "")])

    scanned = quality.validate_batch(warehouse, CONFIG, batch_id=batch_id).results
    monkeypatch.setattr(scan_checks, "scan_check", lambda cur, expectation: None)  # Great Expectations runs them all
    by_gx = quality.validate_batch(warehouse, CONFIG, batch_id=batch_id).results
    assert [r["expectation"] for r in by_gx] == [e["type"] for e in suite_expectations(CONFIG, suites / f"{SOURCE}.json")], \
        "results come in the suite's order"

    def comparable(result: dict) -> dict:
        sample = result["unexpected_sample"]
        if result["expectation"] == "unexpected_rows_expectation":
            sample = None  # GX's SUMMARY format has no rows; the scan adds a sample of them
        return {**result, "unexpected_sample": sorted(sample, key=str) if sample else sample}

    assert [comparable(r) for r in scanned] == [comparable(r) for r in by_gx]
    assert any(not r["success"] for r in by_gx) and any(r["success"] for r in by_gx), "both outcomes are compared"


@pytest.mark.parametrize("regex", ["^[A-Z0-9]{6,20}$", "^[0-9]{1,3}$", r"^\d{5}$", r"^\w{2}$", "^.{2,}$",
                                   "^[^a-z]{3}$", "^[A-Z]{0}$"])
def test_a_regex_of_one_repeated_class_finds_what_postgresql_regex_finds(warehouse, regex):
    """`^X{m,n}$` is counted as `~ '^X*$'` and the value's length (PostgreSQL's regex engine is 4x
    slower on the bounded repeat, at a million IDs): the very values `~ regex` leaves out, on
    values at and past every edge (lengths, case, newlines, accents, spaces)."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    from aim import scan_checks

    values = ["", "A", "AB", "ABC", "ABC123", "abc123", "ABC12", "A" * 20, "A" * 21, "1", "12", "123", "1234",
              "12\n3", "123\n", "ÄBC123", "É", " 12", "53202", "5320", "x y", "a_b", "__"]
    expectation = ExpectationConfiguration(type="expect_column_values_to_match_regex",
                                           kwargs={"column": "v", "regex": regex})
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        condition = scan_checks.scan_check(cur, expectation).condition.unexpected
        cur.execute(f"SELECT v, coalesce(({condition}), false), NOT (v ~ %s) FROM unnest(%s::text[]) AS t(v)",
                    (regex, values))
        found = cur.fetchall()
    assert "{" not in condition, f"counted without the bounded repeat: {condition}"
    assert [(v, unexpected) for v, unexpected, _ in found] == [(v, by_regex) for v, _, by_regex in found]
    assert any(unexpected for _, unexpected, _ in found) and not all(unexpected for _, unexpected, _ in found)


@pytest.mark.parametrize("regex", [r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "^[A-Z]{3}-[0-9]{2}$", "^20[0-9]{2}$",
                                   "^ORD-[0-9]{8}$", "^532[0-9]{2}$", "^x[0-9]{2}5$", r"^\.[0-9]{2}%_\d{2}$",
                                   "^[0-9]{2}[a-z]{2}$", "^[a-z]{2}5[0-9]{2}$", r"^\w{2}-\w{2}$",
                                   "^[a-c-e]{2}x[0-9]{2}$"])
def test_a_fixed_width_regex_finds_what_postgresql_regex_finds(warehouse, regex):
    """`^...$` of literals and runs of a fixed count (a timestamp's format) is counted as `LIKE`
    and the regex with `*` counts (the regex engine is 20x slower on the counted form, at a
    million timestamps): the very values `~ regex` leaves out, on values with every separator
    and digit out of place, too long, too short, with other digits and LIKE's own wildcards."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    from aim import scan_checks

    values = ["2026-06-01 12:30:45", "2026-06-01 12:30:4", "2026-06-01 12:30:456", "2026-06-01T12:30:45",
              "2026-06-0112:30:45 ", "2026-06-01 12:30-45", "2026-06-01 12:3045:", "202-6-06-01 12:30:45",
              "20266-06-1 12:30:45", "2026--06-01 12:30:4", "2026-06-01 12:30:45\n", "２０２６-06-01 12:30:45",
              "٢٠٢٦-06-01 12:30:45", "2026-06-01 12:30:4x", "ABC-12", "ABC-1", "AB-123", "ABC--12", "abc-12",
              "2026", "20265", "2126", "ORD-12345678", "ORD-1234567", "ORD-123456789", "ORD_12345678", "53202",
              "532022", "5320", "x125", "x12", "x1255", "y125", ".12%_34", ".12ab34", "x12%_34", ".12%_3",
              "12ab", "1abc", "12a", "ab512", "a5512", "ab5x2", "ab-cd", "a_-cd", "ab--d", "a-b-c", "", "-"]
    expectation = ExpectationConfiguration(type="expect_column_values_to_match_regex",
                                           kwargs={"column": "v", "regex": regex})
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        condition = scan_checks.scan_check(cur, expectation).condition.unexpected.format()
        if regex == "^[a-c-e]{2}x[0-9]{2}$":  # Python reads it, PostgreSQL does not: its error, not a count
            assert " LIKE " not in condition
            with pytest.raises(psycopg2.errors.InvalidRegularExpression):
                cur.execute(f"SELECT count(*) FILTER (WHERE {condition}) FROM unnest(%s::text[]) AS t(v)", (values,))
            return
        cur.execute(f"SELECT v, coalesce(({condition.replace('%', '%%')}), false), NOT (v ~ %s) "
                    "FROM unnest(%s::text[]) AS t(v)", (regex, values))
        found = cur.fetchall()
    rewritten = regex not in ("^[0-9]{2}[a-z]{2}$", "^[a-z]{2}5[0-9]{2}$")  # runs side by side, a literal a run takes
    assert (" LIKE " in condition) == rewritten, condition
    assert [(v, unexpected) for v, unexpected, _ in found] == [(v, by_regex) for v, _, by_regex in found]
    assert any(unexpected for _, unexpected, _ in found) and not all(unexpected for _, unexpected, _ in found)


def test_importing_the_quality_module_leaves_the_garbage_collector_as_it_found_it():
    """The import pauses the cyclic collector (its passes over GX's objects find nothing) and
    freezes what it made; a task that imports it still collects its own garbage afterwards."""
    probe = ("import gc; was = {disabled}; gc.disable() if was else None; import aim.quality; "
             "print(gc.isenabled(), gc.get_freeze_count())")
    project = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project / "plugins"), str(project)])}
    seen = {}
    for disabled in (False, True):
        out = subprocess.run([sys.executable, "-c", probe.format(disabled=disabled)], capture_output=True, text=True,
                             check=True, env=env).stdout.split()
        seen[disabled] = (out[0] == "True", int(out[1]))
    assert seen[False][0] is True and seen[True][0] is False
    assert seen[False][1] > 100_000  # GX's objects are frozen, so no later pass scans them
