"""Churn: while runs extract, a concurrent writer changes the source; after the last run, core
equals the source exactly, key by key, for every kind of source, over several seeds.

The writer inserts rows, updates rows (including rows a run has already read), and, for the
incremental kinds, commits late: a change stamped with a time that a run has already read past
(a long transaction in the source database; a record the API files a second or two behind). The
runs go through the platform's own landing (the kind's reader, the watermark window, COPY) and
merge (the upsert, the watermark), one after another as Airflow runs them (`max_active_runs=1`);
the quality gate is left out, as it changes no row a churn can produce. These tests use the real
clock: the watermark's ceiling is the time the extraction started.

A late commit older than `clock_skew_seconds + overlap_seconds` can still be missed: that is the
documented limit (docs/architecture.md), so the writer here commits within it.
"""
from __future__ import annotations

import datetime as dt
import random
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from aim import batches, db, watermarks
from aim.landing import land
from aim.merge import merge_batch
from aim.migrations import migrate
from aim.sources import SourceConfig, load_source_config
from aim.tables import ensure_tables
from aim_demo.call_center import CallCenterServer
from aim_demo.databases import query

SEEDS = [3, 17, 2026]
RUNS = 6               # runs at the least while the writer works
CHANGES = 40           # changes at the least made while runs extract
WRITERS = 3            # concurrent writers: while one holds a late commit, the others commit past it
OVERLAP, SKEW = 3, 2   # seconds: the writer's late commits stay within OVERLAP + SKEW
LATEST_COMMIT = 1.5    # seconds a late transaction stays open


@pytest.fixture(autouse=True)
def real_clock(monkeypatch):
    """The real time: the writer stamps changes with it, and the watermark's ceiling follows it."""
    monkeypatch.delenv("AIM_NOW", raising=False)


@pytest.fixture(scope="module")
def warehouse(new_database) -> str:
    url = new_database("aim_churn")
    migrate(url)
    return url


def run_once(warehouse: str, config: SourceConfig, access, number: int) -> None:
    """One run's landing and merge, each in its own transaction as the DAG's tasks are."""
    batch_id, run_id = f"{config.source}-{number:03d}", f"churn__{number:03d}"
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        ensure_tables(cur, config)
        landed = land(cur, config, access, batch_id=batch_id)
        batches.register_batch(cur, batch_id=batch_id, source=config.source, run_id=run_id, rows=landed.rows,
                               max_watermark=landed.max_watermark)
        batches.mark_validated(cur, batch_id)
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        merge_batch(cur, config, batch_id, run_id)


class Writer(threading.Thread):
    """Calls `change(rng)` over and over, with short random pauses, until stopped."""

    def __init__(self, change, seed: int) -> None:
        super().__init__(daemon=True)
        self.change, self.rng, self.stopping, self.changes, self.error = change, random.Random(seed), threading.Event(), 0, None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.change(self.rng)
                self.changes += 1
                time.sleep(self.rng.uniform(0, 0.03))
        except BaseException as err:  # surfaced by `stop`
            self.error = err

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        assert self.error is None, f"the writer failed: {self.error!r}"


def churn(warehouse: str, config: SourceConfig, access, change, seed: int) -> int:
    """Runs while the writers change the source (RUNS at the least, until they made CHANGES), then
    one run after they stopped; returns the changes made."""
    writers = [Writer(change, seed * 10 + n) for n in range(WRITERS)]
    for writer in writers:
        writer.start()
    number = 0
    try:
        while number < RUNS or (sum(w.changes for w in writers) < CHANGES and number < 100):
            number += 1
            run_once(warehouse, config, access, number)
            time.sleep(random.Random(seed + number).uniform(0, 0.3))
    finally:
        for writer in writers:
            writer.stop()
    run_once(warehouse, config, access, number + 1)
    return sum(w.changes for w in writers)


def core_rows(warehouse: str, config: SourceConfig, columns: list[str]) -> dict:
    rows = query(warehouse, f"SELECT {', '.join(columns)} FROM core.{config.source}")
    return {r[0]: tuple(r[1:]) for r in rows}


# --------------------------------------------------------------------------- sql


def items_config(name: str) -> SourceConfig:
    return SourceConfig.model_validate({
        "source": name, "department": "Tests", "system": "Churning table", "kind": "sql",
        "connection_id": "churn_db", "schedule": None, "owner": "tests",
        "extract": {"table": "src.item", "watermark_column": "updated_at",
                    "overlap_seconds": OVERLAP, "clock_skew_seconds": SKEW},
        "key": ["item_id"],
        "columns": [{"name": "item_id", "type": "integer", "privacy": "public"}, {"name": "value", "privacy": "public"},
                    {"name": "updated_at", "type": "timestamptz", "privacy": "public"}],
        "expectation_suite": "items.json",
    })


