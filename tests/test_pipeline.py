"""The ingest run's steps (`aim.pipeline`), called directly as the Airflow tasks call them.

- `start_run` / `batch_id_for`: rerunning keeps one run_log row; the batch id is the same on every
  retry of a run and different for every run.
- `extract_and_land`: a retried landing first removes what an earlier attempt landed (no duplicates).
- `validate`: the quality gate. Row-level rules set rows aside while within
  `quality.max_rejected_share`; past it the batch is quarantined whole. A failed critical check
  quarantines the batch and raises `QualityGateFailed` naming source, batch and check, and `merge`
  then refuses it (core unchanged); a batch with only warnings is validated and merges.
- `record_failure`: a quality failure's message is kept as is; other errors are prefixed with the
  source and task.

Each test has its own warehouse database (migrated by `start_run`), suite folder, file drop
(a real folder read through `LocalStore`) and export folder.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aim import db, pipeline
from aim.extract.filestore import LocalStore
from aim.merge import MergeError
from aim.settings import sources_dir
from aim.sources import SourceConfig, load_source_config
from aim_demo.databases import query

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "qa_calls"
DAG_ID = f"ingest_{SOURCE}"
HEADER = ["Call ID", "Call Day", "Units"]
UNITS_RULE = "units is a whole number, not negative"
SUITE = {
    "name": SOURCE,
    "expectations": [
        {"type": "expect_column_to_exist", "severity": "critical", "kwargs": {"column": "call_id"}},
        {"type": "expect_column_values_to_be_unique", "severity": "critical", "kwargs": {"column": "call_id"}},
        {"type": "expect_column_values_to_not_be_null", "severity": "critical", "kwargs": {"column": "call_day"}},
        {"type": "expect_column_values_to_be_in_set", "description": "units 0-6 on a usual call",
         "severity": "warning", "kwargs": {"column": "units", "value_set": [str(n) for n in range(7)]}},
        {"type": "unexpected_rows_expectation", "description": UNITS_RULE, "severity": "critical",
         "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE units IS NOT NULL AND units !~ '^[0-9]+$'"},
         "meta": {"reject_rows": True}},
    ],
}


def calls_source(max_rejected_share: float = 0.01) -> SourceConfig:
    return SourceConfig.model_validate({
        "source": SOURCE, "department": "Quality assurance", "system": "test calls", "kind": "file",
        "schedule": None, "owner": "qa",
        "extract": {"location": "calls", "pattern": "calls_*.csv", "format": {"kind": "csv"}},
        "key": ["call_id"],
        "columns": [
            {"name": "call_id", "source": "Call ID", "privacy": "public"},
            {"name": "call_day", "source": "Call Day", "type": "date", "privacy": "public"},
            {"name": "units", "source": "Units", "type": "integer", "privacy": "public"},
        ],
        "expectation_suite": f"{SOURCE}.json",
        "quality": {"max_rejected_share": max_rejected_share},
    })


class Warehouse:
    """One test's warehouse, suite folder, file drop and export folder."""

    def __init__(self, url: str, root: Path, clock: dt.datetime):
        self.url, self.root, self.clock = url, root, clock
        self.drop = root / "drop"
        self.drop.mkdir()
        self.suites = root / "expectations"
        self.suites.mkdir()
        (self.suites / f"{SOURCE}.json").write_text(json.dumps(SUITE), encoding="utf-8")
        self.exports = root / "exports"
        self.quality = root / "quality"

    def query(self, statement: str, params=None) -> list[tuple]:
        return query(self.url, statement, params)

    def run_id(self, n: int = 0) -> str:
        """The run id Airflow gives a manual run, `n` minutes after the suite's moment."""
        return f"manual__{(self.clock + dt.timedelta(minutes=n)).astimezone(dt.timezone.utc).isoformat()}"

    def deliver(self, name: str, rows: list[tuple], header: list[str] = HEADER) -> None:
        lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
        (self.drop / name).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start_and_land(self, config: SourceConfig, run_id: str) -> str:
        batch_id = pipeline.start_run(config, run_id=run_id, dag_id=DAG_ID, logical_date=self.clock)
        pipeline.extract_and_land(config, access=LocalStore(self.drop), run_id=run_id, batch_id=batch_id)
        return batch_id

    def staged(self, batch_id: str) -> list[str]:
        rows = self.query(f"SELECT call_id FROM staging.{SOURCE} WHERE _batch_id = %s", (batch_id,))
        return sorted(r[0] for r in rows)

    def core(self) -> list[tuple]:
        return self.query(f"SELECT call_id, call_day, units, _batch_id FROM core.{SOURCE} ORDER BY call_id")

    def batch(self, batch_id: str) -> dict:
        (row,) = self.query("SELECT status, failure, rows_landed, rows_rejected, warnings, data_docs, typed_columns_cast "
                            "FROM ops.batch WHERE batch_id = %s", (batch_id,))
        return dict(zip(("status", "failure", "rows_landed", "rows_rejected", "warnings", "data_docs",
                         "typed_columns_cast"), row))

    def run_log(self, run_id: str, source: str = SOURCE) -> dict:
        rows = self.query("SELECT status, quality_outcome, message, rows_extracted, rows_rejected, warnings, batch_id, "
                          "dag_id FROM ops.run_log WHERE source = %s AND run_id = %s", (source, run_id))
        assert len(rows) == 1, f"one ops.run_log row per source and run, found {rows}"
        return dict(zip(("status", "quality_outcome", "message", "rows_extracted", "rows_rejected", "warnings",
                         "batch_id", "dag_id"), rows[0]))

    def results(self, batch_id: str) -> dict[str, tuple]:
        return {(r[0], r[1]): r[2:] for r in self.query(
            "SELECT expectation, coalesce(column_name, description), severity, success FROM ops.quality_result "
            "WHERE batch_id = %s", (batch_id,))}


