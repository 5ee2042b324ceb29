"""The exports attacked the way a re-identifier would, on the demo's full publication.

The city runs every ingest DAG, the measures and the publication on its demo systems (a year of
police, fire, 311, code enforcement and lead-testing records, into a real PostgreSQL and a real
export folder); then each attack below reads what a resident could download and tries to get a
person back:

- an exact address (house number and street) or a ZIP+4 anywhere in any published file;
- a published coordinate pair that stands for one address only (matched against core's addresses);
- a count of children from 1 to 4, or one recovered by subtracting the published cells of a month
  from the citywide total the measures publish;
- a free-text column published without a reviewed `public` class;
- an EMS or police time published more precisely than the hour;
- a published id reversed by hashing candidate values built from the published columns.

Each attack is also shown to work: the same attack, run on a publication made by the real code
with the protection switched off (a column classed public, a data set without small cells, a
derived key published), finds what it looks for. A test that cannot fail proves nothing.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from aim import db
from aim.dag_builders.ingest import build_ingest_dag
from aim.landing import derived_key
from aim.dag_builders.measures import build_measures_dag
from aim.dag_builders.publish import build_publish_dag
from aim.publish.datasets import DatasetConfig, SmallCells, inventory
from aim.publish.formats import Column, write_formats
from aim.publish.projection import Rows, public_projection, suppress_small_cells
from aim.settings import sources_dir
from aim.sources import SourceConfig, SourceConfigError, load_source, load_source_config, source_config_paths
from aim_demo.databases import libpq_dsn, query
from aim_demo.systems import demo_systems

STREET_TYPES = r"(?:ST|AV|AVE|BL|BLVD|DR|PL|CT|LA|LN|RD|WY|WAY|PKWY|TER|CIR|SQ|HWY)"
# a house number (2846, 2846A, 2846-2848, #2846) then a street: not '2800 BLOCK N 1ST ST'
EXACT_ADDRESS = re.compile(
    r"(?<![\w.:-])#?\d{1,6}[A-Z]?(?:-\d{1,6}[A-Z]?)?\s+(?!BLOCK\b)(?:[NSEW]\.?\s+)?"
    r"(?:\d+(?:ST|ND|RD|TH)|[A-Z][A-Z'.]*)(?:\s+[A-Z][A-Z'.]*){0,4}?\s+" + STREET_TYPES + r"\b", re.I)
ZIP_PLUS_4 = re.compile(r"(?<!\d)\d{5}-\d{4}(?!\d)")
SMALL = 5


# ---- reading what was published ---------------------------------------------------------------

def data_rows(path: Path) -> list[dict]:
    """The rows of one published data file, as a reader's tool gets them."""
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return pq.read_table(path).to_pylist()


def published_texts(root: Path) -> dict[str, list[str]]:
    """Every string a reader can get out of every published file: data cells, and the whole text of
    everything else (site, catalog, manifest, dictionaries)."""
    texts = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relpath = path.relative_to(root).as_posix()
        if path.suffix in (".csv", ".parquet") or (path.suffix == ".json" and relpath.startswith(("latest/", "archive/"))
                                                     and not path.name.endswith(".schema.json")):
            texts[relpath] = [str(v) for row in data_rows(path) for v in row.values() if isinstance(v, str)]
        else:
            texts[relpath] = [path.read_bytes().decode("utf-8", errors="replace")]
    return texts


# ---- the attacks ------------------------------------------------------------------------------

