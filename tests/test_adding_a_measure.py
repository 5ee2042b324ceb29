"""Adding a thirteenth measure is one SQL file: the one docs/adding-a-measure.md shows, taken from
the page itself, in a temporary measures folder beside the twelve shipped ones, computed by a
real `aim_measures` DAG run on a real warehouse."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from aim import db
from aim.measures import parse_measure_file
from aim.dag_builders.measures import build_measures_dag
from aim.migrations import migrate
from aim.settings import sources_dir
from aim.sources import load_source_config, source_config_paths
from aim.tables import ensure_tables

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "adding-a-measure.md"
MONTHS = [dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1), dt.date(2026, 4, 1)]


def files_in_guide() -> dict[str, str]:
    """The files the guide tells the reader to write: `<!-- file: PATH -->` then a fenced block."""
    return dict(re.findall(r"<!-- file: (\S+) -->\s*```\w*\n(.*?)```", GUIDE.read_text(), flags=re.S))


def sql_blocks_after(heading: str) -> list[str]:
    """The fenced sql blocks of the guide's section starting at `heading`."""
    section = GUIDE.read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def incidents() -> list[tuple]:
    """Four months of incidents, one every 9 hours (every day covered); every third a burglary, in
    aldermanic district (k % 15) + 1 and police district (k % 7) + 1, except every tenth, which has no
    district at all (it still counts citywide)."""
    rows, moment, k = [], dt.datetime(2026, 1, 1, 0, 30), 0
    while moment < dt.datetime(2026, 5, 1):
        placed = k % 10 != 0
        rows.append((f"B{k:05d}", moment, k % 15 + 1 if placed else None, k % 7 + 1 if placed else None,
                     k % 3 == 0, k % 3 != 0))
        moment += dt.timedelta(hours=9)
        k += 1
    return rows


def expected_burglaries(rows: list[tuple]) -> Counter:
    """(month, geography type, code) -> burglaries, counted in plain Python."""
    counts: Counter = Counter()
    for _, reported, ald, police, burglary, _ in rows:
        if not burglary:
            continue
        month = reported.date().replace(day=1)
        counts[(month, "citywide", "all")] += 1
        if ald:
            counts[(month, "aldermanic_district", str(ald))] += 1
        if police:
            counts[(month, "police_district", str(police))] += 1
    return counts


@pytest.fixture
def thirteen_measures(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "sql" / "measures"
    shutil.copytree(ROOT / "sql" / "measures", folder)
    for relative, text in files_in_guide().items():
        (tmp_path / relative).write_text(text)
    monkeypatch.setenv("AIM_MEASURES_DIR", str(folder))
    return folder


def test_the_guide_shows_one_measure_file_that_follows_the_contract():
    assert sorted(files_in_guide()) == ["sql/measures/saf_05.sql"]


def test_a_thirteenth_measure_is_computed_with_its_quarters_completeness_and_provenance(
        thirteen_measures, new_database, airflow_db, monkeypatch):
    measure = parse_measure_file(thirteen_measures / "saf_05.sql")
    assert (measure.code, measure.aggregation, measure.geographies) == (
        "SAF-05", "sum", ("citywide", "aldermanic_district", "police_district"))
    url = new_database("aim_wh")
    migrate(url)
    rows = incidents()
    with db.transaction(url) as conn, conn.cursor() as cur:
        for path in source_config_paths(sources_dir()):
            ensure_tables(cur, load_source_config(path))
        cur.executemany(
            "INSERT INTO core.mpd_crime_incidents (incident_num, reported_at, ald, police, burglary, theft, "
            "_batch_id, _run_id) VALUES (%s, %s, %s, %s, %s, %s, 'mpd-batch', 'ingest-run')", rows)
    monkeypatch.setenv("AIM_WAREHOUSE_URL", url)

    assert str(build_measures_dag().test().state) == "success"

    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT period_type, period_start, geography_type, geography_code, value, completeness "
                    "FROM marts.measure_history WHERE measure_code = 'SAF-05'")
        history = {(t, m, g, c): (v, k) for t, m, g, c, v, k in cur.fetchall()}
        cur.execute("SELECT source_table, source_rows, batches, definition_file FROM marts.measure_provenance "
                    "WHERE measure_code = 'SAF-05' AND period_type = 'month' AND period_start = %s "
                    "AND geography_type = 'citywide'", (MONTHS[0],))
        provenance = cur.fetchall()
    expected = expected_burglaries(rows)
    for month in MONTHS:
        for geography in [("citywide", "all")] + [("aldermanic_district", str(n)) for n in range(1, 16)] + [
                ("police_district", str(n)) for n in range(1, 8)]:
            value, completeness = history[("month", month, *geography)]
            assert value == expected[(month, *geography)], (month, geography)
            assert completeness == ("provisional" if month == MONTHS[-1] else "complete"), month  # 30-day lag
    first_quarter = sum(expected[(m, "citywide", "all")] for m in MONTHS[:3])
    assert history[("quarter", MONTHS[0], "citywide", "all")] == (first_quarter, "complete")
    assert provenance == [("core.mpd_crime_incidents", sum(1 for r in rows if r[1].month == 1), ["mpd-batch"],
                           "sql/measures/saf_05.sql")]
    # the guide's analyst queries answer for the new measure, as the analyst would run them
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("SET ROLE aim_analyst")
        for query in sql_blocks_after("## 6. Check where its numbers come from"):
            for statement in filter(str.strip, query.split(";")):
                cur.execute(statement)
                assert cur.fetchall(), statement


def test_the_guides_psql_example_runs_the_file_as_shown(thirteen_measures, new_database):
    url = new_database("aim_wh")
    migrate(url)
    with db.transaction(url) as conn, conn.cursor() as cur:
        for path in source_config_paths(sources_dir()):
            ensure_tables(cur, load_source_config(path))
        cur.executemany(
            "INSERT INTO core.mpd_crime_incidents (incident_num, reported_at, ald, police, burglary, theft, "
            "_batch_id, _run_id) VALUES (%s, %s, %s, %s, %s, %s, 'b', 'r')", incidents())
        example = sql_blocks_after("## 3. Try it in psql")[0]
        create, include = example.split("\\i ")
        cur.execute(create)
        cur.execute((thirteen_measures / "saf_05.sql").read_text())
        rows = cur.fetchall()
    assert include.strip() == "sql/measures/saf_05.sql"
    assert len(rows) == 6 * (1 + 15 + 7)  # January to June, every geography (0 where nothing happened)
    assert {r[0] for r in rows} == {dt.date(2026, m, 1) for m in range(1, 7)}
