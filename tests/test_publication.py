"""Open data publication against the real S3 server: every data set in three formats with its
data dictionary, archive and latest, the manifest, the DCAT-US catalog and the scorecard site;
privacy applied to everything under the export root (data files, archive, site, manifest,
catalog); the quality reports and Data Docs only in the private quality target (AIM_QUALITY_URL),
never under the export root, even with markup in a failing value; nothing rewritten when nothing
changed; a publication killed midway leaves the previous one complete.

Dates come from the suite's clock (`clock`, `today`; the platform reads the same moment from
AIM_NOW), so the archive snapshot is `archive/<id>/<today>/` whatever day the suite runs. Every
test leaves the portal as a publication of the module's data would: none depends on another's
order or leftovers."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import html
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

import openpyxl
import pyarrow.parquet as pq
import pytest
import yaml

from aim.dag_factory import build_ingest_dag
from aim.measures.dag import build_measures_dag
from aim.publish.catalog import validate_catalog
from aim.publish.dag import build_publish_dag
from aim.publish.datasets import inventory
from aim.settings import datasets_dir, sources_dir
from aim.sources import load_source_config, source_config_paths
from aim_demo.databases import libpq_dsn, query
from aim_demo.systems import demo_systems

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ("drop", "personal", "free_text")  # privacy classes never published
HOUSE_NUMBER = re.compile(r"^\s*\d+[A-Z]?\s+(?!BLOCK\b)")


class Portal:
    def __init__(self, warehouse, s3, bucket, quality: Path):
        self.warehouse, self.s3, self.bucket, self.quality = warehouse, s3, bucket, quality

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

    def quality_files(self) -> dict[str, bytes]:
        """Every file of the private quality target (a folder), by path relative to it."""
        return {p.relative_to(self.quality).as_posix(): p.read_bytes() for p in self.quality.rglob("*") if p.is_file()}

    def publish(self):
        return str(build_publish_dag().test().state)


# A flaw as real department files have: a DNS order whose complied date is not a date. The row-level
# rules set it aside (ops.rejected_row keeps the raw row, address included); the privacy scan checks
# that nothing of it reaches the exports or the private quality reports (index.html, the batch's Data Docs).
FLAWED_ORDER_ADDRESS = "4172 N 61ST ST"
# Markup as a hostile delivery could carry it, in a value that fails a critical column check (DNS order
# status): the batch is quarantined; GX Data Docs show the value unescaped, so they stay private.
HOSTILE = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")


def _write_dns_workbook(path: Path, rows: list[list]) -> None:
    """A DNS orders workbook as the department sends it (sheet Orders, its header), with `rows`."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Orders"
    sheet.append(["Order Number", "Violation Type", "Issued", "Compliance Due", "Complied Date", "Status",
                  "Address", "Aldermanic District"])
    for row in rows:
        sheet.append(row)
    workbook.save(path)


def _write_flawed_dns_workbook(folder: Path, now: dt.datetime) -> None:
    issued = now.date() - dt.timedelta(days=3)
    _write_dns_workbook(folder / "dns_orders_corrections.xlsx", [
        [f"ORD-{issued:%y}999999", "BROKEN WINDOW", issued, issued + dt.timedelta(days=30), "see inspector", "OPEN",
         FLAWED_ORDER_ADDRESS, 2]])


def _write_hostile_dns_workbook(folder: Path, now: dt.datetime) -> None:
    issued = now.date() - dt.timedelta(days=2)
    _write_dns_workbook(folder / "dns_orders_hostile.xlsx", [
        [f"ORD-{issued:%y}99999{n}", "BROKEN WINDOW", issued, issued + dt.timedelta(days=30), None, status,
         f"{4180 + n} N 61ST ST", 2] for n, status in enumerate(HOSTILE)])


@pytest.fixture(scope="module")
def demo_now(clock) -> dt.datetime:
    """The demo systems' clock: two hours before the suite's moment, on the hour, as Milwaukee's
    naive wall-clock time (the suites refuse records from the future)."""
    return clock.replace(tzinfo=None, minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)


