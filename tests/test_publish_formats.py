"""Open data publication writers: CSV/JSON/Parquet from one query (against a real PostgreSQL),
Table Schema data dictionaries, the DCAT-US 1.1 data.json and the manifest."""
from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import re
import socket
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aim.publish import catalog as cat
from aim.publish.formats import (
    CSV_FORMULA_NOTE,
    ROW_GROUP_ROWS,
    Column,
    WrittenFile,
    arrow_schema,
    write_formats,
)
from aim.publish.manifest import manifest, manifest_json
from aim.publish.tableschema import table_schema
from aim_demo.databases import libpq_dsn
from memory import measure

ROWS = 25_000
# Memory: the peak RSS of a fresh process writing many rows against one writing SMALL_ROWS (see
# tests/memory.py). Streaming, the difference is one fetch batch and one Parquet row group plus what
# Arrow's allocator keeps: 25 to 45 MB whatever the row count. Holding every row instead (measured
# through write_formats): for 300,000 rows, ~190 MB more as Python rows, ~120 MB as CSV and JSON
# text, ~90 MB as one Parquet row group; for 1,500,000 rows, ~130 MB as Arrow record batches.
SMALL_ROWS = 10_000
ALLOWED_GROWTH_MB = 60

COLUMNS = [
    Column("id", "integer", "Row number."),
    Column("label", "text", "Free text: NULLs, an empty string, unicode, a comma, quote and newline."),
    Column("small", "smallint"),
    Column("big", "bigint"),
    Column("amount", "numeric", "Unconstrained numeric: long fractions, NaN, tiny and integral values."),
    Column("ratio", "double precision"),
    Column("flag", "boolean"),
    Column("day", "date"),
    Column("seen_at", "timestamp"),
    Column("seen_tz", "timestamptz"),
]
NAMES = [c.name for c in COLUMNS]
TRICKY = 'comma, "quoted"\nand a newline'
UNICODE = "Milwaukee — ñandú 😀 東京"

# One row per g: every supported type, NULLs, and the awkward values.
SELECT_FOR_G = f"""
SELECT g AS id,
       CASE WHEN g % 7 = 0 THEN NULL
            WHEN g = 1 THEN E'comma, "quoted"\\nand a newline'
            WHEN g = 2 THEN ''
            WHEN g = 3 THEN '{UNICODE}'
            ELSE 'row ' || g END AS label,
       CASE WHEN g % 5 = 0 THEN NULL ELSE (g % 60000 - 30000)::smallint END AS small,
       g::bigint * 1000000007 AS big,
       CASE WHEN g % 11 = 0 THEN NULL
            WHEN g = 4 THEN 'NaN'::numeric
            WHEN g = 5 THEN 0.0000001
            WHEN g = 6 THEN 5.00
            ELSE g::numeric / 7 END AS amount,
       CASE WHEN g % 13 = 0 THEN NULL
            WHEN g = 8 THEN 'Infinity'::float8
            WHEN g = 9 THEN '-Infinity'::float8
            WHEN g = 10 THEN 'NaN'::float8
            WHEN g = 12 THEN 1e-7::float8
            ELSE g / 3.0::float8 END AS ratio,
       CASE WHEN g % 3 = 0 THEN NULL ELSE g % 2 = 0 END AS flag,
       CASE WHEN g % 17 = 0 THEN NULL ELSE date '2020-01-01' + g % 3000 END AS day,
       CASE WHEN g % 19 = 0 THEN NULL
            ELSE timestamp '2020-01-01 00:00:00' + g * interval '61.25 seconds' END AS seen_at,
       CASE WHEN g % 23 = 0 THEN NULL
            ELSE timestamptz '2020-03-08 06:00:00+00' + g * interval '37 seconds' END AS seen_tz
FROM generate_series(1, %(rows)s) AS g
"""


def _connect(url: str, time_zone: str = "America/Chicago"):
    conn = psycopg2.connect(libpq_dsn(url))
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE %s", (time_zone,))  # output must not depend on it
    conn.commit()
    return conn


@pytest.fixture(scope="module")
def db_url(new_database):
    url = new_database("publish_formats")
    conn = _connect(url)
    with conn.cursor() as cur:
        cur.execute(
            """CREATE TABLE every_type (
                   id integer PRIMARY KEY, label text, small smallint, big bigint, amount numeric,
                   ratio double precision, flag boolean, day date, seen_at timestamp, seen_tz timestamptz)"""
        )
        cur.execute("INSERT INTO every_type " + SELECT_FOR_G.replace("%(rows)s", str(ROWS)))
    conn.commit()
    conn.close()
    return url


@pytest.fixture()
def conn(db_url):
    c = _connect(db_url)
    yield c
    c.close()


QUERY = "SELECT " + ", ".join(NAMES) + " FROM every_type ORDER BY id"


@pytest.fixture(scope="module")
def expected(db_url):
    conn = _connect(db_url, "UTC")
    with conn.cursor() as cur:
        cur.execute(QUERY)
        rows = cur.fetchall()
    conn.close()
    return rows


