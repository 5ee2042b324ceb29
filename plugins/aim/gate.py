"""The quality gate's own checks, beside the Great Expectations suite: row-level rejects and volume.

Row-level rules are the `unexpected_rows_expectation`s marked `"meta": {"reject_rows": true}`,
generated from the configuration (a value that does not cast to its column's type, a watermark
in the future; `aim.generated_checks`) and in the suite (a negative count): rules that can
isolate a bad row. Before the suite runs, their rows move from staging to `ops.rejected_row` with the rule,
as long as all of them together stay within the source's `quality.max_rejected_share`; past it,
nothing moves, the rules fail in the suite like any critical check, and the batch is quarantined
whole.

Volume checks: every source (unless its `quality.batch_size` is null) has `aim:batch_size`, the
rows the batch landed against the median of the source's last merged batches that had rows (see
`sources.BatchSizeCheck`); a source with `quality.volume` also has the daily checks, each day of
the batch against the source's recent days in core (see `sources.VolumeCheck`). Every result has
the shape of a suite result, so `ops.quality_result` holds both.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg2 import sql

from aim import clock, row_scan, scan_conditions
from aim.generated_checks import cast_value_sql, quoted
from aim.sources import SourceConfig
from aim.tables import BATCH_COLUMN, ORIGIN_COLUMN, ROW_ID_COLUMN, qualified


@dataclass(frozen=True)
class RowRule:
    """A suite rule that rejects rows instead of failing the batch."""

    description: str
    query: str  # "SELECT * FROM {batch} WHERE ...", as in the suite


def each_key_once(cur, config: SourceConfig, batch_id: str, castable: list[tuple[str, str]]) -> bool:
    """True when no two rows of the batch hold one key, compared as the merge compares it (typed;
    keys that are missing or do not cast count as one NULL key): one `GROUP BY` of the key alone.
    Then the key check (key and watermark) holds for no row, and the merge has no record's versions
    to choose between. `castable`: the typed columns every value of which casts (cast directly)."""
    casts = dict(castable)
    values = ", ".join(f"{quoted(k)}::{casts[k]}" if k in casts else cast_value_sql(config, k) for k in config.key)
    cur.execute(f"SELECT NOT EXISTS (SELECT FROM {row_scan.batch_sql(cur, config.staging_table, batch_id)} "
                f"GROUP BY {values} HAVING count(*) > 1)")
    return cur.fetchone()[0]


def row_rules_from(expectations: list[dict]) -> list[RowRule]:
    """The row-level reject rules among `expectations` (the generated ones and the suite's), in order."""
    return [
        RowRule(e.get("description") or e["kwargs"]["unexpected_rows_query"], e["kwargs"]["unexpected_rows_query"])
        for e in expectations
        if e.get("type") == "unexpected_rows_expectation" and (e.get("meta") or {}).get("reject_rows")
    ]


def row_rules(suite_path: Path) -> list[RowRule]:
    """The suite file's own row-level reject rules, in suite order (the generated ones not included)."""
    return row_rules_from(json.loads(Path(suite_path).read_text(encoding="utf-8")).get("expectations", []))


def _result(expectation: str, description: str, *, success: bool, severity: str, observed: Any = None,
            unexpected: int | None = None, sample: list | None = None, column: str | None = None) -> dict:
    return {
        "expectation": expectation, "description": description, "column_name": column, "kwargs": {},
        "severity": severity, "success": success, "observed_value": observed, "unexpected_count": unexpected,
        "unexpected_sample": sample, "error": None,
    }


def _rule_sql(cur, config: SourceConfig, rule: RowRule, batch_id: str) -> str:
    return rule.query.replace("{batch}", row_scan.batch_sql(cur, config.staging_table, batch_id))


def _rules_matching(cur, config: SourceConfig, rules: list[RowRule], batch_id: str,
                    castable: list[tuple[str, str]] | None,
                    already_counted: dict[str, row_scan.RowCount] | None) -> list[RowRule]:
    """The rules that may match rows of the batch, in order: one scan counts every rule of the
    usual shape (`aim.row_scan`), none when `already_counted` holds them all, and only those that
    match, or that scan could not count (another shape), are read row by row. A rule whose SQL
    fails is left to the suite, which reports its error as a failed check."""
    conditions = [row_scan.condition_of(rule.query) for rule in rules]
    shaped = [c for c in conditions if c is not None]
    counted = iter(scan_conditions.known(already_counted, shaped) or row_scan.count_rows(
        cur, config.staging_table, batch_id, shaped, config.typed_columns, castable))
    return [rule for rule, condition in zip(rules, conditions) if condition is None or next(counted).rows]


def reject_rows(cur, config: SourceConfig, rules: list[RowRule], *, batch_id: str, run_id: str,
                landed: int, castable: list[tuple[str, str]] | None = None,
                already_counted: dict[str, row_scan.RowCount] | None = None) -> tuple[int, list[dict]]:
    """Move the rows the rules match to `ops.rejected_row`, if their share is within the limit.

    Returns (rows rejected, results): one result per rule that matched rows, and one for the
    share as a whole (critical, failed when past the limit, in which case nothing moved).
    `already_counted`: the batch's conditions counted as it is now (`aim.scan_conditions.count_suite`).
    """
    staging = qualified(config.staging_table)
    matching = _rules_matching(cur, config, rules, batch_id, castable, already_counted)
    matched: dict[str, int] = {}
    ids: set[str] = set()  # the rows' ctids
    for rule in matching:
        cur.execute(f"SELECT {ROW_ID_COLUMN} FROM ({_rule_sql(cur, config, rule, batch_id)}) AS bad")
        found = {r[0] for r in cur.fetchall()}
        if found:
            matched[rule.description] = len(found)
            ids |= found
    if not ids:
        return 0, []
    limit = config.quality.max_rejected_share
    share = len(ids) / landed if landed else 1.0
    within = share <= limit
    results = [
        _result("aim:row_rule_rejects", f"{description}: rows set aside", success=within, severity="warning",
                unexpected=count, observed=count)
        for description, count in matched.items()
    ]
    results.append(_result(
        "aim:rejected_share", f"rows set aside by row-level rules stay within {limit:.1%} of the batch",
        success=within, severity="critical", observed=round(share, 6), unexpected=len(ids),
    ))
    if not within:
        return 0, results
    for rule in matching:  # the first rule that matches a row names the reason; a row moves once
        head = sql.SQL("WITH bad AS (SELECT {} FROM (").format(sql.Identifier(ROW_ID_COLUMN)).as_string(cur)
        tail = sql.SQL(
            ") AS matched), moved AS (DELETE FROM {staging} s USING bad WHERE s.ctid = bad.{row_id} "
            "RETURNING s.*) "
            "INSERT INTO ops.rejected_row (source, batch_id, run_id, rule, origin, row_data) "
            "SELECT %(source)s, %(batch_id)s, %(run_id)s, %(rule)s, {origin}, "
            "to_jsonb(moved) - {batch_col} - {origin_name} FROM moved"
        ).format(
            row_id=sql.Identifier(ROW_ID_COLUMN), staging=staging, origin=sql.Identifier(ORIGIN_COLUMN),
            batch_col=sql.Literal(BATCH_COLUMN), origin_name=sql.Literal(ORIGIN_COLUMN),
        ).as_string(cur)
        # the rule's SQL is the suite's own text: escape % so it is not taken for a parameter
        statement = head + _rule_sql(cur, config, rule, batch_id).replace("%", "%%") + tail
        cur.execute(
            statement, {"source": config.source, "batch_id": batch_id, "run_id": run_id, "rule": rule.description}
        )
    return len(ids), results


@dataclass
class ValidationOutcome:
    """Per-expectation results of one batch, and whether its critical expectations all passed."""

    suite: str
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_critical(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["success"] and r["severity"] == "critical"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["success"] and r["severity"] != "critical"]

    @property
    def success(self) -> bool:
        return not self.failed_critical

    def failure_message(self, source: str, batch_id: str) -> str:
        """One message that names the source, the batch and every failed critical expectation."""
        parts = []
        for r in self.failed_critical:
            what = r["expectation"] + (f" on {r['column_name']}" if r["column_name"] else "")
            if r.get("description"):
                what += f" ({r['description']})"
            detail = []
            if r.get("unexpected_count") is not None:
                detail.append(f"{r['unexpected_count']} unexpected")
            if r.get("unexpected_sample"):
                detail.append(f"e.g. {json.dumps(r['unexpected_sample'][:3], default=str)}")
            if r.get("error"):
                detail.append(f"error: {r['error']}")
            parts.append(what + (": " + ", ".join(detail) if detail else ""))
        return (
            f"quality gate failed for source {source}, batch {batch_id}: "
            f"{len(parts)} critical expectation(s) of suite {self.suite} failed: " + "; ".join(parts)
        )


BATCH_SIZE_MIN_HISTORY = 3  # merged batches with rows needed before a batch's size is judged


def _rows_landed(cur, config: SourceConfig, batch_id: str) -> int:
    """The rows the batch landed: `ops.batch.rows_landed`, registered by landing before the gate
    runs; for a batch never registered, its rows in staging plus those row-level rules set aside."""
    cur.execute("SELECT rows_landed FROM ops.batch WHERE batch_id = %s", (batch_id,))
    row = cur.fetchone()
    if row is not None:
        return row[0]
    cur.execute(
        sql.SQL("SELECT (SELECT count(*) FROM {} WHERE {} = %(batch_id)s) "
                "+ (SELECT count(*) FROM ops.rejected_row WHERE batch_id = %(batch_id)s)").format(
            qualified(config.staging_table), sql.Identifier(BATCH_COLUMN)),
        {"batch_id": batch_id},
    )
    return cur.fetchone()[0]


def batch_size_results(cur, config: SourceConfig, *, batch_id: str) -> list[dict]:
    """The batch's size against the source's usual delivery (`quality.batch_size`): one
    `aim:batch_size` result, or none when the source's `batch_size` is null.

    The batch fails (with the configured severity, a warning by default) when it landed fewer rows
    than `min_share` times the median `rows_landed` of the source's last `lookback_batches` merged
    batches that had rows (latest `merged_at` first; the batch itself never counts). A batch of 0
    rows is judged like any other. With fewer than `BATCH_SIZE_MIN_HISTORY` (3) such batches there
    is not enough history: the result is kept, and passes, with an observed value that says so
    (text) instead of the rows landed (a number), so `ops.quality_result` shows the check was not
    judged rather than omitting it.
    """
    check = config.quality.batch_size
    if check is None:
        return []
    rows = _rows_landed(cur, config, batch_id)
    cur.execute(
        """
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY rows_landed), count(*) FROM (
            SELECT rows_landed FROM ops.batch
            WHERE source = %(source)s AND status = 'merged' AND rows_landed > 0 AND batch_id <> %(batch_id)s
            ORDER BY merged_at DESC NULLS LAST, landed_at DESC, batch_id DESC
            LIMIT %(lookback)s
        ) AS recent
        """,
        {"source": config.source, "batch_id": batch_id, "lookback": check.lookback_batches},
    )
    typical, history = cur.fetchone()
    if history < BATCH_SIZE_MIN_HISTORY:
        return [_result(
            "aim:batch_size",
            f"the batch has at least {check.min_share * 100:g}% of the typical rows of the source's last "
            f"{check.lookback_batches} merged batches (not judged: not enough history)",
            success=True, severity=check.severity,
            observed=f"{rows} rows; not enough history: {history} merged batch(es) with rows, "
                     f"{BATCH_SIZE_MIN_HISTORY} needed",
        )]
    floor = check.min_share * typical
    return [_result(
        "aim:batch_size",
        f"the batch has at least {check.min_share * 100:g}% of the typical {typical:g} rows "
        f"(median of the last {history} merged batches): {floor:g} rows",
        success=rows >= floor, severity=check.severity, observed=rows,
    )]


def volume_results(cur, config: SourceConfig, *, batch_id: str) -> list[dict]:
    """The batch's volume checks: its size against the source's usual batch (`batch_size_results`,
    every source whose `quality.batch_size` is set), then, for a source with `quality.volume`,
    day-by-day volume of the batch (with the rows core keeps for the same days) against history."""
    results = batch_size_results(cur, config, batch_id=batch_id)
    volume = config.quality.volume
    if volume is None:
        return results
    # the staged text may not parse (rows past the reject limit stay in the batch): such a day is NULL, not an error
    day_of = sql.SQL("ops.try_timestamp({})::date").format(sql.Identifier(volume.date_column))
    staged_key = sql.SQL("ARRAY[{}]").format(sql.SQL(", ").join(sql.Identifier(k) for k in config.key))
    core_key = sql.SQL("ARRAY[{}]").format(
        sql.SQL(", ").join(sql.SQL("c.{}::text").format(sql.Identifier(k)) for k in config.key)
    )
    date_col = sql.Identifier(volume.date_column)
    today = clock.local_today()
    cur.execute(
        sql.SQL("""
        WITH batch AS (
            SELECT {staged_key} AS k, {day} AS day FROM {staging}
            WHERE {batch_col} = %(batch_id)s AND {day} IS NOT NULL
        ), batch_days AS (
            SELECT min(day) AS first_day, max(day) AS last_day FROM batch
        ), history AS (  -- core's days before the batch's, within the lookback
            SELECT c.{date_col}::date AS day, count(*) AS n FROM {core} c, batch_days
            WHERE c.{date_col} >= first_day - %(lookback)s AND c.{date_col} < first_day
            GROUP BY 1
        ), days AS (  -- the batch's days: its rows, plus the rows core keeps for those days
            SELECT day, count(*) AS n FROM (
                SELECT day FROM batch
                UNION ALL
                SELECT c.{date_col}::date FROM {core} c, batch_days
                WHERE c.{date_col} >= first_day AND c.{date_col} < last_day + 1
                  AND NOT EXISTS (SELECT 1 FROM batch WHERE batch.k = {core_key})
            ) AS batch_and_core GROUP BY day
        ), calendar AS (
            SELECT d::date AS day FROM batch_days,
                   generate_series(greatest(first_day - %(lookback)s,  -- not before the source's first day
                                            least((SELECT min({date_col})::date FROM {core}), first_day)),
                                   last_day, interval '1 day') AS d
        )
        SELECT (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM history),
               (SELECT count(*) FROM history),
               coalesce((SELECT json_agg(json_build_array(day, n) ORDER BY day) FROM days), '[]'),
               coalesce((SELECT json_agg(c.day ORDER BY c.day) FROM calendar c
                         WHERE c.day < %(today)s::date - %(filling)s
                           AND NOT EXISTS (SELECT 1 FROM days WHERE days.day = c.day)
                           AND NOT EXISTS (SELECT 1 FROM history WHERE history.day = c.day)), '[]')
        """).format(
            staged_key=staged_key, core_key=core_key, day=day_of, staging=qualified(config.staging_table),
            batch_col=sql.Identifier(BATCH_COLUMN), date_col=date_col, core=qualified(config.core_table),
        ),
        {"batch_id": batch_id, "lookback": volume.lookback_days, "filling": volume.still_filling_days,
         "today": today},
    )
    typical, history_days, days, missing = cur.fetchone()
    column = volume.date_column
    results.append(_result(
        "aim:no_missing_day", f"no whole day without rows in {column} (older than {volume.still_filling_days} days)",
        success=not missing, severity="critical", observed=len(missing), unexpected=len(missing),
        sample=missing[:10], column=column,
    ))
    if not typical or history_days < 7:  # not enough history to judge a day's volume
        return results
    spikes = [[d, n] for d, n in days if n > volume.spike_factor * typical]
    drops = [[d, n] for d, n in days if n < volume.drop_share * typical]
    filling = [d for d, _ in drops if (today - dt.date.fromisoformat(d)).days <= volume.still_filling_days]
    results.append(_result(
        "aim:daily_volume_spike", f"no day has more than {volume.spike_factor:g} times the typical {typical:g} rows",
        success=not spikes, severity="critical", observed=typical, unexpected=len(spikes), sample=spikes[:10],
        column=column,
    ))
    results.append(_result(
        "aim:daily_volume_drop",
        f"no day has under {volume.drop_share:.0%} of the typical {typical:g} rows"
        + (f" ({len(filling)} recent day(s) may still be filling in)" if filling else ""),
        success=not drops, severity="warning", observed=typical, unexpected=len(drops), sample=drops[:10],
        column=column,
    ))
    return results


def rows_set_aside(cur, batch_id: str) -> int:
    """How many rows of the batch row-level rules have set aside in `ops.rejected_row` (on every attempt)."""
    cur.execute("SELECT count(*) FROM ops.rejected_row WHERE batch_id = %s", (batch_id,))
    return cur.fetchone()[0]


def file_results(cur, *, batch_id: str) -> list[dict]:
    """Warnings about the batch's files: a file with no data rows, a file with columns nobody reads."""
    cur.execute(
        "SELECT file_key, rows_landed, extra_columns FROM ops.source_file WHERE batch_id = %s ORDER BY file_key",
        (batch_id,),
    )
    files = cur.fetchall()
    if not files:
        return []
    empty = [key for key, rows, _ in files if not rows]
    extra = [f"{key}: {', '.join(columns)}" for key, _, columns in files if columns]
    return [
        _result("aim:file_has_rows", "every file delivered has data rows", success=not empty, severity="warning",
                unexpected=len(empty), sample=empty[:10]),
        _result("aim:file_extra_columns", "files have no columns the source does not read (they are ignored)",
                success=not extra, severity="warning", unexpected=len(extra), sample=extra[:10]),
    ]
