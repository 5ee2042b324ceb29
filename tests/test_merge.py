"""`aim.merge.merge_batch` against a real PostgreSQL: only a validated batch merges, a merged batch
merges nothing again, the merge is one transaction that a fault anywhere rolls back whole, and the
upsert inserts new keys, updates and counts changed rows, leaves unchanged rows alone, sets the
watermark, clears the batch from staging and marks its file versions merged.

One warehouse database per module; every test has its own uniquely named source (its own staging
and core tables, batches, file versions and watermark), so tests see nothing of each other.
Setup writes `ops` and `staging` with plain SQL so that only `merge_batch` is under test.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from aim import batches, db, merge
from aim.merge import MergeError, merge_batch
from aim.migrations import migrate
from aim.sources import SourceConfig
from aim.tables import ensure_tables
from aim_demo.databases import libpq_dsn, query

COLUMNS = ("incident_id", "category", "units", "reported_on", "updated_at")


def incident_config(source: str, key: list[str] | None = None) -> SourceConfig:
    """A small `sql` source: text key, a text, an integer, a date and a timestamptz watermark column."""
    return SourceConfig.model_validate({
        "source": source,
        "department": "Test department",
        "system": "Test records system",
        "kind": "sql",
        "connection_id": "test_rms",
        "schedule": None,
        "owner": "tests",
        "extract": {"table": "incidents", "watermark_column": "updated_at"},
        "key": key or ["incident_id"],
        "columns": [
            {"name": "incident_id", "description": "Incident number", "privacy": "public"},
            {"name": "category", "privacy": "public"},
            {"name": "units", "type": "integer", "privacy": "public"},
            {"name": "reported_on", "type": "date", "privacy": "public"},
            {"name": "updated_at", "type": "timestamptz", "privacy": "public"},
        ],
        "expectation_suite": "test_incidents.json",
    })


class Source:
    """One test's source in the shared warehouse: its tables, batches, files and watermark."""

    def __init__(self, url: str, key: list[str] | None = None):
        self.url = url
        self.name = f"test_incidents_{uuid.uuid4().hex[:10]}"
        self.config = incident_config(self.name, key)
        self.core = sql.Identifier("core", self.name)
        self.staging = sql.Identifier("staging", self.name)
        with db.transaction(url) as conn, conn.cursor() as cur:
            ensure_tables(cur, self.config)

    def batch(self, label: str) -> str:
        """This source's batch id for `label` (batch ids are global in `ops.batch`)."""
        return f"{self.name}-{label}"

    def run_sql(self, statement: sql.Composable, params=None) -> list[tuple]:
        """Run one statement in its own transaction; its rows, if any."""
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def stage(self, label: str, rows: list[tuple], origin: str = "test") -> None:
        """Put rows (text, in COLUMNS order) in staging under the batch."""
        statement = sql.SQL("INSERT INTO {} (_batch_id, _origin, {}) VALUES (%s, %s, %s, %s, %s, %s, %s)").format(
            self.staging, sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            for row in rows:
                cur.execute(statement, (self.batch(label), origin, *row))

    def register(self, label: str, status: str, max_watermark: str | None, *, files: list[str] = ()) -> None:
        """Record the batch in `ops.batch` with `status`, and its file versions in `ops.source_file`."""
        batch_id = self.batch(label)
        file_status = {"validated": "landed"}.get(status, status)
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO ops.batch (batch_id, source, run_id, status, rows_landed, max_watermark) "
                "VALUES (%s, %s, 'run_setup', %s, 0, %s)",
                (batch_id, self.name, status, max_watermark),
            )
            for key in files:
                cur.execute(
                    "INSERT INTO ops.source_file (source, file_key, sha256, size_bytes, rows_landed, batch_id, status) "
                    "VALUES (%s, %s, %s, 10, 1, %s, %s)",
                    (self.name, key, hashlib.sha256(f"{batch_id}/{key}".encode()).hexdigest(), batch_id, file_status),
                )

    def merge(self, label: str, run_id: str) -> int:
        """What the pipeline does: `merge_batch` inside the caller's transaction."""
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            return merge_batch(cur, self.config, self.batch(label), run_id)

    def merged(self, label: str, rows: list[tuple], max_watermark: str) -> None:
        """A batch staged, validated and merged: core's state before the batch under test."""
        self.stage(label, rows)
        self.register(label, "validated", max_watermark, files=[f"{label}.csv"])
        self.merge(label, f"run_{label}")

    def snapshot(self) -> dict[str, list[tuple]]:
        """Everything a merge may change: core (with each row's physical version), the watermark,
        batches, file versions and staging."""
        return {
            "core": self.run_sql(sql.SQL("SELECT xmin::text, * FROM {} ORDER BY 2, 5").format(self.core)),
            "watermark": query(self.url, "SELECT * FROM ops.watermark WHERE source = %s", (self.name,)),
            "batch": query(self.url, "SELECT * FROM ops.batch WHERE source = %s ORDER BY batch_id", (self.name,)),
            "source_file": query(self.url, "SELECT * FROM ops.source_file WHERE source = %s "
                                           "ORDER BY file_key, sha256", (self.name,)),
            "staging": self.run_sql(sql.SQL("SELECT * FROM {} ORDER BY ctid").format(self.staging)),
        }

    def core_rows(self) -> dict[str, dict[str, Any]]:
        """Core rows by incident id, each as a dict with its physical version (`xmin`)."""
        names = ["xmin", *COLUMNS, "_batch_id", "_run_id", "_loaded_at"]
        rows = self.run_sql(sql.SQL("SELECT xmin::text, {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, names[1:])), self.core))
        return {row[1]: dict(zip(names, row)) for row in rows}

    def staged_count(self, label: str) -> int:
        return self.run_sql(sql.SQL("SELECT count(*) FROM {} WHERE _batch_id = %s").format(self.staging),
                           (self.batch(label),))[0][0]

    def refuse_writes(self, table: str, events: str) -> None:
        """A trigger on an `ops` table that raises when this source's rows are written."""
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "CREATE OR REPLACE FUNCTION public.injected_fault() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected fault on %', TG_TABLE_NAME; END $$"
            )
            cur.execute(sql.SQL("CREATE TRIGGER {} BEFORE {} ON {} FOR EACH ROW WHEN (NEW.source = {}) "
                                "EXECUTE FUNCTION public.injected_fault()").format(
                sql.Identifier(f"fault_{self.name}"), sql.SQL(events), sql.SQL(table), sql.Literal(self.name)))

    def drop_fault_triggers(self) -> None:
        for table in ("ops.watermark", "ops.batch", "ops.source_file"):
            self.run_sql(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                sql.Identifier(f"fault_{self.name}"), sql.SQL(table)))