@pytest.fixture
def wh(new_database, tmp_path, monkeypatch, clock) -> Warehouse:
    url = new_database("aim_pipeline")
    helper = Warehouse(url, tmp_path, clock)
    monkeypatch.setenv("AIM_WAREHOUSE_URL", url)
    monkeypatch.setenv("AIM_EXPECTATIONS_DIR", str(helper.suites))
    monkeypatch.setenv("AIM_EXPORT_URL", str(helper.exports))
    monkeypatch.setenv("AIM_QUALITY_URL", str(helper.quality))
    return helper


def calls(n: int, day: dt.date, prefix: str = "c") -> list[tuple]:
    return [(f"{prefix}{i:03d}", day.isoformat(), i % 7) for i in range(n)]


# ---- start_run and the batch id -----------------------------------------------------------------

def test_start_run_is_idempotent_and_a_rerun_starts_afresh(wh):
    config = calls_source()
    run_id = wh.run_id()

    first = pipeline.start_run(config, run_id=run_id, dag_id=DAG_ID, logical_date=wh.clock)
    again = pipeline.start_run(config, run_id=run_id, dag_id=DAG_ID, logical_date=wh.clock)

    assert first == again == pipeline.batch_id_for(SOURCE, run_id), "a rerun of start_run gives the run's batch id"
    log = wh.run_log(run_id)  # asserts a single row
    assert (log["status"], log["batch_id"], log["dag_id"]) == ("running", first, DAG_ID)
    migrations = len(list((ROOT / "sql" / "migrations").glob("*.sql")))
    assert wh.query("SELECT count(*) FROM ops.schema_migration") == [(migrations,)], \
        "start_run brings the warehouse schema up to date, once"
    assert wh.query(f"SELECT to_regclass('staging.{SOURCE}') IS NOT NULL, to_regclass('core.{SOURCE}') IS NOT NULL") \
        == [(True, True)], "start_run creates the source's staging and core tables"

    pipeline.record_failure(config, run_id=run_id, dag_id=DAG_ID, task_id="extract_and_land",
                            error=ConnectionError("drop folder offline"))
    pipeline.start_run(config, run_id=run_id, dag_id=DAG_ID, logical_date=wh.clock)
    log = wh.run_log(run_id)
    assert (log["status"], log["message"]) == ("running", None), \
        "a retried run starts its record afresh, keeping the one row"


