"""`aim.runlog` and `aim.batches` against a real PostgreSQL: the run log (`start_run`, `update_run`,
`fail_run`), the batch register (`register_batch`, `batch_status`, `quarantine_batch`,
`mark_validated`, `record_batch_checks`), file versions (`register_file`, `file_version_known`),
quality results and the stored watermark (`aim.watermarks.read`), each doing what its docstring
promises.

One warehouse database per module; every test works on its own uniquely named source (and batch
ids made from it), so tests see nothing of each other. Each call runs in its own transaction, as
in the pipeline.
"""
from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from psycopg2 import sql

from aim import batches, db, runlog, watermarks
from aim.migrations import migrate

RUN_COLUMNS = ("source", "run_id", "dag_id", "batch_id", "logical_date", "rows_extracted", "rows_rejected",
               "rows_loaded", "quality_outcome", "status", "message", "started_at", "ended_at",
               "warnings")
BATCH_COLUMNS = ("batch_id", "source", "run_id", "status", "rows_landed", "max_watermark", "landed_at",
                 "merged_at", "failure", "rows_rejected", "warnings", "data_docs", "keys_proven_unique",
                 "each_key_once")
FILE_COLUMNS = ("source", "file_key", "sha256", "size_bytes", "rows_landed", "batch_id", "status", "merged_at",
                "extra_columns")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Ledger:
    """One test's source in the shared warehouse, and what `ops` records about it."""

    def __init__(self, url: str):
        self.url = url
        self.source = f"test_orders_{uuid.uuid4().hex[:10]}"
        self.dag_id = f"ingest_{self.source}"

    def batch(self, label: str) -> str:
        """This source's batch id for `label` (batch ids are global in `ops.batch`)."""
        return f"{self.source}-{label}"

    def call(self, function, *args, **kwargs):
        """Run one runlog function in its own (committed) transaction, as the pipeline does."""
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            return function(cur, *args, **kwargs)

    def execute(self, statement: str | sql.Composable, params=None) -> list[tuple]:
        """Run one statement in its own transaction; its rows, if any."""
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def start(self, run_id: str, *, batch: str = "1", logical_date=None, source: str | None = None) -> None:
        self.call(runlog.start_run, source=source or self.source, run_id=run_id, dag_id=self.dag_id,
                  batch_id=self.batch(batch), logical_date=logical_date)

    def update(self, run_id: str, **fields) -> None:
        self.call(runlog.update_run, source=self.source, run_id=run_id, **fields)

    def fail(self, run_id: str, message: str) -> None:
        self.call(runlog.fail_run, source=self.source, run_id=run_id, dag_id=self.dag_id, message=message)

    def register_batch(self, label: str, rows: int = 10, max_watermark: str | None = None) -> None:
        self.call(batches.register_batch, batch_id=self.batch(label), source=self.source, run_id=f"run_{label}",
                  rows=rows, max_watermark=max_watermark)

    def file_version(self, file_key: str, content: str, batch: str, *, rows: int = 3,
                     status: str | None = None) -> None:
        """A file version registered in `batch`, then set to `status` (as a merge, quarantine or discard would)."""
        self.call(batches.register_file, source=self.source, file_key=file_key, sha256=sha(content),
                  size=len(content), rows=rows, batch_id=self.batch(batch))
        if status:
            self.execute("UPDATE ops.source_file SET status = %s WHERE source = %s AND file_key = %s AND sha256 = %s",
                     (status, self.source, file_key, sha(content)))

    def run(self, run_id: str, source: str | None = None) -> dict[str, Any] | None:
        rows = self.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM ops.run_log WHERE source = %s AND run_id = %s",
                        (source or self.source, run_id))
        return dict(zip(RUN_COLUMNS, rows[0])) if rows else None

    def runs(self) -> int:
        return self.execute("SELECT count(*) FROM ops.run_log WHERE source = %s", (self.source,))[0][0]

    def batch_record(self, label: str) -> dict[str, Any] | None:
        rows = self.execute(f"SELECT {', '.join(BATCH_COLUMNS)} FROM ops.batch WHERE batch_id = %s",
                            (self.batch(label),))
        return dict(zip(BATCH_COLUMNS, rows[0])) if rows else None

    def files(self, file_key: str | None = None) -> list[dict[str, Any]]:
        rows = self.execute(f"SELECT {', '.join(FILE_COLUMNS)} FROM ops.source_file WHERE source = %s "
                        "AND file_key = coalesce(%s, file_key) ORDER BY file_key, sha256", (self.source, file_key))
        return [dict(zip(FILE_COLUMNS, row)) for row in rows]

    def settled(self, file_key: str, content: str, source: str | None = None) -> bool:
        return self.call(batches.file_version_known, source or self.source, file_key, sha(content))


