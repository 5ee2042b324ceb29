"""Where file drops are: a local folder or an S3 prefix. List files, fetch one to a local path.

Fetching streams the file to disk while hashing it, so a file of any size costs no memory and
its SHA-256 (the file's version) is known before it is read. A folder drop never serves a file
outside its folder through a symlink (`LocalStore`).
"""
from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

_BLOCK = 1 << 20

log = logging.getLogger(__name__)


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
    """A folder drop. A symlink is followed only when its target resolves inside the folder (one
    file of the drop under another name); a symlink, to a file or through a folder, that leads out
    of it is never listed (a warning names it) and never fetched (PermissionError naming it)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def list(self, pattern: str) -> list[RemoteFile]:
        if not self.root.is_dir():
            raise FileNotFoundError(f"file drop folder {self.root} does not exist")
        found = []
        for entry in self.root.iterdir():
            if entry.name.startswith(".") or not fnmatch.fnmatch(entry.name, pattern):
                continue
            try:
                real = self._inside(entry.name)
            except PermissionError as refused:
                log.warning("%s", refused)
                continue
            if real.is_file():
                found.append(RemoteFile(entry.name, real.stat().st_size))
        return sorted(found, key=lambda f: f.key)

    def fetch(self, key: str, destination: Path) -> str:
        with open(self._inside(key), "rb", opener=_no_final_symlink) as src:
            return _copy_hashing(src, destination)

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def _inside(self, key: str) -> Path:
        """The real path of the file at `key`, symlinks resolved; PermissionError when it lies outside the drop."""
        real = (self.root / key).resolve()
        if not real.is_relative_to(self.root.resolve()):
            raise PermissionError(
                f"{self.describe(key)} leads outside the drop folder {self.root} (to {real}): refused")
        return real


def _no_final_symlink(path: str, flags: int) -> int:
    """Open `path` refusing a symlink in its last part (one swapped in after it was resolved)."""
    return os.open(path, flags | os.O_NOFOLLOW)


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


