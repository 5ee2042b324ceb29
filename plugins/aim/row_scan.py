"""A suite's row queries counted together, in one scan of the batch instead of one (or two) each.

Row queries are the `unexpected_rows_query` of `unexpected_rows_expectation`s: the generated
checks (a value casts to its column's type, the key is unique, the watermark is not in the future;
`aim.generated_checks`) and a suite's business rules. Most read `SELECT * FROM {batch} WHERE
<condition>`; for those, `condition_of` gives the condition, and `count_rows` counts, for every
condition at once, the rows of the batch it holds for:

    SELECT count(*) FILTER (WHERE coalesce((<condition 1>), false)), ... FROM <batch> AS batch

A query of another shape (a join, a GROUP BY, a LIMIT at its top level, a comment) is not
rewritten: it keeps its own scan, in Great Expectations. A condition that fails in the combined
statement (a column the batch lacks, a cast that raises) does not fail the others: each is then
counted alone, and the one that fails gets its error, as Great Expectations would report it.

`{batch}` is filled as Great Expectations fills it (`str.format`: `{{` is a brace), with the same
aliased subquery of the batch's rows the gate uses.

One condition is counted by a statement of its own: the rows whose value another row of the
batch shares, `<row> IN (SELECT <row> FROM {batch} GROUP BY ... HAVING count(*) > 1)` (the
generated key check). Inside the combined count PostgreSQL can only run that subquery as a
sub-plan, and once it knows how big the batch is (autovacuum analyzes staging soon after a big
batch lands) it judges the subquery's result too big to hash and may re-run it for every row:
quadratic. Counted as the sum of the groups' sizes (`GROUP BY`, which spills to disk past
work_mem), it stays one pass over the batch whatever the plan; a sample of its rows is read in a
plain `WHERE`, where the `IN` becomes a join.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from aim import db
from aim.generated_checks import casts_to_sql, does_not_cast_sql, quoted
from aim.tables import BATCH_COLUMN, ORIGIN_COLUMN, ROW_ID_COLUMN, qualified

_SIMPLE = re.compile(r"^\s*select\s+\*\s+from\s+\{batch\}\s+where\s+(?P<condition>.+?)\s*;?\s*$", re.I | re.S)
_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_INNERMOST = re.compile(r"\([^()]*\)")
# The platform's clock (migration 0014): STABLE, so one value per statement, but PostgreSQL inlines
# it and evaluates it for every row (`ops.local_now()`: a setting read and a time zone conversion,
# 0.3 s of CPU per 1M rows). As a subquery it is evaluated once per scan, with the same value.
_ONCE_PER_STATEMENT = [(call, f"(SELECT {call})") for call in ("ops.clock_now()", "ops.local_now()")]
# The parse functions (migration 0003: NULL where the text does not parse), by the type they give.
_PARSERS = {"timestamp": "ops.try_timestamp", "numeric": "ops.try_numeric"}
_SUBQUERY = re.compile(r"\bselect\b", re.I)
# The rows whose value another row shares: counted by `_duplicates_count`, not in the combined scan.
_DUPLICATES = re.compile(r"^(?P<row>.+?)\s+IN\s+\(\s*SELECT\s+(?P<values>.+?)\s+FROM\s+\{batch\}\s+"
                         r"GROUP\s+BY\s+(?P<groups>[0-9]+(?:\s*,\s*[0-9]+)*)\s+HAVING\s+count\(\*\)\s*>\s*1\s*\)$",
                         re.I | re.S)
# Clauses that would end the WHERE condition: at the query's top level they make it another shape.
_CLAUSE = re.compile(r"\b(order\s+by|group\s+by|having|limit|offset|fetch|for|window|union|intersect|except|into)\b"
                     r"|--|/\*|\$|;", re.I)


@dataclass(frozen=True)
class RowCount:
    """How many rows of the batch a row query returns, or why it could not be counted."""

    rows: int | None
    error: str | None = None


def condition_of(query: str) -> str | None:
    """The WHERE condition of a row query `SELECT * FROM {batch} WHERE <condition>`, ready to
    combine with others (`{batch}` inside it left as it is), or None for a query of any other shape."""
    match = _SIMPLE.match(query)
    if not match:
        return None
    condition = match.group("condition")
    top = _LITERAL.sub("''", condition)
    while True:  # keep only the top level: drop parenthesized groups, innermost first
        inner = _INNERMOST.sub(" ", top)
        if inner == top:
            break
        top = inner
    if "(" in top or ")" in top or _CLAUSE.search(top):
        return None
    try:
        condition.format(batch="batch")  # GX's own filling; a stray brace is the query's error, left to GX
    except (KeyError, IndexError, ValueError):
        return None
    return condition


def batch_sql(cur, table: tuple[str, str], batch_id: str) -> str:
    """The batch's rows as the aliased subquery `{batch}` stands for (the gate's and GX's alike),
    each with its `ctid` as `_row_id`: what a row-level rule sets a row aside by, within one statement."""
    return sql.SQL("(SELECT *, ctid AS {} FROM {} WHERE {} = {}) AS batch").format(
        sql.Identifier(ROW_ID_COLUMN), qualified(table), sql.Identifier(BATCH_COLUMN), sql.Literal(batch_id)
    ).as_string(cur)


def cast_all(cur, table: tuple[str, str], batch_id: str, typed: list[tuple[str, str]],
             also: list[str] = ()) -> tuple | None:
    """One scan of the batch casting every (column, type) of `typed`, as the merge does (at the
    speed of the cast itself), that also computes the aggregates `also` (SQL over the batch's
    columns): their values, or None when a value does not cast (rolled back: the transaction goes on)."""
    aggregates = [*(f"count({quoted(c)}::{t})" for c, t in typed), *also] or ["true"]
    row = _try(cur, f"SELECT {', '.join(aggregates)} FROM {batch_sql(cur, table, batch_id)}")
    return None if isinstance(row, str) else row[len(aggregates) - len(also):]


def columns_that_cast(cur, table: tuple[str, str], batch_id: str, typed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (column, type) pairs of `typed` whose every staged value in the batch casts: one scan
    that casts them all (`cast_all`); only when one of them fails, each column alone."""
    if not typed:
        return []
    if cast_all(cur, table, batch_id, typed) is not None:
        return list(typed)
    return [pair for pair in typed if cast_all(cur, table, batch_id, [pair]) is not None]


