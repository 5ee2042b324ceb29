"""The quality gate's own checks (`aim.gate`), directly against a real PostgreSQL.

- `row_rules` / `reject_rows`: rows that row-level rules match move to `ops.rejected_row`, each
  once, under the first rule that matches, while their share stays within the source's
  `quality.max_rejected_share`; past it nothing moves and `aim:rejected_share` fails (critical).
- `volume_results`: a day far above history fails, a day far below is a warning, a whole day
  missing older than `still_filling_days` fails, a recent one does not; "today" is `aim.clock`.
- `batch_size_results` (part of `volume_results` for every source): a batch under `min_share` of
  the median rows of the source's last merged batches fails with the configured severity; with
  under 3 such batches it passes, saying there is not enough history; `batch_size: null` turns it off.
- `file_results`: a file without data rows, and a file with extra columns, are warnings.

Every test has its own warehouse database; the batch is staged with `aim.staging.copy_chunks`
(or landed from real files), history is written into core directly.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from psycopg2.extras import execute_values

from aim import db, gate
from aim.extract.filestore import LocalStore
from aim.landing import land
from aim.migrations import migrate
from aim.sources import BatchSizeCheck, SourceConfig, load_source_config
from aim.staging import copy_chunks
from aim.tables import ensure_tables
from aim_demo.databases import query

SOURCE = "qa_calls"
RUN_ID = "manual__qa_gate"
VOLUME = {"date_column": "call_day", "lookback_days": 28, "still_filling_days": 2, "spike_factor": 10,
          "drop_share": 0.1}

# The suite's row-level rules, in suite order; the description is what ops.rejected_row.rule holds.
UNITS_RULE = "units is a whole number, not negative"
DAY_RULE = "call_day parses as a date"
NOTE_RULE = "note is not a TODO placeholder"
SUITE = {
    "name": SOURCE,
    "expectations": [
        {"type": "expect_column_values_to_be_unique", "severity": "critical", "kwargs": {"column": "call_id"}},
        {"type": "unexpected_rows_expectation", "description": UNITS_RULE, "severity": "critical",
         "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE units IS NOT NULL AND units !~ '^[0-9]+$'"},
         "meta": {"reject_rows": True}},
        {"type": "unexpected_rows_expectation", "description": "call_day is not in the future", "severity": "critical",
         "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE ops.try_timestamp(call_day) > now()"}},
        {"type": "unexpected_rows_expectation", "description": DAY_RULE, "severity": "critical",
         "kwargs": {"unexpected_rows_query":
                    "SELECT * FROM {batch} WHERE call_day IS NOT NULL AND ops.try_timestamp(call_day) IS NULL"},
         "meta": {"reject_rows": True}},
        {"type": "unexpected_rows_expectation", "description": "units under 100", "severity": "warning",
         "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE units ~ '^[0-9]+$' AND units::int >= 100"},
         "meta": {"reject_rows": False}},
        # a % in the rule's own SQL must reach PostgreSQL as written, not be taken for a parameter
        {"type": "unexpected_rows_expectation", "description": NOTE_RULE, "severity": "critical",
         "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE note LIKE 'TODO%'"},
         "meta": {"reject_rows": True}},
    ],
}


def calls_source_raw(*, max_rejected_share: float = 0.01, volume: dict | None = None) -> dict:
    """A tiny file source, as its YAML would read: call id (key), day (date), units (integer), note."""
    quality: dict = {"max_rejected_share": max_rejected_share}
    if volume is not None:
        quality["volume"] = volume
    return {
        "source": SOURCE, "department": "Quality assurance", "system": "test calls", "kind": "file",
        "schedule": None, "owner": "qa",
        "extract": {"location": "calls", "pattern": "calls_*.csv", "format": {"kind": "csv"}},
        "key": ["call_id"],
        "columns": [
            {"name": "call_id", "source": "Call ID", "privacy": "public"},
            {"name": "call_day", "source": "Call Day", "type": "date", "privacy": "public"},
            {"name": "units", "source": "Units", "type": "integer", "privacy": "public"},
            {"name": "note", "source": "Note", "privacy": "public"},
        ],
        "expectation_suite": f"{SOURCE}.json",
        "quality": quality,
    }


def calls_source(*, max_rejected_share: float = 0.01, volume: dict | None = None) -> SourceConfig:
    """A tiny file source: call id (key), day (date), units (integer), free-text note."""
    return SourceConfig.model_validate(calls_source_raw(max_rejected_share=max_rejected_share, volume=volume))


@pytest.fixture
def warehouse(new_database) -> str:
    """A fresh, migrated warehouse database for this test alone."""
    url = new_database("aim_gate")
    migrate(url)
    return url


@pytest.fixture
def suite_path(tmp_path) -> Path:
    path = tmp_path / f"{SOURCE}.json"
    path.write_text(json.dumps(SUITE), encoding="utf-8")
    return path


def stage(url: str, config: SourceConfig, batch_id: str, rows: list[tuple], origin: str = "calls_1.csv") -> int:
    with db.transaction(url) as conn, conn.cursor() as cur:
        ensure_tables(cur, config)
        return copy_chunks(cur, config.staging_table, config.column_names, batch_id, [rows], origin=origin)


def good_rows(n: int, day: dt.date, prefix: str = "ok") -> list[tuple]:
    return [(f"{prefix}-{i}", day.isoformat(), str(i % 7), None) for i in range(n)]


def staged(url: str, batch_id: str) -> list[str]:
    return sorted(r[0] for r in query(url, "SELECT call_id FROM staging.qa_calls WHERE _batch_id = %s", (batch_id,)))


def by_expectation(results: list[dict]) -> dict[str, dict]:
    found = {}
    for r in results:
        assert r["expectation"] not in found or r["expectation"] == "aim:row_rule_rejects", r
        found.setdefault(r["expectation"], r)
    return found


# ---- row-level rules ----------------------------------------------------------------------------

def test_row_rules_are_the_marked_rules_in_suite_order(suite_path):
    rules = gate.row_rules(suite_path)
    assert [r.description for r in rules] == [UNITS_RULE, DAY_RULE, NOTE_RULE], \
        "only unexpected_rows_expectations with meta.reject_rows true are row-level rules, in suite order"
    assert all("{batch}" in r.query for r in rules), "a rule keeps the suite's own SQL"


def test_rows_within_the_limit_move_once_under_the_first_matching_rule(warehouse, suite_path, today):
    config = calls_source(max_rejected_share=0.05)
    day = today - dt.timedelta(days=3)
    both = ("both-bad", "31/02/2026", "-3", "negative units and a day that does not parse")
    day_only = ("day-bad", "the 3rd", "2", None)
    note_only = ("note-bad", day.isoformat(), "1", "TODO fill in")
    rows = good_rows(97, day) + [both, day_only, note_only]
    landed = stage(warehouse, config, "batch-a", rows, origin="calls_2026.csv")
    stage(warehouse, config, "batch-b", [("other-bad", day.isoformat(), "x", None)])  # another batch's bad row

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        rejected, results = gate.reject_rows(cur, config, gate.row_rules(suite_path), batch_id="batch-a",
                                             run_id=RUN_ID, landed=landed)

    assert rejected == 3, "the count returned is the rows set aside"
    moved = query(warehouse, "SELECT row_data, rule, origin, source, batch_id, run_id FROM ops.rejected_row")
    assert sorted((r[0]["call_id"], r[1]) for r in moved) == sorted([
        ("both-bad", UNITS_RULE), ("day-bad", DAY_RULE), ("note-bad", NOTE_RULE),
    ]), "each matching row moves once, under the first rule (in suite order) that matches it"
    landed_as = {r[0]: dict(zip(config.column_names, r)) for r in (both, day_only, note_only)}
    for row_data, _, origin, source, batch_id, run_id in moved:
        assert row_data == landed_as[row_data["call_id"]], "ops.rejected_row keeps the row as landed, data columns only"
        assert (origin, source, batch_id, run_id) == ("calls_2026.csv", SOURCE, "batch-a", RUN_ID), \
            "a rejected row names its file, source, batch and run"
    assert staged(warehouse, "batch-a") == sorted(r[0] for r in good_rows(97, day)), \
        "the rest of the batch stays in staging, without the rows set aside"
    assert staged(warehouse, "batch-b") == ["other-bad"], "rows of other batches are never touched"
    share = by_expectation(results)["aim:rejected_share"]
    assert (share["success"], share["severity"], share["unexpected_count"]) == (True, "critical", 3), \
        "within the limit the share check passes and counts the rows set aside"


@pytest.mark.parametrize("bad, moves", [(1, True), (2, False)], ids=["at-the-limit", "past-the-limit"])
def test_the_share_limit_is_inclusive(warehouse, suite_path, today, bad, moves):
    config = calls_source(max_rejected_share=0.01)
    day = today - dt.timedelta(days=3)
    rows = good_rows(100 - bad, day) + [(f"bad-{i}", day.isoformat(), "many", None) for i in range(bad)]
    landed = stage(warehouse, config, "batch-a", rows)

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        rejected, results = gate.reject_rows(cur, config, gate.row_rules(suite_path), batch_id="batch-a",
                                             run_id=RUN_ID, landed=landed)

    assert (rejected, len(query(warehouse, "SELECT 1 FROM ops.rejected_row"))) == ((bad, bad) if moves else (0, 0)), \
        "rows set aside may be at most max_rejected_share of the batch (1 of 100 at 1% moves, 2 of 100 do not)"
    assert by_expectation(results)["aim:rejected_share"]["success"] is moves


def test_a_batch_past_the_limit_is_kept_whole_and_fails_the_share_check(warehouse, suite_path, today):
    config = calls_source(max_rejected_share=0.01)
    day = today - dt.timedelta(days=4)
    bad = [("units-bad", day.isoformat(), "seven", None), ("day-bad", "2026-13-45", "1", None),
           ("note-bad", day.isoformat(), "1", "TODO")]
    rows = good_rows(97, day) + bad
    landed = stage(warehouse, config, "batch-a", rows)

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        rejected, results = gate.reject_rows(cur, config, gate.row_rules(suite_path), batch_id="batch-a",
                                             run_id=RUN_ID, landed=landed)

    assert rejected == 0, "past the limit nothing is set aside"
    assert query(warehouse, "SELECT count(*) FROM ops.rejected_row") == [(0,)], \
        "past the limit nothing moves to ops.rejected_row"
    assert staged(warehouse, "batch-a") == sorted(r[0] for r in rows), "past the limit every row stays in staging"
    share = by_expectation(results)["aim:rejected_share"]
    assert (share["success"], share["severity"]) == (False, "critical"), \
        "past the limit aim:rejected_share is a failed critical check (the batch is quarantined whole)"
    assert share["unexpected_count"] == len(bad) and share["observed_value"] == pytest.approx(len(bad) / len(rows)), \
        "the share check reports how many rows (and what share) the rules matched"
    per_rule = {r["description"]: r for r in results if r["expectation"] == "aim:row_rule_rejects"}
    assert {d.split(":")[0] for d in per_rule} == {UNITS_RULE, DAY_RULE, NOTE_RULE}, "one result per rule that matched"
    assert not any(r["success"] for r in per_rule.values())


def test_a_clean_batch_sets_nothing_aside(warehouse, suite_path, today):
    config = calls_source()
    landed = stage(warehouse, config, "batch-a", good_rows(20, today - dt.timedelta(days=3)))
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        assert gate.reject_rows(cur, config, gate.row_rules(suite_path), batch_id="batch-a", run_id=RUN_ID,
                                landed=landed) == (0, []), "no rule matched: nothing set aside, nothing to report"
    assert len(staged(warehouse, "batch-a")) == 20


# ---- daily volume against history ---------------------------------------------------------------

def history_counts(first_day: dt.date, lookback: int = VOLUME["lookback_days"], skip: tuple = ()) -> dict:
    """Rows per day for every day of the lookback before `first_day`: 40 to 60, varying."""
    return {first_day - dt.timedelta(days=k): 40 + (k * 7) % 21 for k in range(1, lookback + 1)
            if first_day - dt.timedelta(days=k) not in skip}


def put_core(url: str, config: SourceConfig, counts: dict[dt.date, int], prefix: str = "h") -> None:
    """History straight into core.<source>: `counts[day]` rows on each day."""
    rows = [(f"{prefix}-{day:%Y%m%d}-{i}", day, i % 5, None, "history-batch", "history-run")
            for day, n in counts.items() for i in range(n)]
    with db.transaction(url) as conn, conn.cursor() as cur:
        ensure_tables(cur, config)
        execute_values(cur, "INSERT INTO core.qa_calls (call_id, call_day, units, note, _batch_id, _run_id) VALUES %s",
                       rows)


def day_rows(day: dt.date, n: int, prefix: str = "b") -> list[tuple]:
    return [(f"{prefix}-{day:%Y%m%d}-{i}", day.isoformat(), "1", None) for i in range(n)]


def volume(url: str, config: SourceConfig, batch_id: str) -> dict[str, dict]:
    with db.transaction(url) as conn, conn.cursor() as cur:
        return by_expectation(gate.volume_results(cur, config, batch_id=batch_id))


@pytest.mark.clock
def test_a_day_far_above_history_fails_the_batch(warehouse, today):
    config = calls_source(volume=VOLUME)
    day = today - dt.timedelta(days=5)
    history = history_counts(day)
    put_core(warehouse, config, history)
    spike = 2 * int(VOLUME["spike_factor"] * max(history.values()))  # far above even the busiest day of history
    stage(warehouse, config, "batch-a", day_rows(day, spike))

    results = volume(warehouse, config, "batch-a")

    check = results["aim:daily_volume_spike"]
    assert (check["success"], check["severity"]) == (False, "critical"), \
        "a day many times the busiest day of history is a failed critical check"
    assert check["unexpected_sample"] == [[day.isoformat(), spike]], "the spike names the day and its row count"
    assert results["aim:daily_volume_drop"]["success"] and results["aim:no_missing_day"]["success"]


@pytest.mark.clock
@pytest.mark.parametrize("pick", [max, min], ids=["busiest-day", "quietest-day"])
def test_a_day_like_history_passes(warehouse, today, pick):
    config = calls_source(volume=VOLUME)
    day = today - dt.timedelta(days=5)
    history = history_counts(day)
    put_core(warehouse, config, history)
    stage(warehouse, config, "batch-a", day_rows(day, pick(history.values())))

    results = volume(warehouse, config, "batch-a")

    assert {name: r["success"] for name, r in results.items()} == {
        "aim:no_missing_day": True, "aim:daily_volume_spike": True, "aim:daily_volume_drop": True,
        "aim:batch_size": True,  # no merged batches in ops.batch: not enough history to judge the size
    }, "a day within the range history has seen is neither a spike nor a drop"


@pytest.mark.clock
def test_a_day_far_below_history_is_a_warning(warehouse, today):
    config = calls_source(volume=VOLUME)
    day = today - dt.timedelta(days=5)
    history = history_counts(day)
    put_core(warehouse, config, history)
    assert 1 < VOLUME["drop_share"] * min(history.values()) / 2, "precondition: one row is far below the quietest day"
    stage(warehouse, config, "batch-a", day_rows(day, 1))

    results = volume(warehouse, config, "batch-a")

    drop = results["aim:daily_volume_drop"]
    assert (drop["success"], drop["severity"]) == (False, "warning"), \
        "a day far below history is a warning, not a failure: the batch goes on"
    assert drop["unexpected_sample"] == [[day.isoformat(), 1]], "the warning names the day and its rows"
    assert "still be filling" not in drop["description"], f"{day} is older than still_filling_days: not filling in"
    assert results["aim:daily_volume_spike"]["success"] and results["aim:no_missing_day"]["success"]


@pytest.mark.clock
def test_a_recent_day_far_below_history_says_it_may_still_be_filling_in(warehouse, today):
    config = calls_source(volume=VOLUME)
    day = today - dt.timedelta(days=1)
    put_core(warehouse, config, history_counts(day))
    stage(warehouse, config, "batch-a", day_rows(day, 1))

    drop = volume(warehouse, config, "batch-a")["aim:daily_volume_drop"]

    assert (drop["success"], drop["severity"]) == (False, "warning")
    assert "1 recent day(s) may still be filling in" in drop["description"], \
        "a drop within still_filling_days says the day may still be filling in"


@pytest.mark.clock
def test_a_late_row_for_a_day_core_holds_is_counted_with_that_day(warehouse, today):
    config = calls_source(volume=VOLUME)
    day = today - dt.timedelta(days=5)
    history = history_counts(day)
    put_core(warehouse, config, {**history, day: min(history.values())})  # the day itself was loaded before
    stage(warehouse, config, "batch-a", day_rows(day, 1, prefix="late"))  # one call that came in late

    results = volume(warehouse, config, "batch-a")

    assert results["aim:daily_volume_drop"]["success"], \
        "a day of the batch counts its rows plus the rows core keeps for that day: one late row is not a drop"


@pytest.mark.clock
def test_a_resent_day_is_counted_once(warehouse, today):
    config = calls_source(volume=VOLUME)
    day = today - dt.timedelta(days=5)
    history = history_counts(day)
    on_day = int(VOLUME["spike_factor"] * min(history.values())) - 1  # busy, but never a spike whatever the median
    assert 2 * on_day > VOLUME["spike_factor"] * max(history.values()), "precondition: counted twice it is a spike"
    put_core(warehouse, config, {**history, day: on_day})
    resent = [(f"h-{day:%Y%m%d}-{i}", day.isoformat(), "2", None) for i in range(on_day)]  # core's keys again
    stage(warehouse, config, "batch-a", resent + day_rows(day, 1, prefix="late"))

    results = volume(warehouse, config, "batch-a")

    assert results["aim:daily_volume_spike"]["success"], \
        "rows the batch re-sends under keys core already holds are counted once, not twice"


@pytest.mark.clock
def test_a_whole_missing_day_older_than_still_filling_fails_the_batch(warehouse, today):
    config = calls_source(volume=VOLUME)
    day = today - dt.timedelta(days=5)
    lost = day - dt.timedelta(days=10)
    put_core(warehouse, config, history_counts(day, skip=(lost,)))
    stage(warehouse, config, "batch-a", day_rows(day, 50))

    check = volume(warehouse, config, "batch-a")["aim:no_missing_day"]

    assert (check["success"], check["severity"]) == (False, "critical"), \
        "a whole day without rows, older than still_filling_days, is data lost: a failed critical check"
    assert check["unexpected_sample"] == [lost.isoformat()] and check["unexpected_count"] == 1, \
        "the check names the missing day"


@pytest.mark.clock
def test_recent_missing_days_are_late_not_lost_by_the_platform_clock(warehouse, today, clock, monkeypatch):
    config = calls_source(volume=VOLUME)
    recent = [today - dt.timedelta(days=k) for k in (1, 2)]  # within still_filling_days (2) of today
    put_core(warehouse, config, history_counts(today, skip=tuple(recent)))
    stage(warehouse, config, "batch-a", day_rows(today, 50))

    check = volume(warehouse, config, "batch-a")["aim:no_missing_day"]
    assert check["success"], f"days within still_filling_days of today ({today}) may still arrive: not a failure"

    later = clock + dt.timedelta(days=VOLUME["still_filling_days"] + 1)
    monkeypatch.setenv("AIM_NOW", later.isoformat())  # the same batch, judged days later by the platform's clock
    check = volume(warehouse, config, "batch-a")["aim:no_missing_day"]
    assert (check["success"], sorted(check["unexpected_sample"])) == (False, [d.isoformat() for d in sorted(recent)]), \
        "'today' comes from aim.clock (AIM_NOW): once the days are old enough, their absence fails the batch"


@pytest.mark.clock
def test_too_little_history_judges_no_day_by_volume(warehouse, today):
    config = calls_source(volume=VOLUME)
    day = today - dt.timedelta(days=5)
    put_core(warehouse, config, history_counts(day, lookback=3))  # a new source: three days of history
    stage(warehouse, config, "batch-a", day_rows(day, 2 * int(VOLUME["spike_factor"]) * 60))

    results = volume(warehouse, config, "batch-a")

    assert set(results) - {"aim:batch_size"} == {"aim:no_missing_day"}, \
        "with under a week of history no day is called a spike or a drop"


# ---- batch size against the source's usual delivery ---------------------------------------------

USUAL = [1000, 980, 1020, 1010, 990]  # rows landed by the source's recent merged batches: median 1000


def put_batches(url: str, sizes: list[int], *, status: str = "merged", source: str = SOURCE,
                prefix: str = "old", days_ago: int = 1) -> None:
    """Batches straight into ops.batch, the last of `sizes` merged most recently (`days_ago` days back)."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        for i, rows in enumerate(sizes):
            age = days_ago + len(sizes) - 1 - i
            cur.execute(
                "INSERT INTO ops.batch (batch_id, source, run_id, status, rows_landed, landed_at, merged_at) "
                "VALUES (%s, %s, 'history-run', %s, %s, now() - make_interval(days => %s), "
                "        CASE WHEN %s = 'merged' THEN now() - make_interval(days => %s) END)",
                (f"{prefix}-{i}", source, status, rows, age, status, age),
            )


