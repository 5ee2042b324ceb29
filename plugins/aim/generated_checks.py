"""The checks every source gets from its configuration, ahead of the business rules of its suite.

A source's YAML already says which columns it has, which of them make the key, the type each is
cast to when the merge moves a batch from staging (text) into core, and, for an incremental
source, its watermark and how far ahead of the clock that may run. From it `generated_expectations`
writes the checks that keep the merge from failing on a value nobody checked:

- every configured column exists in staging (critical);
- every key column is not null, and the key is unique in the batch (critical), compared as the
  merge compares it (a typed key column by its cast value, so `2026` and ` 2026` are one key);
- every column whose type is not text casts to it, as the merge's `value::type` does
  (`ops.casts_to`, migration 0016): a row-level reject rule, so a bad value is set aside with
  its column and type named, instead of failing the merge with no column or row named;
- an incremental source's watermark is not later than the platform's clock (`ops.clock_now()`)
  plus the extract's `clock_skew_seconds`: a reject rule when `future_rows` is `reject`, else a
  critical check that fails the batch.

They are expectations in the suites' own JSON shape, marked `"meta": {"generated": true}`, and go
through the same machinery as the suite's rules: `suite_expectations` (generated first, then the
suite file's) is what `aim.quality.validate_batch` builds the Great Expectations suite from and
what the gate takes its row-level rules from. The suite file keeps business rules only.

Importing this module does not import Great Expectations.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aim.sources import SourceConfig

# Watermark types that have a "future", and the SQL for "now + allowance" in each.
_FUTURE = {
    "timestamptz": "{value}::timestamptz > ops.clock_now() + interval '{seconds} seconds'",
    "timestamp": "{value}::timestamp > ops.local_now() + interval '{seconds} seconds'",  # Milwaukee wall time
}  # one per watermark type (aim.watermarks.WATERMARK_TYPES): the configuration refuses any other


class SuiteError(ValueError):
    """A suite file that cannot be used as it is; the message names the file."""


def quoted(name: str) -> str:
    """A column name as a quoted SQL identifier (names are [a-z_][a-z0-9_]*, checked by `sources`)."""
    return '"' + name.replace('"', '""') + '"'


def _expectation(type_: str, description: str | None, kwargs: dict[str, Any], *, reject_rows: bool = False) -> dict:
    """One generated expectation. GX's own expectations go without a description, so a result
    reads as before, `expect_column_values_to_be_unique on incident_number`; a row rule has one,
    since its SQL does not say what it checks."""
    meta: dict[str, Any] = {"reject_rows": True, "generated": True} if reject_rows else {"generated": True}
    expectation = {"type": type_, "kwargs": kwargs, "severity": "critical", "meta": meta}
    if description:
        expectation["description"] = description
    return expectation


def casts_to_sql(value_sql: str, column_type: str) -> str:
    """SQL true when `value_sql` (text) casts to `column_type` as the merge's cast does (NULL casts)."""
    return f"ops.casts_to({value_sql}, '{column_type}')"


def does_not_cast_sql(value_sql: str, column_type: str) -> str:
    """SQL true when `value_sql` (text) holds a value that does not cast to `column_type`: a cast rule."""
    return f"{value_sql} IS NOT NULL AND NOT {casts_to_sql(value_sql, column_type)}"


def cast_value_sql(config: SourceConfig, name: str, table: str | None = None) -> str:
    """The staged column (of `table`, an alias, when given) as the merge sees it: its value cast to
    the column's type, NULL where it does not cast (such rows are a cast rule's); text stays text."""
    column_type = config.column(name).type
    value = f"{table}.{quoted(name)}" if table else quoted(name)
    if column_type == "text":
        return value
    return f"CASE WHEN {casts_to_sql(value, column_type)} THEN {value}::{column_type} END"


def key_values_sql(config: SourceConfig) -> str:
    """The key's values as the generated key check writes them (compared as the merge compares
    them), comma-separated: the check groups by them first, then by the watermark if there is one."""
    return ", ".join(cast_value_sql(config, k) for k in config.key)


