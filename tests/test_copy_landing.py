"""A PostgreSQL source lands COPY to COPY (`SqlTable.copy_out`, `aim.staging.copy_text`): the bytes the
source writes go into staging's COPY without becoming Python rows, and what lands is what the rows
path (every other SQL source) lands: the same values once cast to their configured types, empty
text as NULL, the same watermark; only the rows changed since the watermark."""
from __future__ import annotations

import datetime as dt

import psycopg2
import pytest

from aim import db, watermarks
from aim.landing import land
from aim.migrations import migrate
from aim.source_kinds.base import ExtractRequest
from aim.source_kinds.sql_table import SqlTable
from aim.sources import SourceConfig
from aim.staging import copy_text
from aim.tables import ensure_tables
from aim_demo.databases import libpq_dsn, query

CONFIG = SourceConfig.model_validate({
    "source": "permits", "department": "Neighborhood Services", "system": "Permits", "kind": "sql",
    "connection_id": "permits_db", "schedule": None, "owner": "dns",
    "extract": {"table": "dns.permit", "watermark_column": "updated_at"},
    "key": ["permit_id"],
    "columns": [
        {"name": "permit_id", "type": "integer", "privacy": "public"},
        {"name": "address", "privacy": "public"},
        {"name": "fee", "type": "numeric", "privacy": "public"},
        {"name": "paid", "type": "boolean", "privacy": "public"},
        {"name": "issued_on", "type": "date", "privacy": "public"},
        {"name": "inspected_at", "type": "timestamp", "privacy": "public"},
        {"name": "updated_at", "type": "timestamptz", "privacy": "public"},
    ],
    "expectation_suite": "permits.json",
})
TYPED = ", ".join(f"{c.name}::{c.type}" for c in CONFIG.columns)
ROWS = [  # text that COPY must quote, escape or keep: commas, quotes, tabs, newlines, backslashes, accents, '', \N
    (1, "2800 N 1st St, Apt 2\t(rear)\r\n\\N", "12.50", True, "2026-01-02", "2026-01-02 08:00:00", "2026-01-02 14:00:00+00"),
    (2, 'The "Annex"\nrear door', "0", False, "2026-02-28", "2026-02-28 23:59:59.5", "2026-03-01 06:00:00-06"),
    (3, "C:\\permits\\3", None, None, None, None, "2026-03-08 08:30:00+00"),
    (4, "", "1e3", True, "2026-12-31", "2026-12-31 00:00:00", "2026-06-01 12:00:00+00"),
    (5, "Señora Núñez ✓", "-7.125", False, "2024-02-29", "2024-02-29 12:00:00", "2026-06-01 12:00:01+00"),
]


@pytest.fixture
def source(new_database) -> str:
    url = new_database("aim_copy_source")
    conn = psycopg2.connect(libpq_dsn(url))
    with conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA dns; CREATE TABLE dns.permit (permit_id integer PRIMARY KEY, address text, "
                    "fee numeric, paid boolean, issued_on date, inspected_at timestamp, updated_at timestamptz)")
        cur.executemany("INSERT INTO dns.permit VALUES (%s, %s, %s, %s, %s, %s, %s)", ROWS)
    conn.close()
    return url


@pytest.fixture
def warehouse(new_database) -> str:
    url = new_database("aim_copy_wh")
    migrate(url)
    with db.transaction(url) as conn, conn.cursor() as cur:
        ensure_tables(cur, CONFIG)
    return url


def landed(warehouse: str, batch_id: str) -> list[tuple]:
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {TYPED} FROM staging.permits WHERE _batch_id = %s ORDER BY permit_id", (batch_id,))
        return cur.fetchall()


def test_a_postgresql_source_lands_what_the_rows_path_lands(source, warehouse, monkeypatch):
    access = db.normalize_url(source)
    assert SqlTable().copy_out(CONFIG, access, ExtractRequest(), batch_id="probe") is not None, \
        "a PostgreSQL source is read by COPY"
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        by_copy = land(cur, CONFIG, access, batch_id="by-copy")
    monkeypatch.setattr(SqlTable, "copy_out", lambda *args, **kwargs: None)  # as a MariaDB source is read
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        by_rows = land(cur, CONFIG, access, batch_id="by-rows")

    assert by_copy.rows == by_rows.rows == len(ROWS)
    assert by_copy.max_watermark == by_rows.max_watermark is not None
    copied = landed(warehouse, "by-copy")
    assert copied == landed(warehouse, "by-rows"), "every value, cast to its type, is the same either way"
    assert [r[1] for r in copied] == [ROWS[0][1], ROWS[1][1], ROWS[2][1], None, ROWS[4][1]], \
        "text lands as it was, quotes, newlines and backslashes included; empty text as NULL, as on the rows path"