@pytest.fixture(scope="module")
def written(db_url, tmp_path_factory):
    out = tmp_path_factory.mktemp("publish")
    conn = _connect(db_url)
    files = write_formats(conn, QUERY + ";", COLUMNS, out, "every_type")
    conn.close()
    return {f.format: f for f in files}


# --- comparing what came back with what PostgreSQL holds --------------------------------------


def _same_float(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or got == want


def _from_csv(column: Column, text: str):
    if text == "":
        return None
    t = column.type
    if t == "text":
        return text
    if t in ("smallint", "integer", "bigint"):
        assert re.fullmatch(r"-?\d+", text), text
        return int(text)
    if t == "numeric":
        assert "E" not in text.upper().replace("NAN", ""), f"numeric written with an exponent: {text}"
        return Decimal("NaN") if text == "NaN" else Decimal(text)
    if t == "double precision":
        specials = {"NaN": math.nan, "INF": math.inf, "-INF": -math.inf}
        return specials[text] if text in specials else float(text)
    if t == "boolean":
        assert text in ("true", "false"), text
        return text == "true"
    if t == "date":
        return date.fromisoformat(text)
    if t == "timestamp":
        assert "T" in text and not text.endswith("Z"), text
        return datetime.fromisoformat(text)
    if t == "timestamptz":
        assert text.endswith("Z"), f"timestamptz not in UTC: {text}"
        return datetime.fromisoformat(text)
    raise AssertionError(t)


def _from_json(column: Column, value):
    if value is None:
        return None
    t = column.type
    if t == "text":
        assert isinstance(value, str)
        return value
    if t in ("smallint", "integer", "bigint"):
        assert type(value) is int, value
        return value
    if t == "numeric":  # parsed with parse_float=Decimal: exactly what was written
        if isinstance(value, str):
            assert value == "NaN"
            return Decimal("NaN")
        assert isinstance(value, (int, Decimal)), value
        return Decimal(value)
    if t == "double precision":
        if isinstance(value, str):
            return {"NaN": math.nan, "INF": math.inf, "-INF": -math.inf}[value]
        return float(value)
    if t == "boolean":
        assert isinstance(value, bool)
        return value
    if t == "date":
        return date.fromisoformat(value)
    if t in ("timestamp", "timestamptz"):
        if t == "timestamptz":
            assert value.endswith("Z"), value
        return datetime.fromisoformat(value)
    raise AssertionError(t)


def _assert_same(got_rows: list, want_rows: list, *, numeric_as_float: bool = False) -> None:
    assert len(got_rows) == len(want_rows)
    for i, (got, want) in enumerate(zip(got_rows, want_rows)):
        assert len(got) == len(want) == len(COLUMNS)
        for column, g, w in zip(COLUMNS, got, want):
            where = f"row {i + 1}, column {column.name}: got {g!r}, want {w!r}"
            if w is None or g is None:
                assert g is None and w is None, where
            elif column.type == "double precision" or (column.type == "numeric" and numeric_as_float):
                assert _same_float(float(g), float(w)), where
            elif column.type == "numeric":
                assert (g.is_nan() and w.is_nan()) or g == w, where
                if not w.is_nan():
                    assert str(g) == str(w), where  # same digits, same scale: exact
            else:
                assert g == w, where


# --- write_formats ----------------------------------------------------------------------------


def test_every_format_is_written_with_counts_sizes_and_hashes(written):
    assert list(written) == ["csv", "json", "parquet"]
    media = {"csv": "text/csv", "json": "application/json", "parquet": "application/vnd.apache.parquet"}
    for fmt, f in written.items():
        assert isinstance(f, WrittenFile)
        assert f.path.name == f"every_type.{fmt}" and f.path.exists()
        assert f.media_type == media[fmt]
        assert f.rows == ROWS
        data = f.path.read_bytes()
        assert f.bytes == len(data)
        assert f.sha256 == hashlib.sha256(data).hexdigest()
    assert not [p for p in written["csv"].path.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def test_csv_is_rfc4180_with_crlf_and_reads_back_to_the_same_rows(written, expected):
    raw = written["csv"].path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # no byte-order mark
    header = b",".join(n.encode() for n in NAMES) + b"\r\n"
    assert raw.startswith(header)
    assert raw.endswith(b"\r\n")
    # Every record ends with CRLF; the only other line break is the LF inside the quoted value.
    assert raw.count(b"\r\n") == ROWS + 1
    assert raw.count(b"\n") == ROWS + 2
    # Quotes only where needed: the tricky value quoted with doubled quotes, the empty string
    # quoted (so it differs from NULL, an empty unquoted field), plain values bare.
    assert b'\r\n1,"comma, ""quoted""\nand a newline",' in raw
    assert b'\r\n2,"",' in raw
    assert b"\r\n7,,-29993,7000000049," in raw  # row 7: label NULL -> empty unquoted field
    assert b'"row ' not in raw
    # Numbers as Table Schema reads them: exact numeric digits, E exponents, NaN/INF spellings.
    assert b"\r\n5,row 5,,5000000035,0.0000001," in raw and b"\r\n6,row 6,-29994,6000000042,5.00," in raw
    assert b",1E-07," in raw and b",INF," in raw and b",-INF," in raw and b",NaN," in raw
    # timestamptz in UTC with a Z although the session's time zone is America/Chicago.
    assert b",2020-03-08T06:00:37Z\r\n" in raw

    with open(written["csv"].path, newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))
    assert records[0] == NAMES
    got = [tuple(_from_csv(c, v) for c, v in zip(COLUMNS, record)) for record in records[1:]]
    # '' (the empty string) and NULL both read back as None here; the bytes above tell them apart.
    want = [tuple("" if i == 1 and r[0] == 2 else v for i, v in enumerate(r)) for r in expected]
    got = [tuple("" if i == 1 and r[0] == 2 and v is None else v for i, v in enumerate(r)) for r in got]
    _assert_same(got, want)
    assert records[3][1] == UNICODE and records[1][1] == TRICKY


def test_json_is_an_array_of_objects_with_native_types(written, expected):
    raw = written["json"].path.read_bytes()
    assert raw.startswith(b"[\n{") and raw.endswith(b"}\n]\n")
    assert raw.count(b"\n") == ROWS + 1 + 1  # one row per line (the newline in the text is escaped)
    assert UNICODE.encode("utf-8") in raw  # UTF-8, not \u escapes
    doc = json.loads(raw.decode("utf-8"), parse_float=Decimal)
    assert isinstance(doc, list) and len(doc) == ROWS
    assert all(list(obj) == NAMES for obj in doc)  # keys in column order
    got = [tuple(_from_json(c, obj[c.name]) for c in COLUMNS) for obj in doc]
    _assert_same(got, expected)

    by_id = {obj["id"]: obj for obj in doc}
    assert by_id[1]["label"] == TRICKY and by_id[2]["label"] == "" and by_id[7]["label"] is None
    assert by_id[4]["amount"] == "NaN" and by_id[8]["ratio"] == "INF" and by_id[9]["ratio"] == "-INF"
    assert by_id[5]["amount"] == Decimal("0.0000001") and b'"amount":0.0000001,' in raw
    assert b'"amount":5.00,' in raw and b'"ratio":1E-07,' in raw
    assert b'"amount":0.14285714285714285714,' in raw  # exact digits, no float rounding
    plain = json.loads(raw)  # an ordinary parser reads numbers and booleans natively
    assert isinstance(plain[0]["amount"], float) and plain[0]["flag"] is False and plain[1]["flag"] is True


def test_parquet_has_the_declared_schema_the_same_rows_and_bounded_row_groups(written, expected):
    table = pq.read_table(written["parquet"].path)
    assert table.schema.equals(arrow_schema(COLUMNS), check_metadata=False)
    assert [table.schema.field(n).type for n in NAMES] == [
        pa.int32(), pa.string(), pa.int16(), pa.int64(), pa.float64(), pa.float64(), pa.bool_(),
        pa.date32(), pa.timestamp("us"), pa.timestamp("us", tz="UTC"),
    ]
    assert table.schema.field("amount").metadata == {b"description": COLUMNS[4].description.encode()}
    assert table.num_rows == ROWS
    got = [tuple(r[n] for n in NAMES) for r in table.to_pylist()]
    assert got[0][9].tzinfo is not None and got[0][9].utcoffset() == timedelta(0)
    _assert_same(got, expected, numeric_as_float=True)
    meta = pq.ParquetFile(written["parquet"].path).metadata
    assert all(meta.row_group(i).num_rows <= ROW_GROUP_ROWS for i in range(meta.num_row_groups))


def test_rows_are_equal_in_all_three_formats(written):
    with open(written["csv"].path, newline="", encoding="utf-8") as f:
        csv_ids = [int(r[0]) for r in list(csv.reader(f))[1:]]
    json_ids = [o["id"] for o in json.loads(written["json"].path.read_bytes())]
    parquet_ids = pq.read_table(written["parquet"].path, columns=["id"]).column("id").to_pylist()
    assert csv_ids == json_ids == parquet_ids == list(range(1, ROWS + 1))


def test_rewriting_the_same_rows_gives_identical_bytes_in_every_format(db_url, written, tmp_path):
    conn = _connect(db_url, "Asia/Tokyo")  # another session time zone changes nothing
    again = {f.format: f for f in write_formats(conn, QUERY, COLUMNS, tmp_path, "every_type")}
    conn.close()
    for fmt in ("csv", "json", "parquet"):
        assert again[fmt].sha256 == written[fmt].sha256, fmt
        assert again[fmt].path.read_bytes() == written[fmt].path.read_bytes(), fmt


def test_one_snapshot_one_transaction_and_the_session_is_restored(conn, tmp_path):
    conn.autocommit = True
    query = (
        "SELECT current_setting('transaction_isolation') AS isolation,"
        " current_setting('transaction_read_only') AS read_only,"
        " (txid_current_if_assigned() IS NULL)::boolean AS no_writes,"
        " count(*)::bigint AS n FROM every_type"
    )
    columns = [Column("isolation", "text"), Column("read_only", "text"), Column("no_writes", "boolean"), Column("n", "bigint")]
    (f,) = write_formats(conn, query, columns, tmp_path, "session", formats=("json",))
    assert json.loads(f.path.read_text()) == [
        {"isolation": "repeatable read", "read_only": "on", "no_writes": True, "n": ROWS}
    ]
    assert conn.autocommit is True and conn.isolation_level is None and conn.readonly is None
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('transaction_read_only')")
        assert cur.fetchone()[0] == "off"

    conn.set_session(isolation_level="SERIALIZABLE", readonly=False, autocommit=False)
    write_formats(conn, query, columns, tmp_path, "session", formats=("csv",))
    assert conn.autocommit is False and conn.readonly is False
    assert conn.isolation_level == psycopg2.extensions.ISOLATION_LEVEL_SERIALIZABLE


# Text a spreadsheet would run as a formula (OWASP, CSV injection), and text it would not.
HOSTILE = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
ORDINARY = ["Milwaukee", "A-1", "x = y", " =1", "'=1", "", None]
FORMULA_COLUMNS = [Column("id", "integer"), Column("label", "text"), Column("amount", "numeric"),
                   Column("ratio", "double precision"), Column("small", "smallint")]


@pytest.fixture()
def formula_files(conn, tmp_path):
    """Hostile and ordinary text beside negative numbers, written once to tmp_path/first and again to
    tmp_path/second; {"first"|"second": {format: WrittenFile}}."""
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE formulas (id integer, label text, amount numeric, ratio float8, small smallint)")
        for i, label in enumerate(HOSTILE + ORDINARY, start=1):
            cur.execute("INSERT INTO formulas VALUES (%s, %s, %s, %s, %s)", (i, label, Decimal("-3.5"), -2.5, -7))
    conn.commit()  # a temporary table lives as long as the session: write_formats reads it in its own transaction
    query = "SELECT id, label, amount, ratio, small FROM formulas ORDER BY id"
    return {run: {f.format: f for f in write_formats(conn, query, FORMULA_COLUMNS, tmp_path / run, "formulas")}
            for run in ("first", "second")}


def test_csv_neutralizes_formulas_in_text_columns_only(formula_files):
    files = formula_files["first"]
    with open(files["csv"].path, newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))[1:]
    labels = [r[1] for r in records]
    assert labels[:len(HOSTILE)] == ["'" + v for v in HOSTILE], "a formula-like text cell starts with a single quote"
    assert labels[len(HOSTILE):] == [v or "" for v in ORDINARY], "ordinary text is written as it is"
    assert {(r[2], r[3], r[4]) for r in records} == {("-3.5", "-2.5", "-7")}, "numbers stay numbers"
    raw = files["csv"].path.read_bytes()
    assert b'\r\n1,"\'=HYPERLINK(""http://x"")",-3.5,' in raw, "quoted as RFC 4180 asks, quotes doubled"
    assert b"\r\n2,'+1+1,-3.5,-2.5,-7\r\n" in raw and b'\r\n6,"\'\r=1",' in raw

    as_json = json.loads(files["json"].path.read_bytes())
    as_parquet = pq.read_table(files["parquet"].path).to_pylist()
    assert [o["label"] for o in as_json] == [r["label"] for r in as_parquet] == HOSTILE + ORDINARY, \
        "JSON and Parquet hold the value unchanged"
    assert {o["amount"] for o in as_json} == {-3.5} and {r["small"] for r in as_parquet} == {-7}


