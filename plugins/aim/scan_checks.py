"""Expectations the platform evaluates itself, all in one scan of the batch, beside Great Expectations.

GX gives each expectation its own SQL: a column map expectation an aggregate and a query for
sample values (which reads the whole batch when nothing is wrong), a row query a count and a
fetch of its rows. A suite of 80 expectations so reads the batch dozens of times. The ones below
are a condition on one row each: `evaluate` counts them all with `aim.row_scan.count_rows` (one
statement) and states each result as GX itself does (its type, kwargs and severity; the counts,
percentages and samples of GX's SUMMARY format, made by GX's own formatter), so
`ops.quality_result` and the Data Docs cannot tell them apart. A sample is read only for a check
that found something.

| expectation | unexpected rows | rows it judges |
| --- | --- | --- |
| `unexpected_rows_expectation`, `SELECT * FROM {batch} WHERE <condition>` | the condition | |
| `expect_column_values_to_not_be_null` | the column is NULL | every row |
| `expect_column_values_to_be_in_set` (a set of strings) | the value is not in the set | non-null |
| `expect_column_values_to_match_regex` | the value does not match (`~`, as GX on PostgreSQL; `^X{m,n}$` as `~ '^X*$'` and a length) | non-null |

Anything else (table-level expectations, a row query of another shape, an argument this module
does not read, such as `row_condition`) stays with GX. One module line per expectation type:
`_CONDITIONS`.

Import inside a task only: it imports Great Expectations.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from great_expectations.core import ExpectationValidationResult
from great_expectations.expectations.expectation import _format_map_output  # GX's own SUMMARY shape
from great_expectations.expectations.expectation_configuration import parse_result_format
from psycopg2 import sql

from aim import row_scan
from aim.generated_checks import quoted


@dataclass(frozen=True)
class ScanCheck:
    """One expectation as a condition on a row of the batch."""

    expectation: Any              # GX's ExpectationConfiguration
    unexpected: str               # SQL condition: the row is unexpected; a template for `{batch}` (`{{` is a brace)
    column: str | None = None     # a column map expectation's column; None for a row query
    nulls_judged: bool = False    # not_null: every row is judged; else only non-null values


def _not_null(cur, column: str, kwargs: dict) -> str | None:
    return f"{quoted(column)} IS NULL"


def _in_set(cur, column: str, kwargs: dict) -> str | None:
    values = kwargs.get("value_set")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return None  # numbers against text, a suite parameter: GX's own SQL decides
    listed = sql.SQL(", ").join(sql.Literal(v) for v in values).as_string(cur) if values else None
    return f"{quoted(column)} IS NOT NULL" + (f" AND {quoted(column)} NOT IN ({listed})" if listed else "")


# `^X{m,n}$` (also `{m}`, `{m,}`) for X one character class: a bracket expression of letters,
# digits, `_` and `-`, a class escape, or `.`. PostgreSQL's regex engine makes a state of each
# repetition (at 1M IDs, `^[A-Z0-9]{6,20}$` took 4x the time of `^[A-Z0-9]*$`); every character
# in X and m to n characters is the same test, done as `~ '^X*$'` and the length.
_MOST_REPEATS = 255  # PostgreSQL's RE_DUP_MAX: a count past it is an error, left for the regex to raise
_ONE_CLASS_REPEATED = re.compile(r"\^(\[\^?[A-Za-z0-9_-]+\]|\\[dDwWsS]|\.)\{(\d+)(?:(,)(\d*))?\}\$")


def _match_regex(cur, column: str, kwargs: dict) -> str | None:
    regex = kwargs.get("regex")
    if not isinstance(regex, str):
        return None
    name = quoted(column)
    repeated = _ONE_CLASS_REPEATED.fullmatch(regex)
    if repeated:
        each, least, ranged, most = repeated.groups()
        if not ranged:
            most = least
        if int(least) <= _MOST_REPEATS and (not most or int(least) <= int(most) <= _MOST_REPEATS):
            length = (f"char_length({name}) >= {int(least)}" if not most else
                      f"char_length({name}) BETWEEN {int(least)} AND {int(most)}")
            every = sql.Literal(f"^{each}*$").as_string(cur)
            return f"{name} IS NOT NULL AND NOT ({name} ~ {every} AND {length})"
    return f"{name} IS NOT NULL AND NOT ({name} ~ {sql.Literal(regex).as_string(cur)})"


# expectation type -> (the kwargs it reads besides column and mostly, its unexpected condition)
_CONDITIONS: dict[str, tuple[frozenset[str], Callable[[Any, str, dict], str | None]]] = {
    "expect_column_values_to_not_be_null": (frozenset(), _not_null),
    "expect_column_values_to_be_in_set": (frozenset({"value_set"}), _in_set),
    "expect_column_values_to_match_regex": (frozenset({"regex"}), _match_regex),
}


def scan_check(cur, expectation) -> ScanCheck | None:
    """The expectation as a `ScanCheck`, or None when GX is to run it."""
    kwargs = {k: v for k, v in expectation.kwargs.items() if k != "batch_id"}
    if expectation.type == "unexpected_rows_expectation":
        query = kwargs.get("unexpected_rows_query")
        condition = row_scan.condition_of(query) if isinstance(query, str) and len(kwargs) == 1 else None
        return ScanCheck(expectation, condition) if condition else None
    arguments, condition_for = _CONDITIONS.get(expectation.type, (None, None))
    column = kwargs.get("column")
    mostly = kwargs.get("mostly", 1)
    if (condition_for is None or not isinstance(column, str) or set(kwargs) - {"column", "mostly", *arguments}
            or not isinstance(mostly, (int, float))):
        return None
    condition = condition_for(cur, column, kwargs)
    if condition is None:
        return None
    condition = condition.replace("{", "{{").replace("}", "}}")  # a template like a row query's: `[0-9]{5}` stays
    return ScanCheck(expectation, condition, column, nulls_judged=expectation.type == "expect_column_values_to_not_be_null")


def evaluate(cur, table: tuple[str, str], batch_id: str, checks: list[ScanCheck], *, typed: list[tuple[str, str]],
             result_format: dict, castable: list[tuple[str, str]] | None = None,
             unique_values: str | None = None) -> list[ExpectationValidationResult]:
    """Every check's result on the batch, in order: one scan counts them all (and the batch's rows,
    and each map column's nulls); a failed check then reads a sample of what it found.
    `castable` and `unique_values`: what is already known of the batch (`aim.row_scan.count_rows`)."""
    if not checks:
        return []
    conditions = ["true"]
    for check in checks:
        conditions.append(check.unexpected)
        if check.column is not None:
            conditions.append(f"{quoted(check.column)} IS NULL")
    counts = iter(row_scan.count_rows(cur, table, batch_id, conditions, typed, castable, unique_values))
    total = next(counts)
    sample_size = result_format.get("partial_unexpected_count", 20)
    results = []
    for check in checks:
        found = [next(counts)] + ([next(counts)] if check.column is not None else [])
        error = next((c.error for c in found if c.error is not None), None)
        if error is not None:
            results.append(ExpectationValidationResult(
                success=False, expectation_config=check.expectation, result={},
                exception_info={"raised_exception": True, "exception_message": error, "exception_traceback": None},
            ))
        elif check.column is None:
            results.append(_row_query_result(cur, table, batch_id, check, found[0].rows, sample_size))
        else:
            results.append(_map_result(cur, table, batch_id, check, total.rows, found[0].rows, found[1].rows,
                                       result_format, sample_size))
    return results


def _row_query_result(cur, table, batch_id, check: ScanCheck, unexpected: int, sample_size: int):
    """As GX's `unexpected_rows_expectation` states it, with a sample of the rows it found (GX
    gives them only in its COMPLETE format, which reads them all)."""
    result: dict[str, Any] = {"observed_value": unexpected}
    if unexpected:
        result["details"] = {"unexpected_rows": row_scan.sample_rows(cur, table, batch_id, check.unexpected, sample_size)}
    return ExpectationValidationResult(success=unexpected == 0, expectation_config=check.expectation, result=result)


def _map_result(cur, table, batch_id, check: ScanCheck, total: int, unexpected: int, nulls: int, result_format: dict,
                sample_size: int):
    """As GX's column map expectations state it: success when the share of judged rows that are
    unexpected is within `mostly` (vacuously, when none is judged), counts and percentages, and a
    sample of the unexpected values."""
    judged = total if check.nulls_judged else total - nulls
    mostly = check.expectation.kwargs.get("mostly", 1)
    success = judged == 0 or (judged - unexpected) / judged >= mostly
    values = []
    if unexpected:
        values = row_scan.sample_values(cur, table, batch_id, check.column, check.unexpected, sample_size)
    formatted = _format_map_output(
        result_format=parse_result_format(result_format), success=success, element_count=total,
        nonnull_count=None if check.nulls_judged else total - nulls, unexpected_count=unexpected, unexpected_list=values,
    )
    return ExpectationValidationResult(success=success, expectation_config=check.expectation,
                                       result=formatted.get("result", {}))
