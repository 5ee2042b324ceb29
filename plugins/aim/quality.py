"""Validating a landed batch with its Great Expectations 1.x suite, inside PostgreSQL.

A batch's suite is the checks generated from the source's configuration (`aim.generated_checks`:
columns exist, key not null and unique, every typed column casts, the watermark is not in the
future) followed by the business rules of the reviewed JSON file in `expectations/`
(`suite_expectations`). Everything runs as SQL on `staging.<source>` restricted to the batch
(`_batch_id`), so no rows are pulled into pandas: the expectations that are a condition on one
row (row queries of the usual shape, `SELECT * FROM {batch} WHERE ...`: the cast, key and
watermark checks and most business rules; not-null, value sets, regexes) are counted together in
one scan (`aim.scan_checks`), GX turns every other expectation into its own SQL, and the results
of both make one GX validation result (the Data Docs). Each expectation
carries GX's own `severity`: `critical` blocks the batch, `warning` is recorded and the batch
goes on.

Import this module inside a task only: importing great_expectations takes seconds.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aim import db, settings
from aim.gate import ValidationOutcome  # noqa: F401  callers take it from here too
from aim.generated_checks import SuiteError, read_suite, suite_expectations  # noqa: F401  SuiteError: callers catch it here
from aim.sources import SourceConfig
from aim.tables import BATCH_COLUMN

log = logging.getLogger(__name__)

# GX's docs decorators log hundreds of "Skipping registering function" lines under Airflow's logging.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

import gc  # noqa: E402
import warnings  # noqa: E402

# Importing GX makes about half a million objects the cyclic collector tracks and almost no garbage
# (a few thousand objects), so the collector's passes during the import and the full pass after it,
# over everything the import made, cost a few tenths of a second of every validation and free next
# to nothing: the collector is paused for the import, and what the process holds then is frozen
# (never scanned again; GX's modules live as long as the process anyway, the garbage is kept).
_collecting = gc.isenabled()
gc.disable()
try:
    import great_expectations as gx  # noqa: E402
    from great_expectations.core.partitioners import PartitionerColumnValue  # noqa: E402
    from great_expectations.datasource.fluent.interfaces import GxDatasourceWarning  # noqa: E402

    from aim import scan_checks  # noqa: E402  (imports great_expectations too)
finally:
    gc.freeze()
    if _collecting:
        gc.enable()

# GX sets this logger to INFO itself at import time; add_sql on a PostgreSQL URL warns that
# add_postgres exists, but add_postgres refuses Unix-socket URLs, which the warehouse may use.
logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", category=GxDatasourceWarning)


def _compile_data_docs_templates_once() -> None:
    """GX makes a new Jinja environment for every Data Docs view it renders, so every validation
    compiled GX's 51 page templates again (0.4 s of a 1M-row validation's 1.3 s in GX). Each view's
    environment gets Jinja's own bytecode cache on disk instead (a folder of the temp directory
    private to the user, keyed by each template's source), so a template is compiled once per
    machine, by whichever task or worker process renders it first. Without that folder (another
    user's, not writable), views compile as GX made them; a template that cannot be stored (the
    folder removed since, by a clean-up of the temp directory) is compiled again next time."""
    from great_expectations.render.view.view import DefaultJinjaView
    from jinja2 import FileSystemBytecodeCache

    class StoredWhenPossible(FileSystemBytecodeCache):
        def dump_bytecode(self, bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError as err:
                log.warning("Data Docs template %s: compiled, not stored (%s)", bucket.key, err)

    try:
        cache = StoredWhenPossible()
    except (OSError, RuntimeError) as err:
        log.warning("Data Docs templates: compiled for every validation (no bytecode cache: %s)", err)
        return
    made = DefaultJinjaView.__init__

    def with_cache(self, *args, **kwargs) -> None:
        made(self, *args, **kwargs)
        self.env.bytecode_cache = cache

    DefaultJinjaView.__init__ = with_cache


_compile_data_docs_templates_once()

SAMPLE_SIZE = 10
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}


def _gx_suite(raw: dict, where: str) -> "gx.ExpectationSuite":
    """A GX suite from its JSON object; every expectation must load (GX drops bad ones silently)."""
    try:
        suite = gx.ExpectationSuite(**raw)
    except Exception as err:  # GX raises TypeError, ValueError or pydantic errors for a malformed suite
        raise SuiteError(f"{where}: not a valid expectation suite: {err}") from err
    if len(suite.expectations) != len(raw.get("expectations", [])):
        raise SuiteError(
            f"{where}: only {len(suite.expectations)} of {len(raw.get('expectations', []))} expectations are valid"
        )
    return suite


def load_suite(path: Path) -> "gx.ExpectationSuite":
    """The suite file stored at `path` as it is (business rules only); every expectation in the
    file must load. `SuiteError` names the file."""
    return _gx_suite(read_suite(path), str(path))


def build_suite(config: SourceConfig, path: Path) -> "gx.ExpectationSuite":
    """The suite a batch of the source is validated with: the generated checks, then the file's
    rules (`suite_expectations`), under the file's name and meta. `SuiteError` names the file."""
    raw = read_suite(path)
    _gx_suite(raw, str(path))  # a bad rule in the file is the file's error, named as such
    return _gx_suite({**raw, "expectations": suite_expectations(config, path)},
                     f"{path} (with the checks generated from source {config.source})")


