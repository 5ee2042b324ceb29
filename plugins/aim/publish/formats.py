"""Open data files from one query: CSV, JSON and Parquet, streamed in bounded memory.

`write_formats` runs the query ONCE, through a server-side (named) psycopg2 cursor inside one
REPEATABLE READ READ ONLY transaction, and feeds every batch of rows to all the requested writers.
So the formats hold the same rows by construction. Memory holds one fetch batch (`FETCH_ROWS`
rows as Python objects), the text of `TEXT_ROWS` rows, and at most one Parquet row group
(`ROW_GROUP_ROWS` rows, in Arrow buffers), whatever the size of the table.

The files, and the decisions behind them:

CSV (`text/csv`): UTF-8 without a byte-order mark; RFC 4180: a header row of the column names,
  CRLF after every record (PostgreSQL's `COPY … CSV` ends lines with LF; RFC 4180 says CRLF, so
  the platform writes CRLF), fields quoted only when they hold a comma, a double quote, CR or LF
  (quotes doubled inside). NULL is an empty unquoted field; an empty string is `""`, so the two
  stay distinct for readers that care (a Table Schema reader with missingValues [""] reads both
  as missing). A line break inside a quoted value is written as stored (often a bare LF): RFC
  4180 allows line breaks inside quotes, and the data is not rewritten.
  Formulas: a text value that begins with `=`, `+`, `-`, `@`, a tab or a carriage return would
  run as a formula when the CSV is opened in a spreadsheet (CSV injection), so in the CSV, and
  only in text columns, it is written with a single quote in front (`'=1+1`, quoted as above
  when it holds a comma, quote, CR or LF), as OWASP's CSV injection guidance recommends. A reader
  that needs the exact value takes the JSON or Parquet file, which hold it unchanged; numbers
  in numeric columns (`-3.5`) are never prefixed. The Table Schema says so for each text field
  (`CSV_FORMULA_NOTE`).
  Values: integers in decimal; numeric as its exact decimal text, never with an exponent
  (`0.0000001`, not `1E-7`); double precision as Python's shortest round-trip text, with a
  capital E when it has an exponent, as Table Schema's number syntax asks (`0.1`, `1E-07`);
  NaN and infinities as `NaN`, `INF`, `-INF` (Table Schema's spellings); booleans `true` /
  `false`; dates `YYYY-MM-DD`; timestamps `YYYY-MM-DDTHH:MM:SS[.ffffff]`; timestamptz converted
  to UTC and written with a `Z`, whatever the session's TimeZone.

JSON (`application/json`): UTF-8, one array of objects, one object per row and one row per line
  (`[` newline, rows separated by `,` newline, newline `]` newline; an empty result is `[]`),
  keys in column order. NULL is `null`; dates and timestamps are strings formatted as in the
  CSV; integers are JSON integers (a bigint beyond 2^53 loses precision in JavaScript readers).
  numeric is a JSON number carrying its exact decimal digits, as in the CSV
  (`0.14285714285714285714`, `5.00`): no rounding through a binary float on the way out; readers
  that parse numbers into doubles round then (Python's `json.load(f, parse_float=Decimal)` keeps
  them exact). double precision as in the CSV (`1E-07` is a JSON number too). NaN and
  infinities, which JSON cannot write as numbers, are the strings "NaN", "INF", "-INF".

Parquet (`application/vnd.apache.parquet`): one pyarrow ParquetWriter with an explicit schema from
  the declared columns (text string, smallint int16, integer int32, bigint int64, numeric
  float64, double precision float64, boolean bool, date date32, timestamp timestamp[us],
  timestamptz timestamp[us, tz=UTC]), snappy compression, row groups of at most
  `ROW_GROUP_ROWS` rows. A column's description, when given, is the field's `description`
  metadata.
  numeric is float64, not decimal128(38, 9): the warehouse's numeric columns are unconstrained
  (ratios such as `100 * numerator / denominator` carry 16 to 20 fractional digits), which a
  fixed scale of 9 cannot hold (pyarrow refuses: "Rescaling Decimal value would cause data
  loss"), and float64 reads as a plain number in every Parquet reader. So Parquet numerics are
  rounded to about 17 significant digits (NaN stays NaN; beyond ±1.8E308 becomes ±inf); the
  exact digits are in the CSV and JSON.

Determinism: with rows in a stable order (the query's ORDER BY on a unique key), two writes give
byte-identical CSV and JSON, and byte-identical Parquet with the same pyarrow version (its
`created_by` names the version; the file holds no timestamp). The tests check all three.

The query's columns must match the declared ones: the same names in the same order, each of the
PostgreSQL type it is declared with (cast in the query otherwise, e.g. `count(*)::integer`);
a mismatch raises ValueError and no file is published.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import uuid
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

FETCH_ROWS = 10_000  # rows per FETCH from the server-side cursor (its itersize)
TEXT_ROWS = 1_000  # rows rendered to CSV/JSON text at a time (bounds the text held in memory)
ROW_GROUP_ROWS = 100_000  # most rows in one Parquet row group
DEFAULT_FORMATS = ("csv", "json", "parquet")

MEDIA_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}

# The platform's column types (PostgreSQL names), with the spellings also accepted for each.
TYPES = (
    "text",
    "smallint",
    "integer",
    "bigint",
    "numeric",
    "double precision",
    "boolean",
    "date",
    "timestamp",
    "timestamptz",
)
_ALIASES = {
    "character varying": "text",
    "varchar": "text",
    "int2": "smallint",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "decimal": "numeric",
    "float8": "double precision",
    "bool": "boolean",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
}
# Result column type OIDs (pg_type) that each declared type accepts.
_OIDS = {
    "text": {25, 1043, 1042, 19},  # text, varchar, bpchar, name
    "smallint": {21},
    "integer": {23},
    "bigint": {20},
    "numeric": {1700},
    "double precision": {701},
    "boolean": {16},
    "date": {1082},
    "timestamp": {1114},
    "timestamptz": {1184},
}
_OID_NAMES = {
    25: "text", 1043: "varchar", 1042: "bpchar", 19: "name", 21: "smallint", 23: "integer",
    20: "bigint", 1700: "numeric", 700: "real", 701: "double precision", 16: "boolean",
    1082: "date", 1114: "timestamp", 1184: "timestamptz", 1083: "time", 1186: "interval",
    114: "json", 3802: "jsonb", 2950: "uuid", 17: "bytea",
}
ARROW_TYPES = {
    "text": pa.string(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "numeric": pa.float64(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}


def canonical_type(type_name: str) -> str:
    """The platform's name for a column type (`int4` -> `integer`); ValueError when unsupported."""
    name = " ".join(str(type_name).lower().split())
    name = _ALIASES.get(name, name)
    if name not in TYPES:
        raise ValueError(f"unsupported column type {type_name!r}; supported: {', '.join(TYPES)}")
    return name