def test_the_batch_id_is_the_same_on_every_retry_and_different_for_every_run(clock):
    scheduled = f"scheduled__{clock.astimezone(dt.timezone.utc).isoformat()}"
    manual_a = f"manual__{clock.astimezone(dt.timezone.utc).isoformat(timespec='microseconds')}"
    manual_b = f"manual__{(clock + dt.timedelta(microseconds=1)).astimezone(dt.timezone.utc).isoformat()}"

    assert pipeline.batch_id_for(SOURCE, scheduled) == pipeline.batch_id_for(SOURCE, scheduled), \
        "every retry of a run gets the same batch id"
    ids = {pipeline.batch_id_for(SOURCE, r) for r in (scheduled, manual_a, manual_b)}
    assert len(ids) == 3, "runs at the same second (or the same run id's timestamp) still get different batch ids"
    assert pipeline.batch_id_for(SOURCE, scheduled) != pipeline.batch_id_for("qa_other", scheduled), \
        "two sources' batches of the same run differ"
    assert all(i.startswith(f"{SOURCE}-{clock.astimezone(dt.timezone.utc):%Y%m%d}") for i in ids), \
        "a batch id is readable: the source and the run's date first"


# ---- extract_and_land ---------------------------------------------------------------------------

class FlakyStore(LocalStore):
    """A drop whose second file cannot be fetched on the first attempt (the fault injected)."""

    def __init__(self, root: Path, failing_key: str):
        super().__init__(root)
        self.failing_key = failing_key

    def fetch(self, key: str, destination: Path) -> str:
        if key == self.failing_key:
            raise ConnectionError(f"connection reset while fetching {key}")
        return super().fetch(key, destination)


def test_a_retried_landing_relands_cleanly(wh, today):
    config = calls_source()
    first, second = calls(3, today, "a"), calls(2, today, "b")
    wh.deliver("calls_1.csv", first)
    wh.deliver("calls_2.csv", second)
    run_id = wh.run_id()
    batch_id = pipeline.start_run(config, run_id=run_id, dag_id=DAG_ID, logical_date=wh.clock)

    with pytest.raises(ConnectionError):  # attempt 1: fails after the first file was copied into staging
        pipeline.extract_and_land(config, access=FlakyStore(wh.drop, "calls_2.csv"), run_id=run_id, batch_id=batch_id)
    assert wh.staged(batch_id) == [] and wh.query("SELECT count(*) FROM ops.batch") == [(0,)], \
        "a failed landing leaves nothing behind"

    for attempt in (2, 3):  # attempt 3: Airflow retried a landing that had already succeeded
        landed = pipeline.extract_and_land(config, access=LocalStore(wh.drop), run_id=run_id, batch_id=batch_id)
        expected = sorted(r[0] for r in first + second)
        assert wh.staged(batch_id) == expected, f"attempt {attempt}: every row landed exactly once"
        assert landed["rows_extracted"] == len(expected) and wh.batch(batch_id)["rows_landed"] == len(expected)
        assert wh.run_log(run_id)["rows_extracted"] == len(expected)
        assert wh.query("SELECT file_key, rows_landed, batch_id FROM ops.source_file ORDER BY file_key") == [
            ("calls_1.csv", len(first), batch_id), ("calls_2.csv", len(second), batch_id)
        ], f"attempt {attempt}: each file version is registered once, in this batch"


def test_the_planner_knows_the_landed_batch_before_it_is_checked(wh, today):
    """Landing refreshes the staging table's statistics: validation and the merge are planned for
    the rows really there (a parallel scan for a big batch), whether or not autovacuum came by."""
    config = calls_source()
    wh.deliver("calls_1.csv", calls(1500, today))
    run_id = wh.run_id()
    batch_id = pipeline.start_run(config, run_id=run_id, dag_id=DAG_ID, logical_date=wh.clock)
    with db.transaction(wh.url) as conn, conn.cursor() as cur:  # the staging table, known to the planner as empty
        cur.execute(f"ANALYZE staging.{SOURCE}")
    pipeline.extract_and_land(config, access=LocalStore(wh.drop), run_id=run_id, batch_id=batch_id)

    (estimate,) = wh.query(f"EXPLAIN (FORMAT JSON) SELECT * FROM staging.{SOURCE} WHERE _batch_id = %s", (batch_id,))[0]
    assert estimate[0]["Plan"]["Plan Rows"] == 1500, "the planner expects the batch's rows, not a guess"