@pytest.fixture(scope="module")
def warehouse(new_database) -> str:
    """One migrated warehouse for the module; each test works on its own source in it."""
    url = new_database("aim_test_merge")
    migrate(url)
    return url


@pytest.fixture
def source(warehouse) -> Iterator[Source]:
    """This test's own source: fresh staging and core tables, no batches, files or watermark."""
    created = Source(warehouse)
    yield created
    created.drop_fault_triggers()


@pytest.fixture
def moments(clock) -> dict[str, str]:
    """Watermark values (ISO text, as `ops.batch.max_watermark` holds them) before the suite's clock."""
    return {
        "first": (clock - dt.timedelta(days=2)).isoformat(),
        "second": (clock - dt.timedelta(hours=3)).isoformat(),
    }


def first_rows(moments) -> list[tuple]:
    return [
        ("I-1", "THEFT", "1", "2026-06-01", moments["first"]),
        ("I-2", "BURGLARY", "2", "2026-06-02", moments["first"]),
        ("I-3", "ARSON", "3", "2026-06-03", moments["first"]),
    ]


# --------------------------------------------------------------------------- only a validated batch merges


@pytest.mark.parametrize("status", ["landed", "quarantined", "discarded"])
def test_a_batch_that_is_not_validated_is_refused_and_nothing_changes(source, moments, status):
    source.merged("first", first_rows(moments), moments["first"])
    source.stage(status, [("I-1", "ROBBERY", "9", "2026-06-01", moments["second"]),
                          ("I-9", "THEFT", "1", "2026-06-09", moments["second"])])
    source.register(status, status, moments["second"], files=[f"{status}.csv"])
    before = source.snapshot()

    with pytest.raises(MergeError) as refused:
        source.merge(status, "run_refused")

    message = str(refused.value)
    assert source.name in message and source.batch(status) in message, \
        f"a refused merge names the source and the batch: {message}"
    assert status in message, f"a refused merge says what state the batch is in: {message}"
    assert source.snapshot() == before, \
        f"a {status} batch merges nothing: core, watermark, batch, file versions and staging stay as they were"


def test_an_unknown_batch_is_refused_naming_source_and_batch(source):
    before = source.snapshot()
    with pytest.raises(MergeError) as refused:
        source.merge("never_landed", "run_unknown")
    assert source.name in str(refused.value) and source.batch("never_landed") in str(refused.value), \
        f"a merge of a batch never landed names the source and the batch: {refused.value}"
    assert source.snapshot() == before, "a merge of a batch that was never landed changes nothing"


def test_a_merged_batch_merges_nothing_again(source, moments):
    source.merged("first", first_rows(moments), moments["first"])
    # Rows tagged with the merged batch's id reappear in staging (e.g. a stray re-landing): a second
    # merge of the batch must still not touch core, the watermark or the batch's record.
    source.stage("first", [("I-1", "CHANGED", "7", "2026-06-01", moments["second"]),
                           ("I-8", "NEW", "8", "2026-06-08", moments["second"])])
    before = source.snapshot()

    loaded = source.merge("first", "run_again")

    assert loaded == 0, "a batch already merged merges nothing again: 0 rows loaded"
    assert source.snapshot() == before, \
        "merging a merged batch again changes nothing: core, watermark, batch, file versions, staging"


