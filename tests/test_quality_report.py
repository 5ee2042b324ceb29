"""Publishing quality results for IT operations (`aim.quality_report`) to the private quality
target (AIM_QUALITY_URL), a real folder, never to the public export root.

- `publish_data_docs`: a built Data Docs site goes under `<source>/` of the target; the validation's
  page path is returned; each validation adds its own page, unchanged files are not rewritten.
- `publish_index`: `index.html` lists recent batches of every source, newest first, with status,
  failed critical checks, warnings, rows set aside and a relative link to the Data Docs page that
  opens from the target; every value escaped; rewritten only when its content changes.
- `aim.settings.quality_url`: a quality target that is the export root, inside it or around it is refused.
- Through the gate (`aim.pipeline.validate`): hostile markup in a value that fails a column check
  reaches the private Data Docs, never the export root, and the index does not carry it.

The quality target is a folder in tmp_path (`aim.storage.target_from_url`); batches are recorded
with `aim.runlog` in a warehouse database of the test's own.
"""
from __future__ import annotations

import csv
import datetime as dt
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from aim import batches, db, pipeline, quality_report, runlog, settings
from aim.extract.filestore import LocalStore
from aim.migrations import migrate
from aim.sources import SourceConfig
from aim.staging import copy_chunks
from aim.storage import target_from_url
from aim.tables import ensure_tables
from aim_demo.databases import query


def build_site(folder: Path, suite: str, batch_id: str, run_name: str) -> Path:
    """A Data Docs site as GX lays it out: index, static files, the suite's page, one validation page."""
    files = {
        "index.html": f"<html>latest validation: {batch_id}</html>",
        "static/styles/data_docs_default_styles.css": "body { margin: 0; }",
        f"expectations/{suite}.html": f"<html>suite {suite}</html>",
        f"validations/{suite}/__none__/{run_name}/warehouse-{suite}-_batch_id_{batch_id}.html":
            f"<html>validation of {batch_id}</html>",
    }
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text, encoding="utf-8")
    return folder


def validation_page(source: str, suite: str, batch_id: str, run_name: str) -> str:
    return f"{source}/validations/{suite}/__none__/{run_name}/warehouse-{suite}-_batch_id_{batch_id}.html"


@pytest.fixture
def reports(tmp_path) -> Path:
    """The private quality target: a folder (AIM_QUALITY_URL)."""
    return tmp_path / "quality"


@pytest.fixture
def warehouse(new_database) -> str:
    url = new_database("aim_quality_report")
    migrate(url)
    return url


# ---- Data Docs pages ----------------------------------------------------------------------------

def test_a_data_docs_site_is_published_under_its_source(tmp_path, reports):
    site = build_site(tmp_path / "site", "qa_calls", "qa_calls-1", "20260617T151500Z")
    target = target_from_url(str(reports))

    page = quality_report.publish_data_docs(target, "qa_calls", site)

    assert page == validation_page("qa_calls", "qa_calls", "qa_calls-1", "20260617T151500Z"), \
        "the returned path is the validation's own page, relative to the quality target's root"
    assert (reports / page).read_text(encoding="utf-8") == "<html>validation of qa_calls-1</html>"
    for local in (p for p in site.rglob("*") if p.is_file()):
        published = reports / "qa_calls" / local.relative_to(site)
        assert published.read_bytes() == local.read_bytes(), f"every file of the site is published: {published}"


def test_each_validation_adds_its_page_and_unchanged_files_are_not_rewritten(tmp_path, reports):
    target = target_from_url(str(reports))
    first = quality_report.publish_data_docs(
        target, "qa_calls", build_site(tmp_path / "site1", "qa_calls", "qa_calls-1", "20260617T151500Z"))
    style = reports / "qa_calls/static/styles/data_docs_default_styles.css"
    style_inode = style.stat().st_ino

    second = quality_report.publish_data_docs(
        target, "qa_calls", build_site(tmp_path / "site2", "qa_calls", "qa_calls-2", "20260618T151500Z"))

    assert first != second and (reports / first).is_file() and (reports / second).is_file(), \
        "each validation adds its own page; earlier pages stay"
    assert (reports / "qa_calls/index.html").read_text(encoding="utf-8") == \
        "<html>latest validation: qa_calls-2</html>", "the site's own index shows the latest validation"
    assert style.stat().st_ino == style_inode, "a file whose content did not change is not rewritten"