# ---- validate: rows set aside, or the batch quarantined whole ------------------------------------

def rows_with_bad_units(n_good: int, day: dt.date) -> tuple[list[tuple], list[tuple]]:
    bad = [("x001", day.isoformat(), "n/a"), ("x002", day.isoformat(), "-2"), ("x003", day.isoformat(), "many")]
    return calls(n_good, day), bad


def test_a_batch_past_the_rejected_share_is_quarantined_whole(wh, today):
    config = calls_source(max_rejected_share=0.01)
    good, bad = rows_with_bad_units(97, today - dt.timedelta(days=1))
    wh.deliver("calls_1.csv", good + bad)
    run_id = wh.run_id()
    batch_id = wh.start_and_land(config, run_id)

    with pytest.raises(pipeline.QualityGateFailed) as failed:
        pipeline.validate(config, run_id=run_id, batch_id=batch_id)

    message = str(failed.value)
    assert SOURCE in message and batch_id in message and "aim:rejected_share" in message, \
        f"the failure names the source, the batch and the check: {message}"
    assert wh.query("SELECT count(*) FROM ops.rejected_row") == [(0,)], "past the limit no row moves"
    assert wh.staged(batch_id) == sorted(r[0] for r in good + bad), "the whole batch stays in staging for review"
    batch = wh.batch(batch_id)
    assert (batch["status"], batch["failure"], batch["rows_rejected"]) == ("quarantined", message, 0), \
        "ops.batch marks the batch quarantined, with the failure"
    assert wh.results(batch_id)[("aim:rejected_share", "rows set aside by row-level rules stay within 1.0% of the "
                                                       "batch")] == ("critical", False)
    log = wh.run_log(run_id)
    assert (log["quality_outcome"], log["message"]) == ("failed", message)
    assert wh.query("SELECT status FROM ops.source_file") == [("quarantined",)], "its file is quarantined with it"

    with pytest.raises(MergeError, match="quarantined"):
        pipeline.merge(config, run_id=run_id, batch_id=batch_id)
    assert wh.core() == [], "a quarantined batch never reaches core"


def test_rows_within_the_rejected_share_are_set_aside_and_the_rest_merges(wh, today):
    config = calls_source(max_rejected_share=0.05)
    good, bad = rows_with_bad_units(97, today - dt.timedelta(days=1))
    wh.deliver("calls_1.csv", good + bad)
    run_id = wh.run_id()
    batch_id = wh.start_and_land(config, run_id)

    outcome = pipeline.validate(config, run_id=run_id, batch_id=batch_id)

    assert outcome["rows_rejected"] == len(bad)
    assert sorted(wh.query("SELECT row_data->>'call_id', rule, origin FROM ops.rejected_row WHERE batch_id = %s",
                           (batch_id,))) == [
        ("x001", "units casts to integer", "calls_1.csv"),  # the generated cast rule names text in a number
        ("x002", UNITS_RULE, "calls_1.csv"),                 # the suite's business rule, a negative count
        ("x003", "units casts to integer", "calls_1.csv"),
    ], "exactly the matching rows move to ops.rejected_row, once each, with the first rule they fail and their file"
    batch = wh.batch(batch_id)
    assert (batch["status"], batch["rows_rejected"]) == ("validated", len(bad))
    log = wh.run_log(run_id)
    assert (log["quality_outcome"], log["rows_rejected"]) == ("passed", len(bad))

    assert pipeline.merge(config, run_id=run_id, batch_id=batch_id)["rows_loaded"] == len(good)
    assert [r[0] for r in wh.core()] == sorted(r[0] for r in good), "the rest of the batch loads, without the bad rows"


# ---- validate then merge: the gate blocks a bad batch ---------------------------------------------

