"""The AIM metrics model on a real PostgreSQL: registry sync and measure versions, targets and
status, measure recompute and backfill, the analyst role and guide, and the aim_measures DAG.

Measures here are small stub files in a temporary folder (AIM_MEASURES_DIR), so the tests do not
depend on the shipped sql/measures files; the last tests check those files against the contract.
"""
from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2
import psycopg2.errors
import pytest
from psycopg2.extras import execute_values
from sqlalchemy.engine import make_url

from aim import db, measures
from aim.measures.commentary import sync_commentary
from aim.dag_builders.measures import build_measures_dag
from aim.measures.runs import measure_sources, request_from_params
from aim.migrations import migrate
from aim.settings import sources_dir
from aim.sources import load_source_config, source_config_paths
from aim.tables import ensure_tables
from aim_demo import aim_commentary, aim_registry
from aim_demo.databases import libpq_dsn

ROOT = Path(__file__).resolve().parents[1]
CHICAGO = ZoneInfo("America/Chicago")
MONTHS = [dt.date(2025, 11, 1), dt.date(2025, 12, 1), dt.date(2026, 1, 1),
          dt.date(2026, 2, 1), dt.date(2026, 3, 1), dt.date(2026, 4, 1)]
FIRST_LOAD = dt.datetime(2026, 5, 1, 6, 0, tzinfo=dt.timezone.utc)

# ------------------------------------------------------------------ stub measure files

STUB_SAF_01 = """\
-- measure: SAF-01
-- reads: core.mpd_crime_incidents (reported_at)
-- geographies: citywide, aldermanic_district, police_district
-- aggregation: sum
-- Stub for the tests: incidents per period and geography.
WITH incidents AS (
    SELECT p.period_start, i.ald, i.police
    FROM core.mpd_crime_incidents i
    JOIN measure_period p ON i.reported_at >= p.period_start AND i.reported_at < p.period_end + 1
)
SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code,
       count(*)::numeric AS value, NULL::numeric AS numerator, NULL::numeric AS denominator
FROM incidents GROUP BY period_start
UNION ALL
SELECT period_start, 'aldermanic_district', ald::text, count(*), NULL, NULL
FROM incidents WHERE ald BETWEEN 1 AND 15 GROUP BY period_start, ald
UNION ALL
SELECT period_start, 'police_district', police::text, count(*), NULL, NULL
FROM incidents WHERE police BETWEEN 1 AND 7 GROUP BY period_start, police;
"""

STUB_SAF_02 = """\
-- measure: SAF-02
-- reads: core.mpd_crime_incidents (reported_at), core.ref_geography_stat
-- geographies: citywide, aldermanic_district
-- aggregation: sum
-- Stub: robberies per 1,000 residents (columns in another order than the contract's, on purpose).
WITH incidents AS (
    SELECT p.period_start, i.ald
    FROM core.mpd_crime_incidents i
    JOIN measure_period p ON i.reported_at >= p.period_start AND i.reported_at < p.period_end + 1
    WHERE i.robbery
), placed AS (
    SELECT period_start, 'citywide' AS geography_type, 'all' AS geography_code FROM incidents
    UNION ALL
    SELECT period_start, 'aldermanic_district', ald::text FROM incidents WHERE ald BETWEEN 1 AND 15
)
SELECT 1000 * count(*) / s.value AS value, p.geography_type, p.geography_code, p.period_start,
       count(*)::numeric AS numerator, s.value AS denominator
FROM placed p
JOIN core.ref_geography_stat s
  ON s.geography_type = p.geography_type AND s.geography_code = p.geography_code AND s.stat = 'population'
GROUP BY p.period_start, p.geography_type, p.geography_code, s.value
"""

STUB_CHI_02 = """\
-- measure: CHI-02
-- reads: core.mhd_lead_tests (month)
-- geographies: citywide
-- aggregation: ratio
SELECT p.period_start, 'citywide' AS geography_type, 'all' AS geography_code,
       round(100.0 * sum(children_elevated) / nullif(sum(children_tested), 0), 2) AS value,
       sum(children_elevated)::numeric AS numerator, sum(children_tested)::numeric AS denominator
FROM core.mhd_lead_tests t
JOIN measure_period p ON to_date(t.month, 'YYYY-MM') BETWEEN p.period_start AND p.period_end
GROUP BY p.period_start
"""


@pytest.fixture(scope="module")
def stub_measures(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("measures")
    (folder / "saf_01.sql").write_text(STUB_SAF_01)
    (folder / "saf_02.sql").write_text(STUB_SAF_02)
    (folder / "chi_02.sql").write_text(STUB_CHI_02)
    return folder


@pytest.fixture(autouse=True)
def measures_env(monkeypatch, stub_measures):
    monkeypatch.setenv("AIM_MEASURES_DIR", str(stub_measures))
    monkeypatch.delenv("AIM_FISCAL_YEAR_START_MONTH", raising=False)


# ------------------------------------------------------------------ the warehouse and its fixture data


class Warehouse:
    """A migrated warehouse with every shipped source's core tables."""

    def __init__(self, url: str):
        self.url = url

    def query(self, statement: str, params=None) -> list[tuple]:
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def cursor(self):
        """`with wh.cursor() as cur:` one transaction."""
        return _Cursor(self.url)

    def one(self, statement: str, params=None):
        rows = self.query(statement, params)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def sync(self, run_id: str = "sync") -> dict:
        with self.cursor() as cur:
            return measures.sync_registry(cur, run_id)

    def recompute(self, start: dt.date, end: dt.date, run_id: str, codes=None) -> dict:
        with self.cursor() as cur:
            return measures.recompute(cur, codes, start, end, run_id)

    def values(self, code: str) -> dict[tuple, tuple]:
        """(month, geography type, code) -> (value, run_id) of a measure's monthly values."""
        rows = self.query(
            "SELECT p.period_start, v.geography_type, v.geography_code, v.value, v.run_id "
            "FROM core.aim_measure_value v JOIN core.aim_period p USING (period_id) "
            "WHERE v.measure_code = %s AND p.period_type = 'month'",
            (code,),
        )
        return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}


class _Cursor:
    def __init__(self, url):
        self._context = db.transaction(url)

    def __enter__(self):
        self._conn = self._context.__enter__()
        self._cur = self._conn.cursor()
        return self._cur

    def __exit__(self, *exc):
        self._cur.close()
        return self._context.__exit__(*exc)


def new_warehouse(new_database) -> Warehouse:
    url = new_database("aim_model")
    migrate(url)
    with db.transaction(url) as conn, conn.cursor() as cur:
        for path in source_config_paths(sources_dir()):
            ensure_tables(cur, load_source_config(path))
    return Warehouse(url)


def registry_rows(as_of: dt.datetime = dt.datetime(2026, 5, 1)) -> list[dict]:
    """The demo registry workbook's rows (FY2025 and FY2026, stray spaces included) as core rows."""
    names = ("priority", "department", "activity", "measure_code", "measure_name", "definition", "unit",
             "direction", "frequency", "target_fiscal_year", "target_value")
    return [dict(zip(names, row)) for row in aim_registry.registry_rows(as_of) if row is not None]


def load_registry(cur, rows: list[dict], loaded_at=FIRST_LOAD, batch="bmo-batch-1") -> None:
    """Upsert registry rows into core.bmo_aim_registry, as an ingest merge would."""
    columns = list(rows[0])
    execute_values(
        cur,
        f"INSERT INTO core.bmo_aim_registry ({', '.join(columns)}, _batch_id, _run_id, _loaded_at) VALUES %s "
        "ON CONFLICT (measure_code, target_fiscal_year) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
        + ", _batch_id = EXCLUDED._batch_id, _run_id = EXCLUDED._run_id, _loaded_at = EXCLUDED._loaded_at",
        [tuple(r[c] for c in columns) + (batch, "ingest-run", loaded_at) for r in rows],
    )