# --------------------------------------------------------------------------- one transaction


def _uncastable_staged_value(source: Source, monkeypatch) -> type[BaseException]:
    source.stage("second", [("I-7", "THEFT", "seven", "2026-06-07", None)])
    return MergeError


def _watermark_write_fails(source: Source, monkeypatch) -> type[BaseException]:
    source.refuse_writes("ops.watermark", "INSERT OR UPDATE")
    return psycopg2.Error


def _staging_cleanup_fails_after_deleting(source: Source, monkeypatch) -> type[BaseException]:
    real_clear = merge.clear_batch

    def clear_then_fail(cur, table, batch_id):
        real_clear(cur, table, batch_id)
        raise RuntimeError("injected fault after staging was cleared")

    monkeypatch.setattr(merge, "clear_batch", clear_then_fail)
    return RuntimeError


def _batch_status_write_fails(source: Source, monkeypatch) -> type[BaseException]:
    source.refuse_writes("ops.batch", "UPDATE")
    return psycopg2.Error


def _file_status_write_fails(source: Source, monkeypatch) -> type[BaseException]:
    """The very last statement of the merge fails: everything else already ran."""
    source.refuse_writes("ops.source_file", "UPDATE")
    return psycopg2.Error


@pytest.mark.parametrize("inject_fault", [
    _uncastable_staged_value,
    _watermark_write_fails,
    _staging_cleanup_fails_after_deleting,
    _batch_status_write_fails,
    _file_status_write_fails,
], ids=lambda f: f.__name__.strip("_"))
def test_a_fault_part_way_through_the_merge_leaves_everything_as_before(source, moments, monkeypatch, inject_fault):
    source.merged("first", first_rows(moments), moments["first"])
    source.stage("second", [
        ("I-1", "ROBBERY", "10", "2026-06-01", moments["second"]),   # changed
        ("I-2", "BURGLARY", "2", "2026-06-02", moments["first"]),    # unchanged
        ("I-4", "FRAUD", "4", "2026-06-04", moments["second"]),      # new
    ])
    source.register("second", "validated", moments["second"], files=["second_1.csv", "second_2.csv"])
    expected_error = inject_fault(source, monkeypatch)
    before = source.snapshot()

    with pytest.raises(expected_error):
        source.merge("second", "run_second")

    after = source.snapshot()
    for part in before:
        assert after[part] == before[part], \
            f"the merge is one transaction: after a fault part-way, {part} is exactly as before"


# --------------------------------------------------------------------------- the upsert


def test_new_keys_are_inserted_changed_rows_updated_and_counted_unchanged_rows_left_alone(source, moments):
    source.merged("first", first_rows(moments), moments["first"])
    before = source.core_rows()
    changed = {"I-1": ("I-1", "ROBBERY", "10", "2026-06-01", moments["second"]),
               "I-3": ("I-3", "ARSON", None, "2026-06-03", moments["first"])}   # a value becomes empty
    unchanged = {"I-2": ("I-2", "BURGLARY", "2", "2026-06-02", moments["first"])}
    new = {"I-4": ("I-4", "FRAUD", "4", "2026-06-04", moments["second"]),
           "I-5": ("I-5", None, None, None, None)}
    source.stage("second", [*changed.values(), *unchanged.values(), *new.values()])
    source.register("second", "validated", moments["second"])

    loaded = source.merge("second", "run_second")

    after = source.core_rows()
    assert loaded == len(changed) + len(new), "rows loaded counts inserted and changed rows, not unchanged ones"
    assert sorted(after) == sorted([*before, *new]), "every new key is inserted, no key is lost"
    for key, staged in {**changed, **new}.items():
        row = after[key]
        assert [row[c] is None for c in COLUMNS] == [v is None for v in staged], \
            f"{key}: core holds the staged values, empty ones as NULL"
        assert (row["category"], row["units"]) == (staged[1], None if staged[2] is None else int(staged[2])), \
            f"{key}: core holds the batch's values"
        assert (row["_batch_id"], row["_run_id"]) == (source.batch("second"), "run_second"), \
            f"{key}: a row the batch inserted or changed records the batch and run that last changed it"
        if key in before:
            assert row["_loaded_at"] > before[key]["_loaded_at"], f"{key}: a changed row records when it changed"
    for key in unchanged:
        assert after[key] == before[key], (
            f"{key}: an unchanged row is not rewritten (same physical version, _batch_id, _run_id, _loaded_at)"
        )


def test_staged_text_is_cast_to_the_configured_types(source, moments, clock):
    source.stage("typed", [("I-1", "THEFT", "42", "2026-02-28", moments["first"])])
    source.register("typed", "validated", moments["first"])

    source.merge("typed", "run_typed")

    row = source.core_rows()["I-1"]
    assert row["units"] == 42 and row["reported_on"] == dt.date(2026, 2, 28), "text is cast to integer and date"
    assert row["updated_at"] == clock - dt.timedelta(days=2), "a timestamptz keeps its moment"