def _key_unique(config: SourceConfig) -> dict:
    key = config.unique_in_batch  # an incremental source's record may come twice, edited in between
    typed = [k for k in key if config.column(k).type != "text"]
    if not typed:
        if len(key) == 1:
            return _expectation("expect_column_values_to_be_unique", None, {"column": key[0]})
        return _expectation("expect_compound_columns_to_be_unique", None, {"column_list": list(key)})
    # A typed key is compared by value, as the merge joins it to core: two spellings of one
    # number or moment are one key. A value that does not cast is NULL here and matches nothing.
    values = ", ".join([key_values_sql(config), *(cast_value_sql(config, k) for k in key[len(config.key):])])
    row = values if len(key) == 1 else f"({values})"
    query = (f"SELECT * FROM {{batch}} WHERE {row} IN "
             f"(SELECT {values} FROM {{batch}} GROUP BY {', '.join(str(i + 1) for i in range(len(key)))} "
             f"HAVING count(*) > 1)")
    compared = ", ".join(f"{k} as {config.column(k).type}" for k in typed)
    return _expectation("unexpected_rows_expectation",
                        f"the key ({', '.join(key)}) is unique in the batch (comparing {compared}, as the merge does)",
                        {"unexpected_rows_query": query})


def _cast_rule(name: str, column_type: str) -> dict:
    column = quoted(name)
    return _expectation(
        "unexpected_rows_expectation", f"{name} casts to {column_type}",
        {"unexpected_rows_query":
         f"SELECT * FROM {{batch}} WHERE {does_not_cast_sql(column, column_type)}"},
        reject_rows=True,
    )


def watermark_rule(config: SourceConfig) -> dict | None:
    """The generated check that the watermark is not in the future, or None (no watermark: a file drop)."""
    name = config.watermark_column
    if not name:
        return None
    column_type = config.column(name).type
    extract = config.extract
    seconds = extract.clock_skew_seconds
    later = _FUTURE[column_type].format(value=quoted(name), seconds=seconds)
    query = f"SELECT * FROM {{batch}} WHERE CASE WHEN {casts_to_sql(quoted(name), column_type)} THEN {later} END"
    clock = " (Milwaukee local time)" if column_type != "timestamptz" else ""
    return _expectation(
        "unexpected_rows_expectation",
        f"{name} is not later than now + {seconds} s (clock skew allowance){clock}",
        {"unexpected_rows_query": query},
        reject_rows=extract.future_rows == "reject",
    )


def generated_expectations(config: SourceConfig) -> list[dict]:
    """The checks the source's configuration implies, as suite expectations (all critical, each
    marked `meta.generated`): columns exist, key not null and unique, every typed column casts
    (a reject rule each), and an incremental source's watermark is not in the future."""
    expectations = [_expectation("expect_column_to_exist", None, {"column": c.name}) for c in config.columns]
    expectations += [_expectation("expect_column_values_to_not_be_null", None, {"column": k}) for k in config.key]
    expectations.append(_key_unique(config))
    expectations += [_cast_rule(c.name, c.type) for c in config.columns if c.type != "text"]
    watermark = watermark_rule(config)
    if watermark is not None:
        expectations.append(watermark)
    return expectations


def read_suite(path: Path) -> dict:
    """The suite file at `path` as a JSON object (name, meta, expectations); `SuiteError` naming
    the file when it cannot be read or is not such an object."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SuiteError(f"{path}: cannot read the suite: {err}") from err
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: expected a suite (a JSON object with name and expectations), got {type(raw).__name__}")
    expectations = raw.get("expectations", [])
    if not isinstance(expectations, list) or not all(isinstance(e, dict) for e in expectations):
        raise SuiteError(f"{path}: expected 'expectations' to be a list of objects")
    return raw


def suite_expectations(config: SourceConfig, suite_path: Path) -> list[dict]:
    """Everything a batch of the source is checked with, in order: the generated checks
    (`generated_expectations`), then the suite file's business rules. `SuiteError` names the file
    when it cannot be read."""
    return [*generated_expectations(config), *read_suite(suite_path).get("expectations", [])]


def repeats_generated(config: SourceConfig, expectations: list[dict]) -> list[dict]:
    """The expectations (of a suite file) that do what a generated check already does: the same
    type on the same column(s), or a row rule with the same query. They can be removed."""
    def signature(e: dict) -> tuple:
        kwargs = e.get("kwargs") or {}
        columns = kwargs.get("column_list") or [kwargs.get("column")]
        return (e.get("type"), tuple(sorted(c for c in columns if c)),
                " ".join(str(kwargs.get("unexpected_rows_query", "")).split()))

    generated = {signature(e) for e in generated_expectations(config)}
    return [e for e in expectations if signature(e) in generated]
