"""Expectations the platform evaluates itself, all in one scan of the batch, beside Great Expectations.

GX gives each expectation its own SQL: a column map expectation an aggregate and a query for
sample values (which reads the whole batch when nothing is wrong), a row query a count and a
fetch of its rows. A suite of 80 expectations so reads the batch dozens of times. The ones below
are a condition on one row each: `evaluate` counts them all with `aim.row_scan.count_rows` (one
statement) and states each result as GX itself does (its type, kwargs and severity; the counts,
percentages and samples of GX's SUMMARY format, made by GX's own formatter), so
`ops.quality_result` and the Data Docs cannot tell them apart. A sample is read only for a check
that found something.

Which expectations are such a condition, and the condition of each: `aim.scan_conditions`.

Import inside a task only: it imports Great Expectations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from great_expectations.core import ExpectationValidationResult
from great_expectations.expectations.expectation import _format_map_output  # GX's own SUMMARY shape
from great_expectations.expectations.expectation_configuration import parse_result_format

from aim import row_scan
from aim.scan_conditions import ScanCondition, counted, known, scan_condition


@dataclass(frozen=True)
class ScanCheck:
    """One expectation (GX's configuration) and its condition on a row of the batch."""

    expectation: Any
    condition: ScanCondition


def scan_check(cur, expectation) -> ScanCheck | None:
    """The expectation as a `ScanCheck`, or None when GX is to run it."""
    condition = scan_condition(cur, expectation.type, expectation.kwargs)
    return None if condition is None else ScanCheck(expectation, condition)


def evaluate(cur, table: tuple[str, str], batch_id: str, checks: list[ScanCheck], *, typed: list[tuple[str, str]],
             result_format: dict, castable: list[tuple[str, str]] | None = None,
             unique_values: str | None = None,
             already_counted: dict[str, row_scan.RowCount] | None = None) -> list[ExpectationValidationResult]:
    """Every check's result on the batch, in order: one scan counts them all (and the batch's rows,
    and each map column's nulls), unless `already_counted` (`aim.scan_conditions.count_suite` on
    the batch as it is) holds every count; a failed check then reads a sample of what it found.
    `castable` and `unique_values`: what is already known of the batch (`aim.row_scan.count_rows`)."""
    if not checks:
        return []
    conditions = counted([check.condition for check in checks])
    counts = iter(known(already_counted, conditions)
                  or row_scan.count_rows(cur, table, batch_id, conditions, typed, castable, unique_values))
    total = next(counts)
    sample_size = result_format.get("partial_unexpected_count", 20)
    results = []
    for check in checks:
        found = [next(counts)] + ([next(counts)] if check.condition.column is not None else [])
        error = next((c.error for c in found if c.error is not None), None)
        if error is not None:
            results.append(ExpectationValidationResult(
                success=False, expectation_config=check.expectation, result={},
                exception_info={"raised_exception": True, "exception_message": error, "exception_traceback": None},
            ))
        elif check.condition.column is None:
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
        result["details"] = {"unexpected_rows": row_scan.sample_rows(cur, table, batch_id, check.condition.unexpected,
                                                                     sample_size)}
    return ExpectationValidationResult(success=unexpected == 0, expectation_config=check.expectation, result=result)


def _map_result(cur, table, batch_id, check: ScanCheck, total: int, unexpected: int, nulls: int, result_format: dict,
                sample_size: int):
    """As GX's column map expectations state it: success when the share of judged rows that are
    unexpected is within `mostly` (vacuously, when none is judged), counts and percentages, and a
    sample of the unexpected values."""
    condition = check.condition
    judged = total if condition.nulls_judged else total - nulls
    mostly = check.expectation.kwargs.get("mostly", 1)
    success = judged == 0 or (judged - unexpected) / judged >= mostly
    values = []
    if unexpected:
        values = row_scan.sample_values(cur, table, batch_id, condition.column, condition.unexpected, sample_size)
    formatted = _format_map_output(
        result_format=parse_result_format(result_format), success=success, element_count=total,
        nonnull_count=None if condition.nulls_judged else total - nulls, unexpected_count=unexpected,
        unexpected_list=values,
    )
    return ExpectationValidationResult(success=success, expectation_config=check.expectation,
                                       result=formatted.get("result", {}))