def test_a_compound_key_matches_rows_on_all_its_columns(warehouse, moments):
    source = Source(warehouse, key=["incident_id", "reported_on"])
    source.stage("first", [("I-1", "THEFT", "1", "2026-06-01", moments["first"])])
    source.register("first", "validated", moments["first"])
    source.merge("first", "run_first")
    source.stage("second", [("I-1", "THEFT", "5", "2026-06-01", moments["second"]),    # same key: changed
                            ("I-1", "THEFT", "1", "2026-06-02", moments["second"])])   # same id, other day: new
    source.register("second", "validated", moments["second"])

    loaded = source.merge("second", "run_second")

    rows = sorted((key, day.isoformat(), units) for key, day, units in
                  source.run_sql(sql.SQL("SELECT incident_id, reported_on, units FROM {}").format(source.core)))
    assert rows == [("I-1", "2026-06-01", 5), ("I-1", "2026-06-02", 1)], \
        "a compound key updates the row matching every key column and inserts the others"
    assert loaded == 2, "one changed and one inserted row are counted"


def test_the_watermark_is_set_from_the_batch_max_watermark(source, moments):
    source.merged("first", first_rows(moments), moments["first"])
    assert source.snapshot()["watermark"][0][1:3] == (moments["first"], source.batch("first")), \
        "the first merge stores the batch's max watermark"

    source.stage("second", [("I-4", "FRAUD", "4", "2026-06-04", moments["second"])])
    source.register("second", "validated", moments["second"])
    source.merge("second", "run_second")

    stored = source.snapshot()["watermark"]
    assert [row[:3] for row in stored] == [(source.name, moments["second"], source.batch("second"))], \
        "a later merge moves the source's one watermark to its batch's max watermark"


def test_merging_an_older_batch_never_moves_the_watermark_back_nor_writes_over_newer_rows(source, moments):
    source.stage("older", [("I-9", "THEFT", "1", "2026-06-01", moments["first"]),
                           ("I-10", "ROBBERY", "3", "2026-06-01", moments["first"])])
    source.register("older", "quarantined", moments["first"])
    source.merged("newer", [("I-9", "FRAUD", "2", "2026-06-01", moments["second"])], moments["second"])
    source.run_sql(sql.SQL("UPDATE ops.batch SET status = 'validated' WHERE batch_id = %s"), (source.batch("older"),))

    assert source.merge("older", "run_release") == 1, "only the key no later batch has changed is merged"

    assert [row[1] for row in source.snapshot()["watermark"]] == [moments["second"]], \
        "the watermark is the highest value merged: it never moves back"
    core = source.core_rows()
    assert core["I-9"]["category"] == "FRAUD", "the newer batch's row stays: the older one does not write over it"
    assert core["I-10"]["category"] == "ROBBERY", "a key nothing has changed since is merged"


def test_a_batch_without_a_max_watermark_leaves_the_watermark_alone(source, moments):
    source.merged("first", first_rows(moments), moments["first"])
    before = source.snapshot()["watermark"]
    source.stage("files", [("I-4", "FRAUD", "4", "2026-06-04", None)])
    source.register("files", "validated", None)

    assert source.merge("files", "run_files") == 1, "the batch's row is merged"
    assert source.snapshot()["watermark"] == before, "a batch with no max watermark does not touch the watermark"


def test_the_merge_clears_its_batch_from_staging_and_marks_the_batch_and_its_files_merged(source, moments):
    source.stage("merging", first_rows(moments), origin="incidents_1.csv")
    source.register("merging", "validated", moments["first"], files=["incidents_1.csv", "incidents_2.csv"])
    source.stage("held", [("I-9", "THEFT", "1", "2026-06-09", moments["second"])], origin="incidents_3.csv")
    source.register("held", "quarantined", moments["second"], files=["incidents_3.csv"])

    def held_batch(snapshot):
        return {
            "staging": [r for r in snapshot["staging"] if r[0] == source.batch("held")],
            "batch": [r for r in snapshot["batch"] if r[0] == source.batch("held")],
            "files": [r for r in snapshot["source_file"] if r[5] == source.batch("held")],
        }

    held_before = held_batch(source.snapshot())

    source.merge("merging", "run_merging")

    assert source.staged_count("merging") == 0, "a merged batch is cleared from staging"
    assert query(source.url, "SELECT status, merged_at IS NOT NULL FROM ops.batch WHERE batch_id = %s",
                 (source.batch("merging"),)) == [("merged", True)], "the batch is marked merged, with when"
    assert query(source.url, "SELECT file_key, status, merged_at IS NOT NULL FROM ops.source_file "
                             "WHERE batch_id = %s ORDER BY file_key", (source.batch("merging"),)) == \
        [("incidents_1.csv", "merged", True), ("incidents_2.csv", "merged", True)], \
        "every file version of the batch is marked merged, so it is never loaded again"
    assert held_batch(source.snapshot()) == held_before, \
        "another batch's staged rows, record and file versions are untouched"