def land_batch(url: str, config: SourceConfig, batch_id: str, n: int, day: dt.date) -> None:
    """Stage `n` rows and register the batch as landed, as landing does before the gate runs."""
    stage(url, config, batch_id, day_rows(day, n))
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ops.batch (batch_id, source, run_id, status, rows_landed) VALUES (%s, %s, %s, 'landed', %s)",
            (batch_id, config.source, RUN_ID, n),
        )


def with_batch_size(config: SourceConfig, check: BatchSizeCheck | None) -> SourceConfig:
    return config.model_copy(update={"quality": config.quality.model_copy(update={"batch_size": check})})


def batch_size(url: str, config: SourceConfig, batch_id: str) -> dict:
    with db.transaction(url) as conn, conn.cursor() as cur:
        results = gate.batch_size_results(cur, config, batch_id=batch_id)
    assert [r["expectation"] for r in results] == ["aim:batch_size"], "one batch-size result per batch"
    return results[0]


def test_the_default_checks_batch_size_as_a_warning():
    assert calls_source().quality.batch_size == BatchSizeCheck(min_share=0.1, lookback_batches=14, severity="warning")


@pytest.mark.parametrize("rows", [10, 0], ids=["a-sliver", "empty"])
def test_a_batch_far_below_the_usual_delivery_is_a_warning(warehouse, today, rows):
    config = calls_source()
    put_batches(warehouse, USUAL)
    land_batch(warehouse, config, "batch-a", rows, today - dt.timedelta(days=1))

    check = batch_size(warehouse, config, "batch-a")

    assert (check["success"], check["severity"]) == (False, "warning"), \
        f"{rows} rows against a usual 1000 (under 10% of it) is a failed warning-level check"
    assert check["observed_value"] == rows, "the observed value is the rows the batch landed"
    assert "10%" in check["description"] and "1000" in check["description"], \
        "the description names min_share and the typical rows"