def test_neutralized_csv_is_deterministic_so_an_unchanged_data_set_is_not_rewritten(formula_files):
    first, second = formula_files["first"], formula_files["second"]
    for fmt in ("csv", "json", "parquet"):
        assert first[fmt].sha256 == second[fmt].sha256, f"{fmt}: same rows, same SHA-256 (publication skips it)"
        assert first[fmt].path.read_bytes() == second[fmt].path.read_bytes(), fmt
    assert first["csv"].bytes == len(first["csv"].path.read_bytes())
    assert first["csv"].sha256 == hashlib.sha256(first["csv"].path.read_bytes()).hexdigest()


def test_empty_result_gives_valid_empty_files(conn, tmp_path):
    files = {f.format: f for f in write_formats(conn, QUERY.replace("ORDER BY", "WHERE false ORDER BY"), COLUMNS, tmp_path, "empty")}
    assert files["csv"].path.read_bytes() == b",".join(n.encode() for n in NAMES) + b"\r\n"
    assert files["json"].path.read_bytes() == b"[]\n" and json.loads(files["json"].path.read_bytes()) == []
    table = pq.read_table(files["parquet"].path)
    assert table.num_rows == 0 and table.schema.equals(arrow_schema(COLUMNS), check_metadata=False)
    assert {f.rows for f in files.values()} == {0}