def incidents(month: dt.date, count: int, prefix: str = "T") -> list[tuple]:
    """`count` incidents spread evenly over `month` (at least one a day when `count` is at least its
    number of days: the police source then covers the month), districts round-robin, every fourth a
    robbery, the rest thefts."""
    rows = []
    spacing = calendar.monthrange(month.year, month.month)[1] * 24 / count  # hours between incidents
    for k in range(count):
        reported = dt.datetime.combine(month, dt.time(0, 30)) + dt.timedelta(hours=spacing * k)
        rows.append((f"{prefix}{month:%y%m}{k:04d}", reported, k % 15 + 1, k % 7 + 1, k % 4 == 0, k % 4 != 0))
    return rows


def load_incidents(cur, rows: list[tuple], loaded_at: dt.datetime) -> None:
    execute_values(
        cur,
        "INSERT INTO core.mpd_crime_incidents (incident_num, reported_at, ald, police, robbery, theft, "
        "_batch_id, _run_id, _loaded_at) VALUES %s",
        [row + ("mpd-batch", "ingest-run", loaded_at) for row in rows],
    )


def load_lead_tests(cur, months: list[dt.date], loaded_at: dt.datetime) -> None:
    """Per month: 2 ZIP codes x 3 age groups, 20 tested each; 53206 has 3 elevated per group (7.5% overall)."""
    rows = [
        (f"{m:%Y-%m}", zip_code, age, 20, 3 if zip_code == "53206" else 0, "lab-batch", "ingest-run", loaded_at)
        for m in months for zip_code in ("53206", "53211") for age in ("Under 1", "1-2 years", "3-5 years")
    ]
    execute_values(
        cur,
        "INSERT INTO core.mhd_lead_tests (month, zip, age_group, children_tested, children_elevated, "
        "_batch_id, _run_id, _loaded_at) VALUES %s",
        rows,
    )


def load_commentary(cur, rows: list[tuple], loaded_at: dt.datetime, batch: str) -> None:
    """Upsert commentary workbook rows into core.bmo_measure_commentary, as an ingest merge would."""
    execute_values(
        cur,
        "INSERT INTO core.bmo_measure_commentary (measure_code, period, reason, action, outlook, _batch_id, _run_id, "
        "_loaded_at) VALUES %s ON CONFLICT (measure_code, period) DO UPDATE SET reason = EXCLUDED.reason, "
        "action = EXCLUDED.action, outlook = EXCLUDED.outlook, _batch_id = EXCLUDED._batch_id, "
        "_run_id = EXCLUDED._run_id, _loaded_at = EXCLUDED._loaded_at",
        [(*row, batch, "ingest-run", loaded_at) for row in rows],
    )


POLICE_COUNTS = dict(zip(MONTHS, (30, 35, 40, 45, 50, 55)))


def load_fixture_sources(wh: Warehouse) -> None:
    """Registry, police incidents (loaded one month per hour from FIRST_LOAD) and lead tests."""
    with wh.cursor() as cur:
        load_registry(cur, registry_rows())
        for i, month in enumerate(MONTHS):
            load_incidents(cur, incidents(month, POLICE_COUNTS[month]), FIRST_LOAD + dt.timedelta(hours=i))
        load_lead_tests(cur, MONTHS, FIRST_LOAD)