def test_a_critical_batch_size_check_fails_the_batch(warehouse, today):
    config = with_batch_size(calls_source(), BatchSizeCheck(severity="critical"))
    put_batches(warehouse, USUAL)
    land_batch(warehouse, config, "batch-a", 10, today - dt.timedelta(days=1))

    check = batch_size(warehouse, config, "batch-a")

    assert (check["success"], check["severity"]) == (False, "critical"), "severity: critical fails the batch"


@pytest.mark.parametrize("rows", [900, 100, 5000], ids=["a-quiet-day", "exactly-min-share", "a-big-backfill"])
def test_a_batch_of_usual_size_or_more_passes(warehouse, today, rows):
    config = calls_source()
    put_batches(warehouse, USUAL)
    land_batch(warehouse, config, "batch-a", rows, today - dt.timedelta(days=1))

    check = batch_size(warehouse, config, "batch-a")

    assert check["success"] and check["observed_value"] == rows, \
        "only fewer rows than min_share x the median fails (100 of a usual 1000 at 10% passes)"


def test_min_share_is_per_source(warehouse, today):
    config = with_batch_size(calls_source(), BatchSizeCheck(min_share=0.95))
    put_batches(warehouse, USUAL)
    land_batch(warehouse, config, "batch-a", 900, today - dt.timedelta(days=1))

    check = batch_size(warehouse, config, "batch-a")

    assert not check["success"] and "95%" in check["description"], "900 of a usual 1000 is under a 95% minimum"