def test_landing_finds_whether_every_typed_value_casts_with_the_newest_watermark(source, warehouse):
    """The scan that reads the batch's newest watermark casts every typed column too, and the batch
    records whether they all cast (`ops.batch.typed_columns_cast`: validate need not cast them
    again). A source whose values do not all cast still lands them, for the gate to judge, and its
    newest watermark is the newest of those that cast."""
    access = db.normalize_url(source)
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        clean = land(cur, CONFIG, access, batch_id="clean")
    assert clean.typed_columns_cast is True

    conn = psycopg2.connect(libpq_dsn(source))
    with conn, conn.cursor() as cur:  # a source keeping typed values as text: a fee and a newer change that do not cast
        cur.execute("ALTER TABLE dns.permit ALTER COLUMN fee TYPE text, ALTER COLUMN updated_at TYPE text")
        cur.execute("UPDATE dns.permit SET fee = 'twelve' WHERE permit_id = 1")
        cur.execute("INSERT INTO dns.permit (permit_id, updated_at) VALUES (6, '2026-13-45 25:00')")
    conn.close()
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        dirty = land(cur, CONFIG, access, batch_id="dirty")

    assert (dirty.rows, dirty.typed_columns_cast) == (len(ROWS) + 1, False)
    assert dirty.max_watermark == clean.max_watermark is not None, "the value that does not cast moves nothing"


def test_a_source_primary_key_within_the_key_tells_the_gate_each_key_comes_once(source, warehouse, monkeypatch):
    """A PostgreSQL table whose primary key's columns are all key columns, of the configured types,
    gives each key once in one COPY: the batch records it (`ops.batch.keys_unique_at_source`) and
    the gate does not group the batch by its key to find it out. Any doubt (no primary key, one
    wider than the key, a type the cast could fold: 01 and 1, or split) records false."""
    access = db.normalize_url(source)

    def landing_says() -> bool:
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            return land(cur, CONFIG, access, batch_id="probe").keys_unique_at_source

    def source_says(config=CONFIG) -> bool:  # what landing asks the source's kind
        return SqlTable().guarantees(config, access).each_key_once

    assert landing_says() is True, "permit_id integer PRIMARY KEY, configured integer"
    by_permit_and_address = CONFIG.model_copy(update={"key": ["permit_id", "address"]})
    assert source_says(by_permit_and_address) is True, "a primary key within a wider configured key"

    query(source, "ALTER TABLE dns.permit DROP CONSTRAINT permit_pkey, ADD PRIMARY KEY (permit_id, address)")
    assert source_says() is False, "a primary key wider than the configured key: one permit may come twice"
    assert source_says(by_permit_and_address) is True
    query(source, "ALTER TABLE dns.permit DROP CONSTRAINT permit_pkey")
    assert source_says() is False, "no primary key"
    query(source, "ALTER TABLE dns.permit ADD UNIQUE (permit_id)")
    assert source_says() is False, "a unique constraint allows NULL keys twice: only a primary key counts"

    query(source, "ALTER TABLE dns.permit ALTER COLUMN permit_id TYPE text, ADD PRIMARY KEY (permit_id)")
    assert source_says() is False, "a text key configured integer: '01' and '1' are two rows of one key"
    as_text = CONFIG.model_copy(update={"columns": [c.model_copy(update={"type": "text"}) if c.name == "permit_id"
                                                    else c for c in CONFIG.columns]})
    assert source_says(as_text) is True, "text configured text"
    query(source, "ALTER TABLE dns.permit ALTER COLUMN permit_id TYPE varchar(20)")
    assert source_says(as_text) is True, "varchar configured text: the police source's incident_num"
    query(source, "ALTER TABLE dns.permit ALTER COLUMN permit_id TYPE numeric USING permit_id::numeric")
    assert source_says() is False, "a numeric key configured integer: 1.2 and 1.4 would be one key"

    query(source, "ALTER TABLE dns.permit ALTER COLUMN permit_id TYPE integer USING permit_id::integer")
    assert landing_says() is True
    monkeypatch.setattr(SqlTable, "copy_out", lambda *args, **kwargs: None)  # as a MariaDB source is read
    assert landing_says() is False, "rows read through Python: not known"