@pytest.fixture(scope="module")
def filled(new_database, stub_measures) -> Warehouse:
    """A warehouse with fixture sources, the registry synced and the stub measures computed for MONTHS,
    plus PHY-01 district values spread around its target (for statuses of every kind)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIM_MEASURES_DIR", str(stub_measures))
        wh = new_warehouse(new_database)
        load_fixture_sources(wh)
        wh.sync("fixture-run")
        wh.recompute(MONTHS[0], MONTHS[-1], "fixture-run")
        # the departments' notes on the last two months, then one of them edited (version 2)
        notes = aim_commentary.commentary_rows(dt.datetime(2026, 5, 1))
        with wh.cursor() as cur:
            load_commentary(cur, notes, FIRST_LOAD, "bmo-commentary-1")
            assert sync_commentary(cur, "fixture-run")["notes_written"] == len(notes)
            load_commentary(cur, [(*notes[0][:2], "Revised: " + notes[0][2], *notes[0][3:])],
                            FIRST_LOAD + dt.timedelta(days=1), "bmo-commentary-2")
            assert sync_commentary(cur, "fixture-edit")["notes_written"] == 1
        insert_values(wh, "PHY-01", {
            (month, "aldermanic_district", str(d)): Decimal(60) + Decimal("2.5") * d
            for month in MONTHS[2:] for d in range(1, 16)
        } | {(month, "citywide", "all"): Decimal(76) for month in MONTHS[2:]})
    return wh


def insert_values(wh: Warehouse, code: str, values: dict[tuple, Decimal], run_id: str = "direct",
                  completeness: str = "complete") -> None:
    """Write measure values directly (as if computed for periods of that completeness), replacing any for
    the same keys."""
    with wh.cursor() as cur:
        months = sorted({key[0] for key in values})
        measures.ensure_periods(cur, months[0], months[-1])
        cur.execute(
            """
            INSERT INTO core.aim_measure_period (measure_code, period_id, completeness, days_in_period, days_covered,
                                                 days_settled, definition_sha256, run_id, computed_at)
            SELECT %s, period_id, %s, period_end - period_start + 1, period_end - period_start + 1,
                   CASE WHEN %s = 'complete' THEN period_end - period_start + 1 ELSE 0 END, 'direct', %s, now()
            FROM core.aim_period WHERE period_type = 'month' AND period_start = ANY(%s)
            ON CONFLICT (measure_code, period_id) DO UPDATE SET completeness = EXCLUDED.completeness
            """,
            (code, completeness, completeness, run_id, months),
        )
        for (month, geography_type, geography_code), value in values.items():
            cur.execute(
                """
                INSERT INTO core.aim_measure_value (measure_code, period_id, geography_type, geography_code,
                                                    value, data_as_of, run_id)
                SELECT %s, period_id, %s, %s, %s, now(), %s FROM core.aim_period
                WHERE period_type = 'month' AND period_start = %s
                ON CONFLICT (measure_code, period_id, geography_type, geography_code)
                DO UPDATE SET value = EXCLUDED.value, run_id = EXCLUDED.run_id
                """,
                (code, geography_type, geography_code, value, run_id, month),
            )


# ------------------------------------------------------------------ schema


def test_every_aim_table_view_and_column_is_documented(filled):
    undocumented = filled.query(
        """
        SELECT n.nspname || '.' || c.relname || coalesce('.' || a.attname, '')
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'v')
          AND (n.nspname = 'marts' OR (n.nspname = 'core' AND (c.relname LIKE 'aim\\_%%' OR c.relname LIKE 'ref\\_%%'))
               OR (n.nspname = 'ops' AND c.relname IN ('measure_run', 'measure_file')))
          AND (obj_description(c.oid, 'pg_class') IS NULL
               OR (a.attname IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))
        """
    )
    assert undocumented == []
    views = {r[0] for r in filled.query("SELECT viewname FROM pg_views WHERE schemaname = 'marts'")}
    assert {"scorecard", "measure_history", "values_by_district", "measure_definitions"} <= views
    assert filled.one("SELECT shobj_description(oid, 'pg_authid') IS NOT NULL FROM pg_roles WHERE rolname = 'aim_analyst'")


def test_geographies_and_reference_statistics_are_seeded(filled):
    assert dict(filled.query("SELECT geography_type, count(*) FROM core.aim_geography GROUP BY 1")) == {
        "citywide": 1, "aldermanic_district": 15, "police_district": 7
    }
    stats = {(t, c, s): (v, src) for t, c, s, v, src in filled.query(
        "SELECT geography_type, geography_code, stat, value, source FROM core.ref_geography_stat")}
    assert stats[("citywide", "all", "population")][0] == 577222
    assert "2020" in stats[("citywide", "all", "population")][1]
    assert stats[("citywide", "all", "households")][0] == 230889
    assert "demo approximation" in stats[("citywide", "all", "households")][1]
    assert "H1" in stats[("citywide", "all", "households")][1]
    for district in map(str, range(1, 16)):
        value, source = stats[("aldermanic_district", district, "population")]
        assert value == 38481
        assert source == ("demo approximation: aldermanic districts are drawn to equal population after each "
                          "census (577,222 / 15)")
        assert stats[("aldermanic_district", district, "households")][0] == 15393
        assert "demo approximation" in stats[("aldermanic_district", district, "households")][1]
    assert not [k for k in stats if k[0] == "police_district"]


# ------------------------------------------------------------------ registry sync


def test_registry_sync_makes_measures_dimensions_and_targets(new_database):
    wh = new_warehouse(new_database)
    with wh.cursor() as cur:
        load_registry(cur, registry_rows())

    counts = wh.sync("run-1")

    assert counts == {"measures": 12, "new_measures": 12, "new_versions": 0, "targets_written": 23,
                      "targets_removed": 0}
    assert wh.one("SELECT count(*) FROM core.aim_priority") == 4
    assert sorted(r[0] for r in wh.query("SELECT name FROM core.aim_department")) == [
        "Fire", "Health", "Neighborhood Services", "Police", "Public Works"]  # ' Police ' trimmed
    assert wh.one("SELECT count(*) FROM core.aim_activity WHERE name = 'Code enforcement'") == 1  # trailing space
    rows = wh.query(
        "SELECT measure_code, version, direction, unit, frequency, valid_from, valid_to, source_batch_id "
        "FROM core.aim_measure ORDER BY measure_code")
    assert len(rows) == 12
    assert {r[1] for r in rows} == {1} and {r[6] for r in rows} == {None}
    assert wh.one("SELECT bool_and(valid_from = '-infinity') FROM core.aim_measure")  # covers all earlier history
    by_code = {r[0]: r for r in rows}
    assert by_code["SAF-04"][2] == "lower"  # 'Lower is better ' as typed
    assert by_code["CHI-01"][3] == "count"  # ' count' as typed
    assert by_code["PHY-02"][4] == "Monthly"
    assert {r[7] for r in rows} == {"bmo-batch-1"}
    targets = dict(((c, y), v) for c, y, v in wh.query(
        "SELECT measure_code, fiscal_year, target_value FROM core.aim_target WHERE period_id IS NULL"))
    assert targets[("SAF-01", 2025)] == 2300 and targets[("SAF-01", 2026)] == 2250
    assert ("PHY-03", 2025) in targets and ("PHY-03", 2026) not in targets  # no target: no row, never a guess


def test_registry_resync_duplicates_nothing(new_database):
    wh = new_warehouse(new_database)
    with wh.cursor() as cur:
        load_registry(cur, registry_rows())
    wh.sync("run-1")
    snapshot = "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} t"
    tables = ["core.aim_measure", "core.aim_target", "core.aim_priority", "core.aim_department", "core.aim_activity"]
    before = [wh.one(snapshot.format(t)) for t in tables]

    counts = wh.sync("run-2")

    assert counts == {"measures": 12, "new_measures": 0, "new_versions": 0, "targets_written": 0,
                      "targets_removed": 0}
    assert [wh.one(snapshot.format(t)) for t in tables] == before


def test_changed_definition_makes_version_2_and_keeps_version_1(new_database):
    wh = new_warehouse(new_database)
    rows = registry_rows()
    with wh.cursor() as cur:
        load_registry(cur, rows)
    wh.sync("run-1")
    changed_at = dt.datetime(2026, 3, 15, 12, 0, tzinfo=CHICAGO)
    new_definition = "Number of Part 1 crime incidents reported in the month, excluding online reports."
    saf_01_2026 = [dict(r, definition=new_definition) for r in rows
                   if r["measure_code"] == "SAF-01" and r["target_fiscal_year"] == 2026]
    with wh.cursor() as cur:
        load_registry(cur, saf_01_2026, loaded_at=changed_at, batch="bmo-batch-2")

    counts = wh.sync("run-2")

    assert (counts["new_measures"], counts["new_versions"]) == (0, 1)
    versions = wh.query(
        "SELECT version, definition, valid_from, valid_to, is_current, source_batch_id "
        "FROM marts.measure_definitions WHERE measure_code = 'SAF-01' ORDER BY version")
    assert len(versions) == 2
    (v1, def1, from1, to1, current1, batch1), (v2, def2, from2, to2, current2, batch2) = versions
    assert (v1, current1, batch1) == (1, False, "bmo-batch-1") and def1.startswith("Number of Part 1 crime incidents (")
    assert (v2, def2, current2, to2, batch2) == (2, new_definition, True, None, "bmo-batch-2")
    assert to1 == from2 == changed_at
    assert wh.one("SELECT count(*) FROM core.aim_measure WHERE valid_to IS NULL") == 12

    # values before the change show version 1, values after it version 2
    insert_values(wh, "SAF-01", {(dt.date(2026, 3, 1), "citywide", "all"): Decimal(2000),
                                 (dt.date(2026, 4, 1), "citywide", "all"): Decimal(2100)})
    assert wh.query(
        "SELECT period_label, measure_version FROM marts.measure_history WHERE measure_code = 'SAF-01' "
        "ORDER BY period_start") == [("2026-03", 1), ("2026-04", 2)]
    assert wh.query("SELECT DISTINCT measure_version FROM marts.scorecard WHERE measure_code = 'SAF-01'") == [(2,)]

    # a re-sync changes nothing; a change of owner (department) makes version 3
    assert wh.sync("run-3")["new_versions"] == 0
    with wh.cursor() as cur:
        load_registry(cur, [dict(saf_01_2026[0], department="Fire and Police Commission")],
                      loaded_at=dt.datetime(2026, 4, 20, tzinfo=CHICAGO), batch="bmo-batch-3")
    assert wh.sync("run-4")["new_versions"] == 1
    assert wh.query("SELECT version, department, is_current FROM marts.measure_definitions "
                    "WHERE measure_code = 'SAF-01' ORDER BY version")[1:] == [
        (2, "Police", False), (3, "Fire and Police Commission", True)]


def test_targets_follow_the_registry(new_database):
    wh = new_warehouse(new_database)
    rows = registry_rows()
    with wh.cursor() as cur:
        load_registry(cur, rows)
    wh.sync("run-1")
    phy_03_2026 = next(r for r in rows if r["measure_code"] == "PHY-03" and r["target_fiscal_year"] == 2026)
    saf_01_2026 = next(r for r in rows if r["measure_code"] == "SAF-01" and r["target_fiscal_year"] == 2026)
    with wh.cursor() as cur:
        load_registry(cur, [dict(phy_03_2026, target_value=1.9), dict(saf_01_2026, target_value=None)],
                      loaded_at=FIRST_LOAD + dt.timedelta(days=1), batch="bmo-batch-2")

    counts = wh.sync("run-2")

    assert (counts["targets_written"], counts["targets_removed"], counts["new_versions"]) == (1, 1, 0)
    targets = dict(((c, y), v) for c, y, v in wh.query(
        "SELECT measure_code, fiscal_year, target_value FROM core.aim_target"))
    assert targets[("PHY-03", 2026)] == Decimal("1.9")
    assert ("SAF-01", 2026) not in targets and targets[("SAF-01", 2025)] == 2300


def test_registry_rows_that_cannot_be_measures_are_refused_by_name(new_database):
    wh = new_warehouse(new_database)
    rows = registry_rows()
    with wh.cursor() as cur:
        load_registry(cur, [dict(r, direction="Sideways") if r["measure_code"] == "ECO-01" else r for r in rows])

    with pytest.raises(measures.RegistryError, match=r"ECO-01: direction 'Sideways'"):
        wh.sync("run-1")
    assert wh.one("SELECT count(*) FROM core.aim_measure") == 0


# ------------------------------------------------------------------ status


@pytest.mark.parametrize(
    "value, target, direction, expected",
    [
        ("100", "100", "higher", "on track"),           # exactly on target
        ("100", "100", "lower", "on track"),
        ("101", "100", "higher", "on track"),
        ("99", "100", "lower", "on track"),             # lower is better
        ("95", "100", "higher", "within tolerance"),    # exactly at the 5% boundary
        ("105", "100", "lower", "within tolerance"),
        ("94.99", "100", "higher", "off track"),        # just past it
        ("105.01", "100", "lower", "off track"),
        ("101", "100", "lower", "within tolerance"),
        ("0", "0", "lower", "on track"),
        ("0.5", "0", "lower", "off track"),             # a zero target has no tolerance band
        ("-10.5", "-10", "higher", "within tolerance"), # the band is a share of |target|
        ("42", None, "higher", "no target"),            # no target: never a guess
        ("42", None, "lower", "no target"),
        (None, "100", "higher", "no value"),
    ],
)
def test_status_function_at_the_edges(filled, value, target, direction, expected):
    assert filled.one("SELECT core.aim_status(%s::numeric, %s::numeric, %s, 0.05)", (value, target, direction)) == expected


@pytest.mark.clock
def test_scorecard_status_at_the_edges(new_database, today):
    wh = new_warehouse(new_database)
    with wh.cursor() as cur:
        load_registry(cur, registry_rows())
    wh.sync("run-1")
    april, march = dt.date(2026, 4, 1), dt.date(2026, 3, 1)
    # SAF-01: lower is better, FY2026 target 2250; PHY-01: higher is better, target 77.5; PHY-03: no FY2026 target
    insert_values(wh, "SAF-01", {
        (april, "aldermanic_district", "1"): Decimal("2250"),       # exactly on target
        (april, "aldermanic_district", "2"): Decimal("2362.5"),     # exactly target + 5%
        (april, "aldermanic_district", "3"): Decimal("2362.51"),    # past the boundary
        (april, "aldermanic_district", "4"): Decimal("1000"),       # lower is better
        (march, "aldermanic_district", "5"): Decimal("9999"),       # an older month ...
        (april, "aldermanic_district", "5"): Decimal("2000"),       # ... the latest wins
    })
    insert_values(wh, "PHY-01", {
        (april, "aldermanic_district", "1"): Decimal("77.5"),
        (april, "aldermanic_district", "2"): Decimal("73.625"),     # exactly target - 5%
        (april, "aldermanic_district", "3"): Decimal("73.62"),
    })
    insert_values(wh, "PHY-03", {(april, "citywide", "all"): Decimal("1.5")})
    this_month = measures.month_start(today)
    insert_values(wh, "SAF-04", {(this_month, "citywide", "all"): Decimal("6.9")},  # a month in progress
                  completeness="provisional")
    insert_values(wh, "SAF-02", {(march, "citywide", "all"): Decimal("0.5"), (april, "citywide", "all"): None})

    statuses = {(code, geo): (status, target, label) for code, geo, status, target, label in wh.query(
        "SELECT measure_code, geography_code, status, target_value, period_label FROM marts.scorecard")}

    assert statuses[("SAF-01", "1")][:2] == ("on track", 2250)
    assert statuses[("SAF-01", "2")][0] == "within tolerance"
    assert statuses[("SAF-01", "3")][0] == "off track"
    assert statuses[("SAF-01", "4")][0] == "on track"
    assert statuses[("SAF-01", "5")] == ("on track", 2250, "2026-04")
    assert statuses[("PHY-01", "1")][0] == "on track"
    assert statuses[("PHY-01", "2")][0] == "within tolerance"
    assert statuses[("PHY-01", "3")][0] == "off track"
    assert statuses[("PHY-03", "all")] == ("no target", None, "2026-04")
    assert statuses[("SAF-02", "all")][0::2] == ("on track", "2026-03")  # latest month *with a value*
    assert statuses[("CHI-01", "all")] == ("no value", None, None)     # no value yet: listed, not guessed
    completeness = dict(((c, g), p) for c, g, p in wh.query(
        "SELECT measure_code, geography_code, completeness FROM marts.scorecard"))
    assert completeness[("SAF-04", "all")] == "provisional" and completeness[("SAF-01", "1")] == "complete"
    assert statuses[("SAF-04", "all")][0] == "provisional"  # a value, but no call against the target yet
    assert completeness[("CHI-01", "all")] is None
    # the same rule in the history, with the tolerance from core.aim_status_rule
    assert wh.one("SELECT status FROM marts.measure_history WHERE measure_code = 'SAF-02' AND value IS NULL") == "no value"
    with wh.cursor() as cur:
        cur.execute("UPDATE core.aim_status_rule SET tolerance = 0.10, note = 'test'")
    assert wh.one("SELECT status FROM marts.scorecard WHERE measure_code = 'SAF-01' AND geography_code = '3'") == \
        "within tolerance"


# ------------------------------------------------------------------ periods


def test_periods_follow_the_configured_fiscal_year(new_database, monkeypatch):
    wh = new_warehouse(new_database)
    monkeypatch.setenv("AIM_FISCAL_YEAR_START_MONTH", "7")
    with wh.cursor() as cur:
        written = measures.ensure_periods(cur, dt.date(2025, 6, 1), dt.date(2025, 8, 1))
        assert measures.ensure_periods(cur, dt.date(2025, 6, 1), dt.date(2025, 8, 1)) == 0  # idempotent
    rows = wh.query("SELECT period_type, period_start, period_end, fiscal_year, fiscal_quarter, label "
                    "FROM core.aim_period ORDER BY period_type, period_start")
    assert written == len(rows) == 7
    assert rows == [
        ("fiscal_year", dt.date(2024, 7, 1), dt.date(2025, 6, 30), 2025, None, "FY2025"),
        ("fiscal_year", dt.date(2025, 7, 1), dt.date(2026, 6, 30), 2026, None, "FY2026"),
        ("month", dt.date(2025, 6, 1), dt.date(2025, 6, 30), 2025, 4, "2025-06"),
        ("month", dt.date(2025, 7, 1), dt.date(2025, 7, 31), 2026, 1, "2025-07"),
        ("month", dt.date(2025, 8, 1), dt.date(2025, 8, 31), 2026, 1, "2025-08"),
        ("quarter", dt.date(2025, 4, 1), dt.date(2025, 6, 30), 2025, 4, "FY2025 Q4"),
        ("quarter", dt.date(2025, 7, 1), dt.date(2025, 9, 30), 2026, 1, "FY2026 Q1"),
    ]
    monkeypatch.delenv("AIM_FISCAL_YEAR_START_MONTH")  # default: the calendar year
    assert measures.fiscal_year_of(dt.date(2025, 12, 1), 1) == (2025, 4)
    assert measures.fiscal_year_of(dt.date(2025, 12, 1), 10) == (2026, 1)


# ------------------------------------------------------------------ recompute


def test_recompute_computes_every_stub_measure_from_the_sources(filled):
    saf_01 = filled.values("SAF-01")
    for month, count in POLICE_COUNTS.items():
        assert saf_01[(month, "citywide", "all")][0] == count
        assert sum(v for (m, t, _), (v, _) in saf_01.items() if m == month and t == "aldermanic_district") == count
        assert sum(v for (m, t, _), (v, _) in saf_01.items() if m == month and t == "police_district") == count
    robberies = (POLICE_COUNTS[MONTHS[0]] + 3) // 4
    assert filled.query(
        "SELECT round(value, 12), numerator, denominator FROM marts.measure_history WHERE measure_code = 'SAF-02' "
        "AND geography_type = 'citywide' AND period_start = %s", (MONTHS[0],)
    ) == [(round(Decimal(1000 * robberies) / 577222, 12), robberies, 577222)]
    assert {v for v, _ in filled.values("CHI-02").values()} == {Decimal("7.50")}
    # data_as_of: the newest _loaded_at of the month's source rows
    as_of = dict(filled.query(
        "SELECT period_start, data_as_of FROM marts.measure_history WHERE measure_code = 'SAF-01' "
        "AND geography_type = 'citywide' AND period_type = 'month'"))
    assert as_of == {month: FIRST_LOAD + dt.timedelta(hours=i) for i, month in enumerate(MONTHS)}


def test_recompute_twice_duplicates_nothing(filled):
    before = filled.values("SAF-01")
    rows = filled.one("SELECT count(*) FROM core.aim_measure_value")

    written = filled.recompute(MONTHS[0], MONTHS[-1], "again-run")

    assert written == {code: filled.one("SELECT count(*) FROM core.aim_measure_value WHERE measure_code = %s", (code,))
                       for code in ("SAF-01", "SAF-02", "CHI-02")}  # months, and their quarters and years
    assert filled.one("SELECT count(*) FROM core.aim_measure_value") == rows
    after = filled.values("SAF-01")
    assert {k: v for k, (v, _) in after.items()} == {k: v for k, (v, _) in before.items()}
    assert {run for _, run in after.values()} == {"again-run"}


def test_backfill_replaces_only_its_range(new_database, stub_measures):
    wh = new_warehouse(new_database)
    load_fixture_sources(wh)
    wh.sync("run-1")
    wh.recompute(MONTHS[0], MONTHS[-1], "full-run")
    later = FIRST_LOAD + dt.timedelta(days=2)
    with wh.cursor() as cur:  # late data for January and April
        load_incidents(cur, incidents(MONTHS[2], 5, prefix="L") + incidents(MONTHS[5], 5, prefix="L"), later)

    written = wh.recompute(MONTHS[1], MONTHS[3], "backfill-run", codes=["SAF-01"])  # Dec..Feb

    assert list(written) == ["SAF-01"]
    values = wh.values("SAF-01")
    citywide = {m: values[(m, "citywide", "all")] for m in MONTHS}
    assert citywide[MONTHS[2]] == (POLICE_COUNTS[MONTHS[2]] + 5, "backfill-run")   # inside: recomputed
    assert citywide[MONTHS[1]] == (POLICE_COUNTS[MONTHS[1]], "backfill-run")
    assert citywide[MONTHS[0]] == (POLICE_COUNTS[MONTHS[0]], "full-run")           # outside: untouched
    assert citywide[MONTHS[5]] == (POLICE_COUNTS[MONTHS[5]], "full-run")           # stale until recomputed
    assert {run for (m, _, _), (_, run) in values.items() if m in MONTHS[1:4]} == {"backfill-run"}
    assert {run for (m, _, _), (_, run) in values.items() if m not in MONTHS[1:4]} == {"full-run"}
    assert {run for _, run in wh.values("SAF-02").values()} == {"full-run"}         # other measures untouched
    # a month whose rows all disappeared from a measure's output loses its stale values
    with wh.cursor() as cur:
        cur.execute("DELETE FROM core.mpd_crime_incidents WHERE date_trunc('month', reported_at) = %s", (MONTHS[4],))
    wh.recompute(MONTHS[4], MONTHS[4], "empty-run", codes=["SAF-01"])
    march = {k: v for k, (v, _) in wh.values("SAF-01").items() if k[0] == MONTHS[4]}
    assert len(march) == 1 + 15 + 7 and set(march.values()) == {None}  # no data: no value, not 0
    assert {r[0] for r in wh.query("SELECT status FROM marts.measure_history WHERE measure_code = 'SAF-01' "
                                   "AND period_label = '2026-03'")} == {"no data"}


# ------------------------------------------------------------------ completeness, rollups, provenance


def history(wh: Warehouse, code: str, label: str, geography: tuple[str, str] = ("citywide", "all")) -> dict:
    """One row of marts.measure_history by measure, period label and geography."""
    columns = ("value", "numerator", "denominator", "target_value", "status", "completeness", "days_covered",
               "days_settled", "period_type")
    rows = wh.query(f"SELECT {', '.join(columns)} FROM marts.measure_history WHERE measure_code = %s "
                    "AND period_label = %s AND geography_type = %s AND geography_code = %s", (code, label, *geography))
    assert len(rows) == 1, (code, label, geography, rows)
    return dict(zip(columns, rows[0]))


def test_quarters_and_fiscal_years_follow_each_measures_aggregation(filled):
    # SAF-01 sums over months: FY2026 Q1 is January + February + March, its target the monthly 2250 x 3
    q1 = history(filled, "SAF-01", "FY2026 Q1")
    assert (q1["period_type"], q1["value"], q1["target_value"]) == ("quarter", 40 + 45 + 50, 3 * 2250)
    assert (q1["completeness"], q1["status"]) == ("complete", "on track")
    # the year so far (January to April of a year that runs to December) is provisional: no call yet
    year = history(filled, "SAF-01", "FY2026")
    assert (year["value"], year["target_value"], year["completeness"], year["status"]) == (
        40 + 45 + 50 + 55, 12 * 2250, "provisional", "provisional")
    assert year["days_covered"] == 30 + 31 + 28 + 31 + 31 + 30 - 61  # January to April
    # a quarter with a month before the source's first data is provisional, from the months it has
    q4 = history(filled, "SAF-01", "FY2025 Q4")
    assert (q4["value"], q4["completeness"], q4["days_covered"]) == (30 + 35, "provisional", 30 + 31)
    # SAF-02 (a rate on a fixed population) sums too: the quarter's robberies over the same residents
    robberies = sum((POLICE_COUNTS[m] + 3) // 4 for m in MONTHS[2:5])
    q1_rate = history(filled, "SAF-02", "FY2026 Q1")
    assert (q1_rate["numerator"], q1_rate["denominator"]) == (robberies, 577222)
    assert round(q1_rate["value"], 9) == round(Decimal(1000 * robberies) / 577222, 9)
    assert float(q1_rate["value"]) == pytest.approx(sum(float(history(filled, "SAF-02", f"{m:%Y-%m}")["value"])
                                                 for m in MONTHS[2:5]))
    # CHI-02 is a ratio: the quarter re-divides summed numerators and denominators; its target is not scaled
    chi = history(filled, "CHI-02", "FY2026 Q1")
    assert (chi["numerator"], chi["denominator"], chi["value"], chi["target_value"]) == (27, 360, Decimal("7.50"),
                                                                                        Decimal("6.0"))
    assert (chi["completeness"], chi["status"]) == ("complete", "off track")


def police_days(month: dt.date, districts=(1, 1)) -> list[tuple]:
    """One Part 1 theft a day in `month`, in aldermanic district `districts[0]`, police district `districts[1]`."""
    days = calendar.monthrange(month.year, month.month)[1]
    return [(f"D{month:%y%m}{d:02d}", dt.datetime.combine(month.replace(day=d), dt.time(12)), *districts, False, True)
            for d in range(1, days + 1)]


def test_a_month_without_source_data_has_no_value_and_a_quiet_one_a_real_zero(new_database, monkeypatch):
    wh = new_warehouse(new_database)
    november, december = dt.date(2025, 11, 1), dt.date(2025, 12, 1)
    with wh.cursor() as cur:
        load_registry(cur, registry_rows())
        load_incidents(cur, police_days(november) + police_days(december), FIRST_LOAD)
    wh.sync()
    monkeypatch.setenv("AIM_MEASURES_DIR", str(ROOT / "sql" / "measures"))  # the shipped SAF-01: 0 where none
    wh.recompute(dt.date(2025, 10, 1), december, "run-1", codes=["SAF-01"])

    october = {k: v for k, (v, _) in wh.values("SAF-01").items() if k[0] == dt.date(2025, 10, 1)}
    assert len(october) == 1 + 15 + 7 and set(october.values()) == {None}  # nothing delivered: unknown, not 0
    assert history(wh, "SAF-01", "2025-10")["status"] == "no data"
    assert history(wh, "SAF-01", "2025-11")["value"] == 30
    quiet = history(wh, "SAF-01", "2025-11", ("aldermanic_district", "2"))  # covered, and nothing happened there
    assert (quiet["value"], quiet["completeness"], quiet["status"]) == (0, "complete", "on track")
    # December is delivered, but police records keep coming for 30 days after it: provisional, no call yet
    assert (history(wh, "SAF-01", "2025-12")["completeness"], history(wh, "SAF-01", "2025-12")["status"]) == (
        "provisional", "provisional")
    # a source that stops mid-month leaves that month provisional, however old it is
    with wh.cursor() as cur:
        cur.execute("DELETE FROM core.mpd_crime_incidents WHERE reported_at >= '2025-11-20'")
    wh.recompute(november, november, "run-2", codes=["SAF-01"])
    partial = history(wh, "SAF-01", "2025-11")
    assert (partial["value"], partial["completeness"], partial["days_covered"], partial["status"]) == (
        19, "provisional", 19, "provisional")


def test_the_fiscal_year_start_month_decides_quarters_years_and_their_targets(new_database, monkeypatch):
    monkeypatch.setenv("AIM_FISCAL_YEAR_START_MONTH", "7")  # July to June, named by the year it ends in
    wh = new_warehouse(new_database)
    load_fixture_sources(wh)
    wh.sync()
    wh.recompute(MONTHS[0], MONTHS[-1], "run-1")
    second_quarter = history(wh, "SAF-01", "FY2026 Q2")  # October to December 2025: October has no data
    assert (second_quarter["value"], second_quarter["completeness"]) == (30 + 35, "provisional")
    third_quarter = history(wh, "SAF-01", "FY2026 Q3")  # January to March 2026
    assert (third_quarter["value"], third_quarter["target_value"], third_quarter["status"]) == (
        40 + 45 + 50, 3 * 2250, "on track")
    assert history(wh, "SAF-01", "FY2026")["value"] == sum(POLICE_COUNTS.values())


def test_provenance_says_where_any_value_comes_from_as_the_analyst(filled, stub_measures):
    conn = analyst_connection(filled.url)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT value, completeness, definition_file, definition_sha256, aggregation, run_id, source_table, "
            "source_rows, batches, data_as_of FROM marts.measure_provenance WHERE measure_code = 'SAF-01' "
            "AND period_label = %s AND geography_type = 'citywide'", ("2026-01",))
        january = cur.fetchall()
        cur.execute("SELECT period_label, source_table, source_rows, batches FROM marts.measure_provenance "
                    "WHERE measure_code = 'CHI-02' AND period_label IN ('2026-02', 'FY2026 Q1') ORDER BY 1")
        lead = cur.fetchall()
    finally:
        conn.close()
    sha = hashlib.sha256((stub_measures / "saf_01.sql").read_bytes()).hexdigest()
    run_id = filled.values("SAF-01")[(MONTHS[2], "citywide", "all")][1]  # the run that wrote the value
    assert january == [(40, "complete", "sql/measures/saf_01.sql", sha, "sum", run_id,
                        "core.mpd_crime_incidents", 40, ["mpd-batch"], FIRST_LOAD + dt.timedelta(hours=2))]
    assert lead == [("2026-02", "core.mhd_lead_tests", 6, ["lab-batch"]),
                    ("FY2026 Q1", "core.mhd_lead_tests", 18, ["lab-batch"])]


def test_source_coverage_is_kept_and_visible_to_analysts(filled):
    conn = analyst_connection(filled.url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT source, period_label, days_covered, days_settled, source_rows, completeness "
                    "FROM marts.source_coverage WHERE period_type = 'month' AND period_label IN "
                    "('2025-11', '2026-03', '2026-04', '2026-05') ORDER BY 1, 2")
        rows = cur.fetchall()
    finally:
        conn.close()
    assert rows == [
        ("mhd_lead_tests", "2025-11", 30, 30, 6, "complete"),
        ("mhd_lead_tests", "2026-03", 31, 31, 6, "complete"),
        ("mhd_lead_tests", "2026-04", 30, 15, 6, "provisional"),      # re-sent for 15 days after the month
        ("mhd_lead_tests", "2026-05", 0, 0, 0, "no data"),
        ("mpd_crime_incidents", "2025-11", 30, 30, 30, "complete"),
        ("mpd_crime_incidents", "2026-03", 31, 31, 50, "complete"),
        ("mpd_crime_incidents", "2026-04", 30, 0, 55, "provisional"),  # within 30 days of the last delivery
        ("mpd_crime_incidents", "2026-05", 0, 0, 0, "no data"),
    ]


def test_touched_months_finds_the_months_of_rows_loaded_after_since(new_database):
    wh = new_warehouse(new_database)
    load_fixture_sources(wh)
    later = FIRST_LOAD + dt.timedelta(days=3)
    with wh.cursor() as cur:
        load_incidents(cur, incidents(dt.date(2024, 2, 1), 2, prefix="X") + incidents(MONTHS[3], 1, prefix="X"), later)
        cur.execute("UPDATE core.mhd_lead_tests SET children_tested = 21, _loaded_at = %s WHERE month = '2025-12'",
                    (later,))

        everything = measures.touched_months(cur, None)
        since_first_load = measures.touched_months(cur, FIRST_LOAD + dt.timedelta(hours=2, minutes=30))
        since_later = measures.touched_months(cur, later)
        only_saf = measures.touched_months(cur, FIRST_LOAD, measure_codes=["SAF-01"])

    assert everything["SAF-01"] == [dt.date(2024, 2, 1), *MONTHS] == everything["SAF-02"]
    assert everything["CHI-02"] == MONTHS  # 'YYYY-MM' text months
    assert since_first_load["SAF-01"] == [dt.date(2024, 2, 1), MONTHS[3], MONTHS[4], MONTHS[5]]
    assert since_first_load["CHI-02"] == [MONTHS[1]]
    assert since_later == {"SAF-01": [], "SAF-02": [], "CHI-02": []}
    assert list(only_saf) == ["SAF-01"]


def test_a_measure_returning_unusable_rows_is_refused_and_nothing_is_written(filled, tmp_path, monkeypatch):
    (tmp_path / "saf_01.sql").write_text(
        STUB_SAF_01.replace("SELECT p.period_start, i.ald", "SELECT p.period_start - 1 AS period_start, i.ald"))
    (tmp_path / "chi_02.sql").write_text("-- measure: CHI-02\n-- reads: core.mhd_lead_tests (month)\n"
                                         "-- aggregation: ratio\nSELECT 1 AS x")
    monkeypatch.setenv("AIM_MEASURES_DIR", str(tmp_path))
    before = filled.values("SAF-01")

    with pytest.raises(measures.MeasureError, match=r"saf_01.sql .*not the first day of a period in measure_period"):
        filled.recompute(MONTHS[2], MONTHS[3], "bad-run", codes=["SAF-01"])
    with pytest.raises(measures.MeasureError, match=r"chi_02.sql: returns columns \['x'\]"):
        filled.recompute(MONTHS[2], MONTHS[3], "bad-run", codes=["CHI-02"])
    with pytest.raises(measures.MeasureError, match=r"no measure file for \['ECO-01'\]"):
        filled.recompute(MONTHS[2], MONTHS[3], "bad-run", codes=["ECO-01"])

    assert filled.values("SAF-01") == before


def test_measure_file_headers_are_parsed_and_checked(tmp_path):
    good = tmp_path / "eco_01.sql"
    good.write_text("-- measure: ECO-01\n-- reads: core.dns_code_enforcement_orders (issued_on, complied_on),"
                    " core.ref_geography_stat\n-- reads: core.dpw_service_requests (created_at)\n"
                    "-- geographies: citywide, aldermanic_district\n-- aggregation: ratio\nSELECT 1")
    parsed = measures.parse_measure_file(good)
    assert parsed.code == "ECO-01"
    assert [(r.name, r.date_columns) for r in parsed.reads] == [
        ("core.dns_code_enforcement_orders", ("issued_on", "complied_on")), ("core.ref_geography_stat", ()),
        ("core.dpw_service_requests", ("created_at",))]
    assert parsed.geographies == ("citywide", "aldermanic_district")
    assert parsed.aggregation == "ratio"
    assert [r.name for r in parsed.dated_reads] == ["core.dns_code_enforcement_orders", "core.dpw_service_requests"]
    for header in ("", "-- aggregation: average\n"):  # how it combines over months is declared, from a known list
        undeclared = tmp_path / "eco_04.sql"
        undeclared.write_text(f"-- measure: ECO-04\n-- reads: core.x (d)\n{header}SELECT 1")
        with pytest.raises(measures.MeasureError, match="aggregation"):
            measures.parse_measure_file(undeclared)
    wrong_code = tmp_path / "eco_02.sql"
    wrong_code.write_text("-- measure: ECO-01\n-- reads: core.x (d)\nSELECT 1")
    with pytest.raises(measures.MeasureError, match="file name says 'ECO-02'"):
        measures.parse_measure_file(wrong_code)
    no_reads = tmp_path / "eco_03.sql"
    no_reads.write_text("-- measure: ECO-03\nSELECT 1")
    with pytest.raises(measures.MeasureError, match="reads"):
        measures.parse_measure_file(no_reads)


# ------------------------------------------------------------------ the analyst role


def analyst_connection(url: str):
    """A connection as aim_analyst: logged in as the role where the server lets it (trust), else SET ROLE."""
    try:
        conn = psycopg2.connect(libpq_dsn(make_url(url).set(username="aim_analyst", password=None)
                                          .render_as_string(hide_password=False)))
    except psycopg2.OperationalError:  # a server that wants a password: same privileges through SET ROLE
        conn = psycopg2.connect(libpq_dsn(url))
        conn.autocommit = True
        conn.cursor().execute("SET ROLE aim_analyst")
    conn.autocommit = True
    return conn


def test_the_analyst_role_reads_marts_and_nothing_else(filled):
    conn = analyst_connection(filled.url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_user")
        assert cur.fetchone() == ("aim_analyst",)
        for view in ("scorecard", "measure_history", "values_by_district", "measure_definitions"):
            cur.execute(f"SELECT count(*) FROM marts.{view}")
            assert cur.fetchone()[0] > 0, view

        refused_reads = ["staging.mpd_crime_incidents", "ops.run_log", "ops.measure_run", "ops.batch",
                         "core.mpd_crime_incidents", "core.aim_measure_value", "core.aim_value_status",
                         "core.bmo_aim_registry"]
        for table in refused_reads:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"SELECT * FROM {table} LIMIT 1")
        refused_writes = [
            "INSERT INTO core.aim_measure_value (measure_code) VALUES ('SAF-01')",
            "UPDATE core.aim_target SET target_value = 0",
            "DELETE FROM core.aim_measure",
            "INSERT INTO ops.measure_run (run_id, dag_id, status) VALUES ('x', 'x', 'success')",
            "UPDATE staging.mpd_crime_incidents SET ald = '1'",
            "CREATE TABLE marts.mine (x int)",
            "CREATE VIEW marts.mine AS SELECT 1 AS x",
            "CREATE TABLE public.mine (x int)",
        ]
        for statement in refused_writes:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
        # A write to a marts view is refused too: PostgreSQL's rewriter says the (joining) view cannot be
        # written to before it checks privileges, which the analyst does not have either (below).
        for statement in ("INSERT INTO marts.measure_definitions (measure_code) VALUES ('SAF-01')",
                          "UPDATE marts.scorecard SET value = 0", "DELETE FROM marts.measure_history",
                          "UPDATE marts.values_by_district SET value = 0"):
            with pytest.raises((psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ObjectNotInPrerequisiteState)):
                cur.execute(statement)
    finally:
        conn.close()
    granted = filled.query(
        """
        SELECT c.relname, p.privilege
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(privilege)
        WHERE n.nspname IN ('marts', 'core', 'ops', 'staging') AND c.relkind IN ('r', 'v')
          AND has_table_privilege('aim_analyst', c.oid, p.privilege)
        """
    )
    assert granted == []
    assert filled.query(
        "SELECT has_schema_privilege('aim_analyst', 'core', 'USAGE'), has_schema_privilege('aim_analyst', 'ops', 'USAGE'), "
        "has_schema_privilege('aim_analyst', 'staging', 'USAGE'), has_schema_privilege('aim_analyst', 'marts', 'CREATE')"
    ) == [(False, False, False, False)]


def test_views_added_to_marts_later_are_readable_by_the_analyst(new_database):
    wh = new_warehouse(new_database)
    with wh.cursor() as cur:  # what a later migration would do
        cur.execute("CREATE VIEW marts.district_count AS SELECT count(*) AS districts FROM core.aim_geography")
    conn = analyst_connection(wh.url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT districts FROM marts.district_count")
        assert cur.fetchone() == (23,)
    finally:
        conn.close()


def guide_queries() -> list[str]:
    text = (ROOT / "docs" / "analyst-guide.md").read_text(encoding="utf-8")
    return re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL)


def test_the_analyst_guide_has_ten_example_queries():
    assert len(guide_queries()) >= 10


@pytest.mark.parametrize("number", range(len(guide_queries())))
def test_every_analyst_guide_query_runs_as_the_analyst_and_returns_rows(filled, number):
    query = guide_queries()[number]
    conn = analyst_connection(filled.url)
    try:
        cur = conn.cursor()
        cur.execute(query)
        rows = cur.fetchall()
    finally:
        conn.close()
    assert rows, f"query {number + 1} of docs/analyst-guide.md returned no rows:\n{query}"


def test_guide_fixture_has_every_status(filled):
    statuses = {r[0] for r in filled.query("SELECT DISTINCT status FROM marts.measure_history")}
    assert {"on track", "within tolerance", "off track"} <= statuses
    assert filled.one("SELECT count(*) FROM marts.scorecard WHERE geography_type = 'citywide' "
                      "AND status = 'off track'") >= 1


# ------------------------------------------------------------------ the DAG


def test_dag_file_imports_and_the_dag_is_scheduled_on_the_sources_assets(stub_measures):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AssetAny

    bag = DagBag(dag_folder=str(ROOT / "dags" / "aim_measures.py"))

    assert bag.import_errors == {}
    dag = bag.dags["aim_measures"]
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"  # on new data, not on a timer
    condition = dag.timetable.asset_condition
    assert isinstance(condition, AssetAny)  # any one source with new data triggers a run
    assert {asset.uri for asset in condition.objects} == {
        f"aim://warehouse/core/{s}"
        for s in ("bmo_aim_registry", "bmo_measure_commentary", "mhd_lead_tests", "mpd_crime_incidents")}
    assert measure_sources(stub_measures) == [
        "bmo_aim_registry", "bmo_measure_commentary", "mhd_lead_tests", "mpd_crime_incidents"]
    assert set(dag.tags) >= {"aim", "measures"}
    assert dag.owner == "bmo-aim"
    assert dag.max_active_runs == 1
    assert [t.task_id for t in dag.topological_sort()] == ["sync_registry", "recompute", "record"]
    for task in dag.tasks:
        assert task.on_failure_callback and task.retries >= 1
    assert set(dag.params) == {"start_month", "end_month", "measures"}


def test_the_whole_dags_folder_imports_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert "aim_measures" in bag.dags


def test_run_params_make_a_backfill_or_an_incremental_run():
    assert request_from_params({}).mode == "incremental"
    backfill = request_from_params({"start_month": "2026-02", "end_month": "2026-03", "measures": ["SAF-01"]})
    assert (backfill.mode, backfill.start_month, backfill.end_month, backfill.measure_codes) == (
        "backfill", dt.date(2026, 2, 1), dt.date(2026, 3, 1), ("SAF-01",))
    assert request_from_params({"start_month": "2026-02"}).end_month >= dt.date(2026, 2, 1)
    for bad in ({"end_month": "2026-02"}, {"start_month": "2026-03", "end_month": "2026-02"},
                {"start_month": "2026-13"}, {"measures": ["SAF-01"]}):
        with pytest.raises(ValueError):
            request_from_params(bad)


@pytest.fixture
def dag_warehouse(new_database, stub_measures, airflow_db) -> Warehouse:
    """A warehouse of its own for each DAG test: no test sees what another's runs computed."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIM_MEASURES_DIR", str(stub_measures))
        wh = new_warehouse(new_database)
        load_fixture_sources(wh)
    return wh