def test_only_the_last_lookback_batches_make_the_usual_size(warehouse, today):
    config = with_batch_size(calls_source(), BatchSizeCheck(lookback_batches=3))
    put_batches(warehouse, [1000] * 10, prefix="backfill", days_ago=10)  # long ago: large deliveries
    put_batches(warehouse, [20, 25, 30], prefix="recent")  # the latest three merged batches: small increments
    land_batch(warehouse, config, "batch-a", 10, today - dt.timedelta(days=1))

    check = batch_size(warehouse, config, "batch-a")

    assert check["success"], "the usual size is the median of the last lookback_batches merged batches (25 here)"
    assert "25" in check["description"]


def test_too_little_history_does_not_judge_the_batch_size(warehouse, today):
    config = calls_source()
    put_batches(warehouse, [1000, 1000])  # two merged batches: not enough
    put_batches(warehouse, [1000], status="quarantined", prefix="quarantined")  # never merged: not history
    put_batches(warehouse, [1000], status="validated", prefix="validated")
    put_batches(warehouse, [0, 0], prefix="empty", days_ago=5)  # merged, but without rows: not history
    put_batches(warehouse, USUAL, source="other_source", prefix="other")  # another source's batches
    land_batch(warehouse, config, "batch-a", 10, today - dt.timedelta(days=1))

    check = batch_size(warehouse, config, "batch-a")

    assert check["success"], "with under 3 merged batches that had rows, a batch's size is not judged"
    assert "not enough history" in check["observed_value"] and "2 merged batch" in check["observed_value"], \
        "the observed value says there was not enough history, and how much there was"