@pytest.fixture(scope="module")
def warehouse(new_database) -> str:
    """One migrated warehouse for the module."""
    url = new_database("aim_test_runlog")
    migrate(url)
    return url


@pytest.fixture
def ledger(warehouse) -> Ledger:
    """This test's own source: no runs, batches, files or watermark recorded yet."""
    return Ledger(warehouse)


# --------------------------------------------------------------------------- run log


def test_start_run_records_a_running_run(ledger, clock):
    ledger.start("scheduled__1", batch="1", logical_date=clock)

    record = ledger.run("scheduled__1")
    assert record is not None, "start_run records the run"
    assert {k: record[k] for k in ("dag_id", "batch_id", "logical_date", "status", "ended_at")} == {
        "dag_id": ledger.dag_id, "batch_id": ledger.batch("1"), "logical_date": clock, "status": "running",
        "ended_at": None,
    }, "a started run is running, with its DAG, batch and logical date, and has not ended"
    assert record["started_at"] is not None, "a started run records when it started"


def test_a_retried_run_starts_its_record_afresh_keeping_the_row(ledger, clock):
    ledger.start("scheduled__1", batch="1", logical_date=clock)
    ledger.update("scheduled__1", rows_extracted=10, rows_rejected=1, rows_loaded=9,
                  quality_outcome="failed", message="gate failed", warnings=3)
    ledger.fail("scheduled__1", "task merge: boom")
    first = ledger.run("scheduled__1")

    ledger.start("scheduled__1", batch="1_retry", logical_date=clock)

    retried = ledger.run("scheduled__1")
    assert ledger.runs() == 1, "a retried run keeps its one row"
    assert (retried["status"], retried["batch_id"]) == ("running", ledger.batch("1_retry")), \
        "a retried run is running again, on the batch it was started with"
    cleared = ("rows_extracted", "rows_rejected", "rows_loaded", "quality_outcome", "message",
               "warnings", "ended_at")
    assert {k: retried[k] for k in cleared} == dict.fromkeys(cleared), \
        "a retried run starts afresh: no counts, outcome, message or end from the earlier attempt"
    assert retried["started_at"] > first["started_at"], "a retried run records when the retry started"
    assert (retried["dag_id"], retried["logical_date"]) == (first["dag_id"], first["logical_date"]), \
        "the run keeps its DAG and logical date"


def test_update_run_sets_counts_outcome_and_message_on_that_run_only(ledger):
    other_source = f"{ledger.source}_other"
    ledger.start("run_a")
    ledger.start("run_b")
    ledger.start("run_a", source=other_source)
    others_before = (ledger.run("run_b"), ledger.run("run_a", source=other_source))

    ledger.update("run_a", rows_extracted=120, rows_rejected=3, rows_loaded=117,
                  quality_outcome="passed", warnings=2, message="note")

    record = ledger.run("run_a")
    assert {k: record[k] for k in ("rows_extracted", "rows_rejected", "rows_loaded",
                                   "quality_outcome", "warnings", "message")} == {
        "rows_extracted": 120, "rows_rejected": 3, "rows_loaded": 117,
        "quality_outcome": "passed", "warnings": 2, "message": "note",
    }, "update_run sets each field it is given"
    assert (record["status"], record["ended_at"]) == ("running", None), \
        "setting counts neither changes the status nor ends the run"
    assert (ledger.run("run_b"), ledger.run("run_a", source=other_source)) == others_before, \
        "update_run changes only the named run of the named source"


