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
    the source kind's `access` (see `aim.source_kinds`). A connection of a type the kind cannot
    use is refused with a message naming the source and the connection (never its secrets)."""
    kind = config.source_kind
    accepted = kind.connection_types(config)
    if conn is not None and accepted and (conn.conn_type or "").lower() not in accepted:
        raise ValueError(f"source {config.source}: connection {conn.conn_id!r} has type {conn.conn_type!r}; "
                         f"a {kind.name} source like this one takes a connection of type {' or '.join(accepted)}")
    return kind.access(config, conn)
