"""Adding a source is one configuration file and one suite: the ones docs/adding-a-source.md
shows, taken from the page itself, in a temporary sources folder beside the shipped ones."""
from __future__ import annotations

import csv
import datetime as dt
import os
import re
import shutil
from pathlib import Path

import psycopg2
import pytest
from airflow.dag_processing.dagbag import DagBag

from aim import check
from aim.settings import expectations_dir, sources_dir
from aim.sources import source_config_paths
from aim_demo.call_center import write_file_export
from aim_demo.databases import libpq_dsn
from aim_demo.systems import folder_connection

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "adding-a-source.md"
DAG_ID = "ingest_dpw_service_requests_export"


def files_in_guide() -> dict[str, str]:
    """The files the guide tells the reader to write: `<!-- file: PATH -->` then a fenced block."""
    found = re.findall(r"<!-- file: (\S+) -->\s*```\w*\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return dict(found)


def _requests_in(path: Path) -> set[tuple]:
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["Request Type"], r["Created"], r["Address"]) for r in csv.DictReader(f)}


@pytest.fixture
def one_more_source(tmp_path, monkeypatch):
    shutil.copytree(sources_dir(), tmp_path / "dags" / "sources")
    shutil.copytree(expectations_dir(), tmp_path / "expectations")
    for relative, text in files_in_guide().items():
        (tmp_path / relative).write_text(text)
    monkeypatch.setenv("AIM_SOURCES_DIR", str(tmp_path / "dags" / "sources"))
    monkeypatch.setenv("AIM_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    return tmp_path


def test_the_guide_shows_one_configuration_and_one_suite():
    assert sorted(files_in_guide()) == [
        "dags/sources/dpw_service_requests_export.yaml", "expectations/dpw_service_requests_export.json"
    ]


@pytest.mark.clock
def test_a_new_source_becomes_one_more_dag_and_loads(one_more_source, new_database, airflow_db, monkeypatch, clock):
    now = clock.replace(tzinfo=None, microsecond=0) - dt.timedelta(hours=6)  # the export's clock, in the past
    new_config = one_more_source / "dags" / "sources" / "dpw_service_requests_export.yaml"
    assert check.main([str(new_config)]) == 0

    bag = DagBag(dag_folder=str(ROOT / "dags" / "ingest_sources.py"))
    assert bag.import_errors == {}
    shipped = len(source_config_paths(ROOT / "dags" / "sources"))
    assert len([d for d in bag.dag_ids if d.startswith("ingest_")]) == shipped + 1 and DAG_ID in bag.dag_ids

    warehouse = new_database("aim_wh")
    landing = one_more_source / "landing"
    export = landing / "dpw" / "exports" / "requests_export.csv"
    export.parent.mkdir(parents=True)
    rows = write_file_export(export, now)
    monkeypatch.setenv("AIM_WAREHOUSE_URL", warehouse)
    monkeypatch.setenv("AIRFLOW_CONN_DPW_EXPORT_DROP", folder_connection(landing))

    first = bag.dags[DAG_ID].test()
    assert str(first.state) == "success"
    assert _core_count(warehouse) == rows == len(_requests_in(export))

    # the next night's export: same name, a day later; requests keep their derived key
    before = _requests_in(export)
    write_file_export(export, now + dt.timedelta(hours=5))
    second = bag.dags[DAG_ID].test()
    assert str(second.state) == "success"
    assert _core_count(warehouse) == len(before | _requests_in(export))
    # what the runs wrote (the quality reports) went to the module's own quality folder, not the checkout
    assert (Path(os.environ["AIM_QUALITY_URL"]) / "index.html").is_file()


def _core_count(url: str) -> int:
    conn = psycopg2.connect(libpq_dsn(url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM core.dpw_service_requests_export")
            return cur.fetchone()[0]
    finally:
        conn.close()