def wait_until(url: str, count: str, params: tuple, never: str) -> None:
    """Poll `count` (a statement returning a count) for up to 10 s until it is not 0: a transaction
    in another thread is waiting for a lock; `never` is the failure message."""
    for _ in range(200):
        if query(url, count, params)[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError(never)


def test_a_batch_alone_in_staging_gives_its_storage_back_when_merged(source, moments):
    """The merged batch was all staging held: TRUNCATE, no dead rows left for autovacuum."""
    source.stage("alone", first_rows(moments))
    source.register("alone", "validated", moments["first"])
    staging = ".".join(source.config.staging_table)
    assert query(source.url, "SELECT pg_relation_size(%s)", (staging,))[0][0] > 0

    source.merge("alone", "run_alone")

    assert query(source.url, "SELECT pg_relation_size(%s)", (staging,))[0][0] == 0, "the table's storage is given back"
    assert len(source.core_rows()) == len(first_rows(moments))


def test_rows_landing_while_the_merge_clears_staging_are_kept(source, moments):
    """A landing in flight in another transaction (its rows not yet committed) is waited for, and
    its rows are seen: the merge deletes its own batch instead of truncating the table."""
    source.stage("merging", first_rows(moments))
    source.register("merging", "validated", moments["first"])
    landing = psycopg2.connect(libpq_dsn(source.url))
    try:
        with landing.cursor() as cur:  # uncommitted, as a COPY in progress
            cur.execute(sql.SQL("INSERT INTO {} (_batch_id, _origin, {}) VALUES (%s, 'landing', %s, %s, %s, %s, %s)")
                        .format(source.staging, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))),
                        (source.batch("landing"), "I-7", "THEFT", "1", "2026-06-07", moments["second"]))
        merging = threading.Thread(target=source.merge, args=("merging", "run_merging"))
        merging.start()
        wait_until(source.url, "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                   (".".join(source.config.staging_table),), "the merge never waited for the landing")
        landing.commit()
        merging.join(timeout=60)
    finally:
        landing.close()

    assert not merging.is_alive()
    assert source.staged_count("merging") == 0 and source.staged_count("landing") == 1, \
        "the merged batch is cleared, the landed row kept"
    assert len(source.core_rows()) == len(first_rows(moments))


def test_two_merges_of_one_source_at_the_same_time_run_one_after_the_other(source, moments, monkeypatch):
    """Two batches with the same new key merged at once (a release by review while the schedule's
    run merges): the second waits for the first, then updates the row the first inserted. Caught
    between the first's upsert and its clearing of staging, the two used to deadlock (each holding
    staging for reading, each wanting it alone to clear its batch) or fail on the duplicate key."""
    source.stage("first", [("I-20", "THEFT", "1", "2026-06-01", moments["first"])])
    source.register("first", "validated", moments["first"])
    source.stage("second", [("I-20", "FRAUD", "2", "2026-06-01", moments["second"])])
    source.register("second", "validated", moments["second"])
    first_upserted, second_waits = threading.Event(), threading.Event()
    clear_batch = merge.clear_batch

    def clear_once_the_second_waits(cur, table, batch_id):
        if batch_id == source.batch("first"):
            first_upserted.set()
            second_waits.wait(timeout=30)
        clear_batch(cur, table, batch_id)

    monkeypatch.setattr(merge, "clear_batch", clear_once_the_second_waits)
    failures: list[BaseException] = []

    def merge_in_thread(label):
        try:
            source.merge(label, f"run_{label}")
        except BaseException as err:  # noqa: BLE001  (reported by the assertion below)
            failures.append(err)

    first = threading.Thread(target=merge_in_thread, args=("first",))
    first.start()
    assert first_upserted.wait(timeout=30)
    second = threading.Thread(target=merge_in_thread, args=("second",))
    second.start()
    wait_until(source.url, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "  # any lock
                           "WHERE NOT l.granted AND a.datname = current_database()", (),
               "the second merge never waited for the first")
    second_waits.set()
    first.join(timeout=60)
    second.join(timeout=60)

    assert not first.is_alive() and not second.is_alive() and failures == [], failures
    assert source.core_rows()["I-20"]["category"] == "FRAUD", "the later-landed batch's version is in core"
    assert query(source.url, "SELECT status FROM ops.batch WHERE source = %s", (source.name,)) == [("merged",)] * 2


# --------------------------------------------------------------------------- merges that cannot happen


def test_a_value_that_does_not_cast_fails_the_batch_naming_the_column_and_values(source, moments, monkeypatch,
                                                                                 tmp_path):
    import yaml

    from aim import pipeline, quarantine

    monkeypatch.setenv("AIM_WAREHOUSE_URL", source.url)
    monkeypatch.setenv("AIM_SOURCES_DIR", str(tmp_path))  # where the review finds the source's configuration
    (tmp_path / f"{source.name}.yaml").write_text(yaml.safe_dump(source.config.model_dump(mode="json")))
    source.merged("first", first_rows(moments), moments["first"])
    before = source.snapshot()
    source.stage("bad", [("I-7", "THEFT", "twelve", "2026-06-07", moments["second"]),
                         ("I-8", "THEFT", "99999999999", "2026-06-08", moments["second"])], origin="incidents_9.csv")
    source.register("bad", "validated", moments["second"], files=["incidents_9.csv"])

    with pytest.raises(MergeError) as failure:
        pipeline.merge(source.config, run_id="run_bad", batch_id=source.batch("bad"))

    message = str(failure.value)
    assert source.name in message and source.batch("bad") in message, "the message names the source and the batch"
    assert "column units (integer)" in message and "twelve" in message and "99999999999" in message, \
        f"the message names the column and the values that do not cast: {message}"
    after = source.snapshot()
    assert (after["core"], after["watermark"]) == (before["core"], before["watermark"]), \
        "nothing of the batch reaches core and the watermark stays"
    with db.transaction(source.url) as conn, conn.cursor() as cur:
        waiting = {b["batch_id"]: b for b in quarantine.quarantined(cur)}
    assert waiting[source.batch("bad")]["status"] == "failed", "a failed merge is listed for review (make quarantine)"
    assert "twelve" in waiting[source.batch("bad")]["failure"], "with its reason"
    files = query(source.url, "SELECT status FROM ops.source_file WHERE batch_id = %s", (source.batch("bad"),))
    assert files == [("failed",)], "its file version carries the batch's status"

    quarantine.discard(source.batch("bad"), "the department re-sends the file with numbers")
    assert query(source.url, "SELECT status FROM ops.batch WHERE batch_id = %s", (source.batch("bad"),)) == \
        [("discarded",)], "a failed batch can be discarded after review"


def test_a_batch_with_two_rows_for_one_key_and_watermark_is_refused(source, moments):
    source.stage("twice", [("I-7", "THEFT", "1", "2026-06-07", moments["second"]),
                           ("I-7", "FRAUD", "2", "2026-06-07", moments["second"])])
    source.register("twice", "validated", moments["second"])

    with pytest.raises(MergeError, match=r"occur more than once, e\.g\. \[\['I-7'"):
        source.merge("twice", "run_twice")
    assert "I-7" not in source.core_rows(), "neither row is merged: which is right is not the platform's to guess"


def test_a_batch_the_gate_validated_skips_the_duplicate_check_and_a_released_one_does_not(source, moments):
    """The gate proves the key unique (`keys_proven_unique`): the merge trusts it. A batch released
    by review was not proven so, and a key twice in it is refused as ever."""
    rows = [("I-7", "THEFT", "1", "2026-06-07", moments["second"]),
            ("I-7", "FRAUD", "2", "2026-06-07", moments["second"])]
    source.stage("released", rows)
    source.register("released", "quarantined", moments["second"])
    with db.transaction(source.url) as conn, conn.cursor() as cur:
        batches.mark_reviewed(cur, source.batch("released"), "validated", reviewer="tester", note="looks fine")
    with pytest.raises(MergeError, match=r"occur more than once"):
        source.merge("released", "run_released")

    source.stage("proven", [("I-8", "THEFT", "1", "2026-06-08", moments["second"])])
    source.register("proven", "landed", moments["second"])
    with db.transaction(source.url) as conn, conn.cursor() as cur:
        batches.mark_validated(cur, source.batch("proven"))
    source.run_sql(sql.SQL("INSERT INTO {} (_batch_id, _origin, {}) SELECT _batch_id, _origin, {} FROM {} "
                           "WHERE _batch_id = %s").format(source.staging, sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
                                                         sql.SQL(", ").join(map(sql.Identifier, COLUMNS)), source.staging),
                   (source.batch("proven"),))  # a row doubled after the gate: only a skipped check lets it through
    assert source.merge("proven", "run_proven") == 1, "the gate-validated batch merged without the duplicate check"


def test_a_record_read_twice_merges_its_latest_version(source, moments):
    source.stage("edited", [("I-7", "FRAUD", "2", "2026-06-07", moments["second"]),
                            ("I-7", "THEFT", "1", "2026-06-07", moments["first"])])
    source.register("edited", "validated", moments["second"])

    assert source.merge("edited", "run_edited") == 1
    assert source.core_rows()["I-7"]["category"] == "FRAUD", "the version with the latest watermark wins"


def plan_node_types(source: Source, label: str, each_key_once: bool) -> set[str]:
    """The node types PostgreSQL plans for merging the batch (EXPLAIN only: nothing runs)."""
    statement = sql.SQL("EXPLAIN (FORMAT JSON) ") + merge.merge_statement(source.config, each_key_once=each_key_once)
    [(plan,)] = source.run_sql(statement, {"batch_id": source.batch(label), "run_id": "run_plan",
                                           "source": source.name, "landed_at": None})
    found, todo = set(), [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        found.add(node["Node Type"])
        todo.extend(node.get("Plans", []))
    return found


def test_a_batch_the_gate_found_holding_each_key_once_merges_without_sorting(source, moments):
    """`each_key_once` drops the sort that picks each record's latest version; the batch merges as
    ever. A key doubled after the gate fails the merge, naming the batch, rather than one row of the
    two winning by chance."""
    source.stage("once", first_rows(moments))
    source.register("once", "landed", moments["first"])
    with db.transaction(source.url) as conn, conn.cursor() as cur:
        batches.mark_validated(cur, source.batch("once"), each_key_once=True)

    assert "Sort" in plan_node_types(source, "once", each_key_once=False), "the batch of an incremental source is sorted"
    assert "Sort" not in plan_node_types(source, "once", each_key_once=True)
    assert source.merge("once", "run_once") == 3
    assert {key: row["category"] for key, row in source.core_rows().items()} == {
        "I-1": "THEFT", "I-2": "BURGLARY", "I-3": "ARSON"}

    source.stage("doubled", [("I-4", "THEFT", "1", "2026-06-04", moments["second"]),
                             ("I-4", "FRAUD", "2", "2026-06-04", moments["first"])])
    source.register("doubled", "landed", moments["second"])
    with db.transaction(source.url) as conn, conn.cursor() as cur:
        batches.mark_validated(cur, source.batch("doubled"), each_key_once=True)  # as if a row came after the gate
    with pytest.raises(MergeError, match=rf"{source.batch('doubled')}.*merge into core failed"):
        source.merge("doubled", "run_doubled")
    assert "I-4" not in source.core_rows()


# ---- a first load builds core's key after its rows (merge._set_key_aside_for_first_load) --------

def stage_many(source: Source, label: str, rows: int, *, doubled: str | None = None, each_key_once: bool = True) -> None:
    """`rows` generated rows in staging under the batch (and a second, later version of key
    `doubled`), registered as a batch the gate validated (holding each key once, by its word)."""
    source.run_sql(sql.SQL("INSERT INTO {} (_batch_id, _origin, {}) SELECT %s, 'test', 'I-' || g, 'THEFT', "
                           "(g %% 10)::text, '2026-06-01', %s FROM generate_series(1, %s) AS g")
                   .format(source.staging, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))),
                   (source.batch(label), "2026-06-01T00:00:00+00:00", rows))
    if doubled:
        source.run_sql(sql.SQL("INSERT INTO {} (_batch_id, _origin, {}) VALUES (%s, 'test', %s, 'FRAUD', '2', "
                               "'2026-06-01', '2026-06-02T00:00:00+00:00')")
                       .format(source.staging, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))),
                       (source.batch(label), doubled))
    source.register(label, "landed", "2026-06-01T00:00:00+00:00")
    source.run_sql(sql.SQL("UPDATE ops.batch SET rows_landed = %s WHERE batch_id = %s"),
                   (rows + bool(doubled), source.batch(label)))
    with db.transaction(source.url) as conn, conn.cursor() as cur:
        batches.mark_validated(cur, source.batch(label), each_key_once=each_key_once)


