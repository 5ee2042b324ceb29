"""The suite's expectations that are a condition on one row each, as that condition: what
`aim.scan_checks` turns into results, and what `count_suite` counts in one scan of the batch
before Great Expectations is needed (a task counts them while GX is still being imported, and
the gate's row-level rules are among them). Free of Great Expectations: it reads the suite as
dicts (`aim.generated_checks.suite_expectations`) or GX's configurations alike.

| expectation | unexpected rows | rows it judges |
| --- | --- | --- |
| `unexpected_rows_expectation`, `SELECT * FROM {batch} WHERE <condition>` | the condition | |
| `expect_column_values_to_not_be_null` | the column is NULL | every row |
| `expect_column_values_to_be_in_set` (a set of strings) | the value is not in the set | non-null |
| `expect_column_values_to_match_regex` | the value does not match (`~`, as GX on PostgreSQL; `^X{m,n}$` as `~ '^X*$'` and a length; a fixed-width `^...$` such as a timestamp's format as `LIKE` and the regex with `*` counts) | non-null |

Anything else (table-level expectations, a row query of another shape, an argument this module
does not read, such as `row_condition`) stays with GX. One module line per expectation type:
`_CONDITIONS`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from psycopg2 import sql

from aim import row_scan
from aim.generated_checks import quoted
from aim.sources import SourceConfig


@dataclass(frozen=True)
class ScanCondition:
    """One expectation as a condition on a row of the batch."""

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


# `^...$` of literal characters and runs of one character class each of a fixed count, such as
# `^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$` (1.1 s of CPU at 1M values, the costliest check of the
# police suite): the regex engine builds its matcher's states anew for every value. The same test is
# `LIKE` with each literal in its place and `_` for each class character (0.05 s), and the regex
# with each run's count as `*` (0.5 s): the runs can only fall where the counts put them when
# no two runs are side by side and a literal between runs is in no class of the pattern, so the
# literals are where `LIKE` put them.
# A bracket expression of single characters and ascending ranges of one kind (`[A-Z0-9_-]`), which
# PostgreSQL and Python read alike; anything else (`[9-0]`, `[a-c-e]`) is left for PostgreSQL to judge.
_PLAIN_BRACKET = re.compile(r"\[(?:[0-9](?:-[0-9])?|[A-Z](?:-[A-Z])?|[a-z](?:-[a-z])?|_)+-?\]")
_RUN_OR_LITERAL = re.compile(r"(?P<run>\[[A-Za-z0-9_-]+\]|\\[dDwWsS]|\.)(?:\{(?P<count>\d+)\})?"
                             r"|(?P<literal>\\[-.^$\[\]()|*+?{}\\/]|[ -~](?<![.^$\[\]()|*+?{}\\]))")


def _fixed_width(regex: str) -> tuple[str, str] | None:
    """For `^...$` of ASCII literals and runs of one class of a fixed count (at least one run of
    two or more), a `LIKE` pattern and a regex whose counts are `*`, which together hold for
    exactly the values the regex matches; else None."""
    if not (regex.startswith("^") and regex.endswith("$")):
        return None
    inner, at, atoms = regex[1:-1], 0, []
    while at < len(inner):
        atom = _RUN_OR_LITERAL.match(inner, at)
        if atom is None:
            return None
        atoms.append(atom)
        at = atom.end()
    runs = [a for a in atoms if a.group("run")]
    for run in runs:
        bracket = run.group("run")
        if bracket.startswith("[") and not (_PLAIN_BRACKET.fullmatch(bracket) and all(
                low <= high for low, high in re.findall(r"(\w)-(\w)", bracket))):
            return None
    counts = [int(a.group("count") or 1) for a in runs]
    if not counts or max(counts) < 2 or max(counts) > _MOST_REPEATS:
        return None
    first, last = atoms.index(runs[0]), atoms.index(runs[-1])
    between = atoms[first:last + 1]
    if any(a.group("run") and b.group("run") for a, b in zip(between, between[1:])):
        return None  # two runs side by side: where one ends is not fixed by a literal
    for atom in between:  # a literal between runs may be in no class: else a run could take it
        if atom.group("literal"):
            char = atom.group("literal")[-1]
            if any(re.fullmatch(run.group("run"), char, re.ASCII | re.DOTALL) for run in runs):
                return None
    like = "".join("_" * int(a.group("count") or 1) if a.group("run") else
                   re.sub(r"([%_\\])", r"\\\1", a.group("literal")[-1]) for a in atoms)
    stars = "".join(a.group("run") + "*" if a.group("run") else a.group("literal") for a in atoms)
    return like, f"^{stars}$"


def _match_regex(cur, column: str, kwargs: dict) -> str | None:
    regex = kwargs.get("regex")
    if not isinstance(regex, str):
        return None
    name = quoted(column)
    fixed = _fixed_width(regex)
    if fixed:
        like, stars = (sql.Literal(text).as_string(cur) for text in fixed)
        return f"{name} IS NOT NULL AND NOT ({name} LIKE {like} AND {name} ~ {stars})"
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


def scan_condition(cur, type_: str, kwargs: dict) -> ScanCondition | None:
    """The expectation (its type and kwargs) as a `ScanCondition`, or None when GX is to run it."""
    kwargs = {k: v for k, v in kwargs.items() if k != "batch_id"}  # GX adds the batch id to a run's kwargs
    if type_ == "unexpected_rows_expectation":
        query = kwargs.get("unexpected_rows_query")
        condition = row_scan.condition_of(query) if isinstance(query, str) and len(kwargs) == 1 else None
        return ScanCondition(condition) if condition else None
    arguments, condition_for = _CONDITIONS.get(type_, (None, None))
    column = kwargs.get("column")
    mostly = kwargs.get("mostly", 1)
    if (condition_for is None or not isinstance(column, str) or set(kwargs) - {"column", "mostly", *arguments}
            or not isinstance(mostly, (int, float))):
        return None
    condition = condition_for(cur, column, kwargs)
    if condition is None:
        return None
    condition = condition.replace("{", "{{").replace("}", "}}")  # a template like a row query's: `[0-9]{5}` stays
    return ScanCondition(condition, column, nulls_judged=type_ == "expect_column_values_to_not_be_null")


def counted(conditions: list[ScanCondition]) -> list[str]:
    """What one scan counts for `conditions`: the batch's rows (`true`), then each condition and,
    for a column's check, that column's nulls."""
    texts = ["true"]
    for condition in conditions:
        texts.append(condition.unexpected)
        if condition.column is not None:
            texts.append(f"{quoted(condition.column)} IS NULL")
    return texts


def count_suite(cur, config: SourceConfig, batch_id: str, expectations: list[dict], *,
                castable: list[tuple[str, str]] | None, unique_values: str | None) -> dict[str, row_scan.RowCount]:
    """Every condition of the suite's expectations (dicts, as `suite_expectations` gives them)
    counted on the batch in one scan (`aim.row_scan.count_rows`), by its text: valid while the
    batch's rows stay as they are. `castable` and `unique_values` as `count_rows` takes them."""
    conditions = [found for e in expectations if isinstance(e, dict) and isinstance(e.get("kwargs"), dict)
                  and (found := scan_condition(cur, e.get("type"), e["kwargs"])) is not None]
    if not conditions:
        return {}
    texts = counted(conditions)
    return dict(zip(texts, row_scan.count_rows(cur, config.staging_table, batch_id, texts, config.typed_columns,
                                               castable, unique_values)))


def known(counts: dict[str, row_scan.RowCount] | None, texts: list[str]) -> list[row_scan.RowCount] | None:
    """The counts of `texts` when `counts` holds every one of them, else None."""
    if counts is None or not all(t in counts for t in texts):
        return None
    return [counts[t] for t in texts]
