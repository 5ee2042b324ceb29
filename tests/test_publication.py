"""Open data publication against the real S3 server: every data set in three formats with its
data dictionary, archive and latest, the manifest, the DCAT-US catalog and the scorecard site;
privacy applied; nothing rewritten when nothing changed; a publication killed midway leaves the
previous one complete."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
import yaml

from aim.dag_factory import build_ingest_dag
from aim.measures_dag import build_measures_dag
from aim.publish.catalog import validate_catalog
from aim.publish.dag import build_publish_dag
from aim.publish.datasets import inventory
from aim.settings import datasets_dir, sources_dir
from aim.sources import load_source_config, source_config_paths
from aim_demo.databases import libpq_dsn, query
from aim_demo.systems import demo_systems

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime.now(ZoneInfo("America/Chicago")).replace(tzinfo=None, minute=0, second=0, microsecond=0) \
    - dt.timedelta(hours=2)
HOUSE_NUMBER = re.compile(r"^\s*\d+[A-Z]?\s+(?!BLOCK\b)")


class Portal:
    def __init__(self, warehouse, s3, bucket):
        self.warehouse, self.s3, self.bucket = warehouse, s3, bucket

    def get(self, relpath) -> bytes:
        return self.s3.client().get_object(Bucket=self.bucket, Key=f"open/{relpath}")["Body"].read()

    def objects(self) -> dict[str, tuple]:
        found = {}
        for page in self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="open/"):
            for obj in page.get("Contents", []):
                found[obj["Key"][len("open/"):]] = (obj["ETag"], obj["LastModified"])
        return found

    def query(self, statement, params=None):
        return query(self.warehouse, statement, params)

    def publish(self):
        return str(build_publish_dag().test().state)


@pytest.fixture(scope="module")
def portal(new_database, s3_server, airflow_db, tmp_path_factory):
    state = tmp_path_factory.mktemp("city")
    warehouse, rms = new_database("aim_wh"), new_database("mpd_rms")
    bucket = f"portal-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    with demo_systems(state, libpq_dsn(rms), NOW, police_new=0, s3_server=s3_server) as connections, \
            pytest.MonkeyPatch.context() as env:
        for name, value in {**connections, "AIM_WAREHOUSE_URL": warehouse, "AIM_EXPORT_URL": f"s3://{bucket}/open",
                            "AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_ACCESS_KEY_ID": s3_server.access_key,
                            "AWS_SECRET_ACCESS_KEY": s3_server.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}.items():
            env.setenv(name, value)
        for path in source_config_paths(sources_dir()):
            assert str(build_ingest_dag(load_source_config(path)).test().state) == "success", path.name
        assert str(build_measures_dag().test().state) == "success"
        portal = Portal(warehouse, s3_server, bucket)
        assert portal.publish() == "success"
        yield portal


RELEASED = [d for d in inventory() if d.released]


def test_every_released_data_set_is_published_in_three_formats_with_its_dictionary(portal):
    today = dt.date.today().isoformat()
    objects = portal.objects()
    for dataset in RELEASED:
        for ext in ("csv", "json", "parquet", "schema.json"):
            assert f"latest/{dataset.id}/{dataset.id}.{ext}" in objects, (dataset.id, ext)
            assert f"archive/{dataset.id}/{today}/{dataset.id}.{ext}" in objects, (dataset.id, ext)
        rows = list(csv.DictReader(io.StringIO(portal.get(f"latest/{dataset.id}/{dataset.id}.csv").decode(), newline="")))
        as_json = json.loads(portal.get(f"latest/{dataset.id}/{dataset.id}.json"))
        as_parquet = pq.read_table(io.BytesIO(portal.get(f"latest/{dataset.id}/{dataset.id}.parquet")))
        schema = json.loads(portal.get(f"latest/{dataset.id}/{dataset.id}.schema.json"))
        assert len(rows) == len(as_json) == as_parquet.num_rows > 0, dataset.id
        assert [f["name"] for f in schema["fields"]] == list(rows[0]) == as_parquet.column_names
    unreleased = {d.id for d in inventory() if not d.released}
    assert not any(key.split("/")[1] in unreleased for key in objects if key.startswith(("latest/", "archive/")))


def test_manifest_lists_every_file_with_size_rows_and_checksum(portal):
    manifest = json.loads(portal.get("manifest.json"))
    listed = {f["path"]: f for f in manifest["files"]}
    data_files = {k for k in portal.objects() if k.startswith(("latest/", "archive/"))}
    assert set(listed) == data_files
    for path, entry in listed.items():
        body = portal.get(path)
        assert entry["bytes"] == len(body) and entry["sha256"] == hashlib.sha256(body).hexdigest(), path
        assert entry["run_id"]
        if path.endswith(".csv"):
            assert entry["rows"] == body.count(b"\r\n") - 1 or entry["rows"] == len(
                list(csv.reader(io.StringIO(body.decode(), newline="")))) - 1


def test_catalog_is_valid_dcat_us_and_describes_every_released_data_set(portal):
    catalog = json.loads(portal.get("catalog/data.json"))
    assert validate_catalog(catalog) == []
    entries = {e["title"]: e for e in catalog["dataset"]}
    assert set(entries) == {d.title for d in RELEASED}
    for dataset in RELEASED:
        entry = entries[dataset.title]
        assert entry["accrualPeriodicity"] == dataset.accrual_periodicity
        assert entry["describedBy"].endswith(f"latest/{dataset.id}/{dataset.id}.schema.json")
        assert {d["mediaType"] for d in entry["distribution"]} == {
            "text/csv", "application/json", "application/vnd.apache.parquet"}
        assert dt.datetime.fromisoformat(entry["modified"])
        if dataset.temporal_column:
            start, end = entry["temporal"].split("/")
            assert start <= end


def test_inventory_is_published_without_restricted_data_sets(portal):
    rows = list(csv.DictReader(io.StringIO(portal.get("latest/open-data-inventory/open-data-inventory.csv").decode(),
                                           newline="")))
    listed = {r["dataset_id"]: r["release_status"] for r in rows}
    assert listed["dpw-snow-plow-locations"] == "inventoried" and listed["dns-inspection-notes"] == "under_review"
    assert "mfd-ems-patient-care-reports" not in listed  # restricted: counted in the program, not listed


def test_privacy_scan_every_exported_file(portal):
    for dataset in RELEASED:
        if not dataset.source:
            continue
        config = load_source_config(sources_dir() / f"{dataset.source}.yaml")
        dropped = {c.name for c in config.columns if c.privacy == "drop"}
        generalized = {c.name for c in config.columns if c.privacy == "generalize" and c.type == "text"}
        stem = f"latest/{dataset.id}/{dataset.id}"
        tables = {
            "csv": list(csv.DictReader(io.StringIO(portal.get(f"{stem}.csv").decode(), newline=""))),
            "json": json.loads(portal.get(f"{stem}.json")),
            "parquet": pq.read_table(io.BytesIO(portal.get(f"{stem}.parquet"))).to_pylist(),
        }
        for fmt, rows in tables.items():
            assert not dropped & set(rows[0]), (dataset.id, fmt, dropped & set(rows[0]))
            for column in generalized:
                raw = [r[column] for r in rows if r[column] and HOUSE_NUMBER.match(r[column])]
                assert raw == [], (dataset.id, fmt, column, raw[:3])
    # and the generalization is real: a raw address in core is a block in the export
    address = portal.query("SELECT address FROM core.mfd_dispatch_incidents WHERE address ~ '^[0-9]+ ' LIMIT 1")[0][0]
    assert re.sub(r"^(\d+)", lambda m: str(int(m.group(1)) // 100 * 100) + " BLOCK", address) in \
        portal.get("latest/mfd-dispatch-incidents/mfd-dispatch-incidents.csv").decode()


def test_the_scorecard_site_is_published_with_every_measure(portal):
    page = portal.get("site/index.html").decode()
    for (name,) in portal.query("SELECT DISTINCT measure_name FROM marts.scorecard"):
        assert name.replace("&", "&amp;") in page


def test_a_second_publication_with_no_new_data_rewrites_nothing(portal):
    before = portal.objects()
    assert portal.publish() == "success"
    assert portal.objects() == before


KILLER = textwrap.dedent("""
    import datetime, os, signal, sys
    sys.path[:0] = [{plugins!r}, {root!r}]
    from aim.storage import S3Target
    real, count = S3Target.publish, [0]
    def publish(self, *args, **kwargs):
        if count[0] == {after}:
            os.kill(os.getpid(), signal.SIGKILL)   # the machine dies mid-publication
        count[0] += 1
        return real(self, *args, **kwargs)
    S3Target.publish = publish
    from aim.publish.publication import publish as publish_all
    publish_all(run_id="killed", today=datetime.date.fromisoformat({day!r}))