@dataclass(frozen=True)
class Column:
    """One published column: its name, PostgreSQL type (see `TYPES`) and description."""

    name: str
    type: str
    description: str = ""


@dataclass(frozen=True)
class WrittenFile:
    """A file `write_formats` wrote: where, which format, rows (header excluded), size and SHA-256."""

    path: Path
    format: str
    media_type: str
    rows: int
    bytes: int
    sha256: str


# --- value rendering --------------------------------------------------------------------------

_CSV_SPECIAL = re.compile(r'[,"\r\n]')
# A cell beginning with one of these is a formula to a spreadsheet (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_FORMULA_NOTE = (
    "In the CSV file, a value that begins with =, +, -, @, a tab or a carriage return is written with a "
    "single quote (') in front, so that a spreadsheet does not run it as a formula; the JSON and Parquet "
    "files hold the value unchanged."
)


def _csv_quote(s: str) -> str:
    if s == "" or _CSV_SPECIAL.search(s):
        return '"' + s.replace('"', '""') + '"'
    return s


def neutralize_formula(s: str) -> str:
    """`s` with a single quote in front when it begins with a formula character (`FORMULA_PREFIXES`), else `s`."""
    return "'" + s if s.startswith(FORMULA_PREFIXES) else s


def _csv_text(s: str) -> str:
    return _csv_quote(neutralize_formula(s))


def _special_float(x: float) -> str | None:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "INF" if x > 0 else "-INF"
    return None


def _decimal_text(d: Decimal) -> str:
    if d.is_nan():
        return "NaN"
    if d.is_infinite():
        return "INF" if d > 0 else "-INF"
    return format(d, "f")


def _float_repr(x: float) -> str:
    # Shortest round-trip text, with Table Schema's capital E for an exponent (`1E-07`).
    return repr(x).replace("e", "E")


def _float_text(x: float) -> str:
    return _special_float(x) or _float_repr(x)


def _bool_text(b: bool) -> str:
    return "true" if b else "false"


def _iso(v) -> str:
    return v.isoformat()


def _utc_text(v) -> str:
    return v.astimezone(timezone.utc).replace(tzinfo=None).isoformat() + "Z"


_TEXT_RENDERERS: dict[str, Callable] = {
    "text": str,
    "smallint": str,
    "integer": str,
    "bigint": str,
    "numeric": _decimal_text,
    "double precision": _float_text,
    "boolean": _bool_text,
    "date": _iso,
    "timestamp": _iso,
    "timestamptz": _utc_text,
}