def test_a_batch_failing_a_critical_expectation_is_quarantined_and_merge_refuses_it(wh, today):
    config = calls_source()
    day = today - dt.timedelta(days=2)
    wh.deliver("calls_1.csv", calls(10, day))
    first_run = wh.run_id(0)
    first = wh.start_and_land(config, first_run)
    pipeline.validate(config, run_id=first_run, batch_id=first)
    pipeline.merge(config, run_id=first_run, batch_id=first)
    core_before = wh.core()
    assert len(core_before) == 10

    duplicated = calls(5, day, "d") + [("d001", day.isoformat(), 4)]  # d001 twice
    wh.deliver("calls_2.csv", duplicated)
    run_id = wh.run_id(60)
    batch_id = wh.start_and_land(config, run_id)

    with pytest.raises(pipeline.QualityGateFailed) as failed:
        pipeline.validate(config, run_id=run_id, batch_id=batch_id)

    message = str(failed.value)
    assert SOURCE in message and batch_id in message and "expect_column_values_to_be_unique on call_id" in message, \
        f"the failure names the source, the batch and the failed check: {message}"
    assert wh.batch(batch_id)["status"] == "quarantined"
    assert wh.run_log(run_id)["quality_outcome"] == "failed"
    with pytest.raises(MergeError, match="quarantined"):
        pipeline.merge(config, run_id=run_id, batch_id=batch_id)
    assert wh.core() == core_before, "core is unchanged by a quarantined batch"
    assert wh.staged(batch_id) == sorted(r[0] for r in duplicated), "the quarantined rows stay in staging"
    index = (wh.quality / "index.html").read_text(encoding="utf-8")
    assert f'<tr class="quarantined"><td>{SOURCE}</td><td>{batch_id}</td>' in index, \
        "the published quality index shows the batch as quarantined"


def test_a_batch_with_only_warnings_is_validated_and_merges(wh, today):
    config = calls_source()
    rows = calls(10, today - dt.timedelta(days=2)) + [("c900", (today - dt.timedelta(days=2)).isoformat(), 40)]
    wh.deliver("calls_1.csv", rows)
    run_id = wh.run_id()
    batch_id = wh.start_and_land(config, run_id)

    outcome = pipeline.validate(config, run_id=run_id, batch_id=batch_id)

    assert outcome["warnings"] == 1, "one warning: units 40 is outside the usual set"
    assert wh.results(batch_id)[("expect_column_values_to_be_in_set", "units")] == ("warning", False), \
        "the warning is recorded in ops.quality_result"
    batch = wh.batch(batch_id)
    assert (batch["status"], batch["warnings"]) == ("validated", 1), "a warning does not stop the batch"
    assert (wh.quality / batch["data_docs"]).is_file(), "the batch's Data Docs page is in the private quality target"
    assert not (wh.exports / "quality").exists(), "and nothing of it under the exports"
    log = wh.run_log(run_id)
    assert (log["quality_outcome"], log["warnings"]) == ("passed", 1)

    assert pipeline.merge(config, run_id=run_id, batch_id=batch_id)["rows_loaded"] == len(rows)
    assert [r[0] for r in wh.core()] == sorted(r[0] for r in rows), "the batch with warnings merges whole"


def test_validate_casts_the_batch_only_when_landing_did_not_find_that_everything_casts(wh, today, monkeypatch):
    """Landing may already know that every typed value of the batch casts (`ops.batch.typed_columns_cast`,
    found with the newest watermark: see test_copy_landing); validate then does not cast the batch
    again. When landing did not find it (a file drop, as here, or a value that does not cast),
    validate finds which columns cast itself."""
    from aim import row_scan

    casting = []
    cast_columns = row_scan.columns_that_cast
    monkeypatch.setattr(row_scan, "columns_that_cast", lambda *a, **k: casting.append(a[2]) or cast_columns(*a, **k))
    config = calls_source()
    for n, told in enumerate((False, True)):
        wh.deliver(f"calls_{n}.csv", calls(20, today, f"r{n}-"))
        run_id = wh.run_id(n)
        batch_id = wh.start_and_land(config, run_id)
        assert wh.batch(batch_id)["typed_columns_cast"] is False, "a file drop's landing does not cast its rows"
        if told:  # as a PostgreSQL source's landing records it
            wh.query("UPDATE ops.batch SET typed_columns_cast = true WHERE batch_id = %s RETURNING 1", (batch_id,))

        assert pipeline.validate(config, run_id=run_id, batch_id=batch_id)["rows_rejected"] == 0

        assert casting == ([] if told else [batch_id]), "the batch is cast by validate only when landing did not"
        casting.clear()
        assert wh.batch(batch_id)["status"] == "validated"
        assert pipeline.merge(config, run_id=run_id, batch_id=batch_id)["rows_loaded"] == 20