def _source_table(new_database, prefix: str) -> tuple[str, sa.Engine]:
    """A new source database with an empty `src.item` (id, value, updated_at), and an engine on it."""
    source_url = new_database(prefix)
    engine = sa.create_engine(source_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA src; CREATE TABLE src.item (item_id integer PRIMARY KEY, value text, "
                             "updated_at timestamptz NOT NULL)"))
    return source_url, engine


@pytest.mark.parametrize("seed", SEEDS)
def test_sql_core_equals_the_source_after_churn(warehouse, new_database, seed):
    source_url, engine = _source_table(new_database, "aim_churn_src")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO src.item SELECT i, 'v0-' || i, clock_timestamp() FROM generate_series(1, 3000) i"))
    next_id = iter(range(3001, 10**6))
    writer_engine = sa.create_engine(source_url, poolclass=sa.pool.NullPool)

    def change(rng: random.Random) -> None:
        action = rng.choice(["insert", "update", "update", "late"])
        with writer_engine.connect() as conn:
            if action == "insert":
                conn.execute(sa.text("INSERT INTO src.item VALUES (:id, :v, clock_timestamp())"),
                             {"id": next(next_id), "v": f"new-{rng.random()}"})
            else:
                conn.execute(sa.text("UPDATE src.item SET value = :v, updated_at = clock_timestamp() "
                                     "WHERE item_id = :id"), {"id": rng.randint(1, 3000), "v": f"{action}-{rng.random()}"})
                if action == "late":  # stamped now, committed later: a run may read past its time meanwhile
                    time.sleep(rng.uniform(0.2, LATEST_COMMIT))
            conn.commit()

    config = items_config(f"churn_sql_{seed}")
    changes = churn(warehouse, config, source_url, change, seed)

    with engine.connect() as conn:
        source = {r[0]: (r[1], r[2]) for r in conn.execute(sa.text("SELECT item_id, value, updated_at FROM src.item"))}
    core = core_rows(warehouse, config, ["item_id", "value", "updated_at"])
    assert changes >= CHANGES, "the writer changed the source while the runs extracted"
    assert set(core) == set(source), "every key of the source is in core, and nothing else"
    assert [k for k in source if core[k] != source[k]] == [], "every row in core is the source's latest version"
    engine.dispose()
    writer_engine.dispose()


# --------------------------------------------------------------------------- http


def requests_config(name: str) -> SourceConfig:
    shipped = load_source_config(Path(__file__).parents[1] / "dags" / "sources" / "dpw_service_requests.yaml")
    raw = shipped.model_dump()
    raw["extract"].update(page_size=40, overlap_seconds=OVERLAP, clock_skew_seconds=SKEW, max_retries=0)
    return SourceConfig.model_validate({**raw, "source": name})


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("seed", SEEDS)
def test_http_core_equals_the_api_after_churn(warehouse, seed):
    config = requests_config(f"churn_http_{seed}")
    with CallCenterServer(now=dt.datetime.now(dt.timezone.utc), days=2, seed=seed) as server:
        ids = [r["request_id"] for r in server.records]
        fresh = iter(range(1, 10**6))

        def change(rng: random.Random) -> None:
            action = rng.choice(["insert", "update", "update", "late"])
            now = dt.datetime.now(dt.timezone.utc)
            if action == "insert":
                template = dict(server.records[rng.randrange(len(server.records))])
                server.upsert({**template, "request_id": f"CHURN-{seed}-{next(fresh)}", "updated_at": _utc_text(now)})
            elif action == "update":
                server.update(rng.choice(ids), status=rng.choice(["OPEN", "CLOSED"]))
            else:  # filed late: stamped a moment ago, visible only now
                stamp = now - dt.timedelta(seconds=rng.uniform(0.5, LATEST_COMMIT))
                server.update(rng.choice(ids), status=rng.choice(["OPEN", "CLOSED"]), updated_at=_utc_text(stamp))

        access = (server.base_url, {})
        changes = churn(warehouse, config, access, change, seed)
        api = {r["request_id"]: (r["status"], dt.datetime.fromisoformat(r["updated_at"])) for r in server.records}

    core = core_rows(warehouse, config, ["request_id", "status", "updated_at"])
    assert changes >= CHANGES, "the writer changed the API's records while the runs paged through them"
    assert set(core) == set(api), "every record of the API is in core, and nothing else"
    assert [k for k in api if core[k] != api[k]] == [], "every row in core is the API's latest version"


# --------------------------------------------------------------------------- file


def drop_config(name: str, folder: Path) -> SourceConfig:
    return SourceConfig.model_validate({
        "source": name, "department": "Tests", "system": "Churning drop", "kind": "file",
        "schedule": None, "owner": "tests",
        "extract": {"location": str(folder), "pattern": "items_*.csv", "format": {"kind": "csv"}},
        "key": ["item_id"],
        "columns": [{"name": "item_id", "source": "Item", "type": "integer", "privacy": "public"}, {"name": "value", "source": "Value", "privacy": "public"}],
        "expectation_suite": "items.json",
    })


