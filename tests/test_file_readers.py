"""File readers (aim.extract.files): CSV, Excel and JSON drops as messy as real department files."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Font

from aim.extract.files import FileFormat, FileFormatError, ReadReport, read_records
from memory import measure

CSV = FileFormat("csv")
XLSX = FileFormat("xlsx")
JSON = FileFormat("json")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_all(path: Path, fmt: FileFormat, columns, **kwargs) -> list[tuple]:
    return [row for chunk in read_records(path, fmt, columns, **kwargs) for row in chunk]


def read_error(path: Path, fmt: FileFormat, columns, **kwargs) -> str:
    with pytest.raises(FileFormatError) as info:
        read_all(path, fmt, columns, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("newline", [b"\r", b"\n", b"\r\n"], ids=["CR", "LF", "CRLF"])
def test_csv_line_endings(tmp_path, newline):
    data = newline.join([b"id,name,amount", b"1,Alice,10", b"2,Bob,20.5", b""])
    path = write(tmp_path, "drop.csv", data)
    report = ReadReport()
    assert read_all(path, CSV, ["id", "name", "amount"], report=report) == [
        ("1", "Alice", "10"), ("2", "Bob", "20.5"),
    ]
    assert report.rows == 2 and report.encoding == "utf-8"


def test_csv_bare_cr_without_final_newline_and_columns_reordered(tmp_path):
    path = write(tmp_path, "drop.csv", b"id,name,amount\r1,Alice,10\r2,Bob,20")
    assert read_all(path, CSV, ["amount", "id"]) == [("10", "1"), ("20", "2")]


def test_csv_every_value_quoted_with_embedded_newlines(tmp_path):
    data = b'"id","note","amount"\r\n"1","line one\nline two","5"\r\n"2","say ""hi""\r\nthen go","6"\r\n'
    path = write(tmp_path, "drop.csv", data)
    assert read_all(path, CSV, ["id", "note", "amount"]) == [
        ("1", "line one\nline two", "5"),
        ("2", 'say "hi"\r\nthen go', "6"),
    ]


def test_csv_utf8_bom(tmp_path):
    path = write(tmp_path, "drop.csv", b"\xef\xbb\xbfid,name\r\n1,Pe\xc3\xb1a\r\n")
    report = ReadReport()
    assert read_all(path, CSV, ["id", "name"], report=report) == [("1", "Peña")]
    assert report.encoding == "utf-8-sig"


def test_csv_utf8_without_bom(tmp_path):
    path = write(tmp_path, "drop.csv", "id,name\n1,Müller\n".encode("utf-8"))
    report = ReadReport()
    assert read_all(path, CSV, ["id", "name"], report=report) == [("1", "Müller")]
    assert report.encoding == "utf-8"


def test_csv_cp1252_auto_detected(tmp_path):
    path = write(tmp_path, "drop.csv", "id,name,note\r\n1,Peña,“quoted”\r\n2,Müller,€5\r\n".encode("cp1252"))
    report = ReadReport()
    rows = read_all(path, CSV, ["id", "name", "note"], report=report)
    assert rows == [("1", "Peña", "“quoted”"), ("2", "Müller", "€5")]
    assert report.encoding == "cp1252"


def test_csv_cp1252_explicit_and_wrong_explicit_encoding(tmp_path):
    path = write(tmp_path, "drop.csv", "id,name\n1,Peña\n2,Müller\n".encode("cp1252"))
    report = ReadReport()
    rows = read_all(path, FileFormat("csv", encoding="cp1252"), ["id", "name"], report=report)
    assert rows == [("1", "Peña"), ("2", "Müller")]
    assert report.encoding == "cp1252"
    message = read_error(path, FileFormat("csv", encoding="utf-8"), ["id", "name"], display_name="police.csv")
    assert "police.csv" in message and "not a text CSV file" in message and "utf-8" in message


def test_csv_cp1252_byte_only_at_the_very_end_of_a_large_file(tmp_path):
    lines = [b"id,name"] + [f"{i},Name {i}".encode() for i in range(150_000)] + ["150000,Peña".encode("cp1252")]
    path = write(tmp_path, "big.csv", b"\n".join(lines) + b"\n")
    assert path.stat().st_size > 2 * 1024 * 1024  # past the first blocks of any pre-pass
    report = ReadReport()
    chunks = list(read_records(path, CSV, ["id", "name"], chunk_rows=50_000, report=report))
    rows = [row for chunk in chunks for row in chunk]
    assert report.encoding == "cp1252"
    assert len(rows) == report.rows == 150_001
    assert rows[0] == ("0", "Name 0") and rows[-2] == ("149999", "Name 149999")
    assert rows[-1] == ("150000", "Peña")


def test_csv_empty_file(tmp_path):
    assert "empty.csv is empty" in read_error(write(tmp_path, "empty.csv", b""), CSV, ["id"])
    assert "blank.csv is empty" in read_error(write(tmp_path, "blank.csv", b"  \r\n\t\n"), CSV, ["id"])


def test_csv_header_only_yields_nothing(tmp_path):
    path = write(tmp_path, "drop.csv", b"id,name\r\n")
    report = ReadReport()
    assert list(read_records(path, CSV, ["id", "name"], report=report)) == []
    assert report.rows == 0


def test_csv_missing_column_names_missing_and_found(tmp_path):
    path = write(tmp_path, "drop.csv", b"id,name\n1,A\n")
    message = read_error(path, CSV, ["id", "email", "phone"], display_name="hr/people.csv")
    assert "hr/people.csv" in message and "missing column(s) 'email', 'phone'" in message
    assert "'id', 'name'" in message


def test_csv_wrong_delimiter_is_named(tmp_path):
    path = write(tmp_path, "drop.csv", b"id;name;amount\n1;A;3\n")
    message = read_error(path, CSV, ["id", "name"])
    assert "missing column(s)" in message and "(is the delimiter ';'?" in message
    assert read_all(path, FileFormat("csv", delimiter=";"), ["id", "name"]) == [("1", "A")]


def test_csv_wrong_delimiter_with_quoted_values_is_named(tmp_path):
    path = write(tmp_path, "drop.csv", b'"id"\t"name"\r\n"1"\t"A"\r\n')
    message = read_error(path, CSV, ["id", "name"])
    assert "drop.csv" in message and "(is the delimiter '\\t'?" in message
    assert read_all(path, FileFormat("csv", delimiter="\t"), ["id", "name"]) == [("1", "A")]


def test_csv_extra_column_ignored_and_reported(tmp_path):
    path = write(tmp_path, "drop.csv", b"id,Internal Notes,name,\n1,secret,A,\n")
    report = ReadReport()
    assert read_all(path, CSV, ["name", "id"], report=report) == [("A", "1")]
    assert report.extra_columns == ["Internal Notes"]


def test_csv_truncated_last_line(tmp_path):
    path = write(tmp_path, "drop.csv", b"id,name,amount\n1,A,10\n2,B")
    message = read_error(path, CSV, ["id", "name", "amount"])
    assert "drop.csv: line 3 has 2 field(s) but the header has 3" in message


def test_csv_row_with_too_many_fields(tmp_path):
    path = write(tmp_path, "drop.csv", b"id,name\r\n1,A\r\n2,B,oops\r\n")
    assert "line 3 has 3 fields but the header has 2" in read_error(path, CSV, ["id", "name"])


def test_csv_unbalanced_quote(tmp_path):
    path = write(tmp_path, "drop.csv", b'id,name\n1,A\n2,"B\n3,C\n')
    message = read_error(path, CSV, ["id", "name"])
    assert "drop.csv" in message and "unbalanced quote" in message and "line 3" in message


def test_csv_binary_garbage(tmp_path):
    garbage = bytes(range(256)) * 8 + os.urandom(4096)
    message = read_error(write(tmp_path, "garbage.csv", garbage), CSV, ["id"])
    assert "garbage.csv is not a text CSV file" in message
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
    message = read_error(write(tmp_path, "chart.csv", png), CSV, ["id"])
    assert "chart.csv is not a text CSV file" in message and "NUL" in message


def test_csv_ten_megabyte_field(tmp_path):
    blob = "x" * (10 * 1024 * 1024)
    path = write(tmp_path, "drop.csv", f'id,blob\n1,"{blob}"\n2,short\n'.encode())
    rows = read_all(path, CSV, ["id", "blob"])
    assert [r[0] for r in rows] == ["1", "2"]
    assert len(rows[0][1]) == len(blob) and rows[1][1] == "short"


def test_csv_chunking(tmp_path):
    path = write(tmp_path, "drop.csv", b"n\n" + b"".join(f"{i}\n".encode() for i in range(25)))
    report = ReadReport()
    chunks = list(read_records(path, CSV, ["n"], chunk_rows=10, report=report))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert [row[0] for chunk in chunks for row in chunk] == [str(i) for i in range(25)]
    assert report.rows == 25


def test_csv_header_matching_ignores_stray_spaces_and_case(tmp_path):
    path = write(tmp_path, "drop.csv", b"  ID ,Full   Name , AMOUNT\n 1 ,  Alice Smith ,  10 \n")
    assert read_all(path, CSV, ["id", "full name", "Amount"]) == [("1", "Alice Smith", "10")]


def test_csv_blank_rows_skipped_and_whitespace_is_none(tmp_path):
    path = write(tmp_path, "drop.csv", b"id,name,note\n1,A,   \n\n,,\n  , ,\n2,  ,x\n,,\n")
    report = ReadReport()
    assert read_all(path, CSV, ["id", "name", "note"], report=report) == [("1", "A", None), ("2", None, "x")]
    assert report.blank_rows_skipped == 4 and report.rows == 2


def test_csv_row_with_only_unrequested_content_is_kept(tmp_path):
    path = write(tmp_path, "drop.csv", b"id,name,extra\n,,something\n")
    report = ReadReport()
    assert read_all(path, CSV, ["id", "name"], report=report) == [(None, None)]
    assert report.blank_rows_skipped == 0


def test_csv_title_rows_before_header_and_explicit_header_row(tmp_path):
    data = b"City of Milwaukee - Overtime Report\r\nRun date: 2024-07-01\r\n\r\nid,name\r\n1,A\r\n"
    path = write(tmp_path, "drop.csv", data)
    assert read_all(path, CSV, ["id", "name"]) == [("1", "A")]
    assert read_all(path, FileFormat("csv", header_row=4), ["id", "name"]) == [("1", "A")]
    assert "missing column(s)" in read_error(path, FileFormat("csv", header_row=2), ["id", "name"])


def test_csv_ambiguous_duplicate_header(tmp_path):
    path = write(tmp_path, "drop.csv", b"id,Name,name \n1,A,B\n")
    message = read_error(path, CSV, ["id", "name"])
    assert "ambiguous" in message and "'name'" in message
    assert read_all(path, CSV, ["id"]) == [("1",)]  # an unrequested duplicate is fine


def test_csv_missing_file_is_a_file_format_error(tmp_path):
    assert "nowhere.csv cannot be read" in read_error(tmp_path / "nowhere.csv", CSV, ["id"])


SMALL_CSV_ROWS, LARGE_CSV_ROWS = 10_000, 500_000
CSV_ALLOWED_GROWTH_MB = 25  # less than the large file itself: holding it once, as bytes, is over

_READ_CSV = """
from aim.extract.files import FileFormat, read_records