def test_a_site_without_a_validation_page_gives_no_page(tmp_path, reports):
    site = tmp_path / "site"
    (site / "expectations").mkdir(parents=True)
    (site / "expectations" / "qa_calls.html").write_text("<html></html>", encoding="utf-8")
    assert quality_report.publish_data_docs(target_from_url(str(reports)), "qa_calls", site) is None


def test_real_data_docs_pages_are_published_per_batch(warehouse, tmp_path, reports, monkeypatch):
    from aim import quality  # great_expectations: seconds to import, so only here

    config = SourceConfig.model_validate({
        "source": "qa_calls", "department": "QA", "system": "test", "kind": "file", "schedule": None, "owner": "qa",
        "extract": {"location": "calls", "format": {"kind": "csv"}}, "key": ["call_id"],
        "columns": [{"name": "call_id", "privacy": "public"}, {"name": "units", "type": "integer", "privacy": "public"}],
        "expectation_suite": "qa_calls.json",
    })
    (tmp_path / "qa_calls.json").write_text(json.dumps({"name": "qa_calls", "expectations": [
        {"type": "expect_column_values_to_be_unique", "severity": "critical", "kwargs": {"column": "call_id"}},
    ]}), encoding="utf-8")
    monkeypatch.setenv("AIM_EXPECTATIONS_DIR", str(tmp_path))
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        ensure_tables(cur, config)
        for batch_id in ("calls-a", "calls-b"):
            copy_chunks(cur, config.staging_table, config.column_names, batch_id, [[("c1", "1"), ("c2", "2")]])
    target = target_from_url(str(reports))

    pages = {}
    for batch_id in ("calls-a", "calls-b"):
        site = tmp_path / f"site-{batch_id}"
        quality.validate_batch(warehouse, config, batch_id=batch_id, data_docs=site)
        pages[batch_id] = quality_report.publish_data_docs(target, "qa_calls", site)

    for batch_id, page in pages.items():
        assert page and page.startswith("qa_calls/validations/") and page.endswith(".html"), page
        assert batch_id in (reports / page).read_text(encoding="utf-8"), \
            f"the published page of {batch_id} is that batch's validation"
    assert pages["calls-a"] != pages["calls-b"], "two validations, two pages"


# ---- the index of batches -----------------------------------------------------------------------

class IndexRows(HTMLParser):
    """The table rows of the quality index: class, cell texts and link per batch."""

    def __init__(self, text: str):
        super().__init__()
        self.rows: list[dict] = []
        self._in_body = self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append({"class": attrs.get("class"), "cells": [], "href": None})
        elif tag == "td" and self._in_body:
            self._in_cell = True
            self.rows[-1]["cells"].append("")
        elif tag == "a" and self._in_body:
            self.rows[-1]["href"] = attrs.get("href")

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1]["cells"][-1] += data


COLUMNS = ("source", "batch", "status", "landed", "rows", "failed", "warnings", "rejected", "docs")


def read_index(reports: Path) -> list[dict]:
    rows = IndexRows((reports / quality_report.INDEX).read_text(encoding="utf-8")).rows
    return [{**dict(zip(COLUMNS, r["cells"])), "class": r["class"], "href": r["href"]} for r in rows]


def result(expectation: str, *, severity: str, success: bool, batch_id: str, source: str) -> dict:
    return {"source": source, "batch_id": batch_id, "run_id": f"run-{batch_id}", "suite": source,
            "expectation": expectation, "description": None, "column_name": "call_id", "kwargs": {},
            "severity": severity, "success": success, "observed_value": None, "unexpected_count": 1,
            "unexpected_sample": ["x"], "error": None}


