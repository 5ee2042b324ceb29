"""From an Airflow connection to what an extractor needs: each source kind opens its own
(`aim.source_kinds`); the S3 client is shared by file drops and the export target.

Credentials stay inside the returned objects (a SQLAlchemy URL, request headers, a boto3
client); nothing here logs them or returns them through XCom.
"""
from __future__ import annotations

from typing import Any

from aim.sources import SourceConfig


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


def source_access(config: SourceConfig, conn: Any | None) -> Any:
    """What the source's extractor needs, from its Airflow connection (None when it has none):
    the source kind's `access` (see `aim.source_kinds`)."""
    return config.source_kind.access(config, conn)