def test_the_batch_itself_is_never_its_own_history(warehouse, today):
    config = calls_source()
    put_batches(warehouse, [1000, 1000])
    land_batch(warehouse, config, "batch-a", 1000, today - dt.timedelta(days=1))
    with db.transaction(warehouse) as conn, conn.cursor() as cur:  # judged again after it was merged
        cur.execute("UPDATE ops.batch SET status = 'merged', merged_at = now() WHERE batch_id = 'batch-a'")

    check = batch_size(warehouse, config, "batch-a")

    assert "not enough history" in check["observed_value"], "two other merged batches: the batch itself is no third"


def test_the_rows_landed_are_ops_batch_rows_landed(warehouse, today):
    config = calls_source()
    put_batches(warehouse, USUAL)
    land_batch(warehouse, config, "batch-a", 900, today - dt.timedelta(days=1))
    with db.transaction(warehouse) as conn, conn.cursor() as cur:  # rows set aside leave staging, not the count
        cur.execute("DELETE FROM staging.qa_calls WHERE _batch_id = 'batch-a'")
    stage(warehouse, config, "batch-b", day_rows(today, 30, prefix="unregistered"))  # never registered in ops.batch

    assert batch_size(warehouse, config, "batch-a")["observed_value"] == 900, \
        "the batch is judged by the rows it landed (ops.batch.rows_landed), not what remains in staging"
    assert batch_size(warehouse, config, "batch-b")["observed_value"] == 30, \
        "a batch not registered in ops.batch is judged by its rows in staging"