def test_update_run_leaves_fields_it_is_not_given(ledger):
    ledger.start("run_a")
    ledger.update("run_a", rows_extracted=50)

    ledger.update("run_a", rows_loaded=40)

    record = ledger.run("run_a")
    assert (record["rows_extracted"], record["rows_loaded"]) == (50, 40), \
        "a later update keeps the counts an earlier one set"


@pytest.mark.parametrize("status", ["success", "failed"])
def test_a_final_status_ends_the_run(ledger, status):
    ledger.start("run_a")

    ledger.update("run_a", status=status)

    record = ledger.run("run_a")
    assert record["status"] == status, "update_run sets the status"
    assert record["ended_at"] is not None and record["ended_at"] >= record["started_at"], \
        f"a run set to {status} records when it ended"


@pytest.mark.parametrize("fields", [
    {"rows_inserted": 1},
    {"ended_at": None},
    {"rows_loaded": 1, "batch_id": "b_other"},
    {"status = 'success', message": "x"},
], ids=["unknown_count", "ended_at", "known_and_unknown", "sql_in_name"])
def test_update_run_rejects_unknown_fields_and_changes_nothing(ledger, fields):
    ledger.start("run_a")
    before = ledger.run("run_a")

    with pytest.raises(ValueError) as rejected:
        ledger.update("run_a", **fields)

    unknown = sorted(set(fields) - {"rows_loaded"})
    assert all(name in str(rejected.value) for name in unknown), \
        f"the error names the unknown field(s) {unknown}: {rejected.value}"
    assert ledger.run("run_a") == before, "a rejected update changes nothing"


def test_fail_run_records_a_run_that_was_never_started(ledger):
    ledger.fail("manual__1", "task start_run: warehouse unreachable")

    record = ledger.run("manual__1")
    assert record is not None, "a run that failed before it was logged still gets its record"
    assert (record["status"], record["dag_id"], record["message"]) == \
        ("failed", ledger.dag_id, "task start_run: warehouse unreachable"), \
        "the record says the run failed, in which DAG, and why"
    assert record["ended_at"] is not None, "a failed run records when it ended"


def test_fail_run_marks_a_started_run_failed_keeping_what_it_did(ledger):
    ledger.start("run_a", batch="a")
    ledger.update("run_a", rows_extracted=12)
    before = ledger.run("run_a")

    ledger.fail("run_a", "task merge: disk full")

    record = ledger.run("run_a")
    assert (record["status"], record["message"]) == ("failed", "task merge: disk full"), \
        "fail_run marks the run failed with the message"
    assert record["ended_at"] is not None, "a failed run records when it ended"
    assert (record["batch_id"], record["rows_extracted"], record["started_at"]) == \
        (before["batch_id"], before["rows_extracted"], before["started_at"]), \
        "failing a run keeps its batch, counts and start"


def test_a_run_that_failed_before_it_was_logged_can_be_started_by_its_retry(ledger, clock):
    ledger.fail("run_a", "early")

    ledger.start("run_a", batch="a", logical_date=clock)

    record = ledger.run("run_a")
    assert (record["status"], record["batch_id"], record["message"], record["ended_at"]) == \
        ("running", ledger.batch("a"), None, None), "the retry of a run failed before logging starts it afresh"
    assert ledger.runs() == 1, "it is still one run"
    assert (record["dag_id"], record["logical_date"]) == (ledger.dag_id, clock), \
        "the retry records the DAG and logical date that fail_run could not know"


# --------------------------------------------------------------------------- batches


def test_register_batch_records_a_landed_batch(ledger, clock):
    ledger.register_batch("1", rows=25, max_watermark=clock.isoformat())

    record = ledger.call(batches.batch_status, ledger.batch("1"))
    assert {k: v for k, v in record.items() if k != "landed_at"} == {
        "batch_id": ledger.batch("1"), "source": ledger.source, "run_id": "run_1", "status": "landed",
        "rows_landed": 25, "max_watermark": clock.isoformat(), "failure": None, "keys_proven_unique": False,
        "each_key_once": False, "typed_columns_cast": False, "keys_unique_at_source": False,
    }, "a registered batch is landed, with its source, run, rows and max watermark, its key not yet checked"
    assert record["landed_at"] is not None, "a registered batch says when it landed"