def _csv_renderer(type_name: str) -> Callable:
    if type_name == "text":
        return _csv_text
    return _TEXT_RENDERERS[type_name]  # never holds a comma, quote or line break


def _json_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _json_decimal(d: Decimal) -> str:
    if d.is_finite():
        return format(d, "f")
    return '"' + _decimal_text(d) + '"'


def _json_float(x: float) -> str:
    special = _special_float(x)
    return f'"{special}"' if special else _float_repr(x)


def _json_renderer(type_name: str) -> Callable:
    return {
        "text": _json_string,
        "smallint": str,
        "integer": str,
        "bigint": str,
        "numeric": _json_decimal,
        "double precision": _json_float,
        "boolean": _bool_text,
        "date": lambda v: '"' + v.isoformat() + '"',
        "timestamp": lambda v: '"' + v.isoformat() + '"',
        "timestamptz": lambda v: '"' + _utc_text(v) + '"',
    }[type_name]


def _arrow_values(type_name: str, values: Sequence) -> list:
    if type_name == "numeric":
        return [None if v is None else float(v) for v in values]
    return list(values)


# --- writers ----------------------------------------------------------------------------------


class _Output:
    """A file written under a temporary name in its final folder, hashed and counted as written."""

    def __init__(self, final: Path, fmt: str):
        self.final, self.format = final, fmt
        self.partial = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.partial")
        self.rows = 0

    def complete(self) -> tuple[int, str]:
        """End and close the temporary file; its size and SHA-256."""
        raise NotImplementedError  # pragma: no cover - interface

    def discard(self) -> None:
        self.close()
        self.partial.unlink(missing_ok=True)

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def publish(self, size: int, sha256: str) -> WrittenFile:
        os.replace(self.partial, self.final)
        return WrittenFile(self.final, self.format, MEDIA_TYPES[self.format], self.rows, size, sha256)


class _TextOutput(_Output):
    def __init__(self, final: Path, fmt: str):
        super().__init__(final, fmt)
        self.f = open(self.partial, "wb")
        self.digest, self.size = hashlib.sha256(), 0

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.digest.update(data)
        self.size += len(data)
        self.f.write(data)

    def close(self) -> None:
        if not self.f.closed:
            self.f.close()

    def complete(self) -> tuple[int, str]:
        self._end()
        self.close()
        return self.size, self.digest.hexdigest()

    def _end(self) -> None:
        pass


class _CsvOutput(_TextOutput):
    def __init__(self, final: Path, columns: list[Column]):
        super().__init__(final, "csv")
        self.renderers = [_csv_renderer(c.type) for c in columns]
        self._write(",".join(_csv_quote(c.name) for c in columns) + "\r\n")

    def write_rows(self, rows: list[tuple]) -> None:
        renderers = self.renderers
        for start in range(0, len(rows), TEXT_ROWS):
            self._write(
                "".join(
                    ",".join("" if v is None else r(v) for r, v in zip(renderers, row)) + "\r\n"
                    for row in rows[start : start + TEXT_ROWS]
                )
            )
        self.rows += len(rows)


class _JsonOutput(_TextOutput):
    def __init__(self, final: Path, columns: list[Column]):
        super().__init__(final, "json")
        self.keys = [json.dumps(c.name, ensure_ascii=False) + ":" for c in columns]
        self.renderers = [_json_renderer(c.type) for c in columns]
        self._write("[")

    def write_rows(self, rows: list[tuple]) -> None:
        if not rows:
            return
        keys, renderers = self.keys, self.renderers
        for start in range(0, len(rows), TEXT_ROWS):
            body = ",\n".join(
                "{" + ",".join(k + ("null" if v is None else r(v)) for k, r, v in zip(keys, renderers, row)) + "}"
                for row in rows[start : start + TEXT_ROWS]
            )
            self._write(("\n" if self.rows == 0 else ",\n") + body)
            self.rows += len(rows[start : start + TEXT_ROWS])

    def _end(self) -> None:
        self._write("\n]\n" if self.rows else "]\n")