def test_columns_that_do_not_match_the_query_are_refused_and_nothing_is_left(conn, tmp_path):
    wrong_type = [Column("id", "integer"), Column("n", "integer")]
    with pytest.raises(ValueError, match=r"'n' is declared integer but the query returns bigint"):
        write_formats(conn, "SELECT id, count(*) OVER () AS n FROM every_type", wrong_type, tmp_path, "bad")
    with pytest.raises(ValueError, match=r"returns columns \['id'\], but the declared columns are \['ident'\]"):
        write_formats(conn, "SELECT id FROM every_type", [Column("ident", "integer")], tmp_path, "bad")
    with pytest.raises(psycopg2.errors.UndefinedTable):
        write_formats(conn, "SELECT 1 AS id FROM no_such_table", [Column("id", "integer")], tmp_path, "bad")
    with pytest.raises(ValueError, match="unsupported column type"):
        write_formats(conn, "SELECT 1 AS id", [Column("id", "money")], tmp_path, "bad")
    assert list(tmp_path.iterdir()) == []
    with conn.cursor() as cur:  # the connection is usable afterwards
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


_WRITE = """
import json
from pathlib import Path

import psycopg2

from aim.publish.formats import Column, write_formats
from aim_demo.databases import libpq_dsn

job = json.loads(sys.argv[1])
conn = psycopg2.connect(libpq_dsn(job["url"]))
files = write_formats(conn, job["query"], [Column(*c) for c in job["columns"]], Path(job["out"]), job["stem"],
                      formats=job["formats"])
report(rows=[f.rows for f in files])
"""