def test_a_source_without_a_volume_block_gets_the_batch_size_check_only(warehouse, today):
    config = calls_source()
    assert config.quality.volume is None
    put_batches(warehouse, USUAL)
    land_batch(warehouse, config, "batch-a", 10, today)

    results = volume(warehouse, config, "batch-a")

    assert set(results) == {"aim:batch_size"}, "every source gets the batch-size check; daily checks need `volume`"
    assert (results["aim:batch_size"]["success"], results["aim:batch_size"]["severity"]) == (False, "warning")


@pytest.mark.clock
def test_a_source_with_a_volume_block_gets_both(warehouse, today):
    config = calls_source(volume=VOLUME)
    day = today - dt.timedelta(days=5)
    put_core(warehouse, config, history_counts(day))
    put_batches(warehouse, USUAL)
    land_batch(warehouse, config, "batch-a", 50, day)

    results = volume(warehouse, config, "batch-a")

    assert set(results) == {"aim:batch_size", "aim:no_missing_day", "aim:daily_volume_spike",
                            "aim:daily_volume_drop"}
    assert not results["aim:batch_size"]["success"] and results["aim:daily_volume_drop"]["success"], \
        "50 rows is a usual day but a small batch: the checks judge different things"


@pytest.mark.clock
@pytest.mark.parametrize("with_volume", [False, True], ids=["no-volume-block", "volume-block"])
def test_batch_size_null_in_the_config_turns_the_check_off(warehouse, tmp_path, today, with_volume):
    raw = calls_source_raw(volume=VOLUME if with_volume else None)
    raw["quality"]["batch_size"] = None
    path = tmp_path / f"{SOURCE}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert "batch_size: null" in path.read_text(encoding="utf-8")
    config = load_source_config(path)
    put_batches(warehouse, USUAL)
    land_batch(warehouse, config, "batch-a", 10, today - dt.timedelta(days=5))

    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        assert gate.batch_size_results(cur, config, batch_id="batch-a") == []
        results = gate.volume_results(cur, config, batch_id="batch-a")

    assert "aim:batch_size" not in {r["expectation"] for r in results}, "batch_size: null turns the check off"
    if not with_volume:
        assert results == [], "with neither block a source has no volume checks"