rows, last = 0, None
for chunk in read_records(sys.argv[1], FileFormat("csv"), ["id", "name", "amount", "description"], chunk_rows=10_000):
    rows += len(chunk)
    last = chunk[-1]
report(rows=rows, last=list(last))
"""


def _big_csv(path: Path, rows: int) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("id,name,amount,description\r\n")
        for i in range(rows):
            out.write(f'{i},Name {i},{i * 1.5},"Some description text for row {i}"\r\n')
    return path


def test_csv_streams_in_bounded_memory(tmp_path):
    """Reading a 500,000-row CSV costs a fresh process no more peak RSS than a 10,000-row one,
    give or take less than the file's own size (held in Python, its rows would take ~180 MB)."""
    small = _big_csv(tmp_path / "small.csv", SMALL_CSV_ROWS)
    large = _big_csv(tmp_path / "large.csv", LARGE_CSV_ROWS)
    assert large.stat().st_size > CSV_ALLOWED_GROWTH_MB * 2**20  # ~33 MB

    at_small, at_large = measure(_READ_CSV, str(small)), measure(_READ_CSV, str(large))

    assert (at_small["rows"], at_large["rows"]) == (SMALL_CSV_ROWS, LARGE_CSV_ROWS)
    last = LARGE_CSV_ROWS - 1
    assert at_large["last"] == [str(last), f"Name {last}", str(last * 1.5), f"Some description text for row {last}"]
    growth = at_large["peak_rss_mb"] - at_small["peak_rss_mb"]
    assert growth <= CSV_ALLOWED_GROWTH_MB, f"peak RSS {at_small['peak_rss_mb']} MB -> {at_large['peak_rss_mb']} MB"


