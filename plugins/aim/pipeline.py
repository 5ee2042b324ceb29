"""The steps of an ingest run, one function per Airflow task, each safe to rerun.

Every step opens its own warehouse transaction; what a task returns (and so what XCom holds) is
ids and counts only, never credentials or rows.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aim import batches, db, quality_report, runlog, settings
from aim.landing import land
from aim.merge import MergeError, merge_batch
from aim.migrations import migrate
from aim.sources import SourceConfig
from aim.staging import discard_batch
from aim.storage import target_from_url
from aim.tables import ensure_tables_once

log = logging.getLogger(__name__)


class QualityGateFailed(RuntimeError):
    """A batch failed a critical expectation; the message names the source, batch and expectations."""


def batch_id_for(source: str, run_id: str) -> str:
    """A batch id that is the same on every retry of a run and different for every run.

    Readable first (source and run timestamp), with a hash of the full run id for uniqueness.
    """
    stamp = re.sub(r"[^0-9T]", "", run_id.split("__")[-1])[:15] or "run"
    digest = hashlib.sha256(f"{source}|{run_id}".encode()).hexdigest()[:8]
    return f"{source}-{stamp}-{digest}"


def start_run(config: SourceConfig, *, run_id: str, dag_id: str, logical_date: Any) -> str:
    """Bring the warehouse schema up to date, make the source's tables (only when its configuration
    changed since they were last made), log the run; returns the batch id."""
    url = settings.warehouse_url()
    migrate(url)
    batch_id = batch_id_for(config.source, run_id)
    with db.transaction(url) as conn, conn.cursor() as cur:
        ensure_tables_once(cur, config)  # no DDL (no lock on core) while the configuration is unchanged
        runlog.start_run(
            cur, source=config.source, run_id=run_id, dag_id=dag_id, batch_id=batch_id, logical_date=logical_date
        )
    return batch_id


def extract_and_land(config: SourceConfig, *, access: Any, run_id: str, batch_id: str) -> dict[str, Any]:
    """Land everything new at the source (rows changed since the watermark less the overlap, file
    versions not yet known, API records updated since) in `staging` by COPY, in one transaction.

    `access` is what `aim.connections.source_access` made of the source's connection. A retried
    landing first removes what an earlier attempt of the same batch landed.
    """
    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        discard_batch(cur, config.staging_table, batch_id)
        landed = land(cur, config, access, batch_id=batch_id)
        batches.register_batch(
            cur, batch_id=batch_id, source=config.source, run_id=run_id, rows=landed.rows - landed.unchanged,
            max_watermark=landed.max_watermark, typed_columns_cast=landed.typed_columns_cast,
            keys_unique_at_source=landed.keys_unique_at_source,
        )
        runlog.update_run(cur, source=config.source, run_id=run_id, rows_extracted=landed.rows)
    return {"batch_id": batch_id, "rows_extracted": landed.rows, "rows_unchanged": landed.unchanged,
            "max_watermark": landed.max_watermark,
            "files_landed": landed.files_landed, "files_skipped": landed.files_skipped}


def _start_importing(module: str) -> None:
    """Import `module` in a background thread, so that its import (Great Expectations: about two
    seconds of CPU) overlaps with statements the server runs meanwhile; an `import` of it waits
    for that one to finish, and raises its error if it failed."""
    def load():
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001  (the caller's own import raises it, where it is reported)
            pass

    if module not in sys.modules:
        threading.Thread(target=load, name=f"import {module}", daemon=True).start()


def validate(config: SourceConfig, *, run_id: str, batch_id: str) -> dict[str, Any]:
    """The quality gate: row-level rejects, volume against history, then the expectation suite,
    all inside the warehouse; every result is stored in `ops.quality_result`.

    Rows that row-level rules isolate go to `ops.rejected_row` while their share stays within the
    source's limit. A failed critical check quarantines the batch (its rows stay in staging) and
    raises `QualityGateFailed`; core, the watermark and the exports are not touched. Warnings are
    recorded and the batch goes on.
    """
    from aim import gate, row_scan, scan_conditions
    from aim.generated_checks import key_values_sql, suite_expectations

    url = settings.warehouse_url()
    target = target_from_url(settings.quality_url())  # private to IT operations, never the export root
    suite_path = settings.expectations_dir() / config.expectation_suite
    with db.transaction(url) as conn, conn.cursor() as cur:
        batch = batches.batch_status(cur, batch_id)
        if batch is None:
            raise RuntimeError(f"source {config.source}, batch {batch_id}: not landed, nothing to validate")
        landed = batch["rows_landed"]
        preloaded = "aim.quality" in sys.modules  # a Celery worker imports it once at start (aim.celery_worker)
        if landed:  # the suite will likely run (unless the gate sets every row aside): its import meanwhile
            _start_importing("aim.quality")
        # which typed columns cast in every row: found once (by landing, when it could), for the gate's scan and the suite's
        castable = (list(config.typed_columns) if batch["typed_columns_cast"] else
                    row_scan.columns_that_cast(cur, config.staging_table, batch_id, config.typed_columns))
        # an incremental source's record read twice is two rows with one key: the merge sorts only then;
        # a source whose primary key says no key comes twice (`keys_unique_at_source`) spares the gate's GROUP BY.
        # Found before rows are set aside: a key once in the batch is once in what stays of it
        key_once = bool(config.watermark_column) and (
            batch["keys_unique_at_source"] or gate.each_key_once(cur, config, batch_id, castable))
        unique_values = key_values_sql(config) if key_once else None
        expectations = suite_expectations(config, suite_path)
        # every condition of the suite, the row-level rules' among them, counted in one scan while GX is imported
        counted = scan_conditions.count_suite(cur, config, batch_id, expectations, castable=castable,
                                              unique_values=unique_values) if landed else None
        moved, results = gate.reject_rows(
            cur, config, gate.row_rules_from(expectations), batch_id=batch_id, run_id=run_id,
            landed=landed, castable=castable, already_counted=counted,
        )
        if moved:  # the batch has fewer rows than were counted: the suite counts again
            counted = None
        rejected = gate.rows_set_aside(cur, batch_id)  # a rerun counts what an earlier attempt set aside too
        results += gate.file_results(cur, batch_id=batch_id)
        results += gate.volume_results(cur, config, batch_id=batch_id) if landed else []
    with tempfile.TemporaryDirectory(prefix="aim-data-docs-") as site:
        if landed - rejected > 0:
            waited = time.perf_counter()
            from aim import quality  # great_expectations takes seconds to import: only for rows to validate

            log.info("Great Expectations: %s", "loaded by the worker before this task" if preloaded else
                     f"imported by this task (waited {time.perf_counter() - waited:.1f} s after the gate's checks)")
            outcome = quality.validate_batch(url, config, batch_id=batch_id, data_docs=Path(site), castable=castable,
                                             unique_values=unique_values, already_counted=counted)
            docs_page = quality_report.publish_data_docs(target, config.source, Path(site))
        else:
            outcome, docs_page = gate.ValidationOutcome(suite=Path(config.expectation_suite).stem), None
    outcome.results[:0] = results
    warnings = len(outcome.warnings)
    with db.transaction(url) as conn, conn.cursor() as cur:
        runlog.record_quality_results(
            cur, [{**r, "source": config.source, "batch_id": batch_id, "run_id": run_id, "suite": outcome.suite}
                  for r in outcome.results]
        )
        batches.record_batch_checks(cur, batch_id, rows_rejected=rejected, warnings=warnings, data_docs=docs_page)
        counts = {"rows_rejected": rejected, "warnings": warnings}
        if outcome.success:
            batches.mark_validated(cur, batch_id, each_key_once=key_once)
            runlog.update_run(cur, source=config.source, run_id=run_id, quality_outcome="passed", **counts)
        else:
            message = outcome.failure_message(config.source, batch_id)
            batches.quarantine_batch(cur, batch_id, message)
            runlog.update_run(cur, source=config.source, run_id=run_id, quality_outcome="failed", message=message,
                              **counts)
    with db.transaction(url) as conn, conn.cursor() as cur:
        quality_report.publish_index(cur, target)
    if not outcome.success:
        raise QualityGateFailed(message)
    return {"batch_id": batch_id, "checks": len(outcome.results), "rows_rejected": rejected, "warnings": warnings}


def merge(config: SourceConfig, *, run_id: str, batch_id: str) -> dict[str, Any]:
    """Merge the validated batch into core and advance the watermark, in one transaction.

    A merge that fails leaves core and the watermark as they were and marks the batch `failed`
    with the reason (listed by `make quarantine`, to discard after review); its rows stay in staging.
    """
    url = settings.warehouse_url()
    try:
        with db.transaction(url) as conn, conn.cursor() as cur:
            loaded = merge_batch(cur, config, batch_id, run_id)
            runlog.update_run(cur, source=config.source, run_id=run_id, rows_loaded=loaded)
    except MergeError as err:
        with db.transaction(url) as conn, conn.cursor() as cur:
            if (batches.batch_status(cur, batch_id) or {}).get("status") == "validated":
                batches.mark_failed(cur, batch_id, str(err))
        raise
    return {"batch_id": batch_id, "rows_loaded": loaded}


def finish_run(config: SourceConfig, *, run_id: str) -> None:
    """Mark the run successful."""
    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        runlog.update_run(cur, source=config.source, run_id=run_id, status="success")


def record_failure(config: SourceConfig, *, run_id: str, dag_id: str, task_id: str, error: BaseException | None) -> None:
    """Mark the run failed with a message naming the source, the task and the reason.

    A quality failure's own message (it already names the source, batch and expectations) is
    kept as it is. A run that failed before it was logged gets its row here.
    """
    reason = str(error) if error is not None else "unknown error"
    message = reason if isinstance(error, QualityGateFailed) else f"source {config.source}, task {task_id}: {reason}"
    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        runlog.fail_run(cur, source=config.source, run_id=run_id, dag_id=dag_id, message=message[:4000])