# ---- files of the batch -------------------------------------------------------------------------

HEADER = "Call ID,Call Day,Units,Note\n"


def land_files(url: str, config: SourceConfig, folder: Path, batch_id: str) -> None:
    with db.transaction(url) as conn, conn.cursor() as cur:
        ensure_tables(cur, config)
        land(cur, config, LocalStore(folder), batch_id=batch_id)


def file_checks(url: str, batch_id: str) -> dict[str, dict]:
    with db.transaction(url) as conn, conn.cursor() as cur:
        return by_expectation(gate.file_results(cur, batch_id=batch_id))


def test_a_file_without_rows_and_a_file_with_extra_columns_are_warnings(warehouse, tmp_path, today):
    config = calls_source()
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "calls_1.csv").write_text(HEADER + f"c1,{today},1,\nc2,{today},2,\n", encoding="utf-8")
    (drop / "calls_2.csv").write_text(HEADER, encoding="utf-8")  # the header and nothing else
    (drop / "calls_3.csv").write_text("Call ID,Call Day,Units,Note,Remarks\n" f"c3,{today},1,,late call\n",
                                      encoding="utf-8")
    land_files(warehouse, config, drop, "batch-a")

    checks = file_checks(warehouse, "batch-a")

    assert (checks["aim:file_has_rows"]["success"], checks["aim:file_has_rows"]["severity"]) == (False, "warning"), \
        "a file with no data rows is a warning"
    assert checks["aim:file_has_rows"]["unexpected_sample"] == ["calls_2.csv"], "the warning names the empty file"
    extra = checks["aim:file_extra_columns"]
    assert (extra["success"], extra["severity"]) == (False, "warning"), "a file with unread columns is a warning"
    assert extra["unexpected_sample"] == ["calls_3.csv: Remarks"], "the warning names the file and its extra columns"


def test_clean_files_pass_and_a_batch_without_files_has_no_file_checks(warehouse, tmp_path, today):
    config = calls_source()
    clean, other = tmp_path / "clean", tmp_path / "other"
    clean.mkdir()
    other.mkdir()
    (clean / "calls_1.csv").write_text(HEADER + f"c1,{today},1,\n", encoding="utf-8")
    (other / "calls_9.csv").write_text(HEADER, encoding="utf-8")  # another batch's empty file
    land_files(warehouse, config, clean, "batch-a")
    land_files(warehouse, config, other, "batch-b")
    stage(warehouse, config, "batch-c", day_rows(today, 3))  # rows from a database or an API: no files

    checks = file_checks(warehouse, "batch-a")
    assert {name: (r["success"], r["severity"]) for name, r in checks.items()} == {
        "aim:file_has_rows": (True, "warning"), "aim:file_extra_columns": (True, "warning"),
    }, "a batch's checks look at its own files only"
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        assert gate.file_results(cur, batch_id="batch-c") == [], "a batch that landed no files has no file checks"
