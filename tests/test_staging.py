"""`aim.staging` against a real PostgreSQL: `copy_chunks` lands every row of every chunk, tagged with
its batch and origin, as received (empty and missing values alike as NULL, bytes decoded), one chunk
at a time, and counts them; `discard_batch` deletes exactly one batch's rows.

One warehouse database per module; every test lands in its own staging table, made by
`ensure_tables` for a uniquely named source.
"""
from __future__ import annotations

import uuid

import psycopg2
import psycopg2.errors
import pytest
from psycopg2 import sql

from aim import db
from aim.migrations import migrate
from aim.sources import SourceConfig
from aim.staging import copy_chunks, discard_batch
from aim.tables import ensure_tables, ensure_tables_once, qualified
from aim_demo.databases import libpq_dsn

COLUMNS = ["record_id", "note", "amount"]


def drop_config(source: str) -> SourceConfig:
    """A small file source whose staging table has three columns."""
    return SourceConfig.model_validate({
        "source": source,
        "department": "Test department",
        "system": "Test file drop",
        "kind": "file",
        "schedule": None,
        "owner": "tests",
        "extract": {"location": "drops", "pattern": "*.csv", "format": {"kind": "csv"}},
        "key": ["record_id"],
        "columns": [{"name": "record_id", "privacy": "public"}, {"name": "note", "privacy": "public"}, {"name": "amount", "type": "numeric", "privacy": "public"}],
        "expectation_suite": "test_drops.json",
    })


@pytest.fixture(scope="module")
def warehouse(new_database) -> str:
    """One migrated warehouse for the module; each test lands in its own staging table."""
    url = new_database("aim_test_staging")
    migrate(url)
    return url


class StagingTable:
    """This test's own staging table, made by `ensure_tables` for a uniquely named source."""

    def __init__(self, url: str):
        self.url = url
        self.config = drop_config(f"test_drops_{uuid.uuid4().hex[:10]}")
        self.name = self.config.staging_table
        with db.transaction(url) as conn, conn.cursor() as cur:
            ensure_tables(cur, self.config)

    def land(self, batch_id: str, chunks, origin: str | None = None, columns=COLUMNS) -> int:
        """`copy_chunks` into this table, in one transaction."""
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            return copy_chunks(cur, self.name, columns, batch_id, chunks, origin=origin)

    def rows(self, batch_id: str | None = None) -> list[tuple]:
        """(batch, origin, record_id, note, amount) of the staged rows, in landing order."""
        statement = sql.SQL("SELECT _batch_id, _origin, record_id, note, amount FROM {} {} ORDER BY ctid").format(
            sql.Identifier(*self.name), sql.SQL("WHERE _batch_id = %s" if batch_id else ""))
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(statement, (batch_id,) if batch_id else None)
            return cur.fetchall()


@pytest.fixture
def table(warehouse) -> StagingTable:
    """This test's own, empty staging table."""
    return StagingTable(warehouse)


def test_every_row_of_every_chunk_lands_tagged_with_batch_and_origin(table):
    chunks = [
        [("R-1", "first", "1.5"), ("R-2", "second", "2")],
        [("R-3", "third", "-3")],
        [("R-4", "fourth", "4"), ("R-5", "fifth", "5"), ("R-6", "sixth", "6")],
    ]

    landed = table.land("b_1", chunks, origin="drops/day_1.csv")

    expected = [("b_1", "drops/day_1.csv", *row) for chunk in chunks for row in chunk]
    assert landed == len(expected), "copy_chunks returns the number of rows landed"
    assert table.rows() == expected, "every row of every chunk lands, in order, with its batch id and origin"


def test_empty_and_missing_values_both_land_as_null(table):
    table.land("b_nulls", [[("R-1", "", None), ("R-2", None, ""), ("R-3", "", "")]])

    assert table.rows() == [
        ("b_nulls", None, "R-1", None, None),
        ("b_nulls", None, "R-2", None, None),
        ("b_nulls", None, "R-3", None, None),
    ], "an empty string and a missing value land alike, as NULL (and no origin is NULL)"


def test_bytes_are_decoded_as_utf8_text(table):
    table.land("b_bytes", [[(b"R-1", "caf\u00e9".encode("utf-8"), b"12.50")]])

    assert table.rows() == [("b_bytes", None, "R-1", "caf\u00e9", "12.50")], \
        "bytes land as the UTF-8 text they encode, not as a bytes literal"


def test_text_lands_exactly_as_received(table):
    awkward = [
        "comma, inside", 'a "quoted" word', "two\nlines", "crlf\r\nline", "tab\tinside", "back\\slash",
        "\\N", "\\.", "line\n\\.\nafter", "  padded  ", " ", "NULL", "Mil\u00e9waukee \u2013 \u00bd",
    ]
    rows = [(f"R-{number}", text, None) for number, text in enumerate(awkward)]

    table.land("b_awkward", [rows])

    assert [row[3] for row in table.rows()] == awkward, \
        "staging keeps values as received: delimiters, quotes, newlines, backslashes and spaces survive COPY"