# The same rows, all held at once, in the form a writer that does not stream would hold them: as
# the Python rows psycopg2 returns, or as Arrow columns (the most compact form they take here).
_HOLD = """
import json

import psycopg2
import pyarrow as pa

from aim.publish.formats import Column, arrow_schema
from aim_demo.databases import libpq_dsn

job = json.loads(sys.argv[1])
schema = arrow_schema([Column(*c) for c in job["columns"]])
conn = psycopg2.connect(libpq_dsn(job["url"]))
held = []
with conn.cursor(name="held") as cur:
    cur.execute(job["query"])
    while rows := cur.fetchmany(10_000):
        if job["holding"] == "python":
            held.extend(rows)
            continue
        arrays = [pa.array([float(v) if v is not None and field.type == pa.float64() else v for v in values], field.type)
                  for field, values in zip(schema, zip(*rows))]
        held.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
report(rows=[len(held) if job["holding"] == "python" else sum(b.num_rows for b in held)])
"""


def _measure(script: str, db_url: str, rows: int, out: Path, **job) -> dict:
    query = SELECT_FOR_G.replace("%(rows)s", str(rows)) + " ORDER BY g"
    job.update(url=db_url, query=query, columns=[(c.name, c.type) for c in COLUMNS], out=str(out), stem=f"rows{rows}")
    return measure(script, json.dumps(job))