def exact_addresses(texts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Published files holding a house number and street, with examples."""
    found = {path: [m.group() for t in values for m in EXACT_ADDRESS.finditer(t)] for path, values in texts.items()}
    return {path: sorted(set(hits))[:5] for path, hits in found.items() if hits}


def zip_plus_4(texts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Published files holding a ZIP+4 (a few houses), with examples."""
    found = {path: [m.group() for t in values for m in ZIP_PLUS_4.finditer(t)] for path, values in texts.items()}
    return {path: sorted(set(hits))[:5] for path, hits in found.items() if hits}


def points_of_one_address(published: list[tuple[float, float]], addresses: dict[str, tuple[float, float]]) -> list:
    """Published points that stand for a single address: every address of core (its coordinates
    known to the attacker, as from the city's address file) goes to the nearest published point; a
    point that gets exactly one address gives that address away."""
    points = np.array(sorted(set(published)), dtype=float)
    names = sorted(addresses)
    where = np.array([addresses[n] for n in names], dtype=float)
    owners: dict[int, set[str]] = defaultdict(set)
    for start in range(0, len(names), 2000):
        chunk = where[start:start + 2000]
        nearest = ((chunk[:, None, :] - points[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        for name, point in zip(names[start:start + 2000], nearest):
            owners[int(point)].add(name)
    return [(tuple(points[i]), next(iter(owners[i]))) for i in range(len(points)) if len(owners[i]) == 1]


def small_counts(rows: list[dict], columns: list[str]) -> list[tuple]:
    """Published counts from 1 to 4."""
    return [(c, r[c]) for r in rows for c in columns if r[c] not in (None, "") and 0 < float(r[c]) < SMALL]


def recovered_by_totals(rows: list[dict], column: str, totals: dict[str, float], group: str = "month") -> list[tuple]:
    """Suppressed cells given back by a published total: a month with exactly one empty cell, whose
    total (published elsewhere) less the month's published cells is that cell, a count from 1 to 4."""
    by_month = defaultdict(list)
    for r in rows:
        by_month[r[group]].append(r[column])
    found = []
    for month, cells in by_month.items():
        hidden = [c for c in cells if c in (None, "")]
        if len(hidden) == 1 and month in totals:
            value = totals[month] - sum(float(c) for c in cells if c not in (None, ""))
            if 0 < value < SMALL:
                found.append((month, value))
    return found


def free_text_columns(rows: list[dict]) -> list[str]:
    """Columns that read like prose: most of their values are several words in mixed case (codes,
    categories and generalized addresses are upper-case words)."""
    found = []
    for column in rows[0] if rows else []:
        values = [v for r in rows if isinstance(v := r[column], str) and v.strip()]
        prose = [v for v in values if len(v.split()) >= 3 and re.search(r"[a-z]", v)]
        if len(values) >= 5 and len(prose) >= len(values) / 2:
            found.append(column)
    return found


def precise_times(rows: list[dict], columns: list[str]) -> list[str]:
    """Published times with minutes or seconds."""
    return [r[c] for r in rows for c in columns if r[c] and not re.search(r"[T ]\d\d:00:00", str(r[c]))]


def reversed_ids(rows: list[dict], id_column: str, block_column: str, other_columns: list[str]) -> dict[str, str]:
    """Published ids given back by hashing candidates: every house number of the published block
    with the row's other published values, hashed as the platform documents its derived keys."""
    found = {}
    for row in rows:
        block = re.match(r"^(\d+) BLOCK (.+)$", str(row[block_column] or ""))
        if not block:
            continue
        for number in range(int(block.group(1)), int(block.group(1)) + 100):
            address = f"{number} {block.group(2)}"
            if derived_key([*(row[c] for c in other_columns), address]) == row[id_column]:
                found[row[id_column]] = address
                break
    return found


# ---- the demo's publication -------------------------------------------------------------------

@pytest.fixture(scope="module")
def city(new_database, s3_server, airflow_db, tmp_path_factory, clock):
    """Every demo source ingested, the measures computed and the open data published to a folder."""
    state, exports = tmp_path_factory.mktemp("city"), tmp_path_factory.mktemp("exports")
    warehouse, rms = new_database("aim_privacy"), new_database("mpd_rms")
    now = clock.replace(tzinfo=None, minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)
    with demo_systems(state, libpq_dsn(rms), now, police_new=0, s3_server=s3_server) as connections, \
            pytest.MonkeyPatch.context() as env:
        for name, value in {**connections, "AIM_WAREHOUSE_URL": warehouse, "AIM_EXPORT_URL": str(exports)}.items():
            env.setenv(name, value)
        for path in source_config_paths(sources_dir()):
            assert str(build_ingest_dag(load_source_config(path)).test().state) == "success", path.name
        assert str(build_measures_dag().test().state) == "success"
        assert str(build_publish_dag().test().state) == "success"
        yield {"warehouse": warehouse, "exports": exports}


def latest(city, dataset: str) -> list[dict]:
    return data_rows(city["exports"] / "latest" / dataset / f"{dataset}.csv")


def republished(city, tmp_path: Path, rows_of) -> list[dict]:
    """The rows the real projection and writer publish for a variant configuration (`rows_of(conn)`
    gives its Rows), read back from the CSV written to `tmp_path`."""
    with db.transaction(city["warehouse"]) as conn:
        rows: Rows = rows_of(conn)
        write_formats(conn, rows.query, rows.columns, tmp_path, "variant")
    return data_rows(tmp_path / "variant.csv")


def with_class(source: str, **classes: str) -> SourceConfig:
    """A source's configuration with some columns' privacy classes changed (the protection off)."""
    config = load_source(source)
    columns = [c.model_copy(update={"privacy": classes[c.name], "grid": None, "min_addresses": None,
                                    "generalize_to": None}) if c.name in classes else c for c in config.columns]
    return config.model_copy(update={"columns": columns})


# ---- exact addresses and ZIP+4 ----------------------------------------------------------------

def test_no_published_file_holds_an_exact_address_or_a_zip_plus_4(city):
    texts = published_texts(city["exports"])
    assert any(p.startswith("latest/mpd-crime-incidents/") for p in texts) and len(texts) > 30, sorted(texts)[:10]
    assert exact_addresses(texts) == {}
    assert zip_plus_4(texts) == {}


def test_the_address_attack_finds_addresses_published_as_they_came(city, tmp_path):
    rows = republished(city, tmp_path, lambda conn: public_projection(
        conn, with_class("dpw_service_requests", address="public")))
    found = exact_addresses({"variant": [r["address"] for r in rows if r["address"]]})
    assert len(found["variant"]) == 5, found


@pytest.mark.parametrize("address, block", [
    ("2846 N 1ST ST", "2800 BLOCK N 1ST ST"),
    ("2846-2848 N 1ST ST", "2800 BLOCK N 1ST ST"),
    ("APT 3, 2846 N 1ST ST", "2800 BLOCK N 1ST ST"),
    ("#2846 N 1ST ST", "2800 BLOCK N 1ST ST"),
    ("2846 N 1ST ST APT 3", "2800 BLOCK N 1ST ST"),
    ("2846 N 1st St, Milwaukee, WI 53212-1234", "2800 BLOCK N 1ST ST"),
    ("COLUMBIA ST MARYS HOSPITAL,MKE at 2301 N LAKE DR,MKE", "2300 BLOCK N LAKE DR"),
    ("2846 N 1ST ST JOHN SMITH", "2800 BLOCK N 1ST ST"),
    ("1600 W ST PAUL AV", "1600 BLOCK W ST PAUL AV"),
    ("1305 N BROADWAY", "1300 BLOCK N BROADWAY"),
    ("N 1ST ST & W CENTER ST", None),
    ("RESIDENT REFUSED TO GIVE ADDRESS", None),
    ("", None),
])
def test_irregular_addresses_generalize_to_their_block_or_to_nothing(city, address, block):
    (generalized,), = query(city["warehouse"], "SELECT ops.generalize_address(%s)", (address,))
    assert generalized == block
    assert not exact_addresses({"x": [generalized or ""]}) and not zip_plus_4({"x": [generalized or ""]})


def test_the_address_and_zip_attacks_find_what_the_old_generalizer_let_through():
    """Values the generalizer of migration 0015 published as they came (no house number at the start,
    a ZIP+4 after the street) are what the attacks catch."""
    let_through = ["APT 3, 2846 N 1ST ST", "COLUMBIA ST MARYS HOSPITAL,MKE at 2301 N LAKE DR,MKE",
                   "Caller says the man at 2850 N 1st St is loud", "2800 BLOCK N 1ST ST, MILWAUKEE, WI 53212-1234"]
    assert exact_addresses({"x": let_through}) == {"x": ["2301 N LAKE DR", "2846 N 1ST ST", "2850 N 1st St"]}
    assert zip_plus_4({"x": let_through}) == {"x": ["53212-1234"]}


# ---- coordinates ------------------------------------------------------------------------------

def core_address_points(city) -> dict[str, tuple[float, float]]:
    return {a: (x, y) for a, x, y in query(city["warehouse"], """
        SELECT upper(btrim(location)), avg(rough_x), avg(rough_y) FROM core.mpd_crime_incidents
        WHERE location ~ '^[0-9]' AND rough_x IS NOT NULL GROUP BY 1""")}


def test_no_published_point_stands_for_one_address(city):
    rows = latest(city, "mpd-crime-incidents")
    points = [(float(r["rough_x"]), float(r["rough_y"])) for r in rows if r["rough_x"]]
    assert len(points) > len(rows) / 2, "the grid leaves most incidents a point"
    assert points_of_one_address(points, core_address_points(city)) == []


def test_the_point_attack_finds_addresses_behind_exact_coordinates(city, tmp_path):
    rows = republished(city, tmp_path, lambda conn: public_projection(
        conn, with_class("mpd_crime_incidents", rough_x="public", rough_y="public")))
    points = [(float(r["rough_x"]), float(r["rough_y"])) for r in rows if r["rough_x"]]
    assert len(points_of_one_address(points, core_address_points(city))) > 100


# ---- small cells ------------------------------------------------------------------------------

def citywide_totals(city) -> dict[str, dict[str, float]]:
    """What the measures publish per month: children tested (CHI-01) and elevated (CHI-02 x CHI-01)."""
    values = defaultdict(dict)
    for r in latest(city, "aim-measure-values"):
        if r["geography_type"] == "citywide" and r["measure_code"] in ("CHI-01", "CHI-02") and r["value"]:
            values[r["period_start"][:7]][r["measure_code"]] = float(r["value"])
    return {"children_tested": {m: v["CHI-01"] for m, v in values.items() if "CHI-01" in v},
            "children_elevated": {m: round(v["CHI-02"] * v["CHI-01"] / 100) for m, v in values.items()
                                  if "CHI-01" in v and "CHI-02" in v}}


def test_no_count_of_children_is_small_or_recoverable_from_the_published_totals(city):
    rows = latest(city, "mhd-lead-tests")
    counts = ["children_tested", "children_elevated"]
    assert rows and small_counts(rows, counts) == []
    assert any(r["children_elevated"] == "" for r in rows), "the demo has small cells: suppression is exercised"
    totals = citywide_totals(city)
    assert totals["children_tested"], "the measures publish monthly totals"
    for column in counts:
        assert recovered_by_totals(rows, column, totals[column]) == []
    schema = json.loads((city["exports"] / "latest/mhd-lead-tests/mhd-lead-tests.schema.json").read_text())
    assert "suppressed" in next(f for f in schema["fields"] if f["name"] == "children_elevated")["description"]
    catalog = json.loads((city["exports"] / "catalog/data.json").read_text())
    assert "suppressed" in next(d for d in catalog["dataset"] if "mhd-lead-tests" in d["identifier"])["description"]


def test_the_small_cell_attack_finds_small_counts_when_suppression_is_off(city, tmp_path):
    rows = republished(city, tmp_path, lambda conn: public_projection(conn, load_source("mhd_lead_tests")))
    assert small_counts(rows, ["children_elevated"]), "without suppression small counts are published"


@pytest.mark.parametrize("published_totals", [[["g"]], []])
def test_complementary_suppression_leaves_no_group_with_one_hidden_cell(city, tmp_path, published_totals):
    """Cells of 1-4 are hidden; where the group's total is published, a group's lone hidden cell takes
    the group's next smallest (non-zero first) with it. Without that, the total gives the cell back."""
    cells = SmallCells(columns=["n"], threshold=5, published_totals=published_totals)
    statement = ("SELECT * FROM (VALUES ('a', 1, 3), ('a', 2, 40), ('a', 3, 7), ('b', 1, 0), ('b', 2, 9), "
                 "('c', 1, 2), ('c', 2, 1), ('c', 3, 30)) AS t(g, k, n)")
    rows = republished(city, tmp_path, lambda conn: suppress_small_cells(
        conn, "cells-test", Rows(statement, [Column("g", "text"), Column("k", "integer"), Column("n", "integer")],
                                 ["g", "k"]), cells))
    shown = {(r["g"], r["k"]): r["n"] for r in rows}
    totals = {"a": 50, "b": 9, "c": 33}
    assert small_counts(rows, ["n"]) == []
    if published_totals:
        assert shown == {("a", "1"): "", ("a", "2"): "40", ("a", "3"): "", ("b", "1"): "0", ("b", "2"): "9",
                         ("c", "1"): "", ("c", "2"): "", ("c", "3"): "30"}
        assert recovered_by_totals(rows, "n", totals, group="g") == []
    else:
        assert recovered_by_totals(rows, "n", totals, group="g") == [("a", 3.0)]


# ---- free text, times -------------------------------------------------------------------------

# In the data sets built by a query (not a source's rows), the names the city gives its own things
# read like prose too: the registry's priorities and measure names, the inventory's titles.
CITY_NAMES = {"priority", "department", "measure", "title", "steward"}


def test_no_free_text_column_is_published_without_a_review(city):
    prose_seen = set()
    for dataset in (d for d in inventory() if d.released):
        columns = load_source(dataset.source).columns if dataset.source else dataset.columns
        reviewed = {c.name for c in columns if c.reviewed}
        prose = set(free_text_columns(latest(city, dataset.id))) - (set() if dataset.source else CITY_NAMES)
        assert not prose - reviewed, (dataset.id, prose - reviewed)
        prose_seen |= {(dataset.id, c) for c in prose}
    # the attack does see the reviewed prose: the departments' commentary in the measure values
    assert ("aim-measure-values", "commentary_reason") in prose_seen, prose_seen


def test_the_free_text_attack_finds_lab_notes_classed_public(city, tmp_path):
    rows = republished(city, tmp_path, lambda conn: public_projection(
        conn, with_class("mhd_lead_tests", notes="public")))
    assert free_text_columns(rows) == ["notes"]


def test_ems_and_police_times_are_published_to_the_hour(city, tmp_path):
    fire = ["call_received_at", "dispatched_at", "en_route_at", "on_scene_at", "cleared_at"]
    assert precise_times(latest(city, "mfd-dispatch-incidents"), fire) == []
    assert precise_times(latest(city, "mpd-crime-incidents"), ["reported_at"]) == []
    rows = republished(city, tmp_path, lambda conn: public_projection(
        conn, with_class("mfd_dispatch_incidents", call_received_at="public")))
    assert precise_times(rows, ["call_received_at"]), "the demo's calls have minutes: the check can fail"


# ---- ids --------------------------------------------------------------------------------------

def orders_with_derived_key(published: str) -> SourceConfig:
    """The DNS orders as a system without ids would give them: a key hashed from violation, day and address."""
    raw = load_source("dns_code_enforcement_orders").model_dump(exclude_none=True)
    raw["columns"] = [{**c, "privacy": published if c["name"] == "order_number" else c["privacy"]} for c in raw["columns"]]
    return SourceConfig.model_validate({**raw, "derived_key": {
        "column": "order_number", "from_columns": ["violation_type", "issued_on", "address"]}})


def test_a_derived_key_can_only_be_dropped_and_the_data_set_then_publishes_an_opaque_id(city, tmp_path):
    with pytest.raises(ValueError, match="order_number is a derived key"):
        orders_with_derived_key("public")
    config = orders_with_derived_key("drop")
    # what publishing the derived key (as the platform computes it from the landed text) would show
    as_if_published = [dict(zip(["order_number", "violation_type", "issued_on", "address"], r)) for r in query(
        city["warehouse"], "SELECT left(encode(sha256(convert_to(concat_ws(chr(31), violation_type, "
        "to_char(issued_on, 'YYYY-MM-DD'), address), 'UTF8')), 'hex'), 32), violation_type, "
        "to_char(issued_on, 'YYYY-MM-DD'), ops.generalize_address(address) FROM core.dns_code_enforcement_orders")]
    with db.transaction(city["warehouse"]) as conn:
        rows = public_projection(conn, config)
        write_formats(conn, rows.query, rows.columns, tmp_path, "variant")
        again = public_projection(conn, config)
    published = data_rows(tmp_path / "variant.csv")
    assert rows.key == again.key == ["record_id"] and "order_number" not in published[0]
    ids = [r["record_id"] for r in published]
    assert len(set(ids)) == len(ids) == len(as_if_published)
    # the attack: every house number of each published block, hashed with the row's other values
    before = reversed_ids(as_if_published, "order_number", "address", ["violation_type", "issued_on"])
    assert len(before) > len(as_if_published) * 0.9, "a published derived key gives the address back"
    assert reversed_ids(published, "record_id", "address", ["violation_type", "issued_on"]) == {}


def test_record_ids_are_stable_from_one_publication_to_the_next(city):
    config = orders_with_derived_key("drop")
    with db.transaction(city["warehouse"]) as conn:
        first = query_ids(conn, public_projection(conn, config))
    with db.transaction(city["warehouse"]) as conn:
        second = query_ids(conn, public_projection(conn, config))
    assert first == second and len(first) > 100


def query_ids(conn, rows: Rows) -> list:
    with conn.cursor() as cur:
        cur.execute(f"SELECT record_id FROM ({rows.query}) AS q")
        return [r[0] for r in cur.fetchall()]


# ---- the inventory ----------------------------------------------------------------------------

def test_a_data_set_holding_personal_values_or_free_text_cannot_be_public():
    notes = next(d for d in inventory() if d.id == "dns-inspection-notes")
    assert notes.sensitivity != "public" and "free_text" in notes.contains
    with pytest.raises(ValueError, match="contains free_text and personal cannot be public"):
        DatasetConfig.model_validate({**notes.model_dump(), "sensitivity": "public"})


def test_a_column_without_a_privacy_class_is_a_configuration_error(tmp_path):
    text = (sources_dir() / "mhd_lead_tests.yaml").read_text().replace(", privacy: free_text", "")
    (tmp_path / "mhd_lead_tests.yaml").write_text(text)
    with pytest.raises(SourceConfigError, match=r"mhd_lead_tests.yaml: field 'columns.5': .*column notes declares no privacy class"):
        load_source_config(tmp_path / "mhd_lead_tests.yaml")