def _sample(result: dict[str, Any]) -> list[Any] | None:
    sample = result.get("partial_unexpected_list")
    if sample is None:
        rows = (result.get("details") or {}).get("unexpected_rows")
        if rows:
            sample = rows
    if sample is None:
        return None
    return json.loads(json.dumps(sample[:SAMPLE_SIZE], default=str))


def _error_message(exception_info: dict[str, Any]) -> str | None:
    """Why an expectation could not be evaluated: GX 1.x keys `exception_info` by metric id
    (`{"MetricConfigurationID(...)": {"raised_exception": True, "exception_message": ...}}`), older
    results hold one such record at the top."""
    records = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    messages = [r.get("exception_message") for r in records if isinstance(r, dict) and r.get("raised_exception")]
    return "; ".join(dict.fromkeys(m for m in messages if m)) or None


def _row(validation_result) -> dict[str, Any]:
    config = validation_result.expectation_config
    result = validation_result.result or {}
    error = _error_message(validation_result.exception_info or {})
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    unexpected_count = result.get("unexpected_count")
    if unexpected_count is None and config.type == "unexpected_rows_expectation":
        unexpected_count = result.get("observed_value")  # its observed value is the count of offending rows
    return {
        "expectation": config.type,
        "description": config.description,
        "column_name": kwargs.get("column"),
        "kwargs": json.loads(json.dumps(kwargs, default=str)),
        "severity": config.severity.value if config.severity else "critical",
        "success": bool(validation_result.success),
        "observed_value": json.loads(json.dumps(result.get("observed_value"), default=str)),
        "unexpected_count": unexpected_count,
        "unexpected_sample": _sample(result),
        "error": error,
    }


def _in_suite_order(everything: list, evaluated: dict[int, Any], by_gx: list) -> list:
    """Every result in the order of the suite: the evaluated ones at their positions, GX's (which
    it returns in an order of its own) at the positions of their expectations."""
    def identity(expectation) -> tuple:  # GX adds the batch id to a result's kwargs
        kwargs = {k: v for k, v in expectation.kwargs.items() if k != "batch_id"}
        return expectation.type, json.dumps(kwargs, sort_keys=True, default=str), expectation.description

    placed: dict[int, Any] = dict(evaluated)
    waiting = [i for i in range(len(everything)) if i not in evaluated]
    for r in by_gx:
        i = next((i for i in waiting if identity(everything[i]) == identity(r.expectation_config)), None)
        i = waiting[0] if i is None else i  # GX states every expectation it ran; never expected to miss
        waiting.remove(i)
        placed[i] = r
    return [placed[i] for i in sorted(placed)]