def count_rows(cur, table: tuple[str, str], batch_id: str, conditions: list[str],
               typed: list[tuple[str, str]] = (), castable: list[tuple[str, str]] | None = None,
               unique_values: str | None = None) -> list[RowCount]:
    """For each condition (from `condition_of`), the rows of the batch it holds for: one scan of the
    batch for all of them, but the rows sharing a value (the key check), each counted by a `GROUP BY`
    of its own (see the module's docstring). A condition that raises is counted alone and gets its error instead;
    the transaction stays usable.

    `typed`, the source's (column, type) pairs, lets the scan skip `ops.casts_to`, a PL/pgSQL call
    per value on PostgreSQL 15: for a column whose every value casts (`columns_that_cast`), its
    `ops.casts_to(column, type)` is `true` in every condition (its cast rule, the value there and
    not casting, is `false`: 0 rows, not scanned for), and in a condition without a
    subquery (where the name could be another table's column) `ops.try_timestamp(column)` of a
    timestamp column is its cast, as `ops.try_numeric(column)` of a numeric one. `castable`, when
    given, is that list already found for the batch (rows only left it since).

    `unique_values`, when given, are values (SQL, comma-separated, as the row queries write them)
    that no two rows of the batch share (`aim.gate.each_key_once`): rows sharing values that begin
    with them are none, counted without a scan."""
    if not conditions:
        return []
    batch = batch_sql(cur, table, batch_id)
    own = [_duplicates_count(c) for c in conditions]  # None: counted in the combined scan
    replaced: list[tuple[str, str]] = []  # (call, what it is for this batch)
    parsed: list[tuple[str, str]] = []
    if any("ops.casts_to(" in c or "ops.try_" in c for c in conditions):
        if castable is None:
            castable = columns_that_cast(cur, table, batch_id, list(typed))
        replaced = [(does_not_cast_sql(quoted(column), type_), "false") for column, type_ in castable]  # a cast rule
        replaced += [(casts_to_sql(quoted(column), type_), "true") for column, type_ in castable]
        parsed = [(f"{_PARSERS[type_]}({name})", f"{quoted(column)}::{type_}") for column, type_ in castable
                  if type_ in _PARSERS for name in (quoted(column), column)]  # names are plain (`sources`)

    def filled(template: str) -> str:  # run without parameters: % is no placeholder
        text = template.format(batch=batch)
        for call, value in _ONCE_PER_STATEMENT + replaced + ([] if _SUBQUERY.search(_LITERAL.sub("''", text))
                                                            else parsed):
            text = text.replace(call, value)
        return text

    def alone(statement: str) -> RowCount:
        outcome = _try(cur, statement)
        return RowCount(None, outcome) if isinstance(outcome, str) else RowCount(outcome[0])

    def count(i: int) -> str:
        return f"count(*) FILTER (WHERE coalesce(({filled(conditions[i])}), false))"

    found: dict[int, RowCount] = {i: RowCount(0) for i, statement in enumerate(own)
                                  if statement and unique_values and _groups_by(conditions[i], unique_values)}
    found.update({i: alone(filled(statement)) for i, statement in enumerate(own) if statement and i not in found})
    found.update({i: RowCount(0) for i, statement in enumerate(own)  # a cast rule of a column that casts
                  if not statement and filled(conditions[i]).strip() == "false"})
    combined = [i for i in range(len(conditions)) if i not in found]
    if combined:
        outcome = _try(cur, f"SELECT {', '.join(count(i) for i in combined)} FROM {batch}")
        if not isinstance(outcome, str):
            found.update(zip(combined, map(RowCount, outcome)))
        else:
            for i in combined:  # one of them fails: find which, and count the others alone
                found[i] = alone(f"SELECT {count(i)} FROM {batch}")
    return [found[i] for i in range(len(conditions))]


