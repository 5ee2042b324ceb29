"""Data dictionaries as Frictionless Table Schema (https://specs.frictionlessdata.io/table-schema/).

One Table Schema describes a published data set's columns; the CSV is its primary target (the
JSON and Parquet files hold the same columns with native types). Type mapping:

| PostgreSQL (Column.type)  | Table Schema type | format / extra                                   |
| ------------------------- | ----------------- | ------------------------------------------------ |
| text                      | string            | format default                                   |
| smallint, integer, bigint | integer           |                                                  |
| numeric, double precision | number            |                                                  |
| boolean                   | boolean           | trueValues ["true"], falseValues ["false"]       |
| date                      | date              | format default (YYYY-MM-DD)                      |
| timestamp, timestamptz    | datetime          | format default (XML Schema dateTime; timestamptz |
|                           |                   | values are UTC, written with a Z)                |

Numbers may be `NaN`, `INF`, `-INF` (the spec's special values), which is how the CSV writes them.
Every string field's description ends with `CSV_FORMULA_NOTE`: in the CSV, a value beginning with
`=`, `+`, `-`, `@`, a tab or a carriage return carries a leading single quote so that spreadsheets do
not run it as a formula (`aim.publish.formats`); the JSON and Parquet files hold it unchanged.
Constraints: every primary key field is `required`; a single-field primary key is also `unique`.
"""
from __future__ import annotations

from aim.publish.formats import CSV_FORMULA_NOTE, Column, canonical_type

FIELD_TYPES = {
    "text": "string",
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "numeric": "number",
    "double precision": "number",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "datetime",
    "timestamptz": "datetime",
}


def _description(column: Column, pg_type: str) -> str:
    """The column's description, with the CSV's formula neutralization spelled out for a text column."""
    description = (column.description or "").strip()
    if pg_type != "text":
        return description
    if description and not description.endswith((".", "!", "?")):
        description += "."
    return f"{description} {CSV_FORMULA_NOTE}".lstrip()


def _field(column: Column) -> dict:
    pg_type = canonical_type(column.type)
    field: dict = {"name": column.name, "type": FIELD_TYPES[pg_type], "description": _description(column, pg_type)}
    if field["type"] in ("string", "date", "datetime"):
        field["format"] = "default"
    if field["type"] == "boolean":
        field["trueValues"] = ["true"]
        field["falseValues"] = ["false"]
    return field


def table_schema(
    columns: list[Column],
    *,
    primary_key: list[str] | None,
    missing_values=("",),
) -> dict:
    """A Table Schema dict for `columns`, in column order.

    Promises: one field per column with name, type, description (a text column's says how the CSV
    neutralizes formulas: `CSV_FORMULA_NOTE`) and format where the type has one; primary key fields carry constraints.required (and constraints.unique when the key is a
    single field); "primaryKey" is present when `primary_key` is given and "missingValues" always.
    Raises ValueError for an empty or duplicate column list, an unsupported type, or a primary key
    that is empty, repeats a field or names a field that is not a column.
    """
    columns = list(columns)
    if not columns:
        raise ValueError("a Table Schema needs at least one field")
    names = [c.name for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate field names: {duplicates}")
    fields = [_field(c) for c in columns]
    schema: dict = {"fields": fields}
    if primary_key is not None:
        key = list(primary_key)
        if not key:
            raise ValueError("primary_key is empty; pass None for a table without one")
        if len(set(key)) != len(key):
            raise ValueError(f"primary_key repeats a field: {key}")
        missing = [k for k in key if k not in names]
        if missing:
            raise ValueError(f"primary_key names fields that are not columns: {missing}")
        for field in fields:
            if field["name"] in key:
                constraints = {"required": True}
                if len(key) == 1:
                    constraints["unique"] = True
                field["constraints"] = constraints
        schema["primaryKey"] = key
    values = list(missing_values)
    if not all(isinstance(v, str) for v in values):
        raise ValueError("missingValues must be strings")
    schema["missingValues"] = values
    return schema