def primary_key(source: Source) -> tuple[int, str, str] | None:
    """(oid, name, definition) of core's primary key constraint."""
    rows = source.run_sql(sql.SQL("SELECT oid::bigint, conname::text, pg_get_constraintdef(oid) FROM pg_constraint "
                                  "WHERE conrelid = %s::regclass AND contype = 'p'"), (f"core.{source.name}",))
    return rows[0] if rows else None


def test_a_first_big_load_builds_cores_key_once_after_its_rows(source):
    """Into an empty core, a batch of `FIRST_LOAD_ROWS` rows is merged without the key, which is
    then built again under its own name: core ends with every row and its key enforced. A later
    batch into the filled core leaves the key alone."""
    before = primary_key(source)
    stage_many(source, "first", merge.FIRST_LOAD_ROWS)

    assert source.merge("first", "run_first") == merge.FIRST_LOAD_ROWS
    after = primary_key(source)
    assert after[1:] == before[1:] == (f"{source.name}_pkey", "PRIMARY KEY (incident_id)")
    assert after[0] != before[0], "the key was built again, after the rows"
    assert source.run_sql(sql.SQL("SELECT count(*), count(DISTINCT incident_id) FROM {}").format(source.core)) == [
        (merge.FIRST_LOAD_ROWS, merge.FIRST_LOAD_ROWS)]
    with pytest.raises(psycopg2.errors.UniqueViolation):
        source.run_sql(sql.SQL("INSERT INTO {} (incident_id, _batch_id, _run_id) VALUES ('I-1', 'b', 'r')")
                       .format(source.core))

    stage_many(source, "second", merge.FIRST_LOAD_ROWS + 1)
    assert source.merge("second", "run_second") == 1, "only the new key: core was not empty"
    assert primary_key(source) == after