def test_a_landing_records_what_its_source_guaranteed_and_landing_again_replaces_it(ledger):
    """`typed_columns_cast` and `keys_unique_at_source` describe one landing's rows: a batch landed
    again (a retry) records what its own landing found, never what an earlier one did."""
    def land(**found):
        ledger.call(batches.register_batch, batch_id=ledger.batch("1"), source=ledger.source, run_id="run_1",
                    rows=10, max_watermark=None, **found)
        record = ledger.call(batches.batch_status, ledger.batch("1"))
        return record["typed_columns_cast"], record["keys_unique_at_source"]

    assert land(typed_columns_cast=True, keys_unique_at_source=True) == (True, True)
    assert land() == (False, False), "landed again, by a path that found neither"


def test_batch_status_of_a_batch_never_landed_is_none(ledger):
    assert ledger.call(batches.batch_status, ledger.batch("never")) is None, "a batch never landed has no status"


@pytest.mark.parametrize("earlier_state", ["quarantined", "merged"])
def test_a_relanded_batch_replaces_its_record(ledger, clock, earlier_state):
    ledger.register_batch("1", rows=25, max_watermark=clock.isoformat())
    ledger.call(batches.record_batch_checks, ledger.batch("1"), rows_rejected=4, warnings=2, data_docs="quality/x.html")
    ledger.call(batches.quarantine_batch, ledger.batch("1"), "expect_column_values_to_not_be_null failed")
    if earlier_state == "merged":
        ledger.execute("UPDATE ops.batch SET status = 'merged', merged_at = now() WHERE batch_id = %s",
                   (ledger.batch("1"),))
    first = ledger.batch_record("1")

    ledger.register_batch("1", rows=30, max_watermark=None)

    record = ledger.batch_record("1")
    assert ledger.execute("SELECT count(*) FROM ops.batch WHERE source = %s", (ledger.source,)) == [(1,)], \
        "a re-landed batch keeps one record"
    assert {k: record[k] for k in ("status", "rows_landed", "max_watermark", "merged_at", "failure", "rows_rejected",
                                   "warnings", "data_docs")} == {
        "status": "landed", "rows_landed": 30, "max_watermark": None, "merged_at": None, "failure": None,
        "rows_rejected": 0, "warnings": 0, "data_docs": None,
    }, f"a re-landed ({earlier_state}) batch is landed again with the new count and watermark, nothing left over"
    assert record["landed_at"] > first["landed_at"], "a re-landed batch records when it was landed again"


def test_quarantine_batch_holds_the_batch_and_its_files_with_the_reason(ledger):
    ledger.register_batch("bad", rows=2)
    ledger.register_batch("good", rows=1)
    ledger.file_version("orders_1.csv", "v1", "bad")
    ledger.file_version("orders_2.csv", "v1", "bad")
    ledger.file_version("orders_3.csv", "v1", "good")
    staging = sql.Identifier("staging", ledger.source)
    ledger.execute(sql.SQL("CREATE TABLE {} (_batch_id text, order_number text)").format(staging))
    ledger.execute(sql.SQL("INSERT INTO {} VALUES (%s, 'O-1'), (%s, 'O-2')").format(staging),
               (ledger.batch("bad"), ledger.batch("bad")))
    good_before = (ledger.batch_record("good"), ledger.files("orders_3.csv"))
    reason = f"source {ledger.source}, batch {ledger.batch('bad')}: 2 nulls in order_number"

    ledger.call(batches.quarantine_batch, ledger.batch("bad"), reason)

    record = ledger.batch_record("bad")
    assert (record["status"], record["failure"]) == ("quarantined", reason), \
        "the batch is quarantined with the reason"
    assert [(f["file_key"], f["status"]) for f in ledger.files() if f["batch_id"] == ledger.batch("bad")] == \
        [("orders_1.csv", "quarantined"), ("orders_2.csv", "quarantined")], "the batch's file versions are held too"
    assert ledger.execute(sql.SQL("SELECT order_number FROM {} ORDER BY 1").format(staging)) == [("O-1",), ("O-2",)], \
        "a quarantined batch's rows stay in staging for review"
    assert (ledger.batch_record("good"), ledger.files("orders_3.csv")) == good_before, \
        "another batch and its files are untouched"


