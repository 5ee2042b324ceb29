"""Export targets: a local folder or an S3 prefix, written so a reader never sees half a file.

A file is first written beside its final name (a temporary name in the same folder, or a
temporary key under the same prefix), then moved (`os.replace`) or copied (S3 server-side copy)
into place. Every published file records its SHA-256, so an unchanged file is not rewritten.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlparse

_READ_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_READ_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


class ExportTarget:
    """Where published files go; `relpath`s use `/` whatever the target."""

    def url(self, relpath: str) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def sha256(self, relpath: str) -> str | None:
        """SHA-256 of the file published at `relpath`, or None when there is none."""
        raise NotImplementedError  # pragma: no cover - interface

    def publish(self, local_file: Path, relpath: str, sha256: str, content_type: str) -> None:
        """Put `local_file` at `relpath` atomically: readers see the old file or the new one."""
        raise NotImplementedError  # pragma: no cover - interface

    def read_bytes(self, relpath: str) -> bytes | None:
        """The published file's content (small files: manifest, catalog), or None when there is none."""
        raise NotImplementedError  # pragma: no cover - interface

    def publish_if_changed(self, local_file: Path, relpath: str, content_type: str) -> bool:
        """Publish `local_file` at `relpath` unless the file there already has its bytes; True when written."""
        digest = sha256_file(local_file)
        if self.sha256(relpath) == digest:
            return False
        self.publish(local_file, relpath, digest, content_type)
        return True


class LocalTarget(ExportTarget):
    def __init__(self, root: Path):
        self.root = Path(root)

    def url(self, relpath: str) -> str:
        return str(self.root / relpath)

    def sha256(self, relpath: str) -> str | None:
        path = self.root / relpath
        return sha256_file(path) if path.exists() else None

    def read_bytes(self, relpath: str) -> bytes | None:
        path = self.root / relpath
        return path.read_bytes() if path.exists() else None

    def publish(self, local_file: Path, relpath: str, sha256: str, content_type: str) -> None:
        final = self.root / relpath
        final.parent.mkdir(parents=True, exist_ok=True)
        aside = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(local_file, aside)
            os.replace(aside, final)
        finally:
            aside.unlink(missing_ok=True)


class S3Target(ExportTarget):
    """An `s3://bucket/prefix`; boto3 honours AWS_ENDPOINT_URL for S3-compatible stores."""

    def __init__(self, bucket: str, prefix: str, client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from aim.connections import s3_client

            self._client = s3_client()
        return self._client

    def key(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def url(self, relpath: str) -> str:
        return f"s3://{self.bucket}/{self.key(relpath)}"

    def sha256(self, relpath: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(relpath))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head.get("Metadata", {}).get("sha256")

    def read_bytes(self, relpath: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(relpath))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def publish(self, local_file: Path, relpath: str, sha256: str, content_type: str) -> None:
        final = self.key(relpath)
        aside = f"{final}.{uuid.uuid4().hex}.tmp"
        extra = {"Metadata": {"sha256": sha256}, "ContentType": content_type}
        try:
            self.client.upload_file(str(local_file), self.bucket, aside, ExtraArgs=extra)
            self.client.copy(
                {"Bucket": self.bucket, "Key": aside}, self.bucket, final, ExtraArgs={"MetadataDirective": "COPY"}
            )
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=aside)


def target_from_url(url: str) -> ExportTarget:
    """The export target named by `AIM_EXPORT_URL`: `s3://bucket/prefix`, or a folder path."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"export URL {url!r} names no bucket; expected s3://bucket/prefix")
        return S3Target(parsed.netloc, parsed.path)
    if parsed.scheme in ("", "file"):
        return LocalTarget(Path(parsed.path if parsed.scheme == "file" else url))
    raise ValueError(f"export URL {url!r}: expected a folder path or s3://bucket/prefix")