class _ParquetOutput(_Output):
    def __init__(self, final: Path, columns: list[Column]):
        super().__init__(final, "parquet")
        self.types = [c.type for c in columns]
        self.schema = arrow_schema(columns)
        self.writer = pq.ParquetWriter(self.partial, self.schema, compression="snappy")
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def write_rows(self, rows: list[tuple]) -> None:
        if not rows:
            return
        by_column = list(zip(*rows))
        arrays = [
            pa.array(_arrow_values(t, values), type=field.type)
            for t, values, field in zip(self.types, by_column, self.schema)
        ]
        del by_column
        self.pending.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.pending_rows += len(rows)
        self.rows += len(rows)
        if self.pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            table = pa.Table.from_batches(self.pending, schema=self.schema)
            self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            self.pending, self.pending_rows = [], 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def complete(self) -> tuple[int, str]:
        self._flush()
        self.close()
        digest, size = hashlib.sha256(), 0
        with open(self.partial, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
        return size, digest.hexdigest()


_OUTPUTS = {"csv": _CsvOutput, "json": _JsonOutput, "parquet": _ParquetOutput}


def arrow_schema(columns: list[Column]) -> pa.Schema:
    """The Parquet/Arrow schema `write_formats` writes for `columns` (descriptions as field metadata)."""
    fields = []
    for c in _checked_columns(columns):
        metadata = {"description": c.description} if c.description else None
        fields.append(pa.field(c.name, ARROW_TYPES[c.type], nullable=True, metadata=metadata))
    return pa.schema(fields)


def _checked_columns(columns: Iterable[Column]) -> list[Column]:
    checked = [Column(c.name, canonical_type(c.type), c.description or "") for c in columns]
    if not checked:
        raise ValueError("no columns declared")
    names = [c.name for c in checked]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate column names: {duplicates}")
    if any(not isinstance(n, str) or not n for n in names):
        raise ValueError("every column needs a non-empty name")
    return checked


def _check_result_columns(description, columns: list[Column]) -> None:
    got = [d.name for d in description]
    want = [c.name for c in columns]
    if got != want:
        raise ValueError(f"the query returns columns {got}, but the declared columns are {want}")
    for d, c in zip(description, columns):
        if d.type_code not in _OIDS[c.type]:
            actual = _OID_NAMES.get(d.type_code, f"type oid {d.type_code}")
            raise ValueError(
                f"column {c.name!r} is declared {c.type} but the query returns {actual}; "
                f"cast it in the query (`… ::{c.type} AS …`)"
            )


def write_formats(
    conn,
    query: str,
    columns: list[Column],
    out_dir: Path,
    stem: str,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> list[WrittenFile]:
    """Write `query`'s rows to `<out_dir>/<stem>.<format>` for each of `formats`; one WrittenFile each.

    Promises: the query runs once, in one REPEATABLE READ READ ONLY transaction, through a named
    cursor fetching `FETCH_ROWS` rows at a time, so every file holds the same rows (same count)
    from one snapshot, in bounded memory. Each file appears under its final name only when
    complete (each is written under a temporary name; all are renamed once all are complete);
    on an error while querying or writing, the temporary files are removed and no file is
    replaced. `conn` is a psycopg2 connection: any transaction open on it is rolled back first,
    and its autocommit, isolation level and read-only settings are restored afterwards. Files are
    returned in the order of `formats`. The query's columns must match `columns` (names, order,
    types) and its ORDER BY decides the row order (make it total for byte-identical reruns).
    """
    fmts = list(formats)
    unknown = [f for f in fmts if f not in _OUTPUTS]
    if unknown or not fmts or len(set(fmts)) != len(fmts):
        raise ValueError(f"formats must be distinct names among {list(_OUTPUTS)}; got {fmts}")
    cols = _checked_columns(columns)
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        raise ValueError(f"bad file stem {stem!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    query = query.strip().rstrip(";").strip()

    saved = (conn.autocommit, conn.isolation_level, conn.readonly)
    conn.rollback()
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)
    outputs: list[_Output] = []
    try:
        for fmt in fmts:
            outputs.append(_OUTPUTS[fmt](out_dir / f"{stem}.{fmt}", cols))
        with conn.cursor(name=f"aim_publish_{uuid.uuid4().hex}") as cur:
            cur.itersize = FETCH_ROWS
            cur.execute(query)
            checked = False
            while True:
                rows = cur.fetchmany(FETCH_ROWS)
                if not checked:
                    _check_result_columns(cur.description, cols)
                    checked = True
                if not rows:
                    break
                for out in outputs:
                    out.write_rows(rows)
                del rows
        conn.rollback()  # read only: nothing to commit
        done = [out.complete() for out in outputs]
    except BaseException:
        for out in outputs:
            out.discard()
        raise
    finally:
        conn.rollback()
        autocommit, isolation_level, readonly = saved
        conn.set_session(
            isolation_level="DEFAULT" if isolation_level is None else isolation_level,
            readonly="DEFAULT" if readonly is None else readonly,
            autocommit=autocommit,
        )
    # Every file is complete: only now do they take their final names.
    return [out.publish(size, sha256) for out, (size, sha256) in zip(outputs, done)]
