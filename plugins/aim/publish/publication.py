"""One publication of the open data sets: files, data dictionaries, archive, manifest, catalog.

For each released data set (approved or published in the inventory) whose content changed:

1. its rows are written once, in one snapshot, as CSV, JSON and Parquet, with a Table Schema
   data dictionary (`<id>.schema.json`);
2. the **archive** snapshot `archive/<id>/<YYYY-MM-DD>/` is written first (immutable: one per
   data set and day, the day's first release);
3. then the **latest** files `latest/<id>/`, each replaced atomically;
4. then `manifest.json` (every file: size, rows, SHA-256, the run that wrote it);
5. and last `catalog/data.json` (DCAT-US 1.1), validated before it is written.

The site and the catalog show how fresh each source's data is (`aim.freshness`, computed at
publication as the hourly watch computes it, not recorded): its newest day, and whether that is
older than the source promises.

A data set whose CSV has the same SHA-256 as the one published is not rewritten and keeps its
`modified` date. A data set whose source has not loaded yet (no `core.<source>`) is skipped with a
warning; the others, the site, the manifest and the catalog still publish. A publication that dies at any point leaves the previous manifest and catalog
in place, every file they list as it was (archive files are never rewritten; a latest file is
replaced whole or not at all), and the next publication completes the job. Publications are
serialised by a PostgreSQL advisory lock.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from psycopg2 import sql

from aim import clock, db, settings
from aim.freshness import current as current_freshness
from aim.publish.catalog import catalog, catalog_json, dataset_entry, distribution, validate_catalog
from aim.publish.datasets import DatasetConfig, inventory
from aim.publish.formats import write_formats
from aim.publish.manifest import manifest, manifest_json
from aim.publish.projection import Rows, dataset_rows
from aim.publish.scorecard import publish_site
from aim.publish.tableschema import table_schema
from aim.storage import ExportTarget, sha256_file, target_from_url

log = logging.getLogger(__name__)

LOCK_ID = 4_417_000_002
MANIFEST = "manifest.json"
CATALOG = "catalog/data.json"
FORMATS = {"csv": ("text/csv", "CSV"), "json": ("application/json", "JSON"),
           "parquet": ("application/vnd.apache.parquet", "Parquet")}


class PublicationError(RuntimeError):
    """The publication could not complete; what was published before stays as it was."""


@dataclass
class Published:
    """What one publication did."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    site: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # data set -> why it was not published this time


def _json_file(path: Path, doc: Any) -> Path:
    path.write_bytes(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
    return path


def _sync_inventory(cur, datasets: list[DatasetConfig]) -> None:
    cur.execute("DELETE FROM ops.dataset_inventory")
    for d in datasets:
        cur.execute(
            "INSERT INTO ops.dataset_inventory (dataset_id, title, department, steward, sensitivity, release_status, "
            "release_priority, accrual_periodicity) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (d.id, d.title, d.department, d.steward, d.sensitivity, d.release_status, d.release_priority,
             d.accrual_periodicity),
        )


def _temporal(conn, dataset: DatasetConfig, rows: Rows) -> str | None:
    if not dataset.temporal_column:
        return None
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT min({c})::date, max({c})::date FROM ({q}) AS published").format(
            c=sql.Identifier(dataset.temporal_column), q=sql.SQL(rows.query)))
        start, end = cur.fetchone()
    return f"{start.isoformat()}/{end.isoformat()}" if start and end else None


def _not_loaded(cur, datasets: list[DatasetConfig]) -> dict[str, str]:
    """The data sets whose source has not loaded yet (no `core.<source>` table), with why, each logged
    as a warning: they are left out of this publication, and the others publish."""
    skipped = {}
    for dataset in datasets:
        if dataset.source:
            cur.execute("SELECT to_regclass(%s) IS NULL", (f"core.{dataset.source}",))
            if cur.fetchone()[0]:
                skipped[dataset.id] = f"its source {dataset.source} has not loaded yet (no core.{dataset.source})"
                log.warning("data set %s not published: %s", dataset.id, skipped[dataset.id])
    return skipped