def land_batch(url: str, source: str, batch_id: str, rows: int, *, results=(), rejected=0, docs=None,
               status="validated") -> None:
    """One batch through the run log as the gate leaves it (its own transaction: its own landed_at)."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        batches.register_batch(cur, batch_id=batch_id, source=source, run_id=f"run-{batch_id}", rows=rows,
                              max_watermark=None)
        if status == "landed":
            return
        runlog.record_quality_results(cur, [result(e, severity=s, success=ok, batch_id=batch_id, source=source)
                                            for e, s, ok in results])
        warnings = sum(1 for _, s, ok in results if s == "warning" and not ok)
        batches.record_batch_checks(cur, batch_id, rows_rejected=rejected, warnings=warnings, data_docs=docs)
        if status == "quarantined":
            batches.quarantine_batch(cur, batch_id, "quality gate failed")
        else:
            batches.mark_validated(cur, batch_id)


def publish_index(url: str, reports: Path) -> None:
    with db.transaction(url) as conn, conn.cursor() as cur:
        quality_report.publish_index(cur, target_from_url(str(reports)))


def test_the_index_lists_every_source_s_batches_newest_first_with_their_outcome(warehouse, tmp_path, reports):
    target = target_from_url(str(reports))
    calls_page = quality_report.publish_data_docs(
        target, "qa_calls", build_site(tmp_path / "s1", "qa_calls", "calls-1", "20260617T151500Z"))
    permits_page = quality_report.publish_data_docs(
        target, "qa_permits", build_site(tmp_path / "s2", "qa_permits", "permits-1", "20260617T151600Z"))
    land_batch(warehouse, "qa_calls", "calls-1", 100, rejected=2, docs=calls_page, results=[
        ("expect_column_values_to_be_unique", "critical", True),
        ("expect_column_values_to_be_in_set", "warning", False),
    ])
    land_batch(warehouse, "qa_permits", "permits-1", 40, docs=permits_page, status="quarantined", results=[
        ("expect_column_values_to_be_unique", "critical", False),  # two failed critical checks
        ("aim:rejected_share", "critical", False),
        ("expect_column_values_to_not_be_null", "critical", True),
        ("expect_column_values_to_match_regex", "warning", False),
    ])
    land_batch(warehouse, "qa_calls", "calls-2", 7, status="landed")

    publish_index(warehouse, reports)

    rows = read_index(reports)
    assert [r["batch"] for r in rows] == ["calls-2", "permits-1", "calls-1"], \
        "every source's batches are listed, newest first"
    shown = {r["batch"]: (r["source"], r["status"], r["rows"], r["failed"], r["warnings"], r["rejected"]) for r in rows}
    assert shown == {
        "calls-1": ("qa_calls", "validated", "100", "0", "1", "2"),
        "permits-1": ("qa_permits", "quarantined", "40", "2", "1", "0"),
        "calls-2": ("qa_calls", "landed", "7", "0", "0", "0"),
    }, "each batch shows its status, rows, failed critical checks, warnings and rows set aside"
    assert {r["batch"]: r["class"] for r in rows}["permits-1"] == "quarantined", "a quarantined batch stands out"
    links = {r["batch"]: r["href"] for r in rows}
    assert links["calls-2"] is None, "a batch without a Data Docs page has no link"
    for batch_id, page in (("calls-1", calls_page), ("permits-1", permits_page)):
        href = links[batch_id]
        assert not re.match(r"^([a-z]+:|/)", href), f"links are relative, so the page opens from S3 or a folder: {href}"
        assert (reports / href).resolve() == (reports / page).resolve() and (reports / page).is_file(), \
            f"{batch_id}'s link, relative to the index, opens its published Data Docs page"


def test_the_index_is_rewritten_only_when_its_content_changes(warehouse, reports):
    land_batch(warehouse, "qa_calls", "calls-1", 10)
    publish_index(warehouse, reports)
    index = reports / quality_report.INDEX
    inode = index.stat().st_ino

    publish_index(warehouse, reports)
    assert index.stat().st_ino == inode, "an unchanged index is not rewritten"

    land_batch(warehouse, "qa_calls", "calls-2", 12, status="quarantined",
               results=[("expect_column_values_to_be_unique", "critical", False)])
    publish_index(warehouse, reports)
    assert index.stat().st_ino != inode and [r["batch"] for r in read_index(reports)] == ["calls-2", "calls-1"], \
        "a new batch rewrites the index, which then lists it first"


SCRIPT, IMG = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"


def test_the_index_escapes_what_it_shows(warehouse, reports):
    land_batch(warehouse, "qa_calls", "calls-<b>&1", 3, status="landed")
    land_batch(warehouse, "qa_calls", f"calls-{IMG}", 3, docs=f'qa_calls/x"{SCRIPT}.html')
    publish_index(warehouse, reports)
    text = (reports / quality_report.INDEX).read_text(encoding="utf-8")
    assert "calls-&lt;b&gt;&amp;1" in text and "calls-<b>" not in text, "values are HTML-escaped"
    assert "<script" not in text and "<img" not in text and html.escape(IMG) in text, \
        "markup in a cell or a link is escaped, never markup"
    rows = read_index(reports)
    assert [r["batch"] for r in rows] == [f"calls-{IMG}", "calls-<b>&1"]
    assert rows[0]["href"] == f'qa_calls/x"{SCRIPT}.html', "a link with markup stays one attribute value"


# ---- where the quality target may be ----------------------------------------------------------

@pytest.mark.parametrize("quality", ["{exports}", "{exports}/quality", "{root}", "file://{exports}/quality/"])
def test_a_quality_target_overlapping_the_export_root_is_refused(tmp_path, monkeypatch, quality):
    exports = tmp_path / "exports"
    monkeypatch.setenv("AIM_EXPORT_URL", str(exports))
    monkeypatch.setenv("AIM_QUALITY_URL", quality.format(exports=exports, root=tmp_path))
    with pytest.raises(RuntimeError, match="overlaps the public export root AIM_EXPORT_URL"):
        settings.quality_url()
    monkeypatch.setenv("AIM_WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")  # never reached
    with pytest.raises(RuntimeError, match="overlaps the public export root"):
        pipeline.validate(calls_config(), run_id="r", batch_id="b")  # fails closed, before any work
    assert not exports.exists(), "nothing is written anywhere"


def test_the_default_quality_target_is_private_and_refused_inside_the_export_root(tmp_path, monkeypatch):
    monkeypatch.delenv("AIM_QUALITY_URL", raising=False)
    monkeypatch.setenv("AIM_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("AIM_EXPORT_URL", str(tmp_path / ".aim" / "exports"))
    assert settings.quality_url() == str(tmp_path / ".aim" / "quality"), "beside the exports, not in them"
    monkeypatch.setenv("AIM_EXPORT_URL", str(tmp_path / ".aim"))
    with pytest.raises(RuntimeError, match=r"\(its default\) overlaps the public export root"):
        settings.quality_url()

    monkeypatch.setenv("AIM_EXPORT_URL", "s3://portal/open")
    for private in ("s3://portal/ops-quality", "s3://it-ops/quality", str(tmp_path / "quality")):
        monkeypatch.setenv("AIM_QUALITY_URL", private)
        assert settings.quality_url() == private
    for public in ("s3://portal/open", "s3://portal/open/quality", "s3://portal"):
        monkeypatch.setenv("AIM_QUALITY_URL", public)
        with pytest.raises(RuntimeError, match="overlaps"):
            settings.quality_url()


# ---- hostile values through the gate ----------------------------------------------------------

def calls_config() -> SourceConfig:
    return SourceConfig.model_validate({
        "source": "qa_calls", "department": "QA", "system": "test", "kind": "file", "schedule": None, "owner": "qa",
        "extract": {"location": "calls", "pattern": "calls_*.csv", "format": {"kind": "csv"}}, "key": ["call_id"],
        "columns": [{"name": "call_id", "source": "Call ID", "privacy": "public"},
                    {"name": "kind", "source": "Kind", "privacy": "public"}],
        "expectation_suite": "qa_calls.json",
    })


def test_hostile_values_in_a_failed_check_stay_in_the_private_data_docs(warehouse, tmp_path, reports, monkeypatch,
                                                                        clock):
    """A delivery whose values are markup fails a column check: the batch is quarantined, its Data Docs
    (which show the sample values) are in the private quality target, and neither the export root
    nor the index carries the markup."""
    exports, drop = tmp_path / "exports", tmp_path / "drop"  # the drop: the source's folder, as LocalStore reads it
    drop.mkdir()
    with open(drop / "calls_1.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["Call ID", "Kind"], ["c1", "pothole"], ["c2", SCRIPT], ["c3", IMG]])
    (tmp_path / "qa_calls.json").write_text(json.dumps({"name": "qa_calls", "expectations": [
        {"type": "expect_column_values_to_be_in_set", "severity": "critical",
         "kwargs": {"column": "kind", "value_set": ["pothole", "streetlight"]}},
    ]}), encoding="utf-8")
    for name, value in {"AIM_WAREHOUSE_URL": warehouse, "AIM_EXPECTATIONS_DIR": str(tmp_path),
                        "AIM_EXPORT_URL": str(exports), "AIM_QUALITY_URL": str(reports)}.items():
        monkeypatch.setenv(name, value)
    config, run_id = calls_config(), f"manual__{clock.astimezone(dt.timezone.utc).isoformat()}"
    batch_id = pipeline.start_run(config, run_id=run_id, dag_id="ingest_qa_calls", logical_date=clock)
    pipeline.extract_and_land(config, access=LocalStore(drop), run_id=run_id, batch_id=batch_id)

    with pytest.raises(pipeline.QualityGateFailed, match="expect_column_values_to_be_in_set on kind"):
        pipeline.validate(config, run_id=run_id, batch_id=batch_id)

    published = [p for p in exports.rglob("*") if p.is_file()]
    for path in published:
        text = path.read_bytes().decode("utf-8", "replace")
        for value in (SCRIPT, IMG):
            assert value not in text and html.escape(value) not in text, f"{path} holds {value}"
    assert not (exports / "quality").exists(), "nothing of the quality reports is under the export root"
    (docs,) = query(warehouse, "SELECT data_docs FROM ops.batch WHERE batch_id = %s", (batch_id,))[0]
    page = (reports / docs).read_text(encoding="utf-8")
    assert all(value in html.unescape(page) for value in (SCRIPT, IMG)), \
        "the Data Docs page, in the private target, shows the failing values"
    index = (reports / quality_report.INDEX).read_text(encoding="utf-8")
    assert "<script" not in index and "<img" not in index and "onerror=alert" not in html.unescape(index), \
        "the index carries no markup from the data"
    (row,) = [r for r in read_index(reports) if r["batch"] == batch_id]
    assert row["status"] == "quarantined" and (reports / row["href"]).resolve() == (reports / docs).resolve()


def test_landed_times_are_shown_in_utc_as_the_header_says(warehouse, reports):
    database = query(warehouse, "SELECT current_database()")[0][0]
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{database}" SET timezone = \'America/Chicago\'')  # a Milwaukee server's setting
    land_batch(warehouse, "qa_calls", "calls-1", 3, status="landed")

    publish_index(warehouse, reports)

    (landed_utc,) = query(warehouse, "SELECT landed_at FROM ops.batch WHERE batch_id = 'calls-1'")[0]
    assert "landed (UTC)" in (reports / quality_report.INDEX).read_text(encoding="utf-8")
    (row,) = read_index(reports)
    assert row["landed"] == f"{landed_utc.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M}", \
        "the landed time is in UTC, as the column header says"