# ---------------------------------------------------------------------------------------- Excel


def save(workbook: openpyxl.Workbook, tmp_path: Path, name: str = "drop.xlsx") -> Path:
    path = tmp_path / name
    workbook.save(path)
    return path


def test_xlsx_simple(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Measures"
    ws.append(["Measure ID", "Name", "Value"])
    ws.append([101, "Response time", 4.25])
    ws.append([102, "Potholes filled", 350])
    report = ReadReport()
    rows = read_all(save(wb, tmp_path), XLSX, ["Measure ID", "Name", "Value"], report=report)
    assert rows == [("101", "Response time", "4.25"), ("102", "Potholes filled", "350")]
    assert report.sheet == "Measures" and report.rows == 2


def test_xlsx_title_row_merged_blank_row_then_header(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "City of Milwaukee - AIM Measure Registry"
    ws.merge_cells("A1:D1")
    ws["A3"], ws["B3"], ws["C3"], ws["D3"] = "Measure ID", "Department", "Owner", "Notes"
    ws.append([1, "DPW", "J. Smith", None])
    ws.append([2, "MPD", "A. Jones", "checked"])
    report = ReadReport()
    rows = read_all(save(wb, tmp_path), XLSX, ["Measure ID", "Department", "Owner"], report=report)
    assert rows == [("1", "DPW", "J. Smith"), ("2", "MPD", "A. Jones")]
    assert report.extra_columns == ["Notes"]
    explicit = read_all(save(wb, tmp_path), FileFormat("xlsx", header_row=3), ["Measure ID"])
    assert explicit == [("1",), ("2",)]


def test_xlsx_two_row_header_with_merged_parent(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "AIM Targets FY2024"
    ws.merge_cells("A1:E1")
    ws["A2"] = "Measure ID"
    ws.merge_cells("A2:A3")
    ws["B2"] = "Target"
    ws.merge_cells("B2:C2")
    ws["B3"], ws["C3"] = "Fiscal Year", "Value"
    ws["D2"] = "Actual"
    ws.merge_cells("D2:E2")
    ws["D3"], ws["E3"] = "Fiscal Year", "Value"
    ws.append([7, 2024, 95.5, 2024, 91])
    ws.append([8, 2024, 10, 2023, 12.25])
    columns = ["Measure ID", "Target Fiscal Year", "Target Value", "Actual Value"]
    rows = read_all(save(wb, tmp_path), FileFormat("xlsx", header_rows=2), columns)
    assert rows == [("7", "2024", "95.5", "91"), ("8", "2024", "10", "12.25")]
    explicit = FileFormat("xlsx", header_row=2, header_rows=2)
    assert read_all(save(wb, tmp_path), explicit, ["Actual Fiscal Year"]) == [("2024",), ("2023",)]


def test_xlsx_two_row_header_on_second_sheet_uses_that_sheets_merges(tmp_path):
    wb = openpyxl.Workbook()
    cover = wb.active
    cover.title = "Cover"
    cover["A1"] = "Budget"
    cover.merge_cells("A1:C1")
    ws = wb.create_sheet("FY24")
    ws["A1"], ws["A2"] = "Dept", None
    ws.merge_cells("A1:A2")
    ws["B1"] = "Budget"
    ws.merge_cells("B1:C1")
    ws["B2"], ws["C2"] = "Adopted", "Actual"
    ws.append(["DPW", 1000, 987.5])
    report = ReadReport()
    rows = read_all(save(wb, tmp_path), FileFormat("xlsx", header_rows=2), ["Dept", "Budget Actual"], report=report)
    assert rows == [("DPW", "987.5")]
    assert report.sheet == "FY24" and report.extra_columns == ["Budget Adopted"]


def test_xlsx_blank_rows_between_data_rows_and_trailing_empty_columns(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "name"])
    ws["H1"].font = Font(bold=True)  # an empty but formatted cell: a trailing empty column
    ws.append([1, "A"])
    ws.append([None, None])
    ws["A5"], ws["B5"] = 2, "B"
    ws["A6"] = "   "
    ws["A8"], ws["B8"] = 3, "C"
    ws["C20"].font = Font(italic=True)
    report = ReadReport()
    rows = read_all(save(wb, tmp_path), XLSX, ["id", "name"], report=report)
    assert rows == [("1", "A"), ("2", "B"), ("3", "C")]
    assert report.blank_rows_skipped == 16 and report.extra_columns == []  # rows 3, 4, 6, 7, 9-20


def test_xlsx_stray_spaces_in_headers_and_values(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["  Measure   ID ", "NAME\n", " Status"])
    ws.append(["  M-1 ", "  Potholes  filled ", " \t "])
    rows = read_all(save(wb, tmp_path), XLSX, ["measure id", "Name", "status"])
    assert rows == [("M-1", "Potholes  filled", None)]


def test_xlsx_value_conversion(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["date", "datetime", "midnight", "us_date", "int", "float_int", "float", "bool", "time"])
    ws.append([
        dt.date(2024, 7, 1), dt.datetime(2024, 7, 1, 13, 45, 30), dt.datetime(2024, 7, 1),
        dt.datetime(2024, 12, 31), 42, 5.0, 2.5, True, dt.time(8, 30),
    ])
    ws["D2"].number_format = "mm/dd/yyyy"
    ws.append([None, None, None, None, -7, 1e21, 0.1, False, None])
    columns = ["date", "datetime", "midnight", "us_date", "int", "float_int", "float", "bool", "time"]
    rows = read_all(save(wb, tmp_path), XLSX, columns)
    assert rows == [
        ("2024-07-01", "2024-07-01 13:45:30", "2024-07-01 00:00:00", "2024-12-31", "42", "5", "2.5", "true",
         "08:30:00"),
        (None, None, None, None, "-7", "1000000000000000000000", "0.1", "false", None),
    ]


def test_xlsx_data_on_second_sheet_found_automatically(tmp_path):
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "Read Me"
    notes["A1"] = "This workbook lists the AIM measures."
    data = wb.create_sheet("Data")
    data.append(["id", "measure"])
    data.append([1, "Response time"])
    report = ReadReport()
    path = save(wb, tmp_path)
    assert read_all(path, XLSX, ["id", "measure"], report=report) == [("1", "Response time")]
    assert report.sheet == "Data"
    assert read_all(path, FileFormat("xlsx", sheet=1), ["measure"]) == [("Response time",)]
    assert read_all(path, FileFormat("xlsx", sheet="data"), ["measure"]) == [("Response time",)]


def test_xlsx_no_sheet_has_the_columns(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "Read Me"
    wb.active["A1"] = "Nothing here"
    wb.create_sheet("Data").append(["id", "name"])
    message = read_error(save(wb, tmp_path), XLSX, ["id", "email"], display_name="people.xlsx")
    assert "people.xlsx: no sheet has all the columns 'id', 'email'" in message
    assert "'Read Me'" in message and "'Data' (row 1: 'id', 'name')" in message


def test_xlsx_explicit_sheet_missing_lists_the_sheets(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "Summary"
    wb.create_sheet("Detail")
    path = save(wb, tmp_path)
    message = read_error(path, FileFormat("xlsx", sheet="FY2024"), ["id"])
    assert "no sheet 'FY2024'" in message and "'Summary', 'Detail'" in message
    assert "no sheet at index 5" in read_error(path, FileFormat("xlsx", sheet=5), ["id"])


def test_xlsx_explicit_sheet_missing_column(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "Data"
    wb.active.append(["id", "name"])
    message = read_error(save(wb, tmp_path), FileFormat("xlsx", sheet="Data"), ["id", "email"])
    assert "missing column(s) 'email'" in message and "sheet 'Data'" in message and "'id', 'name'" in message


def test_xlsx_garbage_is_not_a_workbook(tmp_path):
    message = read_error(write(tmp_path, "export.xlsx", b"id,name\r\n1,A\r\n"), XLSX, ["id"])
    assert "export.xlsx is not an Excel .xlsx workbook" in message
    message = read_error(write(tmp_path, "noise.xlsx", b"PK\x03\x04" + os.urandom(2000)), XLSX, ["id"])
    assert "noise.xlsx is not an Excel .xlsx workbook" in message
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    message = read_error(write(tmp_path, "other.xlsx", buffer.getvalue()), XLSX, ["id"])
    assert "other.xlsx is not an Excel .xlsx workbook" in message
    old = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    assert ".xls file" in read_error(write(tmp_path, "legacy.xlsx", old), XLSX, ["id"])


def test_xlsx_workbook_not_named_xlsx(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(["id"])
    wb.active.append([1])
    path = save(wb, tmp_path, "upload-7f3a.bin")
    assert read_all(path, XLSX, ["id"]) == [("1",)]


# ----------------------------------------------------------------------------------------- JSON


def test_json_top_level_array_with_value_conversion(tmp_path):
    records = (
        b'[{"id": 1, "amount": 5.0, "rate": 1.25, "active": true, "note": "  hi ", "gone": null,'
        b' "tags": ["a", "b"], "geo": {"lat": 43.0389, "lon": -87.9065}},'
        b' {"id": 2, "amount": 10, "rate": 0.1, "active": false, "note": "   ", "tags": []}]'
    )
    path = write(tmp_path, "drop.json", records)
    columns = ["id", "amount", "rate", "active", "note", "gone", "tags", "geo"]
    assert read_all(path, JSON, columns) == [
        ("1", "5", "1.25", "true", "hi", None, '["a","b"]', '{"lat":43.0389,"lon":-87.9065}'),
        ("2", "10", "0.1", "false", None, None, "[]", None),
    ]


def test_json_object_with_records_path(tmp_path):
    document = {"meta": {"count": 2}, "data": {"items": [{"id": "a", "v": 1}, {"id": "b", "v": 2}]}}
    path = write(tmp_path, "drop.json", json.dumps(document, indent=2).encode())
    assert read_all(path, FileFormat("json", records_path="data.items"), ["id", "v"]) == [("a", "1"), ("b", "2")]
    message = read_error(path, FileFormat("json", records_path="data.rows"), ["id"])
    assert "drop.json: no array of records at 'data.rows'" in message
    message = read_error(path, FileFormat("json", records_path="meta"), ["id"])
    assert "'meta' is an object, not an array" in message


def test_json_lines(tmp_path):
    data = b'{"id": 1, "name": "A"}\n\n{"id": 2}\r\n{"id": 3, "name": "C", "extra": true}\n'
    report = ReadReport()
    rows = read_all(write(tmp_path, "drop.jsonl", data), JSON, ["id", "name"], report=report)
    assert rows == [("1", "A"), ("2", None), ("3", "C")]
    assert report.rows == 3 and report.blank_rows_skipped == 1


def test_json_lines_invalid_line(tmp_path):
    data = b'{"id": 1}\n{"id": 2\n'
    message = read_error(write(tmp_path, "drop.jsonl", data), JSON, ["id"])
    assert "drop.jsonl: invalid JSON on line 2" in message


def test_json_nested_field_by_dotted_name(tmp_path):
    records = [
        {"id": 1, "location": {"address": "200 E Wells St", "ward": 4}},
        {"id": 2, "location": None},
        {"id": 3, "location.address": "841 N Broadway"},
    ]
    path = write(tmp_path, "drop.json", json.dumps(records).encode())
    assert read_all(path, JSON, ["id", "location.address", "location.ward"]) == [
        ("1", "200 E Wells St", "4"), ("2", None, None), ("3", "841 N Broadway", None),
    ]


def test_json_truncated(tmp_path):
    path = write(tmp_path, "drop.json", b'[{"id": 1}, {"id": 2}, {"id": 3, "na')
    message = read_error(path, JSON, ["id"])
    assert "drop.json" in message and "invalid or truncated JSON at record 3" in message


def test_json_missing_field_in_all_records(tmp_path):
    path = write(tmp_path, "drop.json", b'[{"id": 1, "name": "A"}, {"id": 2}]')
    message = read_error(path, JSON, ["id", "email"])
    assert "drop.json: missing column(s) 'email'" in message and "'id', 'name'" in message
    assert read_all(path, JSON, ["id", "name"]) == [("1", "A"), ("2", None)]


def test_json_record_not_an_object(tmp_path):
    path = write(tmp_path, "drop.json", b'[{"id": 1}, [2]]')
    assert "record 2 is an array, not an object" in read_error(path, JSON, ["id"])


def test_json_empty_and_empty_array(tmp_path):
    assert "is empty" in read_error(write(tmp_path, "empty.json", b" \n"), JSON, ["id"])
    report = ReadReport()
    assert read_all(write(tmp_path, "none.json", b"[]"), JSON, ["id"], report=report) == []
    assert report.rows == 0


def test_json_invalid_utf8_message_is_readable(tmp_path):
    path = write(tmp_path, "drop.json", b'[{"id": 1}, {"id": "\xff"}]')
    message = read_error(path, JSON, ["id"])
    assert "record 2" in message and "invalid bytes in UTF8" in message and "b'" not in message