""")


def _run_publication(after: int, day: dt.date) -> subprocess.CompletedProcess:
    script = KILLER.format(plugins=str(ROOT / "plugins"), root=str(ROOT), after=after, day=day.isoformat())
    return subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), capture_output=True)


@pytest.mark.parametrize("after", [2, 6])  # files written before the kill: inside the archive; inside latest
def test_a_publication_killed_midway_leaves_the_previous_one_complete(portal, after):
    day = dt.date.today() + dt.timedelta(days=after)  # a day without an archive snapshot yet
    manifest, catalog = portal.get("manifest.json"), portal.get("catalog/data.json")
    portal.query("UPDATE core.mhd_lead_tests SET children_tested = children_tested + 1 "
                 "WHERE month = (SELECT max(month) FROM core.mhd_lead_tests) RETURNING 1")

    killed = _run_publication(after, day)

    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert portal.get("manifest.json") == manifest and portal.get("catalog/data.json") == catalog
    for entry in json.loads(manifest)["files"]:  # every file the manifest lists is still whole
        digest = hashlib.sha256(portal.get(entry["path"])).hexdigest()
        if digest != entry["sha256"]:  # only a latest file of the changed data set, replaced whole
            assert entry["path"].startswith("latest/mhd-lead-tests/"), entry["path"]
            snapshot = entry["path"].replace("latest/mhd-lead-tests/", f"archive/mhd-lead-tests/{day}/")
            assert digest == hashlib.sha256(portal.get(snapshot)).hexdigest(), entry["path"]

    completed = _run_publication(10_000, day)  # the next publication completes the job

    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    final = json.loads(portal.get("manifest.json"))["files"]
    for entry in final:
        assert hashlib.sha256(portal.get(entry["path"])).hexdigest() == entry["sha256"], entry["path"]
    for ext in ("csv", "json", "parquet", "schema.json"):
        assert any(e["path"] == f"archive/mhd-lead-tests/{day}/mhd-lead-tests.{ext}" for e in final)
    assert validate_catalog(json.loads(portal.get("catalog/data.json"))) == []


def test_a_retired_data_set_keeps_its_archive_and_is_marked(portal, tmp_path, monkeypatch):
    shutil.copytree(datasets_dir(), tmp_path / "datasets")
    path = tmp_path / "datasets" / "mhd-lead-tests.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["release_status"] = "retired"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("AIM_DATASETS_DIR", str(tmp_path / "datasets"))

    assert portal.publish() == "success"

    entry = next(e for e in json.loads(portal.get("catalog/data.json"))["dataset"]
                 if e["title"].startswith(raw["title"]))
    assert "(retired)" in entry["title"] and "retired" in entry["keyword"]
    assert any(k.startswith("archive/mhd-lead-tests/") for k in portal.objects())
