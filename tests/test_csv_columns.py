"""CSV files read into Arrow columns (`aim.extract.files.csv_columns`), the file drop's fast path:
for every file the row reader (`read_records`) reads, Arrow gives the same values or refuses the
file (`NotColumnar`), never other values; the quirks of real department files that Arrow does read
(line endings, BOMs, cp1252, quoted newlines, stray spaces, blank rows, title rows, extra columns)
really go the fast way; and a file landed through Arrow, or refused by it halfway through, lands
in staging exactly the rows the row reader lands, once."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk import Connection
from psycopg2 import sql

from aim import db
from aim.connections import source_access
from aim.extract.files import FileFormat, FileFormatError, read_records
from aim.extract.files.csv_columns import BLOCK_BYTES, CsvFile, NotColumnar
from aim.landing import land
from aim.migrations import migrate
from aim.sources import SourceConfig
from aim.tables import ensure_tables
from aim_demo.databases import query

COLUMNS = ["id", "name", "note"]
CSV = FileFormat("csv")

# Files Arrow reads: (bytes, columns, format). Each is compared with the row reader's values.
READ_BY_ARROW = {
    "LF": (b"id,name,note\n1,Alice,x\n2,Bob,y\n", COLUMNS, CSV),
    "CRLF": (b"id,name,note\r\n1,Alice,x\r\n2,Bob,y\r\n", COLUMNS, CSV),
    "bare CR, no final newline": (b"id,name,note\r1,Alice,x\r2,Bob,y", COLUMNS, CSV),
    "mixed line endings": (b"id,name,note\r\n1,Alice,x\n2,Bob,y\r3,Cy,z\r\n", COLUMNS, CSV),
    "quoted commas, quotes and newlines": (
        b'id,name,note\r\n"1","Smith, Jo","said ""hi""\r\nthen left"\r\n2,"B\nob",""\r\n', COLUMNS, CSV),
    "UTF-8 BOM": (b"\xef\xbb\xbfid,name,note\n1,Pe\xc3\xb1a,\xe2\x9c\x93\n", COLUMNS, CSV),
    "cp1252 detected": ("id,name,note\r\n1,Peña,“quoted” €5\r\n".encode("cp1252"), COLUMNS, CSV),
    "cp1252 configured": ("id,name,note\n1,Müller,x\n".encode("cp1252"), COLUMNS, FileFormat("csv", encoding="cp1252")),
    "stray spaces, NBSP, unit separators": (
        " ID , Name ,NOTE\n 1 ,\xc2\xa0Alice\xc2\xa0,\x1f x \x1f\n\t2\t,  ,\n".encode(), COLUMNS, CSV),
    "blank rows of every shape": (b"id,name,note\n1,A,x\n\n,,\n  , ,\t\n   \n2,B,y\n\r\n", COLUMNS, CSV),
    "only unrequested content kept": (b"id,name,note,extra\n,,,something\n", COLUMNS, CSV),
    "title rows before the header": (b"Weekly export\nRun 2026-06-01,,\n\nid,name,note\n1,A,x\n", COLUMNS, CSV),
    "extra columns, reordered": (b"note,Internal,name,id\nx,secret,A,1\n", COLUMNS, CSV),
    "trailing delimiter on every line": (b"id,name,note,\n1,A,x,\n2,B,y,\n", COLUMNS, CSV),
    "a quote inside an unquoted value": (b'id,name,note\n1,12" PIPE,3" VALVE\n', COLUMNS, CSV),
    "a line COPY would end the data at": (b"note\n\\.\nafter\n", ["note"], CSV),
    "semicolons": (b"id;name;note\n1;A,B;x\n", COLUMNS, FileFormat("csv", delimiter=";")),
    "tabs": (b"id\tname\tnote\n1\tA\t x \n", COLUMNS, FileFormat("csv", delimiter="\t")),
    "header only": (b"id,name,note\r\n", COLUMNS, CSV),
    "many blocks, a quoted newline across each boundary": (
        b"id,name,note\n" + b"".join(b'%d,"name %d","line one\nline two %d"\n' % (i, i, i) for i in range(120_000)),
        COLUMNS, CSV),
}

# Files Arrow refuses (the row reader judges them): (bytes, what the row reader does with them).
REFUSED_BY_ARROW = {
    "short rows under a header with a trailing delimiter": (b"id,name,note,\n1,A,x\n2,B,y,\n", "reads"),
    "extra empty fields": (b"id,name,note\n1,A,x,,\n2,B,y\n", "reads"),
    "a value longer than two blocks": (b'id,name,note\n1,A,"' + b"x" * (3 * BLOCK_BYTES) + b'"\n2,B,y\n', "reads"),
    "truncated last line": (b"id,name,note\n1,A,x\n2,B", "line 3 has 2 field(s) but the header has 3"),
    "too many fields": (b"id,name,note\n1,A,x\n2,B,y,oops\n", "line 3 has 4 fields but the header has 3"),
    "unbalanced quote in the last column": (b'id,name,note\n1,A,x\n2,B,"y\n3,C,z\n', "unbalanced quote"),
    "unbalanced quote in a middle column": (b'id,name,note\n1,A,x\n2,"B,y\n3,C,z\n', "unbalanced quote"),
}


def arrow_rows(path: Path, columns, fmt: FileFormat) -> list[tuple]:
    return [row for table in CsvFile(path, fmt, list(columns), path.name).tables()
            for row in zip(*(column.to_pylist() for column in table.columns))]


def python_rows(path: Path, columns, fmt: FileFormat) -> list[tuple]:
    return [row for chunk in read_records(path, fmt, columns) for row in chunk]


@pytest.mark.parametrize("case", READ_BY_ARROW)
def test_arrow_reads_what_the_row_reader_reads_with_the_same_values(tmp_path, case):
    data, columns, fmt = READ_BY_ARROW[case]
    path = tmp_path / "drop.csv"
    path.write_bytes(data)

    expected = python_rows(path, columns, fmt)
    assert arrow_rows(path, columns, fmt) == expected, f"{case}: Arrow's values differ from the row reader's"
    if case not in ("header only",):
        assert expected, f"{case}: the corpus file has rows"


@pytest.mark.parametrize("case", REFUSED_BY_ARROW)
def test_arrow_refuses_what_only_the_row_reader_judges(tmp_path, case):
    data, judgement = REFUSED_BY_ARROW[case]
    path = tmp_path / "drop.csv"
    path.write_bytes(data)

    with pytest.raises(NotColumnar) as refusal:
        arrow_rows(path, COLUMNS, CSV)
    assert "drop.csv" in str(refusal.value), "the refusal names the file"
    if judgement == "reads":
        assert python_rows(path, COLUMNS, CSV), f"{case}: the row reader lands this file"
    else:
        with pytest.raises(FileFormatError) as error:
            python_rows(path, COLUMNS, CSV)
        assert judgement in str(error.value)


def test_a_file_without_a_column_fails_with_the_row_readers_message(tmp_path):
    path = tmp_path / "drop.csv"
    path.write_bytes(b"id;name;note\n1;A;x\n")

    with pytest.raises(FileFormatError) as error:
        arrow_rows(path, COLUMNS, CSV)
    assert "missing column(s)" in str(error.value) and "(is the delimiter ';'?" in str(error.value)


# --------------------------------------------------------------------------- landing in staging


def drop_config(source: str) -> SourceConfig:
    return SourceConfig.model_validate({
        "source": source, "department": "Test department", "system": "Test CSV drop", "kind": "file",
        "connection_id": "test_drop", "schedule": None, "owner": "tests",
        "extract": {"location": "drop", "pattern": "*.csv", "format": {"kind": "csv"}},
        "key": ["id"],
        "columns": [{"name": c, "privacy": "public"} for c in COLUMNS],
        "expectation_suite": "test_drop.json",
    })


@pytest.fixture(scope="module")
def warehouse(new_database) -> str:
    url = new_database("aim_test_csv_columns")
    migrate(url)
    return url


def test_arrow_and_its_refusals_land_the_row_readers_rows_once(warehouse, tmp_path, caplog):
    """Two files in one batch: one Arrow lands; one Arrow refuses only after several blocks went
    to staging (a short row near its end, which the row reader accepts). Each file's rows are in
    staging once, as the row reader reads them, and registered with their count."""
    folder = tmp_path / "drop"
    folder.mkdir()
    plain = b"id,name,note\n" + b"".join(b"%d, name %d ,\n" % (i, i) for i in range(60_000))
    late = b"id,name,note,\n" + b"".join(b"L%d,A,x,\n" % i for i in range(300_000)) + b"L-last,B,y\n"
    assert len(late) > 2 * BLOCK_BYTES, "the refusal comes after Arrow landed whole blocks"
    (folder / "a_plain.csv").write_bytes(plain)
    (folder / "b_late.csv").write_bytes(late)
    config = drop_config("test_csv_columns")
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        ensure_tables(cur, config)
    store = source_access(config, Connection(conn_id="test_drop", conn_type="fs",
                                             extra=json.dumps({"path": str(tmp_path)})))

    with caplog.at_level("INFO", logger="aim.landing"), db.transaction(warehouse) as conn, conn.cursor() as cur:
        landed = land(cur, config, store, batch_id="test_csv_columns-1")

    expected = {name: python_rows(folder / name, COLUMNS, CSV) for name in ("a_plain.csv", "b_late.csv")}
    assert landed.rows == sum(len(rows) for rows in expected.values()) == 360_001
    for name, rows in expected.items():
        staged = query(warehouse, sql.SQL("SELECT id, name, note FROM {} WHERE _origin = %s ORDER BY ctid").format(
            sql.Identifier(*config.staging_table)), (name,))
        assert staged == rows, f"{name}: staging holds the row reader's rows, once"
    refusals = [r.getMessage() for r in caplog.records if "row reader reads the file" in r.getMessage()]
    assert len(refusals) == 1 and "b_late.csv" in refusals[0], "only the file Arrow refused went the slow way"
    assert query(warehouse, "SELECT file_key, rows_landed FROM ops.source_file WHERE source = %s ORDER BY file_key",
                 (config.source,)) == [("a_plain.csv", 60_000), ("b_late.csv", 300_001)]