def test_landing_casts_only_the_columns_the_source_does_not_hold_in_their_configured_type(source, warehouse,
                                                                                         monkeypatch):
    """A source column of the configured type holds only values that cast to it: landing's scan
    (which finds whether every typed value casts, with the newest watermark) casts only the
    others. Their values are still checked: one that does not cast is found. The scan comes
    after the batch's statistics (ANALYZE): planned for the rows landed, in parallel when many."""
    from aim import row_scan

    cast, planned_for = [], []
    cast_all = row_scan.cast_all

    def casting(cur, table, batch_id, typed, also=()):
        cast.append([c for c, _ in typed])
        cur.execute("SELECT reltuples FROM pg_class WHERE oid = 'staging.permits'::regclass")
        planned_for.append(cur.fetchone()[0])
        return cast_all(cur, table, batch_id, typed, also)

    monkeypatch.setattr(row_scan, "cast_all", casting)
    access = db.normalize_url(source)

    def landing(batch_id: str):
        cast.clear()
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            return land(cur, CONFIG, access, batch_id=batch_id)

    assert SqlTable().guarantees(CONFIG, access).columns_that_cast == {c for c, _ in CONFIG.typed_columns}
    clean = landing("same-types")
    assert (clean.typed_columns_cast, cast) == (True, [[]]), "every typed column has its type at the source"
    assert planned_for == [len(ROWS)], "the planner knows the rows landed before the scan"

    query(source, "ALTER TABLE dns.permit ALTER COLUMN paid TYPE smallint USING paid::int, "
                         "ALTER COLUMN fee TYPE text")
    assert landing("castable-text").typed_columns_cast is True
    assert cast == [["fee", "paid"]], "a smallint configured boolean, a text configured numeric: cast"
    query(source, "UPDATE dns.permit SET paid = 2 WHERE permit_id = 1")
    dirty = landing("smallint-2")
    assert dirty.typed_columns_cast is False, "2 is no boolean"
    assert dirty.max_watermark == clean.max_watermark


def test_only_rows_changed_since_the_watermark_are_copied(source, warehouse):
    since = watermarks.parse("2026-06-01 12:00:00+00:00", "timestamptz")

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        copied = SqlTable().copy_out(CONFIG, db.normalize_url(source), ExtractRequest(since=since), batch_id="late")
        rows = copy_text(cur, CONFIG.staging_table, CONFIG.column_names, copied)

    assert rows == 2
    assert [r[0] for r in landed(warehouse, "late")] == [4, 5]


def test_a_source_that_fails_mid_copy_lands_nothing(source, warehouse):
    conn = psycopg2.connect(libpq_dsn(source))
    with conn, conn.cursor() as cur:  # a value the source cannot write: its COPY fails after rows went out
        cur.execute("CREATE FUNCTION dns.boom(integer) RETURNS text LANGUAGE plpgsql AS $$ BEGIN "
                    "IF $1 = 4 THEN RAISE EXCEPTION 'source failure at permit 4'; END IF; RETURN $1::text; END $$; "
                    "ALTER TABLE dns.permit RENAME COLUMN address TO address_raw; "
                    "CREATE VIEW dns.permit_view AS SELECT permit_id, dns.boom(permit_id) AS address, fee, paid, "
                    "issued_on, inspected_at, updated_at FROM dns.permit")
    conn.close()
    config = CONFIG.model_copy(update={"extract": CONFIG.extract.model_copy(update={"table": "dns.permit_view"})})

    with pytest.raises(Exception, match="source failure at permit 4"):
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            land(cur, config, db.normalize_url(source), batch_id="broken")

    assert landed(warehouse, "broken") == [], "the rows copied before the failure are rolled back with the batch"