def _groups_by(condition: str, values: str) -> bool:
    """Whether a condition of `_duplicates_count`'s shape groups by `values` first."""
    grouped = _DUPLICATES.match(condition.strip()).group("values")
    return grouped == values or grouped.startswith(f"{values}, ")


def _duplicates_count(condition: str) -> str | None:
    """For a condition `<row> IN (SELECT <row> FROM {batch} GROUP BY ... HAVING count(*) > 1)`, a
    statement (a template for `{batch}`) counting the rows it holds for: the rows of the groups of
    more than one whose values are all known (a NULL in `<row>` matches nothing, as in the `IN`).
    None for any other condition."""
    match = _DUPLICATES.match(condition.strip())
    if not match or match.group("row").strip() not in (match.group("values"), f"({match.group('values')})"):
        return None
    return (f"SELECT coalesce(sum(rows), 0)::bigint FROM (SELECT {match.group('values')}, count(*) AS rows FROM {{batch}} "
            f"WHERE ({match.group('values')}) IS NOT NULL GROUP BY {match.group('groups')} HAVING count(*) > 1) "
            f"AS duplicated")


def sample_rows(cur, table: tuple[str, str], batch_id: str, condition: str, limit: int) -> list[dict]:
    """Up to `limit` rows of the batch the condition holds for, as column -> value (the staged text),
    without the platform's own columns: what a failed row query shows IT operations."""
    platform = ", ".join(f"'{c}'" for c in (BATCH_COLUMN, ORIGIN_COLUMN, ROW_ID_COLUMN))
    return _sample(cur, table, batch_id, f"to_jsonb(batch) - ARRAY[{platform}]", condition, limit)


def sample_values(cur, table: tuple[str, str], batch_id: str, column: str, condition: str, limit: int) -> list:
    """Up to `limit` values of `column` in the rows of the batch the condition holds for."""
    return _sample(cur, table, batch_id, quoted(column), condition, limit)


def _sample(cur, table: tuple[str, str], batch_id: str, selected: str, condition: str, limit: int) -> list:
    """`selected` of the first `limit` rows (in storage order: landing order, as staging is emptied
    after each merge) of the batch the condition holds for."""
    batch = batch_sql(cur, table, batch_id)
    # a plain WHERE (NULL is false there too), where PostgreSQL turns an IN (SELECT ...) into a join
    cur.execute(f"SELECT {selected} FROM {batch} WHERE ({condition.format(batch=batch)}) "
                f"ORDER BY {ROW_ID_COLUMN} LIMIT {int(limit)}")
    return [row[0] for row in cur.fetchall()]


def _try(cur, statement: str) -> tuple | str:
    """The statement's one row, or the database's error message (rolled back to before it)."""
    outcome = db.attempt(cur, statement, errors=psycopg2.Error)
    if isinstance(outcome, Exception):
        return (outcome.pgerror or str(outcome)).strip().splitlines()[0]
    return outcome[0]