def test_empty_chunks_are_fine_and_count_nothing(table):
    assert table.land("b_none", [[], []]) == 0, "only empty chunks land 0 rows"
    assert table.land("b_none", []) == 0, "no chunks at all land 0 rows"
    assert table.land("b_some", [[], [("R-1", "x", "1")], []]) == 1, "empty chunks between others are skipped"
    assert table.rows() == [("b_some", None, "R-1", "x", "1")], "an empty chunk lands nothing"


def test_columns_are_matched_by_name_not_by_table_order(table):
    table.land("b_order", [[("7", "R-1")]], columns=["amount", "record_id"])

    assert table.rows() == [("b_order", None, "R-1", None, "7")], \
        "each value lands in the column named for it; columns not named stay NULL"


def test_chunks_are_copied_one_at_a_time_as_they_are_produced(table):
    seen_before_each_chunk: list[int] = []
    with db.transaction(table.url) as conn, conn.cursor() as cur:
        def chunks():
            for number in range(3):
                with conn.cursor() as probe:  # same transaction: sees what was copied so far
                    probe.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.name)))
                    seen_before_each_chunk.append(probe.fetchone()[0])
                yield [(f"R-{number}-{i}", None, None) for i in range(2)]

        landed = copy_chunks(cur, table.name, COLUMNS, "b_stream", chunks())

    assert landed == 6, "three chunks of two rows land six rows"
    assert seen_before_each_chunk == [0, 2, 4], \
        "each chunk is in staging before the next one is asked for: only one chunk is held at a time"


def test_discard_batch_deletes_exactly_that_batch(table):
    table.land("b_keep_1", [[("R-1", "kept", "1")]], origin="a.csv")
    table.land("b_drop", [[("R-2", "dropped", "2"), ("R-3", "dropped", "3")]], origin="b.csv")
    table.land("b_keep_2", [[("R-4", "kept", "4")]], origin="c.csv")
    kept = table.rows("b_keep_1") + table.rows("b_keep_2")

    with db.transaction(table.url) as conn, conn.cursor() as cur:
        deleted = discard_batch(cur, table.name, "b_drop")

    assert deleted == 2, "discard_batch returns the number of rows it deleted"
    assert table.rows("b_drop") == [], "every row of the discarded batch is gone"
    assert table.rows("b_keep_1") + table.rows("b_keep_2") == kept, \
        "rows of other batches are untouched"


def test_discarding_a_batch_with_no_rows_deletes_nothing(table):
    table.land("b_other", [[("R-1", "kept", "1")]])
    before = table.rows()

    with db.transaction(table.url) as conn, conn.cursor() as cur:
        assert discard_batch(cur, table.name, "b_absent") == 0, "a batch with nothing staged deletes 0 rows"

    assert table.rows() == before, "discarding an absent batch leaves staging as it was"


# ---- the tables are made once per configuration (aim.tables.ensure_tables_once) ----------------

def test_a_run_with_an_unchanged_configuration_makes_no_ddl_even_while_an_analyst_reads_core(warehouse):
    config = drop_config(f"shape_{uuid.uuid4().hex[:8]}")
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        assert ensure_tables_once(cur, config), "the first run makes the tables"

    analyst = psycopg2.connect(libpq_dsn(warehouse))
    try:
        with analyst.cursor() as reading:  # an analyst's query, still open: it holds a lock ALTER TABLE waits for
            reading.execute(sql.SQL("SELECT count(*) FROM {}").format(qualified(config.core_table)))
            with db.transaction(warehouse) as conn, conn.cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '2s'")
                assert not ensure_tables_once(cur, config), "an unchanged configuration: no DDL, no wait"

            grown = config.model_copy(update={"columns": [*config.columns, config.columns[1].model_copy(
                update={"name": "inspector"})]})
            with pytest.raises(psycopg2.errors.LockNotAvailable):  # a changed one must alter core: it waits
                with db.transaction(warehouse) as conn, conn.cursor() as cur:
                    cur.execute("SET LOCAL lock_timeout = '1s'")
                    ensure_tables_once(cur, grown)
    finally:
        analyst.rollback()
        analyst.close()

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        assert ensure_tables_once(cur, grown), "once the analyst is done, the new column is added"
        cur.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'core' "
                    "AND table_name = %s AND column_name = 'inspector'", (config.source,))
        assert cur.fetchone()[0] == 1
        cur.execute(sql.SQL("DROP TABLE {}").format(qualified(config.core_table)))
        assert ensure_tables_once(cur, grown), "a table dropped by hand is made again, though the shape is known"
        assert not ensure_tables_once(cur, grown)