def test_the_gate_and_the_suite_share_one_count_of_the_batch_unless_rows_were_set_aside(wh, today, monkeypatch):
    """The suite's conditions, the row-level rules' among them, are counted in one scan, which the
    gate's rules and the suite's results both use; once the gate has set rows aside, the suite
    counts what stays again, so its results are those of the rows that go on."""
    from aim import row_scan

    scans = []
    spied = row_scan._try
    monkeypatch.setattr(row_scan, "_try", lambda cur, statement: (
        scans.append(statement) if "count(*) FILTER" in statement else None) or spied(cur, statement))
    config = calls_source(max_rejected_share=0.05)
    wh.deliver("calls_0.csv", calls(20, today - dt.timedelta(days=1), "a"))
    run_id = wh.run_id(0)
    clean = wh.start_and_land(config, run_id)
    assert pipeline.validate(config, run_id=run_id, batch_id=clean)["rows_rejected"] == 0
    assert len(scans) == 1, "one count of the batch for the gate and the suite together"
    pipeline.merge(config, run_id=run_id, batch_id=clean)

    scans.clear()
    good, bad = rows_with_bad_units(97, today - dt.timedelta(days=1))
    wh.deliver("calls_1.csv", good + bad)
    run_id = wh.run_id(1)
    rejecting = wh.start_and_land(config, run_id)
    assert pipeline.validate(config, run_id=run_id, batch_id=rejecting)["rows_rejected"] == len(bad)
    assert len(scans) == 2, "counted again once rows were set aside"
    assert wh.query("SELECT success, unexpected_count FROM ops.quality_result WHERE batch_id = %s AND description = %s",
                    (rejecting, UNITS_RULE)) == [(True, 0)], "the suite judged the rows that stayed"
    assert wh.batch(rejecting)["status"] == "validated"