@pytest.mark.parametrize("seed", SEEDS)
def test_file_drop_core_equals_the_latest_files_after_churn(warehouse, tmp_path, seed):
    folder = tmp_path / "drop"
    folder.mkdir()
    files: dict[str, dict[int, str]] = {f"items_{n:02d}.csv": {} for n in range(8)}
    counter = iter(range(10**9))  # every value is new: no version's content ever comes back
    lock = threading.Lock()

    def send(name: str) -> None:  # written aside and renamed, as a file transfer does
        text = "Item,Value\n" + "".join(f"{k},{v}\n" for k, v in sorted(files[name].items()))
        temporary = folder / f".{name}.part"
        temporary.write_text(text, encoding="utf-8")
        temporary.rename(folder / name)

    for number, name in enumerate(files):
        files[name] = {number * 1000 + i: f"v{next(counter)}" for i in range(200)}
        send(name)

    def change(rng: random.Random) -> None:
        with lock:
            name = rng.choice(sorted(files))
            rows = files[name]
            for key in rng.sample(sorted(rows), 5):
                rows[key] = f"v{next(counter)}"
            rows[max(rows) + 1] = f"v{next(counter)}"  # a row added to the file
            send(name)

    config = drop_config(f"churn_file_{seed}", folder)
    access = config.source_kind.access(config, None)
    changes = churn(warehouse, config, access, change, seed)

    latest = {k: (v,) for rows in files.values() for k, v in rows.items()}
    core = core_rows(warehouse, config, ["item_id", "value"])
    assert changes >= CHANGES, "the writer re-sent files while the runs landed them"
    assert set(core) == set(latest), "every key of the latest files is in core, and nothing else"
    assert [k for k in latest if core[k] != latest[k]] == [], "every row in core is the one in the file's latest version"


# --------------------------------------------------------------------------- watermark edges, one by one


def test_a_future_timestamp_never_carries_the_watermark_past_later_changes(warehouse, new_database):
    source_url, engine = _source_table(new_database, "aim_churn_future")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO src.item VALUES (1, 'a', clock_timestamp()), "
                             "(2, 'bad edit', clock_timestamp() + interval '3 years')"))
    config = items_config("churn_future")
    run_once(warehouse, config, source_url, 1)
    stored = query(warehouse, "SELECT value FROM ops.watermark WHERE source = %s", (config.source,))[0][0]
    assert watermarks.parse(stored, "timestamptz") <= dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=SKEW), \
        "the watermark stays behind the extraction's start less the skew allowance, whatever the rows say"

    time.sleep(0.1)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE src.item SET value = 'b', updated_at = clock_timestamp() WHERE item_id = 1"))
    run_once(warehouse, config, source_url, 2)
    assert core_rows(warehouse, config, ["item_id", "value"])[1] == ("b",), \
        "an ordinary change after the future-dated row is still extracted and merged"
    engine.dispose()


def test_a_change_in_the_same_instant_as_the_watermark_is_read(warehouse, new_database):
    source_url, engine = _source_table(new_database, "aim_churn_same")
    stamp = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO src.item VALUES (1, 'a', :at)"), {"at": stamp})
    config = items_config("churn_same_instant")
    run_once(warehouse, config, source_url, 1)
    assert query(warehouse, "SELECT value FROM ops.watermark WHERE source = %s", (config.source,)) == \
        [(stamp.isoformat(),)], "the watermark is the row's time"

    with engine.begin() as conn:  # committed after the run, stamped with the watermark's very instant
        conn.execute(sa.text("INSERT INTO src.item VALUES (2, 'b', :at)"), {"at": stamp})
    run_once(warehouse, config, source_url, 2)

    assert core_rows(warehouse, config, ["item_id", "value"]) == {1: ("a",), 2: ("b",)}, \
        "the lower bound is inclusive (and the overlap reaches behind it): a change at the same instant is read"
    engine.dispose()


def test_a_sql_source_with_a_derived_key_lands_and_merges(warehouse, new_database):
    source_url, engine = _source_table(new_database, "aim_churn_derived")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO src.item VALUES (1, 'a', clock_timestamp()), (2, 'b', clock_timestamp())"))
    raw = items_config("churn_derived_key").model_dump()
    config = SourceConfig.model_validate({
        **raw, "key": ["row_key"], "derived_key": {"column": "row_key", "from_columns": ["item_id"]},
        "columns": [{"name": "row_key", "privacy": "drop"}, *raw["columns"]],
    })

    run_once(warehouse, config, source_url, 1)

    rows = query(warehouse, f"SELECT row_key, item_id, value FROM core.{config.source} ORDER BY item_id")
    assert [(r[1], r[2]) for r in rows] == [(1, "a"), (2, "b")], "the rows merge"
    assert all(len(r[0]) == 32 for r in rows) and rows[0][0] != rows[1][0], \
        "each row gets its derived key, computed while landing as for any kind"
    engine.dispose()