@pytest.mark.parametrize("formats, big_rows, holding", [
    (["csv", "json", "parquet"], 300_000, "python"),  # held: ~190 MB of Python rows, ~120 MB of text
    (["parquet"], 1_500_000, "arrow"),  # held: ~90 MB of Arrow buffers (tracemalloc never saw those)
], ids=["every-format", "parquet"])
def test_memory_stays_bounded(db_url, tmp_path, formats, big_rows, holding):
    """Writing many rows costs a fresh process no more peak RSS than writing SMALL_ROWS, give or take
    one fetch batch and one Parquet row group: Python objects, text and Arrow buffers all counted."""
    small = _measure(_WRITE, db_url, SMALL_ROWS, tmp_path, formats=formats)
    large = _measure(_WRITE, db_url, big_rows, tmp_path, formats=formats)

    assert small["rows"] == [SMALL_ROWS] * len(formats) and large["rows"] == [big_rows] * len(formats)
    meta = pq.ParquetFile(tmp_path / f"rows{big_rows}.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [ROW_GROUP_ROWS] * (big_rows // ROW_GROUP_ROWS)
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    assert growth <= ALLOWED_GROWTH_MB, f"peak RSS {small['peak_rss_mb']} MB -> {large['peak_rss_mb']} MB"

    # The bound means something: holding the same rows at once grows the process more than it allows.
    held_small = _measure(_HOLD, db_url, SMALL_ROWS, tmp_path, holding=holding)
    held = _measure(_HOLD, db_url, big_rows, tmp_path, holding=holding)
    assert held_small["rows"] == [SMALL_ROWS] and held["rows"] == [big_rows]
    held_growth = held["peak_rss_mb"] - held_small["peak_rss_mb"]
    assert held_growth > ALLOWED_GROWTH_MB * 1.2, f"holding the rows as {holding}: only {held_growth:.1f} MB more"


# --- Table Schema -----------------------------------------------------------------------------

SPEC_TYPES = {
    "string", "number", "integer", "boolean", "object", "array", "date", "time", "datetime",
    "year", "yearmonth", "duration", "geopoint", "geojson", "any",
}
SPEC_FORMATS = {"string": {"default", "email", "uri", "binary", "uuid"}, "date": {"default", "any"}, "datetime": {"default", "any"}}
SPEC_FIELD_KEYS = {"name", "title", "description", "type", "format", "constraints", "rdfType",
                   "trueValues", "falseValues", "decimalChar", "groupChar", "bareNumber", "example"}
SPEC_CONSTRAINTS = {"required", "unique", "minLength", "maxLength", "minimum", "maximum", "pattern", "enum"}


def _check_table_schema(schema: dict) -> None:
    """The Table Schema rules that can be checked by hand (spec v1)."""
    assert set(schema) <= {"fields", "primaryKey", "foreignKeys", "missingValues"}
    fields = schema["fields"]
    assert isinstance(fields, list) and fields
    names = [f["name"] for f in fields]
    assert len(set(names)) == len(names), "field names are unique"
    for f in fields:
        assert set(f) <= SPEC_FIELD_KEYS, f
        assert isinstance(f["name"], str) and f["name"]
        assert f["type"] in SPEC_TYPES, f
        if "format" in f:
            assert f["format"] in SPEC_FORMATS.get(f["type"], {"default"}), f
        for key, value in f.get("constraints", {}).items():
            assert key in SPEC_CONSTRAINTS, key
            if key in ("required", "unique"):
                assert isinstance(value, bool)
        if f["type"] == "boolean":
            assert all(isinstance(v, str) for v in f.get("trueValues", []) + f.get("falseValues", []))
    key = schema.get("primaryKey")
    if key is not None:
        key = [key] if isinstance(key, str) else key
        assert key and all(k in names for k in key), "primaryKey fields exist"
    assert all(isinstance(v, str) for v in schema.get("missingValues", [""]))


def test_table_schema_types_descriptions_and_single_primary_key():
    schema = table_schema(COLUMNS, primary_key=["id"])
    _check_table_schema(schema)
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types == {
        "id": "integer", "label": "string", "small": "integer", "big": "integer", "amount": "number",
        "ratio": "number", "flag": "boolean", "day": "date", "seen_at": "datetime", "seen_tz": "datetime",
    }
    fields = {f["name"]: f for f in schema["fields"]}
    assert [f["name"] for f in schema["fields"]] == NAMES
    assert fields["amount"]["description"] == COLUMNS[4].description and fields["small"]["description"] == ""
    assert fields["label"]["description"] == f"{COLUMNS[1].description} {CSV_FORMULA_NOTE}", \
        "a text field says how the CSV neutralizes formulas"
    assert [n for n, f in fields.items() if CSV_FORMULA_NOTE in f["description"]] == ["label"], "text fields only"
    assert table_schema([Column("note", "text")], primary_key=None)["fields"][0]["description"] == CSV_FORMULA_NOTE
    assert table_schema([Column("note", "text", "Free text")], primary_key=None)["fields"][0]["description"] == \
        f"Free text. {CSV_FORMULA_NOTE}"
    assert fields["day"]["format"] == fields["seen_tz"]["format"] == "default"
    assert fields["flag"]["trueValues"] == ["true"] and fields["flag"]["falseValues"] == ["false"]
    assert fields["id"]["constraints"] == {"required": True, "unique": True}
    assert all("constraints" not in f for f in schema["fields"] if f["name"] != "id")
    assert schema["primaryKey"] == ["id"] and schema["missingValues"] == [""]
    json.dumps(schema, allow_nan=False)


def test_table_schema_composite_key_no_key_and_errors():
    columns = [Column("period", "date"), Column("ward", "smallint"), Column("value", "numeric")]
    schema = table_schema(columns, primary_key=["period", "ward"], missing_values=("", "NA"))
    _check_table_schema(schema)
    constraints = {f["name"]: f.get("constraints") for f in schema["fields"]}
    assert constraints == {"period": {"required": True}, "ward": {"required": True}, "value": None}
    assert schema["primaryKey"] == ["period", "ward"] and schema["missingValues"] == ["", "NA"]

    keyless = table_schema(columns, primary_key=None)
    _check_table_schema(keyless)
    assert "primaryKey" not in keyless and all("constraints" not in f for f in keyless["fields"])

    with pytest.raises(ValueError, match="not columns"):
        table_schema(columns, primary_key=["district"])
    with pytest.raises(ValueError, match="repeats"):
        table_schema(columns, primary_key=["ward", "ward"])
    with pytest.raises(ValueError, match="duplicate"):
        table_schema(columns + [Column("ward", "text")], primary_key=None)
    with pytest.raises(ValueError, match="unsupported"):
        table_schema([Column("x", "jsonb")], primary_key=None)


# --- DCAT-US catalog --------------------------------------------------------------------------

BASE = "https://data.milwaukee.gov/open/latest/mpd-crime-incidents"


def _entry(**changes) -> dict:
    dictionary = f"{BASE}/mpd-crime-incidents.schema.json"
    distributions = [
        cat.distribution(download_url=f"{BASE}/mpd-crime-incidents.csv", media_type="text/csv",
                         format="CSV", title="Crime incidents (CSV)", described_by=dictionary),
        cat.distribution(download_url=f"{BASE}/mpd-crime-incidents.json", media_type="application/json",
                         format="JSON", title="Crime incidents (JSON)", described_by=dictionary),
        cat.distribution(download_url=f"{BASE}/mpd-crime-incidents.parquet",
                         media_type="application/vnd.apache.parquet", format="Parquet",
                         title="Crime incidents (Parquet)", described_by=dictionary),
    ]
    args = dict(
        identifier="mpd-crime-incidents",
        title="Milwaukee Police Department crime incidents",
        description="One row per reported incident (WIBR).",
        keywords=["crime", "police", "public safety"],
        publisher_name="City of Milwaukee",
        contact_name="Open Data Team",
        contact_email="opendata@milwaukee.gov",
        license_uri="https://creativecommons.org/publicdomain/zero/1.0/",
        access_level="public",
        modified=datetime(2025, 3, 9, 7, 30, tzinfo=timezone(timedelta(hours=-5))),
        accrual_periodicity="R/P1D",
        temporal=(date(2005, 1, 1), date(2025, 3, 8)),
        described_by=dictionary,
        distributions=distributions,
        landing_page="https://data.milwaukee.gov/dataset/wibr",
        theme=["Public Safety"],
        spatial="Milwaukee, Wisconsin",
        issued=date(2016, 1, 1),
    )
    args.update(changes)
    return cat.dataset_entry(**args)


def _catalog(*entries) -> dict:
    return cat.catalog(list(entries) or [_entry()], catalog_url="https://data.milwaukee.gov/open/data.json")


def test_a_full_entry_with_three_distributions_is_valid_dcat_us():
    doc = _catalog()
    assert cat.validate_catalog(doc) == []
    assert doc["@context"] == "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld"
    assert doc["@type"] == "dcat:Catalog" and doc["conformsTo"] == "https://project-open-data.cio.gov/v1.1/schema"
    assert doc["describedBy"] == "https://project-open-data.cio.gov/v1.1/schema/catalog.json"
    entry = doc["dataset"][0]
    assert entry["@type"] == "dcat:Dataset"
    assert entry["contactPoint"] == {"@type": "vcard:Contact", "fn": "Open Data Team", "hasEmail": "mailto:opendata@milwaukee.gov"}
    assert entry["publisher"] == {"@type": "org:Organization", "name": "City of Milwaukee"}
    assert entry["modified"] == "2025-03-09T12:30:00Z" and entry["issued"] == "2016-01-01"
    assert entry["temporal"] == "2005-01-01/2025-03-08"
    assert entry["describedByType"] == "application/json"
    assert [d["mediaType"] for d in entry["distribution"]] == ["text/csv", "application/json", "application/vnd.apache.parquet"]
    assert all(d["@type"] == "dcat:Distribution" and d["describedByType"] == "application/json" for d in entry["distribution"])
    assert json.loads(cat.catalog_json(doc)) == doc and cat.catalog_json(doc) == cat.catalog_json(copy.deepcopy(doc))


@pytest.mark.parametrize(
    "value",
    ["R/P1D", "R/P1M", "R/PT1H", "R/P1W", "R/P1Y", "R/P3M", "irregular"],
)
def test_accrual_periodicities_that_dcat_us_allows(value):
    assert cat.validate_catalog(_catalog(_entry(accrual_periodicity=value))) == []


@pytest.mark.parametrize(
    "modified", ["2025-03-09", "2025-03-09T12:30:00Z", "2025-03-09T07:30:00-05:00", date(2025, 3, 9)]
)
def test_modified_dates_and_datetimes_pass(modified):
    assert cat.validate_catalog(_catalog(_entry(modified=modified))) == []


def _without(path: str):
    def mutate(doc):
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[int(last) if last.isdigit() else last]
    return mutate


def _setting(path: str, value):
    def mutate(doc):
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(last) if last.isdigit() else last] = value
    return mutate


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (_without("dataset.0.title"), "dataset[0].title: required property is missing"),
        (_without("dataset.0.identifier"), "dataset[0].identifier: required property is missing"),
        (_without("dataset.0.publisher.name"), "dataset[0].publisher.name: required property is missing"),
        (_without("dataset.0.contactPoint"), "dataset[0].contactPoint: required property is missing"),
        (_without("dataset.0.contactPoint.fn"), "dataset[0].contactPoint.fn: required property is missing"),
        (_without("dataset.0.distribution.1.mediaType"), "dataset[0].distribution[1].mediaType: required property is missing"),
        (_setting("dataset.0.accessLevel", "open"), "dataset[0].accessLevel: 'open' is not one of"),
        (_setting("dataset.0.accrualPeriodicity", "daily"), "dataset[0].accrualPeriodicity: 'daily' is not a valid value"),
        (_setting("dataset.0.accrualPeriodicity", "P1D"), "dataset[0].accrualPeriodicity:"),
        (_setting("dataset.0.modified", "9 March 2025"), "dataset[0].modified:"),
        (_setting("dataset.0.temporal", "2005-01-01"), "dataset[0].temporal:"),
        (_setting("dataset.0.keyword", []), "dataset[0].keyword: [] should be non-empty"),
        (_setting("dataset.0.contactPoint.hasEmail", "opendata@milwaukee.gov"), "dataset[0].contactPoint.hasEmail:"),
        (_setting("dataset.0.@type", "dcat:Thing"), "dataset[0].@type:"),
        (_setting("dataset.0.license", "CC0"), "dataset[0].license: 'CC0' is not a valid uri"),
        (_setting("dataset.0.distribution.0.downloadURL", "latest/x.csv"), "dataset[0].distribution[0].downloadURL: 'latest/x.csv' is not a valid uri"),
        (_setting("dataset.0.distribution.2.mediaType", "parquet"), "dataset[0].distribution[2].mediaType:"),
        (_setting("dataset.0.describedBy", "https://exa mple.com/schema.json"), "dataset[0].describedBy:"),
        (_setting("conformsTo", "https://project-open-data.cio.gov/v1.0/schema"), "conformsTo:"),
        (_without("dataset"), "dataset: required property is missing"),
    ],
)
def test_broken_entries_fail_naming_the_field(mutate, expected):
    doc = _catalog()
    mutate(doc)
    errors = cat.validate_catalog(doc)
    assert errors, "expected the catalog to be invalid"
    assert any(e.startswith(expected) for e in errors), errors