def run_dag(wh: Warehouse, monkeypatch, conf=None):
    monkeypatch.setenv("AIM_WAREHOUSE_URL", wh.url)
    dag_run = build_measures_dag().test(run_conf=conf)
    rows = wh.query("SELECT mode, status, start_month, end_month, changes_since, changes_through, rows_written, "
                    "message FROM ops.measure_run WHERE run_id = %s", (dag_run.run_id,))
    assert len(rows) == 1, rows
    keys = ("mode", "status", "start_month", "end_month", "changes_since", "changes_through", "rows_written", "message")
    return str(dag_run.state), dict(zip(keys, rows[0]))


def test_dag_backfill_run_recomputes_exactly_the_range(dag_warehouse, monkeypatch):
    wh = dag_warehouse

    state, run = run_dag(wh, monkeypatch, {"start_month": "2026-02", "end_month": "2026-03"})

    assert state == "success", run["message"]
    assert (run["mode"], run["status"], run["start_month"], run["end_month"]) == (
        "backfill", "success", dt.date(2026, 2, 1), dt.date(2026, 3, 1))
    assert wh.one("SELECT count(*) FROM core.aim_measure WHERE valid_to IS NULL") == 12  # the registry was synced
    periods = {r for r in wh.query(
        "SELECT DISTINCT p.period_type, p.label FROM core.aim_measure_value JOIN core.aim_period p USING (period_id)")}
    assert periods == {("month", "2026-02"), ("month", "2026-03"), ("quarter", "FY2026 Q1"), ("fiscal_year", "FY2026")}
    assert run["rows_written"] == wh.one("SELECT count(*) FROM core.aim_measure_value")
    assert wh.one("SELECT value FROM marts.measure_history WHERE measure_code = 'SAF-01' "
                  "AND geography_type = 'citywide' AND period_label = '2026-03'") == POLICE_COUNTS[MONTHS[4]]