def test_mark_validated_marks_the_batch_validated_and_clears_a_failure(ledger):
    ledger.register_batch("1")
    ledger.register_batch("2")
    ledger.execute("UPDATE ops.batch SET failure = 'an earlier check failed' WHERE batch_id = %s", (ledger.batch("1"),))
    other_before = ledger.batch_record("2")

    ledger.call(batches.mark_validated, ledger.batch("1"))

    record = ledger.batch_record("1")
    assert (record["status"], record["failure"]) == ("validated", None), \
        "a batch that passed its critical checks is validated, with no failure"
    assert ledger.batch_record("2") == other_before, "only the named batch is marked"


def test_only_the_gate_proves_a_batch_key_unique_and_a_new_landing_forgets_it(ledger):
    """`keys_proven_unique` lets the merge skip its duplicate check, `each_key_once` its sort: set
    by the gate's `mark_validated`, never by a review's release, and cleared when the batch lands again."""
    ledger.register_batch("1")
    ledger.register_batch("2")
    assert not ledger.batch_record("1")["keys_proven_unique"], "a landed batch has proven nothing"

    ledger.call(batches.mark_validated, ledger.batch("1"), each_key_once=True)
    ledger.execute("UPDATE ops.batch SET status = 'quarantined' WHERE batch_id = %s", (ledger.batch("2"),))
    ledger.call(batches.mark_reviewed, ledger.batch("2"), "validated", reviewer="tester", note="released")

    assert ledger.batch_record("1")["keys_proven_unique"], "the gate's critical checks include the key's uniqueness"
    assert ledger.batch_record("1")["each_key_once"]
    released = ledger.batch_record("2")
    assert (released["status"], released["keys_proven_unique"], released["each_key_once"]) == ("validated", False, False), \
        "a released batch is validated by a person, not proven unique: the merge checks it"
    ledger.register_batch("1")
    assert not ledger.batch_record("1")["keys_proven_unique"], "a batch landed again has new rows, unchecked"
    assert not ledger.batch_record("1")["each_key_once"]


def test_record_batch_checks_stores_rejects_warnings_and_data_docs(ledger):
    for label in ("1", "2", "3"):
        ledger.register_batch(label, rows=100)
    docs = f"quality/{ledger.source}/validations/1.html"

    ledger.call(batches.record_batch_checks, ledger.batch("1"), rows_rejected=4, warnings=2, data_docs=docs)
    ledger.call(batches.record_batch_checks, ledger.batch("2"), rows_rejected=0, warnings=0, data_docs=None)

    checks = {label: (r["rows_rejected"], r["warnings"], r["data_docs"])
              for label in ("1", "2", "3") for r in [ledger.batch_record(label)]}
    assert checks["1"] == (4, 2, docs), "the batch records its rejected rows, warnings and Data Docs page"
    assert checks["2"] == (0, 0, None), "no suite ran: no Data Docs page"
    assert checks["3"] == (0, 0, None), "a batch whose checks were not recorded is untouched"


# --------------------------------------------------------------------------- file versions


def test_register_file_records_a_landed_file_version(ledger):
    ledger.call(batches.register_file, source=ledger.source, file_key="orders_1.csv", sha256=sha("v1"), size=2048,
                rows=17, batch_id=ledger.batch("1"), extra_columns=["Inspector"])

    assert ledger.files() == [{
        "source": ledger.source, "file_key": "orders_1.csv", "sha256": sha("v1"), "size_bytes": 2048,
        "rows_landed": 17, "batch_id": ledger.batch("1"), "status": "landed", "merged_at": None,
        "extra_columns": ["Inspector"],
    }], "the file version is recorded as landed in its batch, with size, rows and the columns it had extra"