def public_base_url(target: ExportTarget) -> str:
    """Where readers find the export root, as a URI: AIM_PUBLIC_BASE_URL (the portal's address
    for it), else the target's own location (`s3://bucket/prefix`, or a folder's `file://` URI)."""
    base = os.environ.get("AIM_PUBLIC_BASE_URL") or target.url("").rstrip("/")
    if "://" not in base:
        base = Path(base).resolve().as_uri()
    return base.rstrip("/") + "/"


def publish(dataset_ids: list[str] | None = None, *, run_id: str, today: dt.date | None = None,
            target: ExportTarget | None = None) -> Published:
    """Publish the released data sets (or those of `dataset_ids`) that changed, then (for a full
    publication) the scorecard site, then the manifest and the catalog. Idempotent: nothing
    changed, nothing is written."""
    url = settings.warehouse_url()
    target = target or target_from_url(settings.export_url())
    today = today or clock.local_today()
    everything = inventory()
    chosen = [d for d in everything if d.released and (dataset_ids is None or d.id in dataset_ids)]
    eng = db.engine(url)
    try:
        with eng.connect() as lock:
            lock.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_ID})
            try:
                return _publish_locked(url, target, everything, chosen, run_id, today, site=dataset_ids is None)
            finally:
                lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_ID})
                lock.commit()
    finally:
        eng.dispose()


def _publish_locked(url, target, everything, chosen, run_id, today, *, site: bool) -> Published:
    previous = json.loads(target.read_bytes(MANIFEST) or b'{"files": []}')
    entries = {f["path"]: f for f in previous.get("files", [])}
    result = Published()
    now = clock.now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    with db.transaction(url) as conn, conn.cursor() as cur:
        _sync_inventory(cur, everything)
        result.skipped = _not_loaded(cur, chosen)
    with tempfile.TemporaryDirectory(prefix="aim-publish-") as tmp:
        for dataset in chosen:
            if dataset.id in result.skipped:
                continue
            folder = Path(tmp) / dataset.id
            folder.mkdir()
            with db.transaction(url) as conn:
                rows = dataset_rows(conn, dataset)
                written = write_formats(conn, rows.query, rows.columns, folder, dataset.id)
            schema = _json_file(folder / f"{dataset.id}.schema.json",
                                table_schema(rows.columns, primary_key=rows.key or None))
            csv_file = next(w for w in written if w.format == "csv")
            result.rows[dataset.id] = csv_file.rows
            latest = f"latest/{dataset.id}"
            known = entries.get(f"{latest}/{dataset.id}.csv")
            if known and known["sha256"] == csv_file.sha256 and target.sha256(f"{latest}/{dataset.id}.csv") == \
                    csv_file.sha256:
                result.unchanged.append(dataset.id)
                continue
            files = [(w.path, w.format, w.media_type, w.rows, w.bytes, w.sha256) for w in written]
            files.append((schema, "tableschema", "application/json", len(rows.columns),  # a dictionary's rows: its fields
                          schema.stat().st_size, sha256_file(schema)))
            archive = f"archive/{dataset.id}/{today.isoformat()}"
            # immutable once complete: the dictionary is written last, so it marks a complete snapshot
            write_archive = target.sha256(f"{archive}/{dataset.id}.schema.json") is None
            # a complete snapshot of this very content, written by a publication that died before its
            # manifest, is listed as it is
            adopt_archive = not write_archive and f"{archive}/{dataset.id}.csv" not in entries and \
                target.sha256(f"{archive}/{dataset.id}.csv") == csv_file.sha256
            for prefix in ([archive] if write_archive or adopt_archive else []) + [latest]:  # archive first
                for path, fmt, media, count, size, digest in files:
                    relpath = f"{prefix}/{path.name}"
                    if not (prefix == archive and adopt_archive):
                        target.publish(path, relpath, digest, media)
                    entries[relpath] = {"path": relpath, "dataset": dataset.id, "format": fmt, "bytes": size,
                                        "rows": count, "sha256": digest, "run_id": run_id, "modified": now}
            with db.transaction(url) as conn, conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO ops.dataset_release (dataset, run_id, sha256, rows, archive_path) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (dataset.id, run_id, csv_file.sha256, csv_file.rows, archive),
                )
            result.changed.append(dataset.id)
        # how fresh each source is now (aim.freshness, not recorded): on the site and in the catalog
        freshness = {source: f.public() for source, f in current_freshness(url).items()}
        if site:
            result.site = publish_site(url, target, everything, freshness)
        newest = max(entries.values(), key=lambda e: (e["modified"], e["path"]), default=None)
        doc = manifest(sorted(entries.values(), key=lambda e: e["path"]),
                       generated_by_run=newest["run_id"] if newest else run_id,
                       generated_at=newest["modified"] if newest else now)
        manifest_file = Path(tmp) / "manifest.json"
        manifest_file.write_bytes(manifest_json(doc))
        catalog_doc = build_catalog(url, target, everything, freshness)
        problems = validate_catalog(catalog_doc)
        if problems:
            raise PublicationError("catalog/data.json does not validate against DCAT-US 1.1: " + "; ".join(problems))
        catalog_file = Path(tmp) / "data.json"
        catalog_file.write_bytes(catalog_json(catalog_doc))
        for path, relpath in ((manifest_file, MANIFEST), (catalog_file, CATALOG)):  # the catalog last
            target.publish_if_changed(path, relpath, "application/json")
    return result


