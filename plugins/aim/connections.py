"""From an Airflow connection to what an extractor needs, for each kind of source.

Credentials stay inside the returned objects (a SQLAlchemy URL, request headers, a boto3
client); nothing here logs them or returns them through XCom.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aim.db import url_from_airflow_connection
from aim.extract.filestore import FileStore, LocalStore, S3Store
from aim.sources import FileExtract, HttpExtract, SourceConfig


def s3_client(conn: Any | None = None):
    """A boto3 S3 client: from an Airflow `aws` connection (keys, `endpoint_url` and `region_name`
    extras) or, without one, from boto3's own environment (AWS_* variables)."""
    import boto3

    if conn is None:
        return boto3.client("s3")
    extra = conn.extra_dejson or {}
    return boto3.client(
        "s3",
        aws_access_key_id=conn.login or None,
        aws_secret_access_key=conn.password or None,
        endpoint_url=extra.get("endpoint_url") or None,
        region_name=extra.get("region_name") or None,
    )


def file_store(extract: FileExtract, conn: Any | None = None) -> FileStore:
    """The drop a file source reads: `s3://bucket/prefix`, or a folder (relative to the connection's `path`)."""
    parsed = urlparse(extract.location)
    if parsed.scheme == "s3":
        return S3Store(s3_client(conn), parsed.netloc, parsed.path)
    base = (conn.extra_dejson or {}).get("path") if conn is not None else None
    folder = Path(extract.location)
    return LocalStore(folder if folder.is_absolute() or not base else Path(base) / folder)


def http_base(conn: Any) -> tuple[str, dict[str, str]]:
    """Base URL and request headers for an `http` connection.

    The URL is `schema://host:port` (schema defaults to http; a host given with its scheme is
    kept as it is). Headers come from the `headers` extra; a password without one becomes a
    bearer token.
    """
    host = conn.host or ""
    if "://" in host:
        base = host.rstrip("/")
    else:
        scheme = conn.schema or "http"
        base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    extra = conn.extra_dejson or {}
    headers = dict(extra.get("headers") or {})
    if conn.password and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {conn.password}"
    return base, headers


def source_access(config: SourceConfig, conn: Any | None) -> Any:
    """What the source's extractor needs, from its Airflow connection (None when it has none)."""
    if config.kind == "sql":
        return url_from_airflow_connection(conn)
    if config.kind == "file":
        return file_store(config.extract, conn)
    if config.kind == "http":
        assert isinstance(config.extract, HttpExtract)
        return http_base(conn)
    raise ValueError(f"unknown source kind {config.kind!r}")