def test_dag_incremental_runs_recompute_what_changed(dag_warehouse, monkeypatch):
    wh = dag_warehouse
    first_state, first = run_dag(wh, monkeypatch)  # the first incremental run: every measure's whole history

    assert first_state == "success", first["message"]
    assert first["mode"] == "incremental" and first["changes_since"] is None and first["changes_through"]
    assert first["start_month"] == MONTHS[0]
    assert {r[0] for r in wh.query("SELECT measure_code FROM ops.measure_file")} == {"SAF-01", "SAF-02", "CHI-02"}
    computed = {r[0] for r in wh.query("SELECT DISTINCT period_start FROM marts.measure_history")}
    assert set(MONTHS) <= computed

    with wh.cursor() as cur:  # a late January incident arrives
        cur.execute("SELECT now()")
        load_incidents(cur, incidents(MONTHS[2], 1, prefix="Z"), cur.fetchone()[0] + dt.timedelta(hours=2))
    second_state, second = run_dag(wh, monkeypatch)

    assert second_state == "success", second["message"]
    assert second["changes_since"] == first["changes_through"] - dt.timedelta(hours=1)
    assert second["start_month"] == MONTHS[2]  # January, then the recent months
    assert wh.one("SELECT value FROM marts.measure_history WHERE measure_code = 'SAF-01' "
                  "AND geography_type = 'citywide' AND period_label = '2026-01'") == POLICE_COUNTS[MONTHS[2]] + 1
    runs = dict(wh.query(
        "SELECT p.label, max(v.run_id) FROM core.aim_measure_value v JOIN core.aim_period p USING (period_id) "
        "WHERE v.measure_code = 'CHI-02' AND p.period_type = 'month' AND p.period_start = ANY(%s) GROUP BY 1",
        (MONTHS,)))
    assert len(set(runs.values())) == 1  # lead tests did not change: CHI-02's months were not recomputed