@pytest.fixture(scope="module")
def portal(new_database, s3_server, airflow_db, tmp_path_factory, demo_now):
    state = tmp_path_factory.mktemp("city")
    quality = state / "quality"  # the private quality target: not the portal's
    warehouse, rms = new_database("aim_wh"), new_database("mpd_rms")
    bucket = f"portal-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    with demo_systems(state, libpq_dsn(rms), demo_now, police_new=0, s3_server=s3_server) as connections, \
            pytest.MonkeyPatch.context() as env:
        for name, value in {**connections, "AIM_WAREHOUSE_URL": warehouse, "AIM_EXPORT_URL": f"s3://{bucket}/open",
                            "AIM_QUALITY_URL": str(quality),
                            "AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_ACCESS_KEY_ID": s3_server.access_key,
                            "AWS_SECRET_ACCESS_KEY": s3_server.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}.items():
            env.setenv(name, value)
        _write_flawed_dns_workbook(state / "landing" / "dns" / "orders", demo_now)
        for path in source_config_paths(sources_dir()):
            assert str(build_ingest_dag(load_source_config(path)).test().state) == "success", path.name
        assert str(build_measures_dag().test().state) == "success"
        _write_hostile_dns_workbook(state / "landing" / "dns" / "orders", demo_now)  # quarantined: never exported
        dns = next(p for p in source_config_paths(sources_dir()) if p.stem == "dns_code_enforcement_orders")
        assert str(build_ingest_dag(load_source_config(dns)).test().state) == "failed"
        portal = Portal(warehouse, s3_server, bucket, quality)
        assert portal.publish() == "success"
        yield portal


RELEASED = [d for d in inventory() if d.released]


@pytest.mark.clock  # the archive snapshot is named by Milwaukee's date (aim.clock.local_today)
def test_every_released_data_set_is_published_in_three_formats_with_its_dictionary(portal, today):
    objects = portal.objects()
    for dataset in RELEASED:
        for ext in ("csv", "json", "parquet", "schema.json"):
            assert f"latest/{dataset.id}/{dataset.id}.{ext}" in objects, (dataset.id, ext)
            assert f"archive/{dataset.id}/{today.isoformat()}/{dataset.id}.{ext}" in objects, (dataset.id, ext)
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
    assert listed["dpw-snow-plow-locations"] == "inventoried"
    assert "mfd-ems-patient-care-reports" not in listed  # restricted: counted in the program, not listed
    assert "dns-inspection-notes" not in listed  # sensitive (its notes can name occupants): not listed either


class PersonalValues:
    """What must never appear anywhere under the export root: every raw address (with its house
    number) of a column classed `generalize`, and every value of a text column classed `drop`
    (the lab's free-text notes), as the warehouse holds them (core, staging and rejected rows).
    Dropped columns of other types (the RMS's internal update time) are caught by name in the
    data files: their values are not personal and not recognisable as text."""

    NUMBER = re.compile(r"(?<![0-9A-Za-z])[0-9]+[A-Z]?(?= )")

    def __init__(self, addresses: set[str], texts: set[str]):
        self.addresses, self.texts = addresses, texts
        self.by_number: dict[str, set[str]] = {}
        for address in addresses:
            self.by_number.setdefault(address.split(" ", 1)[0], set()).add(address)

    def found_in(self, text: str) -> set[str]:
        text = " ".join(text.split())
        found = {t for t in self.texts if t in text}
        for match in self.NUMBER.finditer(text):
            for address in self.by_number.get(match.group(), ()):
                end = match.start() + len(address)
                if text.startswith(address, match.start()) and not text[end:end + 1].isalnum():
                    found.add(address)
        return found


def _personal_values(portal) -> PersonalValues:
    addresses, texts = set(), set()
    for path in source_config_paths(sources_dir()):
        config = load_source_config(path)
        for column in config.columns:
            if column.type != "text" or column.privacy not in (*HIDDEN, "generalize_address"):
                continue
            values = f"""
                SELECT btrim(regexp_replace({column.name}::text, '\\s+', ' ', 'g')) AS v FROM core.{config.source}
                UNION SELECT btrim(regexp_replace({column.name}::text, '\\s+', ' ', 'g')) FROM staging.{config.source}
                UNION SELECT btrim(regexp_replace(row_data->>'{column.name}', '\\s+', ' ', 'g'))
                      FROM ops.rejected_row WHERE source = %(source)s"""
            condition = "v <> ''" if column.privacy in HIDDEN else "v ~ '^[0-9]+[A-Z]? \\S'"
            found = {v for (v,) in portal.query(f"SELECT DISTINCT v FROM ({values}) AS x WHERE {condition}",
                                                {"source": config.source})}
            assert found, (config.source, column.name)  # the demo data has some: the scan looks for them
            (texts if column.privacy in HIDDEN else addresses).update(found)
    return PersonalValues(addresses, texts)


