"""Where file drops are: a local folder or an S3 prefix. List files, fetch one to a local path.

Fetching streams the file to disk while hashing it, so a file of any size costs no memory and
its SHA-256 (the file's version) is known before it is read.
"""
from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from pathlib import Path

_BLOCK = 1 << 20


def _copy_hashing(source, destination: Path) -> str:
    """Copy a readable stream to `destination` in 1 MiB blocks; returns the SHA-256 of what was copied."""
    digest = hashlib.sha256()
    with open(destination, "wb") as dst:
        for block in iter(lambda: source.read(_BLOCK), b""):
            digest.update(block)
            dst.write(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    """One file in a drop: its key (path under the drop's root, with `/`) and size."""

    key: str
    size: int


class FileStore:
    """A drop of files that can be listed and fetched."""

    def list(self, pattern: str) -> list[RemoteFile]:  # pragma: no cover - interface
        """Files whose name matches `pattern`, sorted by key."""
        raise NotImplementedError

    def fetch(self, key: str, destination: Path) -> str:  # pragma: no cover - interface
        """Copy the file to `destination`; returns its SHA-256 (hex)."""
        raise NotImplementedError

    def describe(self, key: str) -> str:  # pragma: no cover - interface
        """The file's full location, for messages."""
        raise NotImplementedError


class LocalStore(FileStore):
    def __init__(self, root: Path):
        self.root = Path(root)

    def list(self, pattern: str) -> list[RemoteFile]:
        if not self.root.is_dir():
            raise FileNotFoundError(f"file drop folder {self.root} does not exist")
        return sorted(
            (RemoteFile(p.name, p.stat().st_size) for p in self.root.iterdir()
             if p.is_file() and not p.name.startswith(".") and fnmatch.fnmatch(p.name, pattern)),
            key=lambda f: f.key,
        )

    def fetch(self, key: str, destination: Path) -> str:
        with open(self.root / key, "rb") as src:
            return _copy_hashing(src, destination)

    def describe(self, key: str) -> str:
        return str(self.root / key)


class S3Store(FileStore):
    def __init__(self, client, bucket: str, prefix: str):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self, pattern: str) -> list[RemoteFile]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(prefix):]
                if "/" not in key and fnmatch.fnmatch(key, pattern):
                    found.append(RemoteFile(key, obj["Size"]))
        return sorted(found, key=lambda f: f.key)

    def fetch(self, key: str, destination: Path) -> str:
        return _copy_hashing(self.client.get_object(Bucket=self.bucket, Key=self._full_key(key))["Body"], destination)

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full_key(key)}"