def _restate(result) -> None:
    """The suite result's success and statistics again, after results were added to it."""
    evaluated = len(result.results)
    passed = sum(1 for r in result.results if r.success)
    result.success = passed == evaluated
    result.statistics.update({
        "evaluated_expectations": evaluated, "successful_expectations": passed,
        "unsuccessful_expectations": evaluated - passed,
        "success_percent": 100.0 * passed / evaluated if evaluated else None,
    })


def validate_batch(warehouse_url: str, config: SourceConfig, *, batch_id: str, data_docs: Path | None = None,
                   castable: list[tuple[str, str]] | None = None, unique_values: str | None = None,
                   already_counted: dict | None = None) -> ValidationOutcome:
    """Run the source's suite (generated checks, then the file's rules: `build_suite`) on one
    landed batch of `staging.<source>`; returns every result, in suite order. The expectations
    `aim.scan_checks` evaluates (row queries, not-null, value sets, regexes) are counted in one
    scan; GX runs the rest.

    With `data_docs`, also builds GX Data Docs (HTML) for this validation into that folder.
    `castable`: the typed columns already known to cast in the batch (`aim.row_scan.columns_that_cast`);
    `unique_values`: values no two of its rows share (`aim.gate.each_key_once`);
    `already_counted`: the suite's conditions counted on the batch as it is (`aim.scan_conditions.count_suite`),
    which spares the scan.
    Raises `SuiteError` when the suite file is unusable; a failing expectation is an outcome,
    not an exception.
    """
    suite_path = settings.expectations_dir() / config.expectation_suite
    built = build_suite(config, suite_path)
    everything = [e.configuration for e in built.expectations]
    with db.transaction(warehouse_url) as conn, conn.cursor() as cur:  # what the platform checks: one scan
        checks = {i: check for i, e in enumerate(everything) if (check := scan_checks.scan_check(cur, e)) is not None}
        evaluated = dict(zip(checks, scan_checks.evaluate(cur, config.staging_table, batch_id, list(checks.values()),
                                                          typed=config.typed_columns, result_format=RESULT_FORMAT,
                                                          castable=castable, unique_values=unique_values,
                                                          already_counted=already_counted)))
    suite = gx.ExpectationSuite(name=built.name, meta=built.meta,  # the rest, for GX to run
                                expectations=[e for i, e in enumerate(built.expectations) if i not in evaluated])
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    url = db.normalize_url(warehouse_url).render_as_string(hide_password=False)  # psycopg2, like every other step
    source = context.data_sources.add_sql(name="warehouse", connection_string=url)
    schema, table = config.staging_table
    asset = source.add_table_asset(name=config.source, table_name=table, schema_name=schema)
    batches = asset.add_batch_definition(
        name="by_batch",
        partitioner=PartitionerColumnValue(column_name=BATCH_COLUMN),
        validate_partitioner=False,  # GX only checks date partitioners; a text batch id is what we want
    )
    suite = context.suites.add(suite)
    for site in list(context.list_data_docs_sites()):  # the ephemeral context's own site is a stray temp folder
        context.delete_data_docs_site(site)
    if data_docs is not None:
        context.add_data_docs_site(site_name="aim", site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{config.source}-batch", data=batches, suite=suite)
    )
    result = validation.run(  # .run (not batch.validate) stores the result, so Data Docs can show it
        batch_parameters={BATCH_COLUMN: batch_id},
        result_format=RESULT_FORMAT,
    )
    result.results = _in_suite_order(everything, evaluated, result.results)
    if evaluated:  # the stored result (what Data Docs show) holds every expectation, in suite order
        _restate(result)
        store = context.validation_results_store
        (key,) = store.list_keys()
        store.set(key, result)
    if data_docs is not None:
        context.build_data_docs(site_names=["aim"])
    outcome = ValidationOutcome(suite=suite.name, results=[_row(r) for r in result.results])
    for r in outcome.results:  # an expectation that errored (bad SQL, missing column) counts as failed
        if r["error"]:
            r["success"] = False
    return outcome