@pytest.mark.parametrize("earlier_state", ["landed", "quarantined"])
def test_an_unmerged_file_version_landed_again_moves_to_the_new_batch(ledger, earlier_state):
    ledger.file_version("orders_1.csv", "v1", "1", rows=5, status=earlier_state)

    ledger.call(batches.register_file, source=ledger.source, file_key="orders_1.csv", sha256=sha("v1"), size=2,
                rows=6, batch_id=ledger.batch("2"))

    records = ledger.files()
    assert len(records) == 1, "one version of one file keeps one record"
    assert (records[0]["batch_id"], records[0]["status"], records[0]["rows_landed"]) == \
        (ledger.batch("2"), "landed", 6), f"a {earlier_state} version landed again belongs to the new batch, as landed"


def test_a_changed_file_is_a_new_version(ledger):
    ledger.file_version("orders_1.csv", "v1", "1", status="merged")

    ledger.file_version("orders_1.csv", "v2 corrected", "2")

    assert sorted((f["sha256"], f["batch_id"], f["status"]) for f in ledger.files()) == \
        sorted([(sha("v1"), ledger.batch("1"), "merged"), (sha("v2 corrected"), ledger.batch("2"), "landed")]), \
        "a corrected file with the same name is recorded as its own version; the merged one stays merged"


@pytest.mark.parametrize(("status", "settled"), [
    ("landed", False), ("quarantined", True), ("failed", True), ("merged", True), ("discarded", True),
])
def test_a_file_version_is_known_once_merged_discarded_or_waiting_for_review(ledger, status, settled):
    ledger.file_version("orders_1.csv", "v1", "1", status=status)

    assert ledger.settled("orders_1.csv", "v1") is settled, \
        f"a {status} file version is {'known: not landed again' if settled else 'not settled: it is loaded again'}"


def test_settled_means_this_exact_source_key_and_content(ledger):
    ledger.file_version("orders_1.csv", "v1", "1", status="merged")

    settled = {
        "same version": ledger.settled("orders_1.csv", "v1"),
        "other content": ledger.settled("orders_1.csv", "v2"),
        "other key": ledger.settled("orders_2.csv", "v1"),
        "other source": ledger.settled("orders_1.csv", "v1", source=f"{ledger.source}_other"),
    }
    assert settled == {"same version": True, "other content": False, "other key": False, "other source": False}, \
        "only the same source, key and SHA-256 as a merged version is settled"


# --------------------------------------------------------------------------- quality results and watermark


def test_record_quality_results_stores_one_row_per_expectation(ledger):
    common = {"source": ledger.source, "batch_id": ledger.batch("1"), "run_id": "run_1", "suite": "test_orders",
              "error": None}
    results = [
        {**common, "expectation": "expect_column_values_to_not_be_null", "description": "order number present",
         "column_name": "order_number", "kwargs": {"column": "order_number"}, "severity": "critical",
         "success": False, "observed_value": None, "unexpected_count": 2, "unexpected_sample": [None, None]},
        {**common, "expectation": "expect_table_row_count_to_be_between", "description": None, "column_name": None,
         "kwargs": {"min_value": 1}, "severity": "warning", "success": True, "observed_value": 120,
         "unexpected_count": None},
    ]

    ledger.call(runlog.record_quality_results, results)

    stored = ledger.execute("SELECT batch_id, expectation, column_name, kwargs, severity, success, observed_value, "
                        "unexpected_count, unexpected_sample FROM ops.quality_result WHERE source = %s "
                        "ORDER BY result_id", (ledger.source,))
    assert stored == [
        (ledger.batch("1"), "expect_column_values_to_not_be_null", "order_number", {"column": "order_number"},
         "critical", False, None, 2, [None, None]),
        (ledger.batch("1"), "expect_table_row_count_to_be_between", None, {"min_value": 1}, "warning", True, 120,
         None, None),
    ], "each result is stored with its batch, arguments, outcome, observed value and sample"


def test_read_watermark_is_none_before_the_first_merge_then_the_stored_value(ledger, clock):
    assert ledger.call(watermarks.read, ledger.source) is None, "no watermark before the first merge"
    ledger.execute("INSERT INTO ops.watermark (source, value, batch_id) VALUES (%s, %s, %s), (%s, 'other', 'b_9')",
               (ledger.source, clock.isoformat(), ledger.batch("1"), f"{ledger.source}_other"))

    assert ledger.call(watermarks.read, ledger.source) == clock.isoformat(), \
        "read_watermark returns the source's own stored watermark text"