def test_a_first_big_load_with_a_key_twice_fails_whole_and_keeps_the_key(source):
    """A key doubled after the gate (the merge's own duplicate check skipped) fails the key's
    build, as it would fail the merge with the key in place: nothing merged, the key as it was."""
    before = primary_key(source)
    stage_many(source, "doubled", merge.FIRST_LOAD_ROWS, doubled="I-7")

    with pytest.raises(MergeError, match=rf"{source.batch('doubled')}.*merge into core failed"):
        source.merge("doubled", "run_doubled")
    assert primary_key(source) == before
    assert source.run_sql(sql.SQL("SELECT count(*) FROM {}").format(source.core)) == [(0,)]
    assert source.staged_count("doubled") == merge.FIRST_LOAD_ROWS + 1, "the batch's rows stay in staging"


def test_a_first_big_load_merges_the_latest_version_of_a_record_read_twice(source):
    """An incremental source's record read twice, in a batch the gate did not find holding each
    key once: the first load keeps its latest version, as the merge does, and builds the key."""
    stage_many(source, "edited", merge.FIRST_LOAD_ROWS, doubled="I-7", each_key_once=False)

    assert source.merge("edited", "run_edited") == merge.FIRST_LOAD_ROWS
    assert source.core_rows()["I-7"]["category"] == "FRAUD", "the version with the latest watermark wins"
    assert primary_key(source)[1:] == (f"{source.name}_pkey", "PRIMARY KEY (incident_id)")