def _walk_strings(doc):
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for key, value in doc.items():
            yield key
            yield from _walk_strings(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _walk_strings(value)


def _texts_of(relpath: str, body: bytes) -> list[str]:
    """Every text a reader can get out of a published file: its bytes as text (HTML unescaped too),
    the strings of a JSON document, the column names and string cells of a Parquet file."""
    if relpath.endswith(".parquet"):
        table = pq.read_table(io.BytesIO(body))
        cells = [str(v) for column in table.columns for v in column.to_pylist() if isinstance(v, str)]
        return ["\n".join(table.column_names + cells)]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return [body.decode("latin-1")]  # a binary asset: any ASCII text in it still shows
    texts = [text, html.unescape(text)] if "&" in text else [text]
    if relpath.endswith(".json"):
        texts.append("\n".join(_walk_strings(json.loads(text))))
    return texts


def _check_data_file(relpath: str, body: bytes, sources: dict) -> None:
    """A released data set's data file (latest or archive): no dropped column, and no house number
    left in a generalized column."""
    dataset_id, ext = relpath.split("/")[1], relpath.rsplit("/", 1)[1].split(".", 1)[1]
    if dataset_id not in sources:
        return
    dropped, generalized = sources[dataset_id]
    if ext == "schema.json":
        names = [f["name"] for f in json.loads(body)["fields"]]
        assert not dropped & set(names), (relpath, dropped & set(names))
        return
    rows = {
        "csv": lambda: list(csv.DictReader(io.StringIO(body.decode(), newline=""))),
        "json": lambda: json.loads(body),
        "parquet": lambda: pq.read_table(io.BytesIO(body)).to_pylist(),
    }[ext]()
    assert rows, relpath
    assert not dropped & set(rows[0]), (relpath, dropped & set(rows[0]))
    for column in generalized:
        raw = [r[column] for r in rows if r[column] and HOUSE_NUMBER.match(r[column])]
        assert raw == [], (relpath, column, raw[:3])


@pytest.fixture(scope="module")
def personal(portal) -> PersonalValues:
    values = _personal_values(portal)
    assert FLAWED_ORDER_ADDRESS in values.addresses  # the flawed order was set aside, its address kept in ops
    some = min(values.addresses - {FLAWED_ORDER_ADDRESS})
    assert values.found_in(f'<td class="x">{some}</td>') == {some}  # the scan can see one
    assert values.found_in(f"{some[:-1]}, 2800 BLOCK {some.split(' ', 1)[1]}") == set()
    return values


def _area(relpath: str) -> str:
    top = relpath.split("/", 1)[0]
    return top if top in ("latest", "archive", "quality") else "rest"


def _data_set_columns() -> dict:
    """Per released data set fed by a source: its dropped columns and its generalized text columns."""
    sources = {}
    for dataset in RELEASED:
        if dataset.source:
            config = load_source_config(sources_dir() / f"{dataset.source}.yaml")
            sources[dataset.id] = ({c.name for c in config.columns if c.privacy in HIDDEN},
                                   {c.name for c in config.columns if c.privacy == "generalize_address"})
    return sources


def _leaks(personal: PersonalValues, texts_by_path: dict[str, list[str]]) -> str:
    """A report of the personal values found in these files' texts ("" when none)."""
    found = {path: set().union(*(personal.found_in(text) for text in texts)) for path, texts in texts_by_path.items()}
    return "\n".join(f"  {path}: {len(values)} value(s), e.g. {sorted(values)[:3]}"
                     for path, values in sorted(found.items()) if values)


# "rest": the site, manifest.json, catalog/data.json and any other file under the export root;
# "quality": nothing at all, the quality reports are in the private quality target
@pytest.mark.parametrize("area", ["latest", "archive", "quality", "rest"])
def test_privacy_scan_everything_published(portal, personal, area):
    """Every file under the export root, by area (the data files, their archive, and everything else:
    the site, the manifest, the catalog), is free of personal values: every text in it, every JSON
    string, every Parquet cell. Nothing is under quality/: quality reports are not published."""
    sources = _data_set_columns()
    texts: dict[str, list[str]] = {}
    scanned = [relpath for relpath in sorted(portal.objects()) if _area(relpath) == area]
    for relpath in scanned:
        body = portal.get(relpath)
        if area in ("latest", "archive"):
            _check_data_file(relpath, body, sources)
        texts[relpath] = _texts_of(relpath, body)

    expected = {"latest": ["latest/"], "archive": ["archive/"], "rest": ["site/index.html", "manifest.json", "catalog/data.json"],
                "quality": []}[area]
    for prefix in expected:  # the scan saw what it is meant to see
        assert any(p.startswith(prefix) for p in scanned), f"nothing published under {prefix}"
    if area == "quality":
        assert scanned == [], "quality reports and Data Docs are under the export root: they must stay private"
    leaks = _leaks(personal, texts)
    assert not leaks, "personal values published:\n" + leaks
    if area == "latest":  # and the generalization is real: a raw address in core is a block in the export
        address = portal.query("SELECT address FROM core.mfd_dispatch_incidents WHERE address ~ '^[0-9]+ ' LIMIT 1")[0][0]
        assert re.sub(r"^(\d+)", lambda m: str(int(m.group(1)) // 100 * 100) + " BLOCK", address) in \
            portal.get("latest/mfd-dispatch-incidents/mfd-dispatch-incidents.csv").decode()


def test_quality_reports_are_in_the_private_target_with_data_docs_samples(portal, personal):
    """The private quality target holds the quality index and every source's Data Docs, whose pages
    show failed column checks' sample values (read by the scan), and no personal value."""
    texts = {relpath: _texts_of(relpath, body) for relpath, body in portal.quality_files().items()}
    assert "index.html" in texts and any(p.startswith("dns_code_enforcement_orders/validations/") for p in texts)
    leaks = _leaks(personal, texts)
    assert not leaks, "personal values in the quality reports:\n" + leaks
    # Data Docs do show failed column checks' sample values (warnings'), and the scan reads them
    failed = portal.query("SELECT source, unexpected_sample FROM ops.quality_result WHERE NOT success "
                          "AND expectation LIKE 'expect_column_values_%' AND jsonb_typeof(unexpected_sample -> 0) = 'string'")
    assert failed, "no failed column check with sample values: nothing shows that Data Docs samples are scanned"
    assert any(value in text for source, sample in failed for value in sample for page, page_texts in texts.items()
               if page.startswith(f"{source}/validations/") for text in page_texts), failed


def test_markup_in_a_failing_value_reaches_only_the_private_data_docs(portal):
    """The quarantined DNS batch whose order statuses are markup: nothing under the export root holds
    the markup (raw or HTML-escaped), the batch's Data Docs page in the private target shows it, and
    the quality index lists the batch without it."""
    for relpath in portal.objects():
        for text in _texts_of(relpath, portal.get(relpath)):  # HTML-escaped text is read unescaped too
            assert not [value for value in HOSTILE if value in text or html.escape(value) in text], relpath
    ((batch_id, docs),) = portal.query(
        "SELECT batch_id, data_docs FROM ops.batch WHERE source = 'dns_code_enforcement_orders' AND status = 'quarantined'")
    files = portal.quality_files()
    page = html.unescape(files[docs].decode("utf-8"))
    assert all(value in page for value in HOSTILE), "the batch's private Data Docs page shows the failing values"
    index = files["index.html"].decode("utf-8")
    row = next(line for line in index.splitlines() if batch_id in line)
    assert 'class="quarantined"' in row and f'href="{html.escape(docs)}"' in row
    assert "<script" not in index and "<img" not in index and "onerror=alert" not in html.unescape(index), \
        "the quality index carries no markup from the data"


def test_the_scorecard_site_is_published_with_every_measure(portal):
    page = portal.get("site/index.html").decode()
    names = portal.query("SELECT DISTINCT measure_name FROM marts.scorecard")
    assert len(names) == 12
    for (name,) in names:
        assert name.replace("&", "&amp;") in page, name


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


@pytest.mark.clock  # the archive snapshot of a later day than the suite's
@pytest.mark.parametrize("after", [2, 6])  # files written before the kill: inside the archive; inside latest
def test_a_publication_killed_midway_leaves_the_previous_one_complete(portal, today, after):
    day = today + dt.timedelta(days=after)  # a day without an archive snapshot yet (each `after` its own day)
    manifest, catalog = portal.get("manifest.json"), portal.get("catalog/data.json")
    # a change the published file shows: counts below 5 are published empty, so +1 on a month of small
    # counts (the month just begun) could change nothing a reader sees, and nothing would be written
    portal.query("UPDATE core.mhd_lead_tests SET children_tested = children_tested + 10 "
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
    try:
        assert portal.publish() == "success"

        entry = next(e for e in json.loads(portal.get("catalog/data.json"))["dataset"]
                     if e["title"].startswith(raw["title"]))
        assert "(retired)" in entry["title"] and "retired" in entry["keyword"]
        assert any(k.startswith("archive/mhd-lead-tests/") for k in portal.objects())
    finally:  # the inventory as it is again, so that no other test sees the retirement
        monkeypatch.undo()
        assert portal.publish() == "success"
    titles = {e["title"] for e in json.loads(portal.get("catalog/data.json"))["dataset"]}
    assert raw["title"] in titles and not any("(retired)" in t for t in titles)