def test_repeated_identifiers_are_reported():
    errors = cat.validate_catalog(_catalog(_entry(), _entry()))
    assert errors == ["dataset[1].identifier: 'mpd-crime-incidents' repeats dataset[0].identifier"]


def test_validation_never_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access during validation")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    cat._validator.cache_clear()
    assert cat.validate_catalog(_catalog()) == []
    assert cat.validate_catalog(_catalog(_entry(title=""))) != []


def test_uri_check():
    for good in ("https://data.milwaukee.gov/a/b.csv?x=1#f", "mailto:opendata@milwaukee.gov", "urn:isbn:0451450523",
                 "https://example.com/%C3%B1"):
        assert cat.is_uri(good), good
    for bad in ("not a url", "latest/x.csv", "https://", "https:///path", "https://exa mple.com", "https://example.com/ñ",
                "https://example.com/%zz", ""):
        assert not cat.is_uri(bad), bad


def test_builders_refuse_ambiguous_input():
    with pytest.raises(ValueError, match="naive"):
        _entry(modified=datetime(2025, 3, 9, 7, 30))
    with pytest.raises(TypeError):
        _entry(keywords="crime")


def test_shipped_schemas_are_the_unmodified_gsa_files():
    folder = Path(cat.SCHEMA_DIR)
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "GSA/ckanext-datajson" in readme and "105aaf01f70d053fabeefb61de9dff49f3e707bf" in readme
    for name in ("catalog.json", "dataset-non-federal.json"):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert f"`{name}` | `{digest}`" in readme, name