def test_a_first_big_load_keeps_a_key_a_view_depends_on(source):
    """A view that groups by the key needs the constraint: the merge goes on with the key in place."""
    source.run_sql(sql.SQL("CREATE VIEW {} AS SELECT incident_id, category FROM {} GROUP BY incident_id")
                   .format(sql.Identifier("core", f"{source.name}_by_key"), source.core))
    before = primary_key(source)
    stage_many(source, "first", merge.FIRST_LOAD_ROWS)

    assert source.merge("first", "run_first") == merge.FIRST_LOAD_ROWS
    assert primary_key(source) == before, "the same constraint: never dropped"
    assert source.run_sql(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier("core", f"{source.name}_by_key"))) == [(merge.FIRST_LOAD_ROWS,)]


def test_a_first_big_load_does_not_wait_for_an_analyst_reading_core(source):
    """An analyst's open transaction on the empty core holds a lock dropping the key would wait
    for: the merge waits a second at most, then merges with the key in place."""
    before = primary_key(source)
    stage_many(source, "first", merge.FIRST_LOAD_ROWS)
    analyst = psycopg2.connect(libpq_dsn(source.url))
    # a merge that waits for the analyst fails the test after 30 s, rather than hanging it
    gives_up = threading.Timer(30, query, (source.url, "SELECT pg_terminate_backend(%s)", (analyst.get_backend_pid(),)))
    try:
        with analyst.cursor() as reading:
            reading.execute(sql.SQL("SELECT count(*) FROM {}").format(source.core))
            gives_up.start()
            started = time.monotonic()
            assert source.merge("first", "run_first") == merge.FIRST_LOAD_ROWS
            assert time.monotonic() - started < 30
            assert gives_up.is_alive(), "the analyst's transaction was still open while the merge ran"
    finally:
        gives_up.cancel()
        analyst.close()
    assert primary_key(source) == before
    with db.transaction(source.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('lock_timeout')")
        assert cur.fetchone()[0] == "0", "the merge's short lock wait is its own"


def test_a_first_big_load_does_not_wait_for_a_validation_reading_staging(source):
    """A validation's open transaction has read staging (as the gate does, before it reads core):
    the merge does not take core's exclusive lock and then wait for staging's (a deadlock with a
    validation that reads core next); it merges with the key in place."""
    before = primary_key(source)
    stage_many(source, "first", merge.FIRST_LOAD_ROWS)
    validation = psycopg2.connect(libpq_dsn(source.url))
    try:
        with validation.cursor() as reading:
            reading.execute(sql.SQL("SELECT count(*) FROM {}").format(source.staging))
            merged = threading.Thread(target=lambda: source.merge("first", "run_first"))
            merged.start()
            wait_until(source.url, "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                       (f"staging.{source.name}",), "the merge never reached staging")
            time.sleep(float(merge.KEY_LOCK_TIMEOUT.removesuffix("s")) + 2)  # the merge gives up waiting first
            reading.execute(sql.SQL("SELECT count(*) FROM {}").format(source.core))  # core is not held against it
            assert reading.fetchone() == (0,)
        validation.rollback()
        merged.join(timeout=60)
    finally:
        validation.close()
    assert not merged.is_alive()
    assert primary_key(source) == before, "the key was never dropped"
    assert source.run_sql(sql.SQL("SELECT count(*) FROM {}").format(source.core)) == [(merge.FIRST_LOAD_ROWS,)]
