"""OpenLineage datasets of every step: what each task reads and writes, named once, here.

The Airflow OpenLineage provider emits a START and a COMPLETE (or FAIL) event for every task run;
this module gives those events their inputs and outputs. A task body calls one of the step
functions below (`landed`, `validated`, `merged`, `measured`, `published`), which resolves the
datasets at run time (a source's host comes from its Airflow connection, the warehouse's from
`AIM_WAREHOUSE_URL`, the files' from `AIM_EXPORT_URL`) and sets them as the running task's
`inlets`/`outlets` (OpenLineage `Dataset` objects, which the provider reads as manually annotated
lineage). Airflow makes asset events of `Asset` outlets only, so the assets that schedule the
DAGs stay as they are. Nothing here runs at DAG parse time, and nothing runs at all while
OpenLineage is disabled (no transport configured, or `AIRFLOW__OPENLINEAGE__DISABLED=true`).
Naming a dataset never fails a task: a step that cannot be named is logged and left out.

Names follow the OpenLineage naming spec (https://openlineage.io/docs/spec/naming), never with
credentials:

| what                         | namespace                      | name                              |
| ---------------------------- | ------------------------------ | --------------------------------- |
| warehouse table or view      | `postgres://host:port`         | `<database>.<schema>.<table>`     |
| `sql` source table           | `postgres://host:port` (`mysql://`, `mssql://`) | `<database>.<schema>.<table>` (MySQL: `<database>.<table>`) |
| `http` source                | `scheme://host[:port]` of the API | the API's path (base path + `extract.path`) |
| `file` source in S3          | `s3://bucket`                  | the drop's prefix (`/` for the bucket's root) |
| `file` source in a folder    | `file`                         | the folder's absolute path        |
| published file in S3         | `s3://bucket`                  | the object's key                  |
| published file in a folder   | `file`                         | the file's absolute path          |
| a source reached otherwise   | `aim-source://<connection id or source>` | the source's name          |

A host given as a Unix-socket folder is `localhost`. Each published data set's outputs are its
`latest/<id>/<id>.csv`, `.json`, `.parquet` and `.schema.json` (the dated archive copies are
the same content and are not named), plus the manifest and the catalog.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from openlineage.client.event_v2 import Dataset

    from aim.sources import SourceConfig

log = logging.getLogger(__name__)

FALLBACK_SCHEME = "aim-source"
# SQLAlchemy backend -> (OpenLineage scheme, default port, default schema or None when names have none)
_SQL_BACKENDS = {
    "postgresql": ("postgres", 5432, "public"),
    "mysql": ("mysql", 3306, None),
    "mssql": ("mssql", 1433, "dbo"),
}


def enabled() -> bool:
    """True when the OpenLineage provider is installed and configured to emit (a transport is set
    and it is not disabled)."""
    try:
        from airflow.providers.openlineage import conf
    except ImportError:
        return False
    return not conf.is_disabled()


def dataset(namespace: str, name: str) -> "Dataset":
    """An OpenLineage input/output dataset."""
    from openlineage.client.event_v2 import Dataset

    return Dataset(namespace=namespace, name=name)


def table(url: Any, schema: str, name: str) -> "Dataset":
    """The table (or view) `schema.name` in the database at SQLAlchemy `url`: host and port only
    in the namespace, never a user or password."""
    from sqlalchemy.engine import make_url

    url = make_url(url)
    backend = url.get_backend_name()
    if backend not in _SQL_BACKENDS:
        raise ValueError(f"no OpenLineage naming for {backend!r} databases")
    scheme, default_port, default_schema = _SQL_BACKENDS[backend]
    host = url.host or "localhost"  # no host, or a Unix-socket folder (`?host=/dir`): this machine
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    namespace = f"{scheme}://{host}:{url.port or default_port}"
    if default_schema is None:
        return dataset(namespace, f"{url.database}.{name}")
    return dataset(namespace, f"{url.database}.{schema or default_schema}.{name}")


def warehouse_table(schema: str, name: str) -> "Dataset":
    """A table or view of the warehouse (`AIM_WAREHOUSE_URL`), e.g. `staging.<source>`."""
    from aim import settings

    return table(settings.warehouse_url(), schema, name)


def location(url: str) -> "Dataset":
    """A file or folder: `s3://bucket/key`, or a local path (made absolute)."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return dataset(f"s3://{parts.hostname}", parts.path.strip("/") or "/")
    path = parts.path if parts.scheme == "file" else url
    return dataset("file", str(Path(path).resolve()))


def source_system(config: "SourceConfig", access: Any) -> "Dataset":
    """What the source `config` reads, from the `access` its kind opened at run time
    (`aim.connections.source_access`); the logical `aim-source://` name for a kind that has no
    OpenLineage naming here."""
    from sqlalchemy.engine import URL

    extract = config.extract
    if config.kind == "sql" and isinstance(access, URL) and access.get_backend_name() in _SQL_BACKENDS:
        schema, _, name = extract.table.rpartition(".")
        return table(access, schema, name)
    if config.kind == "http" and hasattr(access, "base_url"):
        base = urlsplit(access.base_url)
        authority = base.hostname + (f":{base.port}" if base.port else "")
        return dataset(f"{base.scheme}://{authority}", base.path.rstrip("/") + "/" + extract.path.lstrip("/"))
    if config.kind == "file" and hasattr(access, "bucket"):
        return dataset(f"s3://{access.bucket}", access.prefix or "/")
    if config.kind == "file" and hasattr(access, "root"):
        return dataset("file", str(Path(access.root).resolve()))
    return dataset(f"{FALLBACK_SCHEME}://{config.connection_id or config.source}", config.source)


