"""`aim.landing` against a real PostgreSQL and a real folder drop: `derived_key` is the documented,
stable hash; `_with_derived_key` puts it in the configured column; `land` for a `file` source lands
each new file version once, tagged with its file, registers it in `ops.source_file`, and skips a
version already merged, discarded or waiting for review, while landing again one whose batch never
settled.

One warehouse database per module; every test has its own uniquely named source (its own staging
table, batches and file versions) and its own drop folder under tmp_path, reached as in production
through an `fs` Airflow connection (`aim.connections.source_access`).
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path

import pytest
from airflow.sdk import Connection
from psycopg2 import sql

from aim import batches, db, runlog, watermarks
from aim.connections import source_access
from aim.landing import Landed, _with_derived_key, derived_key, land
from aim.merge import merge_batch
from aim.migrations import migrate
from aim.sources import SourceConfig
from aim.tables import ensure_tables
from aim_demo.databases import query


def orders_config(source: str = "test_orders") -> SourceConfig:
    """Weekly order files (CSV) in a folder drop; the order number is the key."""
    return SourceConfig.model_validate({
        "source": source,
        "department": "Test department",
        "system": "Test weekly order files",
        "kind": "file",
        "connection_id": "test_orders_drop",
        "schedule": None,
        "owner": "tests",
        "extract": {"location": "orders", "pattern": "orders_*.csv", "format": {"kind": "csv"}},
        "key": ["order_number"],
        "columns": [
            {"name": "order_number", "source": "Order Number", "privacy": "public"},
            {"name": "status", "source": "Status", "privacy": "public"},
            {"name": "issued_on", "source": "Issued", "type": "date", "privacy": "public"},
        ],
        "expectation_suite": "test_orders.json",
    })


def requests_config(key_position: int = 0, from_columns: tuple[str, ...] = ("created_at", "request_type", "address"),
                    source: str = "test_requests") -> SourceConfig:
    """A source without an id of its own: `request_key` is derived from other columns, placed at
    `key_position` among the columns."""
    columns = [
        {"name": "request_type", "source": "Type", "privacy": "public"},
        {"name": "address", "source": "Address", "privacy": "public"},
        {"name": "created_at", "source": "Created", "type": "timestamp", "privacy": "public"},
    ]
    columns.insert(key_position, {"name": "request_key", "privacy": "drop"})
    return SourceConfig.model_validate({
        "source": source,
        "department": "Test department",
        "system": "Test request export",
        "kind": "file",
        "connection_id": "test_requests_drop",
        "schedule": None,
        "owner": "tests",
        "extract": {"location": "requests", "pattern": "requests_*.csv", "format": {"kind": "csv"}},
        "key": ["request_key"],
        "derived_key": {"column": "request_key", "from_columns": list(from_columns)},
        "columns": columns,
        "expectation_suite": "test_requests.json",
    })


def expected_key(values) -> str:
    """The key as `derived_key`'s docstring defines it: the first 32 hex digits of the SHA-256 of the
    values joined by the unit separator, a missing value as empty text."""
    text = "\x1f".join("" if v is None else v for v in values)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def warehouse(new_database) -> str:
    """One migrated warehouse for the module; each test lands its own uniquely named source."""
    url = new_database("aim_test_landing")
    migrate(url)
    return url


@pytest.fixture
def landing_root(tmp_path) -> Path:
    """The drops' root folder, as an `fs` connection's `path` extra names it."""
    root = tmp_path / "landing"
    (root / "orders").mkdir(parents=True)
    (root / "requests").mkdir()
    return root


class FileSource:
    """One test's file source in the shared warehouse: its staging table, batches and file versions."""

    def __init__(self, url: str, root: Path, config: SourceConfig):
        self.url, self.root, self.config = url, root, config
        self.name = config.source
        with db.transaction(url) as conn, conn.cursor() as cur:
            ensure_tables(cur, config)

    def batch(self, label: str) -> str:
        """This source's batch id for `label` (batch ids are global in `ops.batch`)."""
        return f"{self.name}-{label}"

    def store(self):
        """The file store the pipeline would use: from the source's `fs` Airflow connection."""
        conn = Connection(conn_id=self.config.connection_id, conn_type="fs",
                          extra=json.dumps({"path": str(self.root)}))
        return source_access(self.config, conn)

    def land(self, label: str) -> Landed:
        """`land` in the caller's transaction, as `aim.pipeline.extract_and_land` calls it."""
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            return land(cur, self.config, self.store(), batch_id=self.batch(label))

    def staged(self, label: str, columns: str = "_origin, order_number, status, issued_on") -> list[tuple]:
        """The batch's staged rows (text, as landed), in landing order."""
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {} WHERE _batch_id = %s ORDER BY ctid").format(
                sql.SQL(columns), sql.Identifier(*self.config.staging_table)), (self.batch(label),))
            return cur.fetchall()

    def file_register(self) -> list[tuple]:
        """(file_key, sha256, size_bytes, rows_landed, batch label, status, extra_columns) per file version."""
        rows = query(self.url, "SELECT file_key, sha256, size_bytes, rows_landed, batch_id, status, extra_columns "
                               "FROM ops.source_file WHERE source = %s ORDER BY file_key, batch_id", (self.name,))
        return [(*row[:4], row[4].removeprefix(f"{self.name}-"), *row[5:]) for row in rows]

    def set_file_status(self, label: str, status: str) -> None:
        """What a merge or a review does to the batch's file versions."""
        query(self.url, "UPDATE ops.source_file SET status = %s WHERE batch_id = %s RETURNING 1",
              (status, self.batch(label)))


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def orders(warehouse, landing_root) -> FileSource:
    """This test's own order-file source over the `orders` folder of its drop."""
    return FileSource(warehouse, landing_root, orders_config(unique("test_orders")))


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def version(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def two_weeks(landing_root) -> dict[str, Path]:
    """Two weekly order files and a file the pattern does not match."""
    folder = landing_root / "orders"
    write(folder / "readme.txt", "not an order file\n")
    return {
        "orders_2026-W23.csv": write(folder / "orders_2026-W23.csv",
                                     "Order Number,Status,Issued\nO-1,OPEN,2026-06-01\nO-2,CLOSED,2026-06-02\n"),
        "orders_2026-W24.csv": write(folder / "orders_2026-W24.csv",
                                     "Order Number,Status,Issued,Inspector\n"
                                     "O-3,OPEN,2026-06-08,Kowalski\nO-4,,2026-06-09,Nguyen\n"
                                     "O-5,REFERRED TO CITY ATTORNEY,2026-06-10,Kowalski\n"),
    }


# --------------------------------------------------------------------------- derived_key


def test_derived_key_is_the_documented_hash_of_the_values():
    values = ["2026-06-16 08:00", "POTHOLE", "2846 N 1ST ST"]
    key = derived_key(values)
    assert re.fullmatch(r"[0-9a-f]{32}", key), f"a derived key is 32 hex digits: {key!r}"
    assert key == expected_key(values), \
        "a derived key is the SHA-256 of the unit-separated values (first 32 digits): the same in every process"
    assert derived_key(list(values)) == key, "the same values give the same key every time"


def test_derived_key_treats_a_missing_value_as_empty_text():
    assert derived_key(["POTHOLE", None, "x"]) == derived_key(["POTHOLE", "", "x"]), \
        "missing values are compared as empty: None and '' give the same key (both land as NULL)"


def test_derived_key_distinguishes_content_order_and_value_boundaries():
    keys = {
        "base": derived_key(["ab", "c"]),
        "boundary moved": derived_key(["a", "bc"]),
        "order swapped": derived_key(["c", "ab"]),
        "value changed": derived_key(["ab", "d"]),
        "value added": derived_key(["ab", "c", ""]),
    }
    assert len(set(keys.values())) == len(keys), f"different rows get different keys: {keys}"


# --------------------------------------------------------------------------- _with_derived_key


@pytest.mark.parametrize("key_position", [0, 1, 3], ids=["first", "middle", "last"])
def test_the_derived_key_goes_in_its_configured_column(key_position):
    config = requests_config(key_position, from_columns=("address", "created_at"))
    extracted = [("POTHOLE", "2846 N 1ST ST", "2026-06-16 08:00"), ("STREET LIGHT OUT", None, "2026-06-16 09:00")]
    chunks = [extracted[:1], extracted[1:]]

    out = [_with_derived_key(config, chunk) for chunk in chunks]

    assert [len(chunk) for chunk in out] == [1, 1], "chunks keep their rows"
    for (request_type, address, created_at), row in zip(extracted, [r for chunk in out for r in chunk]):
        by_name = dict(zip(config.column_names, row))
        assert by_name == {"request_key": expected_key([address, created_at]), "request_type": request_type,
                           "address": address, "created_at": created_at}, \
            f"rows come out in configured-column order, the key (from address, created_at) at {key_position}"


def test_without_a_derived_key_rows_pass_through_unchanged():
    chunks = [[("O-1", "OPEN", "2026-06-01")], [("O-2", None, None)]]
    assert [_with_derived_key(orders_config(), chunk) for chunk in chunks] == chunks, \
        "a source with its own key gets no extra column"


# --------------------------------------------------------------------------- land: file sources


def test_each_new_file_lands_tagged_with_its_file_and_is_registered(orders, two_weeks):
    landed = orders.land("1")

    assert landed.files_landed == sorted(two_weeks), "every file matching the pattern lands, in key order"
    assert landed.files_skipped == [], "nothing was settled before: nothing is skipped"
    assert landed.max_watermark is None, "a file source has no watermark"
    staged = orders.staged("1")
    assert landed.rows == len(staged) == 5, "landed.rows counts the rows now in staging: 2 + 3"
    assert staged == [
        ("orders_2026-W23.csv", "O-1", "OPEN", "2026-06-01"),
        ("orders_2026-W23.csv", "O-2", "CLOSED", "2026-06-02"),
        ("orders_2026-W24.csv", "O-3", "OPEN", "2026-06-08"),
        ("orders_2026-W24.csv", "O-4", None, "2026-06-09"),
        ("orders_2026-W24.csv", "O-5", "REFERRED TO CITY ATTORNEY", "2026-06-10"),
    ], "each row lands once, as text, tagged with the file it came from; an empty cell is NULL"
    w23, w24 = two_weeks["orders_2026-W23.csv"], two_weeks["orders_2026-W24.csv"]
    assert orders.file_register() == [
        ("orders_2026-W23.csv", version(w23), w23.stat().st_size, 2, "1", "landed", []),
        ("orders_2026-W24.csv", version(w24), w24.stat().st_size, 3, "1", "landed", ["Inspector"]),
    ], "each file version is registered: key, SHA-256 of its bytes, size, rows, batch, landed, extra columns"


@pytest.mark.parametrize("settled_as", ["merged", "discarded"])
def test_a_version_already_settled_is_skipped(orders, two_weeks, settled_as):
    orders.land("1")
    orders.set_file_status("1", settled_as)
    register_before = orders.file_register()

    landed = orders.land("2")

    assert (landed.rows, landed.files_landed) == (0, []), f"a {settled_as} file version is never landed again"
    assert landed.files_skipped == sorted(two_weeks), "the skipped versions are reported"
    assert orders.staged("2") == [], "nothing of a settled version reaches staging"
    assert orders.file_register() == register_before, "a skipped version's registration is left as it was"


def test_after_a_merge_only_a_corrected_file_lands_again(orders, two_weeks):
    orders.land("1")
    with db.transaction(orders.url) as conn, conn.cursor() as cur:
        batches.register_batch(cur, batch_id=orders.batch("1"), source=orders.name, run_id="run_1", rows=5,
                              max_watermark=None)
        batches.mark_validated(cur, orders.batch("1"))
        merge_batch(cur, orders.config, orders.batch("1"), "run_1")
    original = version(two_weeks["orders_2026-W23.csv"])
    corrected = write(two_weeks["orders_2026-W23.csv"],
                      "Order Number,Status,Issued\nO-1,COMPLIED,2026-06-01\nO-2,CLOSED,2026-06-02\n")

    landed = orders.land("2")

    assert landed.files_landed == ["orders_2026-W23.csv"], "a corrected file is a new version and lands"
    assert landed.files_skipped == ["orders_2026-W24.csv"], "a file re-sent unchanged after its merge is skipped"
    assert orders.staged("2") == [("orders_2026-W23.csv", "O-1", "COMPLIED", "2026-06-01"),
                                  ("orders_2026-W23.csv", "O-2", "CLOSED", "2026-06-02")], \
        "only the corrected file's rows land in the new batch"
    assert [(key, sha, batch, status) for key, sha, _, _, batch, status, _ in orders.file_register()] == [
        ("orders_2026-W23.csv", original, "1", "merged"),
        ("orders_2026-W23.csv", version(corrected), "2", "landed"),
        ("orders_2026-W24.csv", version(two_weeks["orders_2026-W24.csv"]), "1", "merged"),
    ], "the new version is registered beside the merged ones, which stay merged"


def test_a_version_landed_by_a_batch_that_never_settled_lands_again_in_the_next_batch(orders, two_weeks):
    orders.land("1")  # landed, then the run died: the batch is neither merged nor waiting for review

    landed = orders.land("2")

    assert landed.files_landed == sorted(two_weeks), "a version whose batch never settled is landed again"
    assert len(orders.staged("2")) == landed.rows == 5, "all its rows land in the new batch"
    assert [(key, batch, status) for key, _, _, _, batch, status, _ in orders.file_register()] == [
        ("orders_2026-W23.csv", "2", "landed"), ("orders_2026-W24.csv", "2", "landed"),
    ], "each version keeps one registration, now in the new batch"


@pytest.mark.parametrize("review_state", ["quarantined", "failed"])
def test_a_version_waiting_for_review_is_not_landed_again(orders, two_weeks, review_state):
    orders.land("1")
    with db.transaction(orders.url) as conn, conn.cursor() as cur:
        mark = batches.quarantine_batch if review_state == "quarantined" else batches.mark_failed
        mark(cur, orders.batch("1"), "held for review")

    landed = orders.land("2")

    assert landed.files_landed == [] and landed.rows == 0, "a version waiting for review stays in its own batch"
    assert sorted(landed.files_skipped) == sorted(two_weeks), "the landing says it skipped them"
    assert [(key, batch, status) for key, _, _, _, batch, status, _ in orders.file_register()] == [
        ("orders_2026-W23.csv", "1", review_state), ("orders_2026-W24.csv", "1", review_state),
    ], "each version stays registered with the batch under review, with that batch's status"


def test_a_new_file_in_the_drop_lands_beside_settled_ones(orders, two_weeks):
    orders.land("1")
    orders.set_file_status("1", "merged")
    write(orders.root / "orders" / "orders_2026-W25.csv", "Order Number,Status,Issued\nO-6,OPEN,2026-06-15\n")

    landed = orders.land("2")

    assert (landed.files_landed, landed.files_skipped) == (["orders_2026-W25.csv"], sorted(two_weeks)), \
        "only the new file lands; the merged ones are skipped"
    assert orders.staged("2") == [("orders_2026-W25.csv", "O-6", "OPEN", "2026-06-15")], \
        "the new file's row lands once"


def test_a_derived_key_is_computed_from_the_text_that_landed(warehouse, landing_root):
    requests = FileSource(warehouse, landing_root, requests_config(key_position=0, source=unique("test_requests")))
    write(landing_root / "requests" / "requests_2026-06-16.csv",
          "Type,Address,Created\n"
          "POTHOLE,  2846 N 1ST ST ,2026-06-16 08:00\n"
          "STREET LIGHT OUT,,2026-06-16 09:00\n"
          "POTHOLE,2846 N 1ST ST,2026-06-16 08:00\n")

    landed = requests.land("1")

    staged = requests.staged("1", columns="request_key, created_at, request_type, address")
    assert landed.rows == len(staged) == 3, "every row lands"
    for key, *identifying in staged:
        assert key == expected_key(identifying), \
            f"the staged key is the hash of the staged (stripped, empty as missing) values {identifying}"
    assert staged[0][0] == staged[2][0] != staged[1][0], \
        "rows that landed alike share a key; a different row has its own"


def test_a_batch_landed_again_lands_its_own_versions_waiting_for_review(orders, two_weeks):
    orders.land("1")
    with db.transaction(orders.url) as conn, conn.cursor() as cur:
        batches.quarantine_batch(cur, orders.batch("1"), "held for review")

    landed = orders.land("1")  # its run cleared in Airflow: the same batch lands again

    assert landed.files_landed == sorted(two_weeks) and landed.rows == 5, \
        "the batch's own versions are landed again, not skipped as known (they would be lost)"
    assert [(key, batch, status) for key, _, _, _, batch, status, _ in orders.file_register()] == [
        ("orders_2026-W23.csv", "1", "landed"), ("orders_2026-W24.csv", "1", "landed"),
    ]