def test_an_incremental_run_settles_a_month_once_its_lag_has_passed(dag_warehouse, monkeypatch):
    wh = dag_warehouse
    first_state, first = run_dag(wh, monkeypatch)
    assert first_state == "success", first["message"]
    assert history(wh, "SAF-01", "2026-04")["status"] == "provisional"  # the last month delivered, within the lag

    may = dt.date(2026, 5, 1)
    with wh.cursor() as cur:  # the police keep delivering: a month later, April's late reports have had time
        cur.execute("SELECT now()")
        load_incidents(cur, police_days(may), cur.fetchone()[0] + dt.timedelta(hours=2))
    second_state, second = run_dag(wh, monkeypatch)

    assert second_state == "success", second["message"]
    april = history(wh, "SAF-01", "2026-04")
    assert (april["value"], april["completeness"], april["status"]) == (POLICE_COUNTS[MONTHS[5]], "complete", "on track")
    runs = dict(wh.query(
        "SELECT p.label, max(v.run_id) FROM core.aim_measure_value v JOIN core.aim_period p USING (period_id) "
        "WHERE v.measure_code = 'SAF-01' AND p.period_type = 'month' GROUP BY 1"))
    assert runs["2026-04"] == runs["2026-05"] != runs["2026-03"]  # April recomputed though none of its rows changed