def published_files(dataset_id: str, export_url: str | None = None) -> list["Dataset"]:
    """The files that carry data set `dataset_id` under `export_url` (default `AIM_EXPORT_URL`)."""
    from aim import settings
    from aim.publish.publication import FORMATS
    from aim.storage import target_from_url

    target = target_from_url(export_url or settings.export_url())
    suffixes = [f".{extension}" for extension in FORMATS] + [".schema.json"]  # the data, then its dictionary
    return [location(target.url(f"latest/{dataset_id}/{dataset_id}{suffix}")) for suffix in suffixes]


def record(context: Any, *, inputs: Iterable["Dataset"] = (), outputs: Iterable["Dataset"] = ()) -> None:
    """Set the running task's OpenLineage inputs and outputs (replacing those of an earlier run of
    the same task object); its `Asset` inlets and outlets are kept."""
    from openlineage.client.event_v2 import Dataset

    task = context["task"]
    task.inlets = [i for i in task.inlets if not isinstance(i, Dataset)] + list(inputs)
    task.outlets = [o for o in task.outlets if not isinstance(o, Dataset)] + list(outputs)


def _step(name_datasets: Callable[[], tuple[list, list]], context: Any, step: str) -> None:
    """Record the datasets `name_datasets()` gives, when lineage is enabled; log, never raise."""
    if not enabled():
        return
    try:
        inputs, outputs = name_datasets()
        record(context, inputs=inputs, outputs=outputs)
    except Exception:  # lineage must never fail the work it describes
        log.warning("OpenLineage: could not name the datasets of %s", step, exc_info=True)


# ------------------------------------------------------------------ the steps, one per task


def landed(context: Any, config: "SourceConfig", access: Any) -> None:
    """extract_and_land: the source system → `staging.<source>`."""
    _step(lambda: ([source_system(config, access)], [warehouse_table("staging", config.source)]),
          context, f"{config.source} extract_and_land")


def validated(context: Any, config: "SourceConfig") -> None:
    """validate: `staging.<source>` → the quality results and rows set aside (`ops`)."""
    _step(lambda: ([warehouse_table("staging", config.source)],
                   [warehouse_table("ops", "quality_result"), warehouse_table("ops", "rejected_row")]),
          context, f"{config.source} validate")


def merged(context: Any, config: "SourceConfig") -> None:
    """merge: `staging.<source>` → `core.<source>`."""
    _step(lambda: ([warehouse_table("staging", config.source)], [warehouse_table("core", config.source)]),
          context, f"{config.source} merge")


def measured(context: Any, sources: Iterable[str]) -> None:
    """recompute: the measures' source tables in core → `core.aim_measure_value` and the marts
    views that read it (found in the warehouse's catalog)."""
    def datasets() -> tuple[list, list]:
        return ([warehouse_table("core", s) for s in sources],
                [warehouse_table("core", "aim_measure_value")]
                + [warehouse_table(schema, view) for schema, view in _views_reading("core", "aim_measure_value")])

    _step(datasets, context, "aim_measures recompute")


def published(context: Any, skipped: Iterable[str] = ()) -> None:
    """publish: each released data set's rows (`core.<source>`, or the relations its SQL file
    reads, e.g. marts views) → its published files; the data sets in `skipped` were not written."""
    def datasets() -> tuple[list, list]:
        from aim.publish.datasets import inventory
        from aim.publish.publication import CATALOG, MANIFEST
        from aim.settings import export_url
        from aim.storage import target_from_url

        left_out = set(skipped)
        inputs: dict[tuple[str, str], Any] = {}
        outputs = []
        for d in inventory():
            if not d.released or d.id in left_out:
                continue
            for source in _dataset_inputs(d):
                inputs[(source.namespace, source.name)] = source
            outputs += published_files(d.id)
        target = target_from_url(export_url())
        outputs += [location(target.url(relpath)) for relpath in (MANIFEST, CATALOG)]
        return list(inputs.values()), outputs

    _step(datasets, context, "publish")


def _dataset_inputs(config: Any) -> list["Dataset"]:
    """The warehouse relations a data set's rows come from: its source's core table, or those its
    SQL file reads (parsed with OpenLineage's SQL parser)."""
    if config.source:
        return [warehouse_table("core", config.source)]
    import openlineage_sql

    from aim import settings

    parsed = openlineage_sql.parse([(settings.sql_dir() / config.query).read_text(encoding="utf-8")],
                                   dialect="postgres")
    return [warehouse_table(t.schema or "public", t.name) for t in parsed.in_tables]


def _views_reading(schema: str, name: str) -> list[tuple[str, str]]:
    """The marts views that read `schema.name`, directly or through other views."""
    from aim import db, settings

    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        cur.execute((settings.sql_dir() / "lineage" / "views_reading.sql").read_text(encoding="utf-8"),
                    {"schema": schema, "name": name})
        return [tuple(row) for row in cur.fetchall()]