def build_catalog(url: str, target: ExportTarget, everything: list[DatasetConfig],
                  freshness: dict[str, dict] | None = None) -> dict:
    """The DCAT-US catalog of released and retired data sets, `modified` being when data last changed.
    A released data set of a source also carries the source's freshness (`freshness` by source, as
    `aim.freshness.SourceFreshness.public()`; computed now when None): `dataAsOf`, and `dataLate`
    when the source promises freshness (see `aim.publish.catalog.EXTENSION_FIELDS`)."""
    base = public_base_url(target)
    if freshness is None:
        freshness = {source: f.public() for source, f in current_freshness(url).items()}
    entries = []
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT dataset, max(released_at) FROM ops.dataset_release GROUP BY dataset")
        modified = dict(cur.fetchall())
        for dataset in everything:
            if not (dataset.released or dataset.release_status == "retired") or dataset.id not in modified:
                continue
            temporal = _temporal(conn, dataset, dataset_rows(conn, dataset)) if dataset.released else None
            latest = f"{base}latest/{dataset.id}/{dataset.id}"
            dictionary = f"{latest}.schema.json"
            retired = dataset.release_status == "retired"
            fresh = (freshness.get(dataset.source) if dataset.source and not retired else None) or {}
            entries.append(dataset_entry(
                data_as_of=fresh.get("newest"),
                data_late=None if fresh.get("status") not in ("fresh", "stale") else fresh["status"] == "stale",
                identifier=f"{base}latest/{dataset.id}/",
                title=dataset.title + (" (retired)" if retired else ""),
                description=("Retired: no longer updated; the archive stays available. " if retired else "")
                + dataset.public_description,
                keywords=list(dataset.keywords) + (["retired"] if retired else []),
                publisher_name=dataset.publisher, contact_name=dataset.contact.name,
                contact_email=dataset.contact.email, license_uri=dataset.license, access_level="public",
                modified=modified[dataset.id].astimezone(dt.timezone.utc).replace(microsecond=0).isoformat(),
                accrual_periodicity="irregular" if retired else dataset.accrual_periodicity,
                temporal=temporal, described_by=dictionary, theme=dataset.theme or None,
                distributions=[
                    distribution(download_url=f"{latest}.{ext}", media_type=media, format=name,
                                 title=f"{dataset.title} ({name})", described_by=dictionary,
                                 described_by_type="application/json")
                    for ext, (media, name) in FORMATS.items()
                ],
            ))
    return catalog(entries, catalog_url=f"{base}{CATALOG}")