# ---- what landing writes through (aim.tables.ensure_tables) --------------------------------------

def _staging_shape(cur, config: SourceConfig) -> tuple[list[str], list[str], list[str]]:
    """(columns, index access methods, identity columns) of the source's staging table."""
    schema, table = config.staging_table
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "ORDER BY ordinal_position", (schema, table))
    columns = [r[0] for r in cur.fetchall()]
    cur.execute("SELECT am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = %s::regclass ORDER BY 1",
                (qualified(config.staging_table).as_string(cur),))
    methods = [r[0] for r in cur.fetchall()]
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "AND is_identity = 'YES'", (schema, table))
    return columns, methods, [r[0] for r in cur.fetchall()]


def test_staging_has_no_row_id_and_only_a_brin_index_even_when_made_by_an_older_layout(warehouse):
    """Every index and generated column of staging is written on each landed row: the table keeps
    only a BRIN index on the batch id (a small batch among quarantined ones is still found), no
    btree and no identity column, also after upgrading a table the earlier layout made."""
    config = drop_config(f"layout_{uuid.uuid4().hex[:8]}")
    staging = qualified(config.staging_table)
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS staging")
        cur.execute(sql.SQL("CREATE TABLE {} (_batch_id text NOT NULL, _origin text, "  # layout 2, as deployed
                            "_row_id bigint GENERATED BY DEFAULT AS IDENTITY, record_id text, note text, amount text)")
                    .format(staging))
        cur.execute(sql.SQL("CREATE INDEX {} ON {} (_batch_id)").format(sql.Identifier(f"{config.source}_batch"),
                                                                          staging))
        cur.execute(sql.SQL("INSERT INTO {} (_batch_id, record_id) VALUES ('quarantined', 'R-1')").format(staging))
        assert _staging_shape(cur, config)[1:] == (["btree"], ["_row_id"])

        ensure_tables(cur, config)

        columns, methods, identities = _staging_shape(cur, config)
        assert columns == ["_batch_id", "_origin", "record_id", "note", "amount"]
        assert (methods, identities) == (["brin"], [])
        cur.execute(sql.SQL("SELECT _batch_id, record_id FROM {}").format(staging))
        assert cur.fetchall() == [("quarantined", "R-1")], "a batch staging held is kept through the upgrade"

        ensure_tables(cur, config)  # and again: nothing changes
        assert _staging_shape(cur, config) == (columns, ["brin"], [])


def test_a_deployment_made_by_the_earlier_layout_is_upgraded_by_its_next_run(warehouse, monkeypatch):
    """A run makes no DDL for a configuration its tables were last made to (`ensure_tables_once`),
    so the layout is part of that: tables made by layout 2 are made again, once, by the next run."""
    from aim import tables

    config = drop_config(f"upgrade_{uuid.uuid4().hex[:8]}")
    staging = qualified(config.staging_table)
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        with monkeypatch.context() as earlier:
            earlier.setattr(tables, "TABLES_LAYOUT", 2)
            assert ensure_tables_once(cur, config)
        cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN _row_id bigint GENERATED BY DEFAULT AS IDENTITY").format(staging))
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier("staging", f"{config.source}_batch_brin")))
        cur.execute(sql.SQL("CREATE INDEX {} ON {} (_batch_id)").format(sql.Identifier(f"{config.source}_batch"),
                                                                          staging))

        assert ensure_tables_once(cur, config), "the layout changed: the tables are made again"
        assert _staging_shape(cur, config)[1:] == (["brin"], [])
        assert not ensure_tables_once(cur, config)


def test_a_small_batch_is_read_through_the_brin_index_among_quarantined_ones(table):
    """A batch of a few rows behind a large quarantined one is found without reading the large one."""
    table.land("quarantined", [[("Q-%d" % i, "kept for review", "1") for i in range(50_000)]])
    table.land("new", [[("N-1", "new", "2")]])
    with db.transaction(table.url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("ANALYZE {}").format(qualified(table.name)))
        cur.execute(sql.SQL("SELECT brin_summarize_new_values({})").format(
            sql.Literal(f"{table.name[0]}.{table.config.source}_batch_brin")))
        cur.execute("SET LOCAL enable_seqscan = off")  # the planner's choice aside: the index must answer
        cur.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM {} WHERE _batch_id = 'new'")
                    .format(qualified(table.name)))
        node = cur.fetchone()[0][0]["Plan"]
    while node["Node Type"] != "Bitmap Heap Scan":
        node = node["Plans"][0]
    assert node["Actual Rows"] == 1
    assert node["Rows Removed by Index Recheck"] < 50_000 / 2, "most of the quarantined batch is skipped"
    assert table.rows("new") == [("new", None, "N-1", "new", "2")]