def test_great_expectations_is_imported_while_the_gate_counts_its_rules(wh, today):
    """Importing Great Expectations takes about two seconds of CPU: `validate` starts it in the
    background as soon as it knows the batch has rows, so it overlaps with the gate's statements,
    which the server runs, instead of following them. Run in a fresh process (nothing imported)."""
    config = calls_source()
    wh.deliver("calls_1.csv", calls(10, today - dt.timedelta(days=2)))
    run_id = wh.run_id()
    batch_id = wh.start_and_land(config, run_id)
    child = f"""
import json, sys, time
from aim import gate, pipeline
from tests.test_pipeline import calls_source
counting = gate.reject_rows
seen = []
def reject_rows(*args, **kwargs):  # the gate's statements: does the import run meanwhile?
    waited = time.monotonic()
    while "great_expectations" not in sys.modules and time.monotonic() - waited < 20:
        time.sleep(0.02)
    seen.append("great_expectations" in sys.modules)
    return counting(*args, **kwargs)
gate.reject_rows = reject_rows
assert "great_expectations" not in sys.modules
outcome = pipeline.validate(calls_source(), run_id={run_id!r}, batch_id={batch_id!r})
print(json.dumps({{"imported_during_gate": seen, "checks": outcome["checks"]}}))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    reported = json.loads(out.stdout.strip().splitlines()[-1])
    assert reported["imported_during_gate"] == [True], "the import ran while the gate counted"
    assert reported["checks"] > 0 and wh.batch(batch_id)["status"] == "validated"


# ---- record_failure -----------------------------------------------------------------------------

def test_record_failure_keeps_a_gate_message_and_prefixes_other_errors(wh):
    config = calls_source()
    gate_run, other_run, unlogged_run = wh.run_id(0), wh.run_id(1), wh.run_id(2)
    for run_id in (gate_run, other_run):
        pipeline.start_run(config, run_id=run_id, dag_id=DAG_ID, logical_date=wh.clock)
    gate_message = f"quality gate failed for source {SOURCE}, batch b-1: 1 critical expectation(s) of suite x failed"

    pipeline.record_failure(config, run_id=gate_run, dag_id=DAG_ID, task_id="validate",
                            error=pipeline.QualityGateFailed(gate_message))
    pipeline.record_failure(config, run_id=other_run, dag_id=DAG_ID, task_id="extract_and_land",
                            error=ConnectionError("S3 endpoint unreachable"))
    pipeline.record_failure(config, run_id=unlogged_run, dag_id=DAG_ID, task_id="start_run",
                            error=RuntimeError("AIM_WAREHOUSE_URL points nowhere"))

    assert (wh.run_log(gate_run)["status"], wh.run_log(gate_run)["message"]) == ("failed", gate_message), \
        "a quality failure's message already names source, batch and checks: kept as it is"
    assert wh.run_log(other_run)["message"] == f"source {SOURCE}, task extract_and_land: S3 endpoint unreachable", \
        "any other failure is prefixed with the source and the task"
    unlogged = wh.run_log(unlogged_run)
    assert (unlogged["status"], unlogged["dag_id"], unlogged["message"]) == (
        "failed", DAG_ID, f"source {SOURCE}, task start_run: AIM_WAREHOUSE_URL points nowhere"
    ), "a run that failed before it was logged gets its row"


# ---- found broken, now fixed: a batch past the share with unparseable dates; a rerun of validate -------

@pytest.mark.clock
def test_a_volume_checked_batch_past_the_share_with_unparseable_dates_is_quarantined(wh, today):
    config = load_source_config(sources_dir() / "mfd_dispatch_incidents.yaml")
    shutil.copy(ROOT / "expectations" / "mfd_dispatch_incidents.json", wh.suites)
    day = today - dt.timedelta(days=3)
    header = [c.source_name for c in config.columns]
    rows = [(f"F{day:%y%m%d}{i:04d}", "EMS", 2, f"{100 + i} N WATER ST", 4, *(f"{day} 10:{m:02d}:00" for m in
                                                                            (0, 2, 5, 9, 40)))
            for i in range(97)]
    rows += [(f"F{day:%y%m%d}{i:04d}", "FIRE", 1, "200 E WELLS ST", 4, "see narrative", "", "", "", "")
             for i in range(97, 100)]  # 3% of the batch: past the source's 1%
    wh.deliver(f"cad_incidents_{day}.csv", rows, header)
    run_id = wh.run_id()
    batch_id = pipeline.start_run(config, run_id=run_id, dag_id="ingest_mfd_dispatch_incidents", logical_date=wh.clock)
    pipeline.extract_and_land(config, access=LocalStore(wh.drop), run_id=run_id, batch_id=batch_id)

    with pytest.raises(pipeline.QualityGateFailed, match="aim:rejected_share"):
        pipeline.validate(config, run_id=run_id, batch_id=batch_id)
    assert wh.batch(batch_id)["status"] == "quarantined"


def test_validate_rerun_after_a_fault_keeps_the_rows_set_aside_counted(wh, today, monkeypatch):
    from aim import quality

    config = calls_source(max_rejected_share=0.05)
    good, bad = rows_with_bad_units(97, today - dt.timedelta(days=1))
    wh.deliver("calls_1.csv", good + bad)
    run_id = wh.run_id()
    batch_id = wh.start_and_land(config, run_id)
    with monkeypatch.context() as fault:
        fault.setattr(quality, "validate_batch", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("lost")))
        with pytest.raises(ConnectionError):
            pipeline.validate(config, run_id=run_id, batch_id=batch_id)

    pipeline.validate(config, run_id=run_id, batch_id=batch_id)

    set_aside = wh.query("SELECT count(*) FROM ops.rejected_row WHERE batch_id = %s", (batch_id,))[0][0]
    assert (set_aside, wh.batch(batch_id)["rows_rejected"], wh.run_log(run_id)["rows_rejected"]) == \
        (len(bad), len(bad), len(bad)), "the rows set aside stay counted on the batch and the run after a rerun"