def test_dag_run_that_fails_is_recorded_in_ops(dag_warehouse, monkeypatch, tmp_path):
    (tmp_path / "saf_01.sql").write_text("-- measure: SAF-01\n-- reads: core.mpd_crime_incidents (reported_at)\n"
                                         "-- aggregation: sum\nSELECT no_such_column FROM core.mpd_crime_incidents")
    monkeypatch.setenv("AIM_MEASURES_DIR", str(tmp_path))
    monkeypatch.setenv("AIM_RETRY_DELAY_SECONDS", "0")

    state, run = run_dag(dag_warehouse, monkeypatch, {"start_month": "2026-01", "end_month": "2026-01"})

    assert state == "failed"
    assert run["status"] == "failed"
    assert "task recompute" in run["message"] and "saf_01.sql" in run["message"]
    assert "no_such_column" in run["message"]


# ------------------------------------------------------------------ the shipped measure files


def shipped_measures() -> dict[str, measures.MeasureFile]:
    return measures.measure_files(ROOT / "sql" / "measures")


def test_shipped_measure_files_follow_the_contract():
    files = shipped_measures()
    assert files, "no measure files in sql/measures"
    assert set(files) == {"SAF-01", "SAF-02", "SAF-03", "SAF-04", "ECO-01", "ECO-02", "CHI-01", "CHI-02",
                          "PHY-01", "PHY-02", "PHY-03", "PHY-04"}
    configured = {p.stem for p in source_config_paths(sources_dir())}
    for measure in files.values():
        for read in measure.reads:
            if read.date_columns:
                assert read.schema == "core" and read.table in configured, (measure.code, read.name)
    assert set(measure_sources(ROOT / "sql" / "measures")) == {
        read.table for f in files.values() for read in f.reads if read.date_columns} | {"bmo_aim_registry",
                                                                                       "bmo_measure_commentary"}


def test_shipped_measure_files_run_through_recompute(filled, monkeypatch):
    files = shipped_measures()
    assert files, "no measure files in sql/measures"
    monkeypatch.setenv("AIM_MEASURES_DIR", str(ROOT / "sql" / "measures"))
    with filled.cursor() as cur:
        written = measures.recompute(cur, None, MONTHS[0], MONTHS[-1], "shipped-run")
        cur.execute("SELECT measure_code, count(*) FROM core.aim_measure_value WHERE run_id = 'shipped-run' GROUP BY 1")
        counted = dict(cur.fetchall())
        cur.connection.rollback()  # leave the module's fixture as it was
    assert set(written) == set(files)
    assert {code: n for code, n in written.items() if n} == counted
    assert written["SAF-01"] > 0 and written["CHI-02"] > 0