# --- manifest and the pieces together ---------------------------------------------------------


def _file(path: str, **changes) -> dict:
    entry = {"path": path, "dataset": path.split("/")[1], "format": path.rsplit(".", 1)[1], "bytes": 10,
             "rows": 2, "sha256": hashlib.sha256(path.encode()).hexdigest(), "run_id": "run-1",
             "modified": "2025-03-09T12:30:00Z"}
    entry.update(changes)
    return entry


def test_manifest_is_sorted_and_deterministic():
    files = [_file("latest/b/b.csv"), _file("latest/a/a.parquet"), _file("latest/a/a.csv")]
    one = manifest_json(manifest(files, generated_by_run="run-1", generated_at="2025-03-09T12:31:00Z"))
    two = manifest_json(manifest(list(reversed(files)), generated_by_run="run-1",
                                 generated_at=datetime(2025, 3, 9, 7, 31, tzinfo=timezone(timedelta(hours=-5)))))
    assert one == two
    doc = json.loads(one)
    assert [f["path"] for f in doc["files"]] == ["latest/a/a.csv", "latest/a/a.parquet", "latest/b/b.csv"]
    assert doc["generated_at"] == "2025-03-09T12:31:00Z" and doc["generated_by_run"] == "run-1"
    assert one.endswith(b"}\n") and one == json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n"
    assert files[0]["path"] == "latest/b/b.csv"  # input untouched


def test_manifest_refuses_bad_entries():
    with pytest.raises(ValueError, match="more than once"):
        manifest([_file("latest/a/a.csv"), _file("latest/a/a.csv")], generated_by_run="r", generated_at="2025-01-01")
    with pytest.raises(ValueError, match="sha256"):
        manifest([_file("latest/a/a.csv", sha256="ABC")], generated_by_run="r", generated_at="2025-01-01")
    with pytest.raises(ValueError, match="lacks"):
        manifest([{"path": "latest/a/a.csv"}], generated_by_run="r", generated_at="2025-01-01")
    with pytest.raises(ValueError, match="relative"):
        manifest([_file("/etc/a/a.csv")], generated_by_run="r", generated_at="2025-01-01")


def test_written_files_feed_the_dictionary_catalog_and_manifest(written):
    schema = table_schema(COLUMNS, primary_key=["id"])
    _check_table_schema(schema)
    base = "https://data.milwaukee.gov/open/latest/every_type"
    dictionary = f"{base}/every_type.schema.json"
    distributions = [
        cat.distribution(download_url=f"{base}/{f.path.name}", media_type=f.media_type, format=f.format.upper(),
                         title=f"Every type ({f.format})", described_by=dictionary)
        for f in written.values()
    ]
    doc = _catalog(_entry(identifier="every-type", distributions=distributions, described_by=dictionary))
    assert cat.validate_catalog(doc) == []
    files = [
        {"path": f"latest/every_type/{f.path.name}", "dataset": "every_type", "format": f.format, "bytes": f.bytes,
         "rows": f.rows, "sha256": f.sha256, "run_id": "run-1", "modified": "2025-03-09T12:30:00Z"}
        for f in written.values()
    ]
    doc = json.loads(manifest_json(manifest(files, generated_by_run="run-1", generated_at="2025-03-09T12:31:00Z")))
    assert {f["rows"] for f in doc["files"]} == {ROWS}
